""":func:`delivery`: parse and validate → plan → run (fixed or automatic truncation)."""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .. import _truncation as TR
from .._validate import check_bell, check_nonnegative, check_positive, check_probability, check_range
from ..chain import Chain, item_dims, resolve
from ..protocol import Distill, Link, Node, Swap, internal_nodes, n_segments, parse_levels
from .plan import make_plan
from .prepare import bsm_walsh, check_representable, prepare_and_run, warn_once
from .result import DeliveryResult

COVERAGE_WARN = 1 - 1e-6
DEFAULT_CHUNK_BYTES = 256 * 2**20
DEFAULT_CHUNK_BYTES_ACCEL = 4 * 2**30


class Parsed(NamedTuple):
    """Validated inputs of one call: static structure, raw parameters, dtype, batch."""

    levels: Optional[tuple]
    tree: Optional[Node]
    S: Optional[int]
    K: int
    werner: bool
    raw: dict
    dtype: object
    batch: tuple

    @property
    def nb(self) -> int:
        return int(np.prod(self.batch)) if self.batch else 1


def delivery(
    protocol: Union[str, tuple, list, Node, None] = None,
    *,
    chain: Optional[Chain] = None,
    p_gen: Float[Array, "*batch"] | float | None = None,
    w0: Float[Array, "*batch"] | float | None = None,
    lam0: Float[Array, "*batch 4"] | None = None,
    p_swap: Float[Array, "*batch"] | float = 1.0,
    t_coh: Float[Array, "*batch"] | float = float("inf"),
    rates: Float[Array, "*batch"] | None = None,
    cutoff: Float[Array, "*batch K"] | None = None,
    bsm_noise: Float[Array, "*batch 4"] | None = None,
    t_trunc: Union[int, str] = "auto",
    coverage_target: float = 1 - 1e-9,
    max_t_trunc: int = 2**21,
    chunk_bytes: int | None = None,
    max_memory: float | None = None,
    checks: bool = False,
    warn: bool = True,
    progress: bool = False,
) -> DeliveryResult:
    """Exact delivery-time distribution, delivered state and secret key rate.

    Args:
        protocol: a level list (``"swap,distill,swap"`` or a tuple of names) over
            ``2**n_swap`` identical segments, or a :class:`~qnjax.protocol.Link` /
            ``Swap`` / ``Distill`` tree.
        chain: instead of ``protocol`` and the physical keywords below, a
            :class:`qnjax.Chain` holding them (same names, ranges and defaults as
            :func:`qnjax.simulate_nested`; see :mod:`qnjax.chain`).
        p_gen: success probability per attempt in (0, 1]. Levels: ``(...)``; tree:
            ``(..., S)`` per segment (a scalar broadcasts).
        w0: initial Werner parameter (Werner mode: distillation is BBPSSW).
            Levels ``(...)``, tree ``(..., S)``.
        lam0: initial Bell-diagonal state (Bell-diagonal mode: distillation is
            DEJMPS). Levels ``(..., 4)``, tree ``(..., S, 4)``. Give ``w0`` or ``lam0``;
            neither means perfect links (``w0 = 1``), as in Monte Carlo.
        p_swap: swap success probability in (0, 1]. Levels ``(...)``, tree ``(..., K)``
            for the ``K`` internal nodes in post-order (ignored at distill nodes).
        t_coh: coherence time of a waiting pair, in steps (``inf``: no decay); the
            waiting link's Werner parameter (every Walsh coordinate in Bell-diagonal
            mode) decays as ``exp(−Δ / t_coh)``. Levels ``(...)``, tree ``(..., K)``.
        rates: instead of ``t_coh``, decay rates per step of a waiting pair. Levels:
            ``(...)`` Werner or ``(..., 4)`` Walsh rates; tree: ``(..., K, 2)`` or
            ``(..., K, 2, 4)`` for the waiting left / right child (see
            :func:`delivery_station_rates`).
        cutoff: memory cut-offs in steps, ``>= 0``; ``inf`` for none, non-integers
            use the randomized-cut-off relaxation (module docstring). Levels
            ``(..., L)`` one per level, tree ``(..., K)``. ``None``: no cut-offs.
        bsm_noise: Walsh multiplier of every swap's output, from
            :func:`bsm_noise_walsh`; levels ``(..., 4)``, tree ``(..., K, 4)``.
        t_trunc: number of steps ``N`` of the returned pmf, or ``"auto"`` (default;
            concrete inputs only) to grow from 1024 until ``coverage >= coverage_target``
            for every design, or up to ``max_t_trunc`` / what ``max_memory`` allows. A
            design whose truncation cannot support the attempt decomposition gets NaN
            fields and a ``status`` bit (see :class:`DeliveryResult`), never a number.
        chunk_bytes: memory budget per chunk of designs; larger batches are
            evaluated chunk by chunk (``lax.map``). Default: 256 MiB on CPU (cache-sized
            work per chunk), 4 GiB on accelerators (measured on an H100: 75,000 vs 57,000
            designs/s at ``t_trunc = 10^4`` against 256 MiB chunks).
        max_memory: bytes this call may use (default: half the physical memory on CPU,
            90 % of an accelerator's); a call estimated to need more is refused with a
            ``ValueError`` before anything is allocated.
        checks: under ``jit``, raise (``equinox.error_if``) when a parameter is NaN or out
            of range, with the host check's message; without it such designs give NaN
            fields and ``status`` bit 2.
        warn: warn when a returned coverage is below ``1 − 1e-6`` or a design has no result,
            and (once per process) when float32 misses that accuracy budget.
        progress: with ``t_trunc="auto"``, one progress line (stderr) per truncation length
            tried, with elapsed and estimated remaining time.

    Returns:
        :class:`DeliveryResult` with the design batch shape in front.

    The computation runs in the floating dtype of the inputs (float64 needs
    ``jax_enable_x64``). Calls with new values of the same shapes reuse the
    compiled code; ``jit``, ``vmap`` and ``grad`` work when ``t_trunc`` is an int.
    """
    given = dict(p_gen=p_gen, w0=w0, lam0=lam0, p_swap=p_swap, t_coh=t_coh, rates=rates, cutoff=cutoff,
                 bsm_noise=bsm_noise)
    protocol, kw = resolve(protocol, chain, given, delivery.__kwdefaults__, "delivery")
    t_trunc = check_t_trunc(t_trunc)
    parsed = parse(protocol, kw, checks)
    if chunk_bytes is None:
        chunk_bytes = DEFAULT_CHUNK_BYTES if jax.default_backend() == "cpu" else DEFAULT_CHUNK_BYTES_ACCEL
    limit = TR.default_max_memory() if max_memory is None else float(max_memory)
    if t_trunc == "auto":
        res = run_auto(parsed, chunk_bytes, limit, coverage_target, max_t_trunc, progress)
    else:
        res = run(parsed, int(t_trunc), chunk_bytes, limit)
    if warn and not isinstance(res.coverage, jax.core.Tracer):
        warn_about(res, parsed.dtype)
    return res


