"""Shared pieces of the Monte Carlo engines: random numbers, states, statistics, results.

States travel as a trailing axis ``s``: Werner mode ``s = 1`` holds ``[w]``; Bell-diagonal
mode ``s = 4`` holds the Walsh–Hadamard coordinates ``walsh(λ)`` (see
:func:`qnjax.states.walsh`), in which a swap is an element-wise product and memory
decoherence an element-wise decay (``exp(−Δ · rate)`` per coordinate, never ``exp(+t)``).
"""

from __future__ import annotations

import math
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from .. import _formulas as F
from .._conventions import WALSH_NP, walsh_matrix
from .._engine.result import MONTE_CARLO_FIELDS, DeliveryResult

_U32 = 2.0 ** -32
BIG_TIME = 2 ** 30  # "no cut-off" as an int32 that can be added to a time


# ---------------------------------------------------------------- random numbers

def key_from_seed(seed) -> jax.Array:
    """A threefry key from an int seed or an existing key (typed or raw uint32[2])."""
    if isinstance(seed, (int, np.integer)):
        return jax.random.key(int(seed))
    seed = jnp.asarray(seed) if not isinstance(seed, jax.Array) else seed
    if jnp.issubdtype(seed.dtype, jax.dtypes.prng_key):
        return seed
    return jax.random.wrap_key_data(seed.astype(jnp.uint32))


