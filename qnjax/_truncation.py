"""Truncation, validity and resource rules of the exact delivery engine.

The rule that keeps :func:`qnjax.delivery` honest
--------------------------------------------------
Every node's output is computed on ``t_trunc`` steps. The mean delivery time and the
mean delivered state come from the attempt decomposition at the root (Wald:
``E[T] = E[D] / P(success)``), which is exact when the root's *sub-protocols* (every
elementary link and every non-root node) are delivered within the truncation; it does
not need the root itself to be covered. So each result carries

* ``coverage``: ``Σ pmf`` of the root (for the pmf and ``state_t``);
* ``attempt_coverage``: the smallest coverage among the sub-protocols;
* ``status``: a bit mask per design (:data:`TRUNCATED`, :data:`INVALID`,
  :data:`UNPHYSICAL`), explained in words by :attr:`DeliveryResult.reason`.

If ``attempt_coverage < 1 − ATTEMPT_DEFICIT_MAX`` the truncation cannot support the
decomposition (and the sub-protocols' arrays wrap around in their Fourier renewal), so
every field of that design is NaN and ``status`` has :data:`TRUNCATED`. Parameters
outside their ranges (NaN, ``p_gen`` outside ``(0, 1]``, ``t_coh <= 0`` ...) reaching
the engine under ``jit`` give NaN everywhere and :data:`INVALID`. Means outside their
physical ranges by more than rounding give NaN and :data:`UNPHYSICAL`. NaN is the
engine's "no answer"; it propagates through every derived figure and never becomes a key.

Resources: :func:`delivery_bytes` estimates the memory of one call from ``t_trunc``, the
batch and the protocol; :func:`qnjax.delivery` refuses (``ValueError``) what exceeds
``max_memory`` before anything is allocated.
"""

from __future__ import annotations

import math
import os

import jax
import jax.numpy as jnp
import numpy as np

# A sub-protocol may miss at most this probability mass within the truncation. The means
# then carry a relative truncation error of the same order (at most ~1e-4; 1e-12 and
# below for the usual t_trunc of 20+ mean times).
ATTEMPT_DEFICIT_MAX = 1e-4

TRUNCATED = 1  # the truncation is too short for the attempt decomposition
INVALID = 2  # a parameter is NaN or outside its range (only reachable under jit)
UNPHYSICAL = 4  # a mean left its physical range by more than rounding

# Mean fields may leave their physical range by rounding only (after which they are clipped).
RANGE_SLACK = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-8}