# --------------------------------------------------------------------------- parse / validate


def structure(protocol):
    """``(levels, tree, S, K)`` of a level list or a protocol tree."""
    if isinstance(protocol, (Link, Swap, Distill)):
        tree = protocol
        if tree.span[0] != 0:
            raise ValueError(f"protocol tree must start at station 0; it spans {tree.span}")
        K = len(internal_nodes(tree))
        if K == 0:
            raise ValueError("protocol tree must have at least one swap or distill node")
        return None, tree, n_segments(tree), K
    levels = parse_levels(protocol)
    return levels, None, None, len(levels)


def check_t_trunc(t_trunc):
    if isinstance(t_trunc, str) and t_trunc == "auto":
        return "auto"
    if isinstance(t_trunc, bool) or not isinstance(t_trunc, (int, np.integer)) or t_trunc < 2:
        raise ValueError(f"t_trunc must be an integer >= 2 or 'auto'; got {t_trunc!r}")
    return t_trunc


def parse(protocol, kw: dict, checks: bool) -> Parsed:
    """Check the parameters (concrete values on the host; traced ones in the program with
    ``checks``), pick the dtype and the broadcast design batch shape (no device work)."""
    levels, tree, S, K = structure(protocol)
    p_gen, w0, lam0, rates, cutoff, bsm_noise = (kw[k] for k in ("p_gen", "w0", "lam0", "rates", "cutoff",
                                                                 "bsm_noise"))
    if p_gen is None:
        raise TypeError("delivery needs p_gen (success probability per attempt)")
    if w0 is not None and lam0 is not None:
        raise ValueError("give either w0 (Werner mode) or lam0 (Bell-diagonal mode), not both")
    werner = lam0 is None
    if werner and w0 is None:
        w0 = 1.0  # perfect links, as in Monte Carlo
    t_coh = kw["t_coh"]
    p_gen = check_probability(p_gen, "p_gen", open_low=True, runtime=checks)
    p_swap = check_probability(kw["p_swap"], "p_swap", open_low=True, runtime=checks)
    if werner:
        w0 = check_range(w0, "w0", -1 / 3, 1.0, runtime=checks)
    else:
        lam0 = check_bell(lam0, "lam0", runtime=checks)
    if rates is None:
        t_coh = check_positive(t_coh, "t_coh", runtime=checks)
    else:
        rates = check_range(rates, "rates", 0.0, np.inf, hi_open=True, runtime=checks)
    if cutoff is not None:
        cutoff = check_nonnegative(cutoff, "cutoff", runtime=checks)
        if np.ndim(cutoff) == 0 or np.shape(cutoff)[-1] != K:
            what = f"{K} levels" if levels is not None else f"{K} internal nodes"
            raise ValueError(f"cutoff must have a last axis of one entry per {what} ({K}); got shape {np.shape(cutoff)}")

    raw = {"p_gen": p_gen, "s0": w0 if werner else lam0, "p_swap": p_swap, "t_coh": t_coh if rates is None else None,
           "rates": rates, "cutoff": cutoff, "bsm": bsm_noise}
    # Weakly typed arrays (Python scalars held as JAX arrays, e.g. in a Chain) do not promote.
    arrs = [x for x in raw.values()
            if isinstance(x, (jax.Array, np.ndarray)) and jnp.issubdtype(x.dtype, jnp.floating)]
    dtype = jnp.dtype(jax.dtypes.canonicalize_dtype(jnp.result_type(*arrs) if arrs else float))
    check_representable(raw, dtype)
    if bsm_noise is not None:
        raw["bsm"] = bsm_walsh(bsm_noise, dtype, werner)
    names = {"s0": "w0" if werner else "lam0", "bsm": "bsm_noise"}
    item = item_dims(levels is not None, werner)
    shapes = []
    for name, x in raw.items():
        if x is None:
            continue
        shp = tuple(np.shape(x))
        nt = item[names.get(name, name)]
        shapes.append(shp[: max(0, len(shp) - nt)] if len(shp) >= nt else ())
    try:
        batch = tuple(np.broadcast_shapes(*shapes)) if shapes else ()
    except ValueError:
        raise ValueError(f"parameter batch shapes do not broadcast: {shapes}") from None
    raw = {k: v for k, v in raw.items() if v is not None}
    return Parsed(levels, tree, S, K, werner, raw, dtype, batch)