def _mix32(x):
    """MurmurHash3's 32-bit finalizer (a bijection with full avalanche)."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x85EBCA6B)
    x = x ^ (x >> 13)
    x = x * jnp.uint32(0xC2B2AE35)
    return x ^ (x >> 16)


def hash_bits(words, counter):
    """Counter-based random bits: two keyed finalizer rounds of ``counter``.

    ``words`` is a uint32 pair (from :func:`design_words` / :func:`sub_words`), ``counter`` any
    uint32 array. Pure integer arithmetic, so CPU and GPU give the same bits. Used for
    the bulk uniforms (several times cheaper than threefry on CPU); the stream keys come
    from :func:`design_words` (seed -> design) and :func:`sub_words` (chunk, node, slot).
    """
    c = counter.astype(jnp.uint32)
    x = _mix32(c * jnp.uint32(0x9E3779B9) + words[..., 0])
    return _mix32(x ^ words[..., 1])


def sub_words(words, i):
    """A derived key (uint32 pair) for stream index ``i``."""
    i = jnp.asarray(i, jnp.uint32)
    a = hash_bits(words, 2 * i)
    b = hash_bits(words, 2 * i + 1)
    return jnp.stack([a, b], -1)


def _mix32_np(x):
    x = np.asarray(x, np.uint32)
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint32(16))
        x = x * np.uint32(0x85EBCA6B)
        x = x ^ (x >> np.uint32(13))
        x = x * np.uint32(0xC2B2AE35)
        return x ^ (x >> np.uint32(16))


def _hash_np(words, counter):
    c = np.asarray(counter, np.uint32)
    with np.errstate(over="ignore"):
        x = _mix32_np(c * np.uint32(0x9E3779B9) + words[..., 0])
    return _mix32_np(x ^ words[..., 1])


SEED_MAX = 2**64 - 1


def check_seed(seed):
    """An int seed in ``[0, 2**64 − 1]`` (the 64 bits that key the streams) or a JAX key;
    anything else is refused rather than silently reduced modulo ``2**64``."""
    if isinstance(seed, (bool, np.bool_)):
        raise ValueError(f"seed must be an integer in [0, 2**64 - 1] or a JAX key; got {seed!r}")
    if isinstance(seed, (int, np.integer)):
        if not 0 <= int(seed) <= SEED_MAX:
            raise ValueError(f"seed must be an integer in [0, 2**64 - 1] or a JAX key; got {int(seed)}")
        return int(seed)
    if isinstance(seed, float):
        raise ValueError(f"seed must be an integer in [0, 2**64 - 1] or a JAX key; got {seed!r}")
    return seed


def design_words(seed, n: int) -> np.ndarray:
    """Stream keys ``(n, 2)`` uint32 of the design points for an int seed or a JAX key.

    NumPy twin of :func:`sub_words` (no device work, nothing to compile): design ``d`` of
    seed ``s`` always gets the same stream, whatever else is in the batch.
    """
    seed = check_seed(seed)
    if isinstance(seed, int):
        v = seed
        base = np.array([v & 0xFFFFFFFF, v >> 32], np.uint32)
    else:
        base = np.asarray(jax.random.key_data(key_from_seed(seed)), np.uint32).reshape(-1)[-2:]
    base = np.stack([_hash_np(base, np.uint32(0xA5A5A5A5)), _hash_np(base, np.uint32(0x3C3C3C3C))])
    d = np.arange(n, dtype=np.uint32)
    return np.stack([_hash_np(base, 2 * d), _hash_np(base, 2 * d + 1)], -1)


def bits_to_uniform(bits, dtype):
    """Uniforms in the open interval (0, 1) from 32 random bits: ``(b + 1/2) 2^-32``.

    Never 0 or 1, so ``log(u)`` is finite; exact in float64.
    """
    if dtype == jnp.float64:
        return (bits.astype(dtype) + 0.5) * _U32
    # float32: 24 significant bits, centred in their cell
    return ((bits >> 8).astype(dtype) + 0.5) * (2.0 ** -24)


def uniform_open(words, counter, dtype):
    """Open-interval uniforms for ``counter`` (uint32 array) in the stream ``words``."""
    return bits_to_uniform(hash_bits(words, counter), dtype)


def geometric(u, log_q):
    """Geometric waiting time ``T >= 1`` with ``P(T = t) = p q^(t−1)`` by inversion.

    ``log_q = log(1 − p)`` (``−inf`` for ``p = 1`` gives ``T = 1``). Returns int32,
    clipped below ``BIG_TIME``.
    """
    t = jnp.floor(jnp.log(u) / log_q)
    return (jnp.minimum(t, BIG_TIME // 4) + 1).astype(jnp.int32)


# ---------------------------------------------------------------- states (trailing axis s)


def fidelity_of(state, bell: bool):
    """Fidelity to Φ+ of internal states ``(..., s)``."""
    if bell:
        return state.sum(-1) / 4
    return (1 + 3 * state[..., 0]) / 4


def distill_internal(sa, sb, bell: bool):
    """Distillation of internal states: returns ``(p_success, s_out)``.

    Werner: BBPSSW on Werner inputs, ``p = (1 + wa wb)/2``,
    ``w_out = (wa + wb + 4 wa wb) / (3 (1 + wa wb))`` (Bennett et al., PRL 76, 722 (1996)).
    Bell-diagonal: DEJMPS (Deutsch et al., PRL 77, 2818 (1996)) via
    :func:`qnjax._formulas.dejmps_numerators`.
    """
    if not bell:
        wa, wb = sa[..., 0], sb[..., 0]
        m, mw = F.bbpssw_werner_unnormalized(1.0, wa, 1.0, wb)
        return m, (mw / m)[..., None]
    h = walsh_matrix(sa.dtype)
    la, lb = sa @ h / 4, sb @ h / 4
    num = F.dejmps_numerators(la, lb, jnp)
    p = num.sum(-1)
    return p, (num / p[..., None]) @ h


# ---------------------------------------------------------------- statistics

class Moments:
    """Host-side (float64 NumPy) running count / mean / M2 per design, merged with
    Chan et al.'s parallel update from per-chunk shifted sums."""

    def __init__(self, shape):
        self.n = np.zeros(shape, np.float64)
        self.mean = np.zeros(shape, np.float64)
        self.m2 = np.zeros(shape, np.float64)

    def add_shifted(self, n, s1, s2, shift):
        """Merge a chunk given ``n``, ``Σ(x − shift)``, ``Σ(x − shift)²``."""
        n = np.asarray(n, np.float64)
        s1 = np.asarray(s1, np.float64)
        s2 = np.asarray(s2, np.float64)
        shift = np.asarray(shift, np.float64)
        safe = np.maximum(n, 1)
        mb = s1 / safe
        m2b = np.maximum(s2 - s1 * mb, 0.0)
        mb = mb + shift
        tot = self.n + n
        delta = mb - self.mean
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(tot > 0, n / np.maximum(tot, 1), 0.0)
        self.mean = np.where(n > 0, self.mean + delta * frac, self.mean)
        self.m2 = np.where(n > 0, self.m2 + m2b + delta ** 2 * self.n * frac, self.m2)
        self.n = tot

    def stderr(self):
        with np.errstate(invalid="ignore", divide="ignore"):
            var = np.where(self.n > 1, self.m2 / np.maximum(self.n - 1, 1), np.nan)
            return np.sqrt(var / np.maximum(self.n, 1))

    def mean_or_nan(self):
        return np.where(self.n > 0, self.mean, np.nan)


# ---------------------------------------------------------------- result

class MonteCarloResult(DeliveryResult):
    """A :class:`~qnjax.DeliveryResult` from Monte Carlo (its ``policy`` is ``"nested"`` or
    ``"swap_asap"``); kept as a name so ``isinstance(r, MonteCarloResult)`` keeps working.

    Fields filled: ``mean_time``, ``mean_werner``, ``mean_fidelity`` with their ``*_stderr``,
    ``mean_state`` (Werner mode: the Werner state of the mean ``w``), ``key_fraction``
    (asymptotic BB84, log base 2, of the mean delivered state), ``secret_key_rate =
    key_fraction / mean_time`` in bits per step, ``samples``, ``undelivered`` (stopped at the
    slot cap, never in the means), ``trajectories = samples + undelivered``, and the kept
    samples ``times`` / ``werner``; the exact engine's ``pmf``, ``coverage``, ``status`` ...
    are ``None``. :meth:`to_dict` is the plain-Python summary the CLI prints.
    """

    @property
    def _fields(self) -> tuple:
        return tuple(k for k in MONTE_CARLO_FIELDS if getattr(self, k) is not None)

    def to_dict(self) -> dict:
        """Plain-Python summary (scalars or nested lists), without the sample arrays."""
        out = {}
        for k in SUMMARY_FIELDS:
            v = np.asarray(getattr(self, k))
            out[k] = v.item() if v.ndim == 0 else v.tolist()
        out["policy"] = self.policy
        return out


