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

Code: this module is the public face; the implementation lives in :mod:`qnjax._engine`
(``plan`` static structure, ``kernels`` node operations, ``summary`` root figures,
``prepare`` parameter canonicalisation, ``api`` parse → plan → run, ``result``).
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

from ._engine.api import COVERAGE_WARN, delivery
from ._engine.prepare import WARNED as _WARNED  # noqa: F401  (tests reset the once-per-process warnings)
from ._engine.result import DeliveryResult
from ._validate import check_probability
from .protocol import Node, Swap, internal_nodes, n_segments

__all__ = ["DeliveryResult", "delivery", "delivery_station_rates", "bsm_noise_walsh"]


def bsm_noise_walsh(gate_depolarizing: Float[Array, "*batch"] | float = 0.0,
                    measurement_error: Float[Array, "*batch"] | float = 0.0) -> Float[Array, "*batch 4"]:
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


def delivery_station_rates(tree: Node, station_rates: Float[Array, "*batch stations"]
                           ) -> Float[Array, "*batch K 2"]:
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