# --------------------------------------------------------------------------- plan / run


def plan_for(parsed: Parsed, n: int, chunk_bytes: int):
    """Static plan at truncation ``n``, designs per chunk, and the bytes the call needs."""
    plan = make_plan(parsed.levels, parsed.tree, parsed.werner, n)
    chunk, need = chunk_and_bytes(plan, parsed.nb, parsed.K, parsed.dtype.itemsize, chunk_bytes)
    return plan, chunk, need


def chunk_and_bytes(plan, nb: int, K: int, itemsize: int, chunk_bytes: int) -> tuple[int, int]:
    """Designs per chunk and the bytes a call of ``nb`` designs needs under ``plan`` (``K``
    internal nodes of a tree; level plans hold the FFT buffers of one level at a time)."""
    per_design = 16 * plan.comps * plan.fft_len * (6 if plan.levels is not None else 2 * (K + 2))
    chunk = max(1, min(nb, chunk_bytes // per_design))
    return chunk, TR.delivery_bytes(per_design, chunk, nb, plan.n_out, 1 if plan.werner else 4, itemsize)


def run(parsed: Parsed, n: int, chunk_bytes: int, limit: float) -> DeliveryResult:
    """Evaluate at truncation ``n`` after checking the memory estimate against ``limit``."""
    plan, chunk, need = plan_for(parsed, n, chunk_bytes)
    TR.check_memory(need, limit, f"delivery at t_trunc={n} for {parsed.nb} design(s)",
                    "lower t_trunc (or the batch) or raise max_memory")
    return prepare_and_run(plan, chunk, parsed.batch, parsed.K, parsed.S, parsed.dtype, parsed.raw)


def run_auto(parsed: Parsed, chunk_bytes, limit, coverage_target, max_t_trunc, progress) -> DeliveryResult:
    """Grow ``t_trunc`` from 1024 until every design reaches ``coverage_target`` (or up to
    ``max_t_trunc`` / what ``limit`` allows)."""
    if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(parsed.raw)):
        raise ValueError("t_trunc='auto' (the default) needs concrete inputs; pass an integer t_trunc "
                         "under jit/vmap/grad")
    n = 1024
    from .._progress import Progress

    bar = Progress(progress, "automatic truncation: t_trunc 1024",
                   max(1, int(math.log2(max(max_t_trunc, 1024) / 1024)) + 1))
    while True:
        res = run(parsed, n, chunk_bytes, limit)
        bar.advance(1, description=f"automatic truncation: t_trunc {n} done")
        st = np.asarray(res.status)
        if np.all(st & TR.INVALID) or n >= max_t_trunc:
            break
        nxt = next_length(res, n, coverage_target)
        if nxt is None:
            break
        nxt = min(max_t_trunc, nxt)
        while nxt > n and plan_for(parsed, nxt, chunk_bytes)[2] > limit:  # grow only as far as allowed
            nxt //= 2
        if nxt <= n:
            break
        n = nxt
    bar.close()
    return res


def next_length(res: DeliveryResult, n: int, coverage_target: float) -> int | None:
    """The next truncation length of the automatic search after a run at ``n`` steps, or
    ``None`` when every design already reaches ``coverage_target``.

    The tail of the delivery time is close to exponential once most of the mass is in: the
    scale follows from the measured deficit ``1 − coverage`` and the mean, and the search
    jumps to the length that reaches the target. A design without a result at ``n`` (its
    attempt decomposition was truncated, so its figures are NaN) or with most of its mass
    still missing says nothing about that scale: the length then grows fourfold, never by
    an extrapolation from a deficit near 1 (which jumped straight to ``max_t_trunc``)."""
    st = np.asarray(res.status)
    cov = np.asarray(res.coverage, np.float64)
    known = np.isfinite(cov)
    pmf_def = np.where(known, 1 - cov, 0.0)
    att_def = np.nan_to_num(1 - np.asarray(res.attempt_coverage, np.float64), nan=0.0)
    deficit = float(np.max(np.maximum(pmf_def, np.where(att_def > TR.ATTEMPT_DEFICIT_MAX, att_def, 0)), initial=0.0))
    blind = bool(np.any(st & TR.TRUNCATED))  # NaN figures because n was too short
    if deficit <= 1 - coverage_target and not blind:
        return None
    nxt = 4 * n if (blind or deficit >= 0.5) else 2 * n
    if 0 < deficit < 0.5:
        mt = np.asarray(res.mean_time, np.float64)
        mt = float(np.max(mt[np.isfinite(mt)])) if np.any(np.isfinite(mt)) else 0.0
        scale = max(mt, n / math.log(1 / deficit))
        want = 1.25 * scale * math.log(1 / (1 - coverage_target))
        nxt = max(nxt, 1 << math.ceil(math.log2(want)))
    return nxt


def warn_about(res: DeliveryResult, dtype) -> None:
    """Warn about flagged designs and a coverage short of ``1 − 1e-6`` (host-side)."""
    why = TR.warning_text(res.status)
    if why is not None:
        warnings.warn(why, stacklevel=3)
    cov = np.asarray(res.coverage)
    cmin = float(np.min(cov[np.isfinite(cov)])) if np.any(np.isfinite(cov)) else 1.0
    cmax = float(np.max(cov[np.isfinite(cov)])) if np.any(np.isfinite(cov)) else 1.0
    if dtype == np.float32 and (cmin < COVERAGE_WARN or cmax > 2 - COVERAGE_WARN):
        bad = cmin if cmin < COVERAGE_WARN else cmax
        warn_once("float32", f"delivery computed in float32 (coverage {bad:.7f} misses the 1e-6 budget); "
                  "enable float64: jax.config.update('jax_enable_x64', True)")
    elif cmin < COVERAGE_WARN:
        warnings.warn(f"delivery: coverage {cmin:.7f} < 1 - 1e-6 at t_trunc={res.pmf.shape[-1]}; "
                      "raise t_trunc or use t_trunc='auto'", stacklevel=3)
