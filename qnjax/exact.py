"""Exact delivery engine for nested swap / distill protocols with memory cut-offs.

The model is that of Brand, Coopmans & Elkouss, IEEE JSAC 38, 619 (2020) and
Li, Coopmans & Elkouss, IEEE TQE 2, 4100315 (2021):

* time counts integer steps of one elementary-link attempt; link ``i`` is ready
  at step ``t >= 1`` with probability ``p_i (1 − p_i)^(t−1)``;
* an internal node starts both children from scratch; the child finished first
  waits ``Δ = |tA − tB|`` steps and decoheres over ``Δ``; if ``Δ > τ`` (the node's
  cut-off) it is discarded at ``min(tA, tB) + τ`` and the node restarts; otherwise
  the swap (probability ``p_swap``) or distillation (BBPSSW in Werner mode, DEJMPS
  in Bell-diagonal mode) runs at ``max(tA, tB)``; failure restarts the node.

Algorithm. Every node output is kept as ``Λ(t) = E[walsh(state) · 1{T = t}]``,
an unnormalised state in Walsh coordinates whose first component is the pmf of
``T`` (Werner mode keeps two components ``(P, P·w)``). Decay of a waiting link is
an exponential per Walsh coordinate, swaps are element-wise products and
distillations bilinear maps, so conditional expectations factor exactly by the
independence of the two children. One attempt of a node needs the windowed,
decay-weighted sums ``X(t) = Σ_d Λ(t − d) u(d) e^(−r d)`` (one FFT convolution per
component) and cumulative sums; the restarts form a renewal process summed in
Fourier space, ``Λ_out = Λ_success / (1 − F_fail)`` (Li et al. 2021, §IV).
Arrays are padded to twice their length so each convolution is exact below the
truncation ``t_trunc``; the renewal's circular wrap-around only adds the mass
beyond ``2 t_trunc``.

Cut-off relaxation. A real cut-off ``τ`` is read as a randomized integer cut-off:
``floor(τ)`` or ``floor(τ) + 1``, the latter with probability ``frac(τ)``, drawn
per attempt. The keep-probability of a waiting link of age ``d`` is then
``u(d) = clip(τ − d + 1, 0, 1)``; every quantity is exact for this physical
model, equals the integer model at integer ``τ`` and is piecewise linear between
integers, so ``jax.grad`` gives useful slopes to the optimizer. ``τ = inf`` means
no cut-off.

Mean delivery time and mean state use the attempt decomposition (Wald):
``E[T] = E[D] / P(success)`` with ``D`` the duration of one attempt, and the mean
delivered state is the success-weighted state of one attempt. These converge much
faster in ``t_trunc`` than sums over the truncated pmf: they need the sub-protocols, not
the root, to be delivered within ``t_trunc``. The root's renewal is summed causally
(power-series inverse, no wrap-around), so its pmf is exact below ``t_trunc`` however
little of it is covered. When the truncation cannot support the decomposition, or a
parameter is invalid under ``jit``, the fields are NaN and ``status`` says why (see
:mod:`qnjax._truncation`); a number the engine returns is physical.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple, Union

import jax
import jax.numpy as jnp
import numpy as np

from . import _formulas as F
from ._conventions import complex_of, walsh_matrix
from . import _truncation as TR
from ._validate import (bell_problems, check_bell, check_nonnegative, check_positive, check_probability,
                        check_range, outside)
from .keyrate import key_fraction_bb84, key_fraction_bb84_smooth
from .protocol import Distill, Link, Node, Swap, internal_nodes, n_segments, parse_levels, tree_depth

COVERAGE_WARN = 1 - 1e-6
_DEFAULT_CHUNK_BYTES = 256 * 2**20
_DEFAULT_CHUNK_BYTES_ACCEL = 4 * 2**30


class DeliveryResult(NamedTuple):
    """Outputs of :func:`delivery`; every field has the design batch shape in front.

    Attributes:
        pmf: ``(..., N)`` probability that the root link is delivered at step ``t``.
        state_t: expected delivered state given ``T = t``: Werner parameter
            ``(..., N)`` in Werner mode, Bell-diagonal ``(..., N, 4)`` otherwise
            (zero where ``pmf`` is zero).
        coverage: ``Σ pmf`` (probability of delivery before ``t_trunc``).
        mean_time: mean delivery time in steps.
        mean_werner: Werner parameter of the mean delivered state.
        mean_state: Bell-diagonal ``(..., 4)`` mean delivered state.
        mean_fidelity: fidelity of the mean delivered state.
        key_fraction: BB84 secret fraction (bits per pair) of the mean state, clipped at 0.
        key_fraction_smooth: the same, unclipped (for optimisation).
        secret_key_rate: ``key_fraction / mean_time`` in bits per step.
        secret_key_rate_smooth: ``key_fraction_smooth / mean_time``.
        success_probability: probability that one attempt of the root node succeeds.
        attempt_coverage: the smallest truncation coverage among the root's sub-protocols
            (elementary links and non-root nodes); the attempt decomposition behind the
            means needs it ``>= 1 − 1e-4``.
        status: ``int32`` bit mask per design, ``0`` when every field is a number:
            ``1`` truncation too short for the attempt decomposition, ``2`` a parameter
            NaN or out of range (under ``jit``), ``4`` a mean outside its physical range
            beyond rounding. Every float field of a flagged design is NaN;
            :attr:`reason` says why in words.
    """

    pmf: jax.Array
    state_t: jax.Array
    coverage: jax.Array
    mean_time: jax.Array
    mean_werner: jax.Array
    mean_state: jax.Array
    mean_fidelity: jax.Array
    key_fraction: jax.Array
    key_fraction_smooth: jax.Array
    secret_key_rate: jax.Array
    secret_key_rate_smooth: jax.Array
    success_probability: jax.Array
    attempt_coverage: jax.Array
    status: jax.Array

    @property
    def dtype(self) -> str:
        """The floating dtype the result was computed in (``"float32"`` or ``"float64"``)."""
        return str(self.mean_time.dtype)

    def to_dict(self) -> dict:
        """The result as a dict of plain NumPy arrays (host copies), with ``dtype`` and
        ``reason``; :func:`qnjax.export.to_rows` turns it into table rows."""
        out = {k: np.asarray(v) for k, v in self._asdict().items()}
        out["dtype"] = self.dtype
        out["reason"] = self.reason
        return out

    @property
    def reason(self) -> str | None:
        """Why some designs have NaN fields, in words (host-side), or ``None`` if none has."""
        return TR.reason(self.status, self.attempt_coverage, int(self.pmf.shape[-1]))


# --------------------------------------------------------------------------- static plan


@dataclass(frozen=True)
class _Plan:
    """Hashable static structure of one evaluation."""

    levels: tuple | None  # level names, or None for a tree
    tree: Node | None
    werner: bool
    n_out: int  # t_trunc
    n_int: int  # internal length (t_trunc + depth + 1)
    fft_len: int

    @property
    def comps(self) -> int:
        return 2 if self.werner else 4


def _make_plan(levels, tree, werner, t_trunc) -> _Plan:
    depth = len(levels) if levels is not None else tree_depth(tree)
    n_int = t_trunc + depth + 1
    return _Plan(levels, tree, werner, t_trunc, n_int, TR.fast_len(2 * n_int))


# --------------------------------------------------------------------------- kernels


def _leaf(plan: _Plan, p_gen, s0):
    """Λ of an elementary link, ``p (1 − p)^(t−1) · s0`` for ``t >= 1``: (B, C, N) in time
    and its (aliased, untruncated) spectrum ``p z / (1 − (1 − p) z)`` of length M/2+1."""
    dt = p_gen.dtype
    t = jnp.arange(plan.n_int, dtype=dt)
    p = p_gen[:, None]
    pos = p < 1
    lq = jnp.log1p(-jnp.where(pos, p, 0.5))  # log(1 − p) without cancellation for tiny p
    geo = jnp.where(pos, jnp.exp(lq * jnp.maximum(t - 1, 0)), (t == 1).astype(dt))
    pmf = jnp.where(t >= 1, p * geo, 0)
    # z = exp(-2 pi i j / M); 1 - q z = (1 - z) + p z, with 1 - z from half-angle sines.
    j = np.arange(plan.fft_len // 2 + 1)
    z = np.exp(-2j * np.pi * j / plan.fft_len)
    one_minus_z = 2 * np.sin(np.pi * j / plan.fft_len) ** 2 + 1j * np.sin(2 * np.pi * j / plan.fft_len)
    cdt = complex_of(dt)
    zc, omz = jnp.asarray(z, cdt), jnp.asarray(one_minus_z, cdt)
    pc = p_gen[:, None].astype(cdt)
    spec = pc * zc / (omz + pc * zc)
    return s0[:, :, None] * pmf[:, None, :], s0[:, :, None].astype(cdt) * spec[:, None, :]


def _conv_kernel(plan: _Plan, cutoff, rates):
    """rFFT of ``u(d) exp(−r_c d)``; cutoff (B,), rates (B, C') → (B, C', M/2+1)."""
    d = jnp.arange(plan.n_int, dtype=rates.dtype)
    u = jnp.clip(cutoff[:, None] - d + 1, 0, 1)  # keep-probability at age d
    k = u[:, None, :] * jnp.exp(-rates[:, :, None] * d)
    return jnp.fft.rfft(k, n=plan.fft_len, axis=-1)


def _window_mass(plan: _Plan, a, cutoff):
    """``(a ⊛ u)(t) = A(t) − A(t − k0 − 1) + frac · a(t − k0 − 1)`` with ``A`` the
    cumulative sum, ``k0 = floor(τ)``: the undecayed window without an FFT."""
    n = plan.n_int
    tau = jnp.minimum(cutoff, n)
    k0 = jnp.floor(tau)
    frac = tau - k0
    idx = jnp.arange(n)[None, :] - k0.astype(jnp.int32)[:, None] - 1
    ok = idx >= 0
    idc = jnp.maximum(idx, 0)
    A = _cumsum(a)
    a_sh = jnp.where(ok, jnp.take_along_axis(a, idc, -1), 0)
    A_sh = jnp.where(ok, jnp.take_along_axis(A, idc, -1), 0)
    return A - A_sh + frac[:, None] * a_sh


def _window(plan: _Plan, lam, spec, cutoff, rates):
    """``X_c = Λ_c ⊛ (u e^(−r_c d))`` for all components: cumulative sums for the mass,
    FFT convolutions for the decaying Walsh coordinates."""
    x0 = _window_mass(plan, lam[:, 0], cutoff)
    xr = _irfft(plan, spec[:, 1:] * _conv_kernel(plan, cutoff, rates[:, 1:]))
    return jnp.concatenate([x0[:, None], xr], axis=1)


def _irfft(plan, x):
    return jnp.fft.irfft(x, n=plan.fft_len, axis=-1)[..., : plan.n_int]


def _cumsum(x):
    """Cumulative sum over time by a parallel prefix (error O(log N · eps), not O(N · eps))."""
    return jax.lax.associative_scan(jnp.add, x, axis=-1)


def _psum(x):
    """Sum over the last (time) axis by pairwise halving: error O(log N · eps) in float32,
    where a running sum over 10^4 steps would lose about three digits."""
    n = x.shape[-1]
    m = 1 << max(0, (n - 1).bit_length())
    x = jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, m - n)])
    while m > 1:
        m //= 2
        x = x[..., :m] + x[..., m:]
    return x[..., 0]


def _shift_left(x):
    """``y(t) = x(t + 1)``; the last entry, which would need ``x(N)``, repeats ``x(N − 1)``."""
    return jnp.concatenate([x[..., 1:], x[..., -1:]], axis=-1)


def _tail(a):
    """``P(T > t) = 1 − Σ_{s<=t} a(s)``, clamped at 0 against rounding."""
    return jnp.maximum(1 - _cumsum(a), 0)



def _bilinear(plan: _Plan, op: str, x, y, p_swap, bsm):
    """Unnormalised output of the node operation on (B, C, N) Walsh arrays."""
    if op == "swap":
        return (p_swap[:, None, None] * bsm[:, :, None]) * x * y
    if plan.werner:  # BBPSSW, Werner form
        m, w = F.bbpssw_werner_unnormalized(x[:, 0], x[:, 1], y[:, 0], y[:, 1])
        return jnp.stack([m, w], axis=1)
    h = walsh_matrix(x.dtype)
    lx = jnp.einsum("bct,ck->btk", x, h) / 4  # λ coordinates, time-major
    ly = jnp.einsum("bct,ck->btk", y, h) / 4
    num = F.dejmps_numerators(lx, ly, jnp)
    return jnp.einsum("btk,kc->bct", num, h)


def _combine(plan: _Plan, op: str, la, fa, lb, fb, cutoff, rate_a, rate_b, p_swap, bsm, same: bool,
             root: bool = False):
    """One node: children Λ (B, C, N) and their spectra → node output Λ and its spectrum.

    The children's spectra are the untruncated renewal outputs of the level below
    (no forward FFT of a child is needed); they differ from the spectra of the
    truncated arrays only by mass beyond ``t_trunc``, whose wrap-around is of the
    order of the truncation itself.

    ``rate_a`` / ``rate_b`` (B, C): Walsh decay rates per step of the waiting child.
    ``same``: the two children are identically distributed (distill nodes, level
    protocols), which halves the work. ``root``: sum the renewal causally (exact below
    ``t_trunc`` whatever lies beyond; no spectrum is returned).
    """
    if same:
        # Identical children: xa = xb − Λ, so every symmetric term collapses to one.
        x = _window(plan, la, fa, cutoff, rate_a)
        a, x0 = la[:, 0], x[:, 0]
        pi = x0 - _shift_left(x0) + _shift_left(a)  # (a ⊛ P(K = k))(t)
        f_cut = 2 * _tail(a) * pi  # the waiting child is discarded at its arrival + K
        m_op = a * (2 * x0 - a)  # mass reaching the operation at t
        ls = 2 * _bilinear(plan, op, la, x, p_swap, bsm) - _bilinear(plan, op, la, la, p_swap, bsm)
    else:
        xb = _window(plan, lb, fb, cutoff, rate_b)
        xa = _window(plan, la, fa, cutoff, rate_a) - la
        a, b = la[:, 0], lb[:, 0]
        xa0, xb0 = xa[:, 0], xb[:, 0]
        a_pi = xa0 + a - _shift_left(xa0)
        b_pi = xb0 - _shift_left(xb0) + _shift_left(b)
        f_cut = _tail(b) * a_pi + _tail(a) * b_pi
        m_op = a * xb0 + xa0 * b
        ls = _bilinear(plan, op, la, xb, p_swap, bsm) + _bilinear(plan, op, xa, lb, p_swap, bsm)
    f = f_cut + m_op - ls[:, 0]
    if root:
        # Λ = Λ_s Σ_m f^{*m}: the renewal density as a power series (linear convolutions).
        h = jnp.concatenate([jnp.ones_like(f[:, :1]), -f[:, 1:]], axis=-1)  # f(0) = 0
        g = TR.series_inverse(h, plan.n_int, TR.fast_len)
        lam = _irfft(plan, jnp.fft.rfft(ls, n=plan.fft_len, axis=-1)
                     * jnp.fft.rfft(g, n=plan.fft_len, axis=-1)[:, None])
        return lam, None, ls, f
    # Renewal over failed attempts, summed in Fourier space (one transform for f and Λ_s).
    spec = jnp.fft.rfft(jnp.concatenate([f[:, None], ls], axis=1), n=plan.fft_len, axis=-1)
    # At zero frequency 1 − F = P(success) + P(attempt longer than the truncation), which
    # the transform would get by cancellation (zero or negative for tiny p_swap).
    den = (1 - spec[:, :1]).at[:, 0, 0].set(_psum(ls[:, 0]) + jnp.maximum(1 - _psum(f_cut + m_op), 0))
    den = jnp.where(den == 0, 1, den)
    fout = spec[:, 1:] / den
    return _irfft(plan, fout), fout, ls, f


def _node_deficit(plan: _Plan, lam):
    """``P(T > t_trunc − 1)`` of a node output (1 − its coverage), at least 0."""
    return jnp.maximum(1 - _psum(lam[:, 0, : plan.n_out]), 0)


def _evaluate(plan: _Plan, params: dict):
    """Root Λ, the root's last attempt arrays and the largest truncation deficit of the
    sub-protocols (:func:`_node_deficit`), for flattened (B,) parameters."""
    if plan.levels is not None:
        lam, spec = _leaf(plan, params["p_gen"], params["s0"])
        deficit = TR.leaf_deficit(params["p_gen"], plan.n_out)
        ls = f = None
        for i, lv in enumerate(plan.levels):
            root = i == len(plan.levels) - 1
            lam, spec, ls, f = _combine(
                plan, lv, lam, spec, None, None, params["cutoff"][:, i], params["rates"],
                params["rates"], params["p_swap"], params["bsm"], same=True, root=root,
            )
            if not root:
                deficit = jnp.maximum(deficit, _node_deficit(plan, lam))
        return lam, ls, f, deficit

    nodes = internal_nodes(plan.tree)
    index = {id(n): k for k, n in enumerate(nodes)}
    last = {"deficit": jnp.max(TR.leaf_deficit(params["p_gen"], plan.n_out), axis=-1)}

    def rec(node):
        if isinstance(node, Link):
            i = node.segment
            return _leaf(plan, params["p_gen"][:, i], params["s0"][:, i])
        k = index[id(node)]
        root = node is plan.tree
        args = (params["cutoff"][:, k], params["rates"][:, k, 0], params["rates"][:, k, 1],
                params["p_swap"][:, k], params["bsm"][:, k])
        if isinstance(node, Swap):
            out = _combine(plan, "swap", *rec(node.left), *rec(node.right), *args, same=False, root=root)
        else:
            out = _combine(plan, "distill", *rec(node.child), None, None, *args, same=True, root=root)
        last["ls"], last["f"] = out[2], out[3]
        if not root:
            last["deficit"] = jnp.maximum(last["deficit"], _node_deficit(plan, out[0]))
        return out[0], out[1]

    lam, _ = rec(plan.tree)
    return lam, last["ls"], last["f"], last["deficit"]


def _safe_div(num, den):
    ok = den > 0
    return jnp.where(ok, num / jnp.where(ok, den, 1), 0)


def _summarize(plan: _Plan, params: dict, lam, ls, f, deficit):
    """Result fields from the root's Λ and last attempt; NaN and ``status`` bits where the
    parameters were invalid, the truncation too short, or a mean unphysical."""
    n = plan.n_out
    dt = lam.dtype
    sl = TR.slack(dt)
    pmf_raw = lam[:, 0, :n]
    coverage = _psum(pmf_raw)
    t = jnp.arange(plan.n_int, dtype=dt)
    s = ls[:, 0]
    p_succ = _psum(s)
    p_ok = p_succ > 0
    p_den = jnp.where(p_ok, p_succ, 1)
    mean_time = _psum((s + f) * t) / p_den
    mean_walsh = _psum(ls) / p_den[:, None]
    h = walsh_matrix(dt)
    if plan.werner:
        w = mean_walsh[:, 1]
        mean_state = jnp.stack([(1 + 3 * w) / 4] + [(1 - w) / 4] * 3, -1)
        state_t = _safe_div(lam[:, 1, :n], pmf_raw)
    else:
        mean_state = mean_walsh @ h / 4
        state_t = _safe_div(jnp.einsum("bct,ck->btk", lam[:, :, :n], h) / 4, pmf_raw[..., None])
    # physical ranges: E[T] >= 1 / p_gen of every link (at most one generation per step, Wald)
    t_min = 1 / jnp.min(params["p_gen"].reshape(p_succ.shape[0], -1), axis=-1)
    unphys = (~p_ok | (p_succ > 1 + sl) | (coverage > 1 + sl) | (mean_time < t_min * (1 - sl))
              | jnp.any(mean_state < -sl, -1) | jnp.any(mean_state > 1 + sl, -1) | jnp.any(pmf_raw < -sl, -1))
    mean_state = jnp.clip(mean_state, 0, 1)
    if plan.werner:
        mean_w = jnp.clip(w, -1 / 3, 1)
    else:
        mean_w = (4 * mean_state[:, 0] - 1) / 3
    kf = key_fraction_bb84(mean_state)
    kfs = key_fraction_bb84_smooth(mean_state)
    mean_time = jnp.maximum(mean_time, t_min)
    invalid = params["invalid"]
    trunc = ~invalid & (deficit > TR.ATTEMPT_DEFICIT_MAX)
    unphys = unphys & ~invalid & ~trunc
    status = (TR.INVALID * invalid + TR.TRUNCATED * trunc + TR.UNPHYSICAL * unphys).astype(jnp.int32)
    bad = status != 0

    def nan(x):
        return jnp.where(bad.reshape(bad.shape + (1,) * (x.ndim - 1)), jnp.nan, x)

    return DeliveryResult(
        pmf=nan(jnp.maximum(pmf_raw, 0)), state_t=nan(state_t), coverage=nan(jnp.clip(coverage, 0, 1)),
        mean_time=nan(mean_time), mean_werner=nan(mean_w), mean_state=nan(mean_state),
        mean_fidelity=nan(mean_state[:, 0]), key_fraction=nan(kf), key_fraction_smooth=nan(kfs),
        secret_key_rate=nan(kf / mean_time), secret_key_rate_smooth=nan(kfs / mean_time),
        success_probability=nan(jnp.clip(p_succ, 0, 1)),
        attempt_coverage=jnp.where(invalid, jnp.nan, 1 - jnp.clip(deficit, 0, 1)), status=status,
    )


def _run(plan: _Plan, params: dict, chunk: int):
    """Evaluate flattened params (B, ...) in chunks of ``chunk`` designs (lax.map)."""
    nb = params["p_gen"].shape[0]

    def one(p):
        return _summarize(plan, p, *_evaluate(plan, p))

    if chunk >= nb:
        return one(params)
    n_chunks = -(-nb // chunk)
    chunk = -(-nb // n_chunks)  # balance the chunks: at most n_chunks - 1 padded designs
    pad = n_chunks * chunk - nb
    padded = jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], pad, 0)]) if pad else x, params)
    stacked = jax.tree.map(lambda x: x.reshape((n_chunks, chunk) + x.shape[1:]), padded)
    out = jax.lax.map(one, stacked)
    return jax.tree.map(lambda x: x.reshape((n_chunks * chunk,) + x.shape[2:])[:nb], out)


# --------------------------------------------------------------------------- public API


def _walsh_from_werner(w):
    return jnp.stack([jnp.ones_like(w), w], axis=-1)


def _bsm_walsh(bsm_noise, dtype, werner):
    b = jnp.asarray(bsm_noise, dtype)
    if b.shape[-1:] != (4,):
        raise ValueError(f"bsm_noise must have a last axis of 4 Walsh multipliers; got shape {b.shape}")
    if werner:
        if not isinstance(b, jax.core.Tracer):
            bn = np.asarray(b)
            if not (np.allclose(bn[..., 1], bn[..., 2]) and np.allclose(bn[..., 1], bn[..., 3])):
                raise ValueError("bsm_noise must be depolarizing (equal X, Y, Z multipliers) in Werner mode; "
                                 "pass lam0 for Bell-diagonal states")
        return b[..., :2]
    return b


def bsm_noise_walsh(gate_depolarizing=0.0, measurement_error=0.0):
    """Walsh multiplier ``(..., 4)`` of a noisy BSM for :func:`delivery`'s ``bsm_noise``.

    Gate depolarizing ``g`` multiplies the X, Y, Z coordinates by ``1 − g``; each
    outcome bit flipping with probability ``e`` multiplies them by
    ``(1 − 2e, (1 − 2e)², 1 − 2e)`` (see :func:`qnjax.swap`).
    """
    check_probability(gate_depolarizing, "gate_depolarizing")
    check_probability(measurement_error, "measurement_error")
    g = jnp.asarray(gate_depolarizing)
    e = jnp.asarray(measurement_error)
    g, e = jnp.broadcast_arrays(g, e)
    if not jnp.issubdtype(g.dtype, jnp.floating):
        g = g.astype(jnp.result_type(float))
    e = e.astype(g.dtype)
    x = (1 - g) * (1 - 2 * e)
    return jnp.stack([jnp.ones_like(g), x, (1 - g) * (1 - 2 * e) ** 2, x], -1)


def delivery_station_rates(tree: Node, station_rates):
    """Per-node, per-side decay rates of waiting children from per-station memory rates.

    Args:
        tree: a protocol tree over ``S`` segments.
        station_rates: ``(..., S + 1)`` Werner decay rates per step of each station's
            memory, or ``(..., S + 1, 4)`` Walsh rates (see
            :func:`qnjax.memory_rates_per_step`).
    Returns:
        ``(..., K, 2[, 4])``: for internal node ``k`` (post-order), the rate of its
        waiting left / right child, ``r_i + r_j`` for a child spanning stations ``i..j``.
    """
    r = jnp.asarray(station_rates)
    walsh = r.ndim >= 2 and r.shape[-1] == 4 and r.shape[-2] == n_segments(tree) + 1
    ax = -2 if walsh else -1
    if r.shape[ax] != n_segments(tree) + 1:
        raise ValueError(f"station_rates must have {n_segments(tree) + 1} stations in axis {ax}; got shape {r.shape}")
    take = (lambda i: r[..., i, :]) if walsh else (lambda i: r[..., i])
    rows = []
    for node in internal_nodes(tree):
        kids = (node.left, node.right) if isinstance(node, Swap) else (node.child, node.child)
        rows.append(jnp.stack([take(c.span[0]) + take(c.span[1]) for c in kids], axis=ax))
    return jnp.stack(rows, axis=ax - 1)


def _batch_shape(*pairs):
    """Broadcast the batch parts of (array, n_trailing_item_dims) pairs."""
    shapes = []
    for x, nt in pairs:
        if x is None:
            continue
        s = jnp.shape(x)
        shapes.append(s[: len(s) - nt] if nt else s)
    return jnp.broadcast_shapes(*shapes) if shapes else ()


def delivery(
    protocol: Union[str, tuple, list, Node],
    *,
    p_gen,
    w0=None,
    lam0=None,
    p_swap=1.0,
    t_coh=float("inf"),
    rates=None,
    cutoff=None,
    bsm_noise=None,
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
        p_gen: success probability per attempt in (0, 1]. Levels: ``(...)``; tree:
            ``(..., S)`` per segment (a scalar broadcasts).
        w0: initial Werner parameter (Werner mode: distillation is BBPSSW).
            Levels ``(...)``, tree ``(..., S)``.
        lam0: initial Bell-diagonal state (Bell-diagonal mode: distillation is
            DEJMPS). Levels ``(..., 4)``, tree ``(..., S, 4)``. Give ``w0`` or ``lam0``.
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
    # ---- structure
    if isinstance(protocol, (Link, Swap, Distill)):
        levels, tree = None, protocol
        if tree.span[0] != 0:
            raise ValueError(f"protocol tree must start at station 0; it spans {tree.span}")
        S, K = n_segments(tree), len(internal_nodes(tree))
        if K == 0:
            raise ValueError("protocol tree must have at least one swap or distill node")
    else:
        levels, tree = parse_levels(protocol), None
        S, K = None, len(parse_levels(protocol))
    if (w0 is None) == (lam0 is None):
        raise ValueError("give exactly one of w0 (Werner mode) or lam0 (Bell-diagonal mode)")
    werner = w0 is not None
    if isinstance(t_trunc, str) and t_trunc == "auto":
        t_trunc = "auto"
    elif isinstance(t_trunc, bool) or not isinstance(t_trunc, (int, np.integer)) or t_trunc < 2:
        raise ValueError(f"t_trunc must be an integer >= 2 or 'auto'; got {t_trunc!r}")

    # ---- validation (concrete values on the host; traced ones in the program with checks)
    p_gen = check_probability(p_gen, "p_gen", open_low=True, runtime=checks)
    p_swap = check_probability(p_swap, "p_swap", open_low=True, runtime=checks)
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

    # ---- dtype and batch shape (host-side, no device work)
    raw = {"p_gen": p_gen, "s0": w0 if werner else lam0, "p_swap": p_swap, "t_coh": t_coh if rates is None else None,
           "rates": rates, "cutoff": cutoff, "bsm": bsm_noise}
    dts = [x.dtype for x in raw.values()
           if isinstance(x, (jax.Array, np.ndarray)) and jnp.issubdtype(x.dtype, jnp.floating)]
    dtype = jnp.dtype(jax.dtypes.canonicalize_dtype(jnp.result_type(*dts) if dts else float))
    _check_representable(raw, dtype)
    if bsm_noise is not None:
        raw["bsm"] = _bsm_walsh(bsm_noise, dtype, werner)
    item = _item_dims(levels is not None, werner)
    shapes = []
    for name, x in raw.items():
        if x is None:
            continue
        shp = tuple(np.shape(x))
        nt = item[name]
        shapes.append(shp[: max(0, len(shp) - nt)] if len(shp) >= nt else ())
    try:
        batch = tuple(np.broadcast_shapes(*shapes)) if shapes else ()
    except ValueError:
        raise ValueError(f"parameter batch shapes do not broadcast: {shapes}") from None
    nb = int(np.prod(batch)) if batch else 1
    raw = {k: v for k, v in raw.items() if v is not None}

    if chunk_bytes is None:
        chunk_bytes = _DEFAULT_CHUNK_BYTES if jax.default_backend() == "cpu" else _DEFAULT_CHUNK_BYTES_ACCEL

    limit = TR.default_max_memory() if max_memory is None else float(max_memory)
    state_comps = 1 if werner else 4

    def plan_for(n):
        plan = _make_plan(levels, tree, werner, n)
        per_design = 16 * plan.comps * plan.fft_len * (6 if levels is not None else 2 * (K + 2))
        chunk = max(1, min(nb, chunk_bytes // per_design))
        need = TR.delivery_bytes(per_design, chunk, nb, n, state_comps, dtype.itemsize)
        return plan, chunk, need

    def run(n):
        plan, chunk, need = plan_for(n)
        TR.check_memory(need, limit, f"delivery at t_trunc={n} for {nb} design(s)",
                        "lower t_trunc (or the batch) or raise max_memory")
        return _prepare_and_run(plan, chunk, batch, K, S, dtype, raw)

    if t_trunc == "auto":
        if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(raw)):
            raise ValueError("t_trunc='auto' (the default) needs concrete inputs; pass an integer t_trunc "
                             "under jit/vmap/grad")
        n = 1024
        from ._progress import Progress

        bar = Progress(progress, "automatic truncation: t_trunc 1024",
                       max(1, int(math.log2(max(max_t_trunc, 1024) / 1024)) + 1))
        while True:
            res = run(n)
            bar.advance(1, description=f"automatic truncation: t_trunc {n} done")
            st = np.asarray(res.status)
            if np.all(st & TR.INVALID) or n >= max_t_trunc:
                break
            pmf_def = np.nan_to_num(1 - np.asarray(res.coverage, np.float64), nan=1.0)
            att_def = np.nan_to_num(1 - np.asarray(res.attempt_coverage, np.float64), nan=0.0)
            deficit = float(np.max(np.maximum(pmf_def, np.where(att_def > TR.ATTEMPT_DEFICIT_MAX, att_def, 0))))
            if deficit <= 1 - coverage_target and not np.any(st & TR.TRUNCATED):
                break
            # The tail of T is close to exponential: estimate its scale from the measured
            # deficit and the mean, and jump to the length that reaches the target.
            mt = np.asarray(res.mean_time, np.float64)
            mt = float(np.max(mt[np.isfinite(mt)])) if np.any(np.isfinite(mt)) else 0.0
            scale = max(mt, n / max(math.log(1 / max(deficit, 1e-300)), 1e-3))
            want = 1.25 * scale * math.log(1 / (1 - coverage_target))
            nxt = min(max_t_trunc, max(2 * n, 1 << math.ceil(math.log2(want))))
            while nxt > n and plan_for(nxt)[2] > limit:  # grow only as far as max_memory allows
                nxt //= 2
            if nxt <= n:
                break
            n = nxt
        bar.close()
    else:
        res = run(int(t_trunc))

    if warn and not isinstance(res.coverage, jax.core.Tracer):
        why = TR.warning_text(res.status)
        if why is not None:
            warnings.warn(why, stacklevel=2)
        cov = np.asarray(res.coverage)
        cmin = float(np.min(cov[np.isfinite(cov)])) if np.any(np.isfinite(cov)) else 1.0
        cmax = float(np.max(cov[np.isfinite(cov)])) if np.any(np.isfinite(cov)) else 1.0
        if dtype == np.float32 and (cmin < COVERAGE_WARN or cmax > 2 - COVERAGE_WARN):
            bad = cmin if cmin < COVERAGE_WARN else cmax
            _warn_once("float32", f"delivery computed in float32 (coverage {bad:.7f} misses the 1e-6 budget); "
                       "enable float64: jax.config.update('jax_enable_x64', True)")
        elif cmin < COVERAGE_WARN:
            warnings.warn(f"delivery: coverage {cmin:.7f} < 1 - 1e-6 at t_trunc={res.pmf.shape[-1]}; "
                          "raise t_trunc or use t_trunc='auto'", stacklevel=2)
    return res


_WARNED: set = set()


def _warn_once(cause: str, message: str) -> None:
    """Warn about ``cause`` once per process (the optimizer and sweeps call the engine many
    times; the same cause is not repeated)."""
    if cause in _WARNED:
        return
    _WARNED.add(cause)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def _check_representable(raw: dict, dtype) -> None:
    """A positive or finite concrete parameter must stay so in the working dtype (p_gen =
    1e-50 is 0 in float32, t_coh = 1e-300 too): refuse instead of computing with 0 or inf."""
    fi = np.finfo(dtype)
    for name, x in raw.items():
        if x is None or isinstance(x, jax.core.Tracer):
            continue
        v = np.asarray(x, np.float64)
        a = np.abs(v)
        with np.errstate(over="ignore", under="ignore"):
            zero = (a > 0) & (np.asarray(v, dtype) == 0)
        if name in ("p_gen", "p_swap", "t_coh") and np.any(zero):
            raise ValueError(f"{name} must be at least {float(fi.tiny):.3g} in {dtype} (smaller values are 0 "
                             f"there); got {_fmt_first(v[zero])}"
                             + ("; use float64" if dtype != np.float64 else ""))
        if np.any(np.isfinite(v) & (a > fi.max)):
            raise ValueError(f"{name} must be at most {float(fi.max):.3g} in {dtype}; "
                             f"got {_fmt_first(v[np.isfinite(v) & (a > fi.max)])}")


def _fmt_first(v) -> str:
    return repr(float(np.ravel(v)[0]))


def _item_dims(levels_mode: bool, werner: bool) -> dict:
    """Number of trailing per-item axes of each parameter (levels vs tree mode)."""
    if levels_mode:
        return {"p_gen": 0, "p_swap": 0, "t_coh": 0, "cutoff": 1, "rates": 0 if werner else 1, "bsm": 1,
                "s0": 0 if werner else 1}
    return {"p_gen": 1, "p_swap": 1, "t_coh": 1, "cutoff": 1, "rates": 2 if werner else 3, "bsm": 2,
            "s0": 1 if werner else 2}


@partial(jax.jit, static_argnums=(0, 1, 2, 3, 4, 5))
def _prepare_and_run(plan: _Plan, chunk: int, batch: tuple, K: int, S, dtype, raw: dict):
    """Canonicalise the raw parameters to flat (B, ...) arrays and evaluate."""
    werner, levels_mode = plan.werner, plan.levels is not None
    C = plan.comps
    item = _item_dims(levels_mode, werner)
    nb = int(np.prod(batch)) if batch else 1

    def lift(name):  # promote scalars given for per-item quantities
        x = jnp.asarray(raw[name], dtype)
        n_item = item[name]
        return x if x.ndim >= n_item else x.reshape(x.shape + (1,) * (n_item - x.ndim))

    def flat(x, tail):
        return jnp.broadcast_to(x, batch + tail).reshape((nb,) + tail)

    h = walsh_matrix(dtype)
    s0 = lift("s0")
    s0w = _walsh_from_werner(s0) if werner else s0 @ h
    if "rates" in raw:
        rt = lift("rates")
        rt_c = jnp.stack([jnp.zeros_like(rt), rt], -1) if werner else rt.at[..., 0].set(0)
    else:
        r1 = 1 / lift("t_coh")
        if not levels_mode:
            r1 = jnp.broadcast_to(r1, r1.shape[:-1] + (K,))
            r1 = jnp.stack([r1, r1], -1)
        rt_c = jnp.stack([jnp.zeros_like(r1)] + [r1] * (C - 1), -1)
    co = lift("cutoff") if "cutoff" in raw else jnp.full((K,), jnp.inf, dtype)
    seg = () if levels_mode else (S,)
    node = () if levels_mode else (K,)
    bsm = jnp.asarray(raw["bsm"], dtype) if "bsm" in raw else jnp.ones((C,), dtype)
    params = {
        "p_gen": flat(lift("p_gen"), seg),
        "s0": flat(s0w, seg + (C,)),
        "p_swap": flat(lift("p_swap"), node),
        "rates": flat(rt_c, node + ((2,) if not levels_mode else ()) + (C,)),
        "cutoff": flat(co, (K,)),
        "bsm": flat(bsm, node + (C,)),
    }
    # Designs with a parameter that is NaN or out of range (reachable under jit, where the
    # host checks cannot look) give NaN everywhere rather than a number.
    s0_bad = outside(s0, -1 / 3, 1) if werner else jnp.any(jnp.stack(bell_problems(s0)), 0)

    def anybad(x, tail):
        return jnp.any(flat(x, tail).reshape(nb, -1), axis=-1)

    invalid = (anybad(outside(lift("p_gen"), 0, 1, lo_open=True), seg) | anybad(s0_bad, seg)
               | anybad(outside(lift("p_swap"), 0, 1, lo_open=True), node)
               | anybad(outside(rt_c, 0, jnp.inf, hi_open=True), node + ((2,) if not levels_mode else ()) + (C,))
               | anybad(outside(co, 0, jnp.inf), (K,)) | anybad(outside(bsm, -1, 1), node + (C,)))
    params = {k: jnp.where(invalid.reshape((nb,) + (1,) * (v.ndim - 1)), jnp.ones_like(v) if k != "cutoff" else
                           jnp.full_like(v, jnp.inf), v) for k, v in params.items()}
    params["invalid"] = invalid
    res = _run(plan, params, chunk)
    return jax.tree.map(lambda x: x.reshape(batch + x.shape[1:]), res)
