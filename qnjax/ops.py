"""Entanglement swapping and distillation in closed form.

Bell-diagonal arrays ``(..., 4)`` in the order ``(I, X, Y, Z) = (Φ+, Ψ+, Ψ−, Φ−)``
are the common currency; Werner-parameter shortcuts are provided where the
result stays Werner. Circuit-level versions on density-matrix tensors live in
:mod:`qnjax.circuits`. The formulas themselves are in :mod:`qnjax._formulas`.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from . import _formulas as F
from ._validate import check_bell, check_broadcastable, check_probability, check_range
from ._conventions import as_float
from .states import werner_to_bell


def _pair(a, b):
    a, b = as_float(a), as_float(b)
    dt = jnp.result_type(a, b)
    return jnp.broadcast_arrays(a.astype(dt), b.astype(dt))


def swap(a: Float[ArrayLike, "*#batch 4"], b: Float[ArrayLike, "*#batch 4"],
         gate_depolarizing: Float[ArrayLike, "*#batch"] = 0.0,
         measurement_error: Float[ArrayLike, "*#batch"] = 0.0) -> Float[Array, "*batch 4"]:
    """Entanglement swap of Bell-diagonal pairs ``a`` = (A, B1) and ``b`` = (B2, C).

    Bell-state measurement on B1 B2 followed by the Pauli correction on C; the
    output pair (A, C) is Bell-diagonal with coefficients the Klein-group
    convolution of ``a`` and ``b`` (commutative and associative).

    Args:
        a, b: Bell-diagonal coefficients ``(..., 4)``.
        gate_depolarizing: probability in [0, 1] that the BSM's two-qubit gate
            depolarises B1 B2 completely (the output then is ``1/4``).
        measurement_error: probability in [0, 1] that each BSM outcome bit flips.

    Sources: Dür, Briegel, Cirac & Zoller, PRA 59, 169 (1999); noise model of
    Briegel, Dür, Cirac & Zoller, PRL 81, 5932 (1998).
    """
    check_bell(a, "a")
    check_bell(b, "b")
    check_probability(gate_depolarizing, "gate_depolarizing")
    check_probability(measurement_error, "measurement_error")
    check_broadcastable(("a", a), ("b", b))
    a, b = _pair(a, b)
    g = jnp.asarray(gate_depolarizing, a.dtype)
    e = jnp.asarray(measurement_error, a.dtype)
    shape = jnp.broadcast_shapes(a.shape[:-1], g.shape, e.shape)
    a = jnp.broadcast_to(a, shape + (4,))
    b = jnp.broadcast_to(b, shape + (4,))
    return F.swap_bell(a, b, jnp.broadcast_to(g, shape), jnp.broadcast_to(e, shape), jnp)


def swap_werner(wa: Float[ArrayLike, "*#batch"], wb: Float[ArrayLike, "*#batch"],
                gate_depolarizing: Float[ArrayLike, "*#batch"] = 0.0) -> Float[Array, "*batch"]:
    """Swap of Werner pairs: ``w = (1 − g) wa wb`` (``g`` the BSM gate depolarising).

    ``wa, wb`` in [−1/3, 1] and ``gate_depolarizing`` in [0, 1], any broadcastable shapes;
    returns the Werner parameter of the output pair.

    Briegel, Dür, Cirac & Zoller, PRL 81, 5932 (1998); Dür et al., PRA 59, 169 (1999).
    Measurement errors do not keep the state Werner; use :func:`swap` for them.
    """
    check_range(wa, "wa", -1 / 3, 1.0)
    check_range(wb, "wb", -1 / 3, 1.0)
    check_probability(gate_depolarizing, "gate_depolarizing")
    check_broadcastable(("wa", wa), ("wb", wb), core_ndim=0)
    wa, wb = _pair(wa, wb)
    return (1 - jnp.asarray(gate_depolarizing, wa.dtype)) * wa * wb


def distill_dejmps(a: Float[ArrayLike, "*#batch 4"],
                   b: Float[ArrayLike, "*#batch 4"]) -> tuple[Float[Array, "*batch"], Float[Array, "*batch 4"]]:
    """DEJMPS recurrence distillation of Bell-diagonal pairs ``a`` and ``b``.

    ``a, b``: Bell-diagonal ``(..., 4)``. Returns ``(p_success, lam_out)`` with shapes
    ``(...)`` and ``(..., 4)``; ``lam_out`` is normalised. Deutsch, Ekert, Jozsa, Macchiavello, Popescu
    & Sanpera, PRL 77, 2818 (1996), with ``A = Φ+, B = Ψ−, C = Ψ+, D = Φ−``:
    ``p = (A1 + B1)(A2 + B2) + (C1 + D1)(C2 + D2)``,
    ``A' = (A1 A2 + B1 B2)/p``, ``B' = (C1 D2 + D1 C2)/p``,
    ``C' = (C1 C2 + D1 D2)/p``, ``D' = (A1 B2 + B1 A2)/p``.
    """
    check_bell(a, "a")
    check_bell(b, "b")
    check_broadcastable(("a", a), ("b", b))
    a, b = _pair(a, b)
    num = F.dejmps_numerators(a, b, jnp)
    p = num.sum(-1)
    # p = 0 only for mutually orthogonal inputs (e.g. Φ+ with Φ−); keep it NaN-free.
    safe = jnp.where(p > 0, p, 1)
    return p, num / safe[..., None]


def distill_bbpssw(a: Float[ArrayLike, "*#batch 4"],
                   b: Float[ArrayLike, "*#batch 4"]) -> tuple[Float[Array, "*batch"], Float[Array, "*batch 4"]]:
    """BBPSSW recurrence distillation of Bell-diagonal pairs ``a`` and ``b``.

    Both inputs are first twirled to Werner states of the same fidelity, and the
    output is twirled to a Werner state. ``a, b``: Bell-diagonal ``(..., 4)``. Returns
    ``(p_success, lam_out)`` with shapes ``(...)`` and ``(..., 4)``, ``lam_out`` Werner. Bennett, Brassard, Popescu, Schumacher, Smolin & Wootters,
    PRL 76, 722 (1996); formulas in :func:`qnjax._formulas.bbpssw_fidelity`.
    """
    check_bell(a, "a")
    check_bell(b, "b")
    check_broadcastable(("a", a), ("b", b))
    a, b = _pair(a, b)
    p, f = F.bbpssw_fidelity(a[..., 0], b[..., 0])
    return p, werner_to_bell((4 * f - 1) / 3)


def distill_bbpssw_werner(wa: Float[ArrayLike, "*#batch"],
                          wb: Float[ArrayLike, "*#batch"]) -> tuple[Float[Array, "*batch"], Float[Array, "*batch"]]:
    """BBPSSW on Werner parameters: ``p = (1 + wa wb)/2``,
    ``w_out = (wa + wb + 4 wa wb) / (3 (1 + wa wb))``. Returns ``(p, w_out)``.

    ``wa, wb`` in [−1/3, 1], broadcastable. Bennett, Brassard, Popescu, Schumacher, Smolin
    & Wootters, PRL 76, 722 (1996) (fidelity form in :func:`distill_bbpssw`)."""
    check_range(wa, "wa", -1 / 3, 1.0)
    check_range(wb, "wb", -1 / 3, 1.0)
    check_broadcastable(("wa", wa), ("wb", wb), core_ndim=0)
    wa, wb = _pair(wa, wb)
    m, mw = F.bbpssw_werner_unnormalized(1.0, wa, 1.0, wb)
    return m, mw / m