def fast_len(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (fast FFT sizes)."""
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


def slack(dtype) -> float:
    return RANGE_SLACK.get(np.dtype(dtype), 1e-4)


def default_max_memory() -> int:
    """Bytes one call may use: half the physical memory on CPU, 90 % of the device
    memory on accelerators (16 GiB where the device does not say)."""
    try:
        if jax.default_backend() != "cpu":
            stats = jax.devices()[0].memory_stats() or {}
            if "bytes_limit" in stats:
                return int(0.9 * stats["bytes_limit"])
            return 16 * 2**30
        return int(0.5 * os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - exotic platforms
        return 16 * 2**30


def fmt_bytes(n: float) -> str:
    for unit, k in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= k:
            return f"{n / k:.1f} {unit}"
    return f"{int(n)} B"


def delivery_bytes(per_design: int, chunk: int, nb: int, n_out: int, state_comps: int, itemsize: int) -> int:
    """Peak memory estimate of one :func:`qnjax.delivery` call, in bytes: the working set
    of one chunk of designs (``per_design`` bytes each, the FFT buffers of every level) and
    the returned ``pmf`` and ``state_t`` of all ``nb`` designs (twice, for the reshape)."""
    outputs = 2 * nb * n_out * (1 + state_comps) * itemsize
    return int(min(nb, chunk) * per_design * max(1, itemsize // 4) // 2 + outputs)


def check_memory(need: int, limit: float, what: str, advice: str) -> None:
    if need > limit:
        raise ValueError(f"{what} needs about {fmt_bytes(need)}; the limit is {fmt_bytes(limit)} "
                         f"(max_memory); {advice}")


def leaf_deficit(p, n: int):
    """``P(T > n − 1) = (1 − p)^(n − 1)`` of an elementary link, without cancellation."""
    return jnp.exp((n - 1) * jnp.log1p(-p))


SERIES_DIRECT = 64


def series_inverse(h, n: int, fast_len):
    """First ``n`` coefficients of the power series ``1 / h(z)`` (``h[..., 0] = 1``), by
    Newton's iteration ``g ← g + g (1 − h g)`` with FFT products, so the result is the causal
    renewal density exactly, whatever mass lies beyond ``n`` (the circular renewal aliases
    that mass).

    A doubling from ``k`` to ``k2 <= 2k`` coefficients uses cyclic products of length
    ``m = fast_len(k2)``, not the ``k2 + k`` a linear product needs: ``h[:k2] g`` (degree
    ``< k2 + k − 1``) wraps its top coefficients onto indices below ``k``, which the step
    discards (there ``1 − h g`` vanishes), and ``g r`` has degree ``< k2``, so nothing
    wraps. Every coefficient kept is a linear-convolution coefficient (the middle-product
    trick of Hanrot, Quercia & Zimmermann, AAECC 14, 415 (2004)); the transforms are
    about 2/3 as long."""
    lead = h.shape[:-1]
    # The first SERIES_DIRECT coefficients by forward substitution (one small unit lower
    # triangular Toeplitz solve, the recurrence g[m] = −Σ h[j] g[m − j]): the same numbers as
    # the first Newton doublings, each of which would otherwise compile six transforms of its
    # own size.
    k = min(SERIES_DIRECT, n)
    i = np.arange(k)
    d = i[:, None] - i[None, :]
    hm = jnp.where(jnp.asarray(d >= 0), h[..., np.maximum(d, 0)], 0)  # (..., k, k)
    e0 = jnp.zeros(lead + (k, 1), h.dtype).at[..., 0, 0].set(1)
    g = jax.lax.linalg.triangular_solve(hm, e0, left_side=True, lower=True, unit_diagonal=True)[..., 0]
    while k < n:
        k2 = min(2 * k, n)
        m = fast_len(k2)
        gf = jnp.fft.rfft(g, m)
        r = -jnp.fft.irfft(jnp.fft.rfft(h[..., :k2], m) * gf, m)[..., k:k2]  # 1 − h g vanishes below k
        corr = jnp.fft.irfft(gf * jnp.fft.rfft(r, m), m)[..., : k2 - k]
        g = jnp.concatenate([g, corr], axis=-1)
        k = k2
    return g


def log_geometric_rates(levels, p_gen: float, p_swap: float, cut) -> list[float]:
    """``log π_l`` for ``l = 0 .. L``: the delivery time ``T_l`` of the first ``l`` levels is
    stochastically at least a geometric time of success probability ``π_l`` per step.

    Derivation (the engine's model: a level's attempt waits for a pair from each of its two
    independent sub-protocols, which restart from scratch after every failed attempt; Li,
    Coopmans & Elkouss, IEEE TQE 2, 4100315 (2021)). A link takes ``Geom(p_gen)`` steps
    (``>= 1``), so ``π_0 = p_gen``. At level ``l`` the attempts are i.i.d.; attempt ``i``
    lasts ``D_i >= min(A_i, B_i)`` (a cut-off ends it after the first pair arrives), and
    ``>= max(A_i, B_i) >= A_i`` without a cut-off, with ``A_i, B_i`` independent copies of
    ``T_(l-1)``. A swap attempt succeeds only if its own coin (probability ``p_swap``,
    independent of all times) does, so the number of attempts is at least ``N ~
    Geom(p_swap)``, independent of the ``D_i``, and ``T_l >= Σ_(i<=N) D_i``. With ``D_i``
    at least ``Geom(q)`` that sum is at least ``Geom(q p_swap)`` (a geometric number of
    geometric times is geometric). Hence ``π_l = p_swap π_(l-1)`` for a swap without
    cut-off and ``p_swap (1 − (1 − π_(l-1))²)`` with one; a distillation (success
    probability at most 1) keeps ``π_(l-1)``, or ``1 − (1 − π_(l-1))²`` with a cut-off.
    In logarithms, as ``π`` may underflow for 32 levels."""
    lp = [math.log(p_gen)]
    for i, lv in enumerate(levels):
        x = lp[-1]
        if cut is not None and not math.isinf(cut[i]):
            x += math.log(2 - math.exp(x))  # 1 - (1 - π)^2 = π (2 - π)
        lp.append(x + (math.log(p_swap) if lv == "swap" else 0.0))
    return lp


def log_steps_needed(log_pi: float, deficit: float) -> float:
    """``log n`` of the smallest truncation ``n`` with ``P(G > n − 1) = (1 − π)^(n − 1) <=
    deficit`` for ``G ~ Geom(π)``: below it a time at least ``G`` misses more than ``deficit``
    of its mass (``n ≈ ln(1 / deficit) / π`` for small ``π``, in logarithms below 1e-30)."""
    if log_pi < -69:
        return math.log(-math.log(deficit)) - log_pi
    q = math.log1p(-math.exp(log_pi)) if log_pi < 0 else -math.inf
    return math.log(1 + math.log(deficit) / q)


def warning_text(status) -> str | None:
    """A short warning for the ``status`` bits of a result (one fixed text per combination of
    causes, so Python's warning filter shows it once per call site); the details, with counts
    and coverages, are in :attr:`DeliveryResult.reason`."""
    st = np.asarray(status)
    if not np.any(st):
        return None
    what = []
    if np.any(st & INVALID):
        what.append("a NaN or out-of-range parameter (checks=True names it)")
    if np.any(st & TRUNCATED):
        what.append(f"t_trunc too short (attempt_coverage < 1 - {ATTEMPT_DEFICIT_MAX:g}; raise t_trunc or use 'auto')")
    if np.any(st & UNPHYSICAL):
        what.append("rounding beyond the physical range (use float64)")
    return "delivery: designs with no result (NaN): " + "; ".join(what) + "; details in result.reason"


def reason(status, attempt_coverage, t_trunc: int) -> str | None:
    """Words for the ``status`` bits of a (host-side) :class:`DeliveryResult`, or ``None``."""
    st = np.asarray(status)
    if not np.any(st):
        return None
    n, parts = st.size, []
    if np.any(st & INVALID):
        k = int(np.count_nonzero(st & INVALID))
        parts.append(f"{k} of {n} design(s) have a parameter that is NaN or outside its range (p_gen and "
                     "p_swap in (0, 1], values below the dtype's smallest normal number counting as 0, w0 in [-1/3, 1], lam0 a probability vector, t_coh > 0, rates "
                     "and cutoff >= 0); pass checks=True to raise with the parameter's name under jit")
    if np.any(st & TRUNCATED):
        bad = (st & TRUNCATED) != 0
        cov = np.asarray(attempt_coverage, np.float64)
        cmin = float(np.nanmin(np.where(bad, cov, np.inf))) if np.any(bad & ~np.isnan(cov)) else float("nan")
        parts.append(f"{int(bad.sum())} of {n} design(s): truncation coverage of the sub-protocols "
                     f"(attempt_coverage) is only {cmin:.6g} at t_trunc = {t_trunc} steps; the attempt "
                     f"decomposition needs >= 1 - {ATTEMPT_DEFICIT_MAX:g} (the mean delivery time is far "
                     "beyond t_trunc); raise t_trunc (or max_t_trunc / max_memory with t_trunc='auto'), or use float64 "
                     "if the protocol is deep (float32 rounding grows about twofold per level)")
    if np.any(st & UNPHYSICAL):
        k = int(np.count_nonzero(st & UNPHYSICAL))
        parts.append(f"{k} of {n} design(s) left the physical range by more than rounding "
                     "(use float64, or a shorter t_trunc / protocol)")
    return "delivery: no result (NaN) for " + "; ".join(parts)


def design_bytes(t_trunc: int, depth: int, internal: int | None, werner: bool) -> int:
    """Working memory of one design in :func:`qnjax.delivery`, in bytes: the complex FFT
    buffers of length ``fast_len(2 (t_trunc + depth + 1))`` per state component (2 Werner,
    4 Bell-diagonal), six for a level list (``internal=None``) or ``2 (internal + 2)`` for a
    tree of ``internal`` swap/distill nodes. ``depth``: levels of the list or of the tree."""
    factor = 6 if internal is None else 2 * (internal + 2)
    return 16 * (2 if werner else 4) * fast_len(2 * (t_trunc + depth + 1)) * factor