SUMMARY_FIELDS = ("mean_time", "mean_time_stderr", "mean_werner", "mean_werner_stderr", "mean_fidelity",
                  "mean_fidelity_stderr", "key_fraction", "secret_key_rate", "samples", "undelivered",
                  "trajectories", "mean_state")


def _h2_np(p):
    p = np.clip(p, 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(p > 0, -p * np.log2(np.where(p > 0, p, 1)), 0.0)
        u = np.where(p < 1, -(1 - p) * np.log2(np.where(p < 1, 1 - p, 1)), 0.0)
    return t + u


def _bb84_np(lam):
    """NumPy twin of :func:`qnjax.key_fraction_bb84`: ``max(0, 1 − h(e_X) − h(e_Z))``."""
    ex, ez = lam[..., 2] + lam[..., 3], lam[..., 1] + lam[..., 2]
    return np.maximum(1 - _h2_np(ex) - _h2_np(ez), 0.0)


def build_result(policy, batch_shape, tmom: Moments, fmom: Moments, state_sum, bell,
                 undelivered, times, fids, dtype) -> MonteCarloResult:
    """Assemble a :class:`MonteCarloResult` from host accumulators (flat design axis)."""
    n = tmom.n
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_s = state_sum / np.maximum(n, 1)[:, None]
    h = WALSH_NP
    if bell:
        lam = mean_s @ h / 4
    else:
        w = mean_s[:, 0]
        off = (1 - w) / 4
        lam = np.stack([(1 + 3 * w) / 4, off, off, off], -1)
    lam = np.where((n > 0)[:, None], lam, np.nan)
    mf = fmom.mean_or_nan()
    fse = fmom.stderr()
    kf = np.where(n > 0, _bb84_np(np.nan_to_num(lam, nan=0.25)), np.nan)
    mt = tmom.mean_or_nan()
    with np.errstate(invalid="ignore", divide="ignore"):
        skr = kf / mt
    wfids = np.where(np.isnan(fids), np.nan, (4 * fids - 1) / 3)

    def arr(x, extra=()):
        x = np.asarray(x).reshape(tuple(batch_shape) + tuple(extra))
        if x.dtype == np.float64:
            x = x.astype(dtype)
        return jnp.asarray(x)

    return MonteCarloResult(
        mean_time=arr(mt), mean_time_stderr=arr(tmom.stderr()),
        mean_werner=arr((4 * mf - 1) / 3), mean_werner_stderr=arr(4 * fse / 3),
        mean_fidelity=arr(mf), mean_fidelity_stderr=arr(fse),
        mean_state=arr(lam, (4,)), key_fraction=arr(kf), secret_key_rate=arr(skr),
        samples=arr(n.astype(np.int64)), undelivered=arr(np.asarray(undelivered, np.int64)),
        trajectories=arr((n + undelivered).astype(np.int64)),
        times=arr(times, (times.shape[-1],)), werner=arr(wfids, (fids.shape[-1],)),
        policy=policy,
    )


def pick_dtype(dtype) -> jnp.dtype:
    if dtype is None:
        return jnp.dtype(jnp.result_type(float))
    dtype = jnp.dtype(dtype)
    if dtype not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64)):
        raise ValueError(f"dtype must be float32 or float64; got {dtype}")
    if dtype == jnp.float64 and not jax.config.jax_enable_x64:
        raise ValueError("dtype float64 needs jax_enable_x64 (jax.config.update('jax_enable_x64', True))")
    return dtype


MAX_SAMPLES = 2**30  # per design point: trajectory counters are int32


def check_samples(samples) -> int:
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ValueError(f"samples must be a positive integer; got {samples!r}")
    if samples > MAX_SAMPLES:
        raise ValueError(f"samples must be at most 2**30 = {MAX_SAMPLES} per design point (int32 "
                         f"counters); got {int(samples)}; split the run over several seeds")
    return int(samples)


def check_memory(need: float, max_memory, what: str, advice: str) -> None:
    """Refuse (``ValueError``) a run estimated to need more than ``max_memory`` bytes
    (default: :func:`qnjax._truncation.default_max_memory`) before allocating it."""
    from .._truncation import check_memory as _check, default_max_memory

    limit = default_max_memory() if max_memory is None else float(max_memory)
    _check(int(need), limit, what, advice)


def pow2_at_least(x: float, lo: int, hi: int) -> int:
    x = max(lo, min(hi, int(x)))
    return 1 << max(0, math.ceil(math.log2(x)))


class Progress:
    """Optional progress callback wrapper: ``callback(done, total)`` after each chunk."""

    def __init__(self, callback: Optional[callable], total: int):
        self.cb = callback
        self.total = total

    def __call__(self, done: int):
        if self.cb is not None:
            self.cb(min(int(done), self.total), self.total)
