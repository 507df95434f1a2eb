"""Boundary checks for concrete inputs.

Every public numeric function calls these on its arguments. They inspect *concrete*
values only: under ``jit``/``vmap``/``grad`` the arguments are tracers and the checks
are skipped (no host round-trip, no recompilation). Invalid input inside ``jit``
therefore propagates as out-of-range numbers or NaN instead of raising; validate
once outside the transformed function if that matters.
"""

from __future__ import annotations

import numpy as np
import jax


def _concrete(x):
    """Return a NumPy view of ``x`` or ``None`` if ``x`` is traced."""
    if isinstance(x, jax.core.Tracer):
        return None
    try:
        return np.asarray(x)
    except Exception:  # pragma: no cover - exotic array types
        return None


def _fmt(v: np.ndarray) -> str:
    """The first element, rounded to 12 significant digits (``0.8`` not ``0.7999999999999999``)."""
    flat = np.ravel(v)
    if not flat.size:
        return "[]"
    x = flat[0].item()
    if isinstance(x, float) and np.isfinite(x):
        x = float(f"{x:.12g}")
    return repr(x)


def check_range(x, name: str, lo: float = -np.inf, hi: float = np.inf,
                lo_open: bool = False, hi_open: bool = False):
    """Raise ``ValueError`` if any concrete element of ``x`` lies outside the range."""
    v = _concrete(x)
    if v is None:
        return x
    if not np.issubdtype(v.dtype, np.number) and v.dtype != bool:
        raise TypeError(f"{name} must be numeric, got dtype {v.dtype}")
    bad = np.isnan(v) if np.issubdtype(v.dtype, np.floating) else np.zeros(v.shape, bool)
    bad |= (v <= lo) if lo_open else (v < lo)
    bad |= (v >= hi) if hi_open else (v > hi)
    if np.any(bad):
        lb = "(" if lo_open else "["
        rb = ")" if hi_open else "]"
        raise ValueError(
            f"{name} must lie in {lb}{lo}, {hi}{rb}; got {_fmt(v[bad])}"
            + (f" (and {int(bad.sum()) - 1} more)" if bad.sum() > 1 else "")
        )
    return x


def check_probability(x, name: str, open_low: bool = False):
    """Probabilities in ``[0, 1]`` (or ``(0, 1]`` with ``open_low``)."""
    return check_range(x, name, 0.0, 1.0, lo_open=open_low)


def check_nonnegative(x, name: str):
    """Lengths, times, rates: ``>= 0`` (``inf`` allowed)."""
    return check_range(x, name, 0.0, np.inf)


def check_positive(x, name: str):
    """Strictly positive quantities (``inf`` allowed)."""
    return check_range(x, name, 0.0, np.inf, lo_open=True)


def check_bell(lam, name: str = "lam", atol: float = 1e-6):
    """Bell-diagonal coefficients: last axis of size 4, non-negative, summing to 1."""
    v = _concrete(lam)
    shape = np.shape(lam)
    if len(shape) == 0 or shape[-1] != 4:
        raise ValueError(f"{name} must have a last axis of size 4 (I, X, Y, Z); got shape {shape}")
    if v is None:
        return lam
    if np.any(v < -atol):
        raise ValueError(f"{name} must be non-negative; got min {v.min()!r}")
    s = v.sum(-1)
    if np.any(np.abs(s - 1) > atol):
        bad = s[np.abs(s - 1) > atol]
        raise ValueError(f"{name} must sum to 1 over its last axis; got sum {_fmt(bad)}")
    return lam


def check_dm(rho, name: str = "rho", atol: float = 1e-6):
    """Two-qubit density matrices ``(..., 4, 4)``: Hermitian, unit trace, PSD."""
    shape = np.shape(rho)
    if len(shape) < 2 or shape[-2:] != (4, 4):
        raise ValueError(f"{name} must have trailing shape (4, 4); got shape {shape}")
    v = _concrete(rho)
    if v is None:
        return rho
    herm = np.abs(v - np.conj(np.swapaxes(v, -1, -2))).max() if v.size else 0.0
    if herm > atol:
        raise ValueError(f"{name} must be Hermitian; max |rho - rho^dagger| = {herm:.3g}")
    tr = np.real(np.trace(v, axis1=-2, axis2=-1))
    if np.any(np.abs(tr - 1) > atol):
        raise ValueError(f"{name} must have unit trace; got trace {_fmt(tr[np.abs(tr - 1) > atol])}")
    ev = np.linalg.eigvalsh(v)
    if np.any(ev < -atol):
        raise ValueError(f"{name} must be positive semidefinite; got eigenvalue {ev.min():.3g}")
    return rho


def check_broadcastable(*named, core_ndim: int = 1):
    """Batch shapes (all but the last ``core_ndim`` axes) of ``(name, array)`` pairs must
    broadcast together; raise ``ValueError`` naming the arguments otherwise.

    Shapes are static, so this check also runs under ``jit``/``vmap``.
    """
    shapes = [(name, tuple(np.shape(x))) for name, x in named]
    batch = [(name, s[: len(s) - core_ndim] if core_ndim else s) for name, s in shapes]
    try:
        np.broadcast_shapes(*(b for _, b in batch))
    except ValueError:
        desc = ", ".join(f"{name} {s}" for name, s in shapes)
        raise ValueError(f"{' and '.join(n for n, _ in named)} have batch shapes that do not "
                         f"broadcast together: {desc}") from None


def check_t1t2(t1, t2, names=("t1", "t2")):
    """Physical memory times: ``T2 <= 2 T1`` (concrete values only)."""
    v1, v2 = _concrete(t1), _concrete(t2)
    if v1 is None or v2 is None:
        return
    v1, v2 = np.broadcast_arrays(np.asarray(v1, float), np.asarray(v2, float))
    bad = v2 > 2 * v1 * (1 + 1e-12)
    if np.any(bad):
        raise ValueError(f"{names[1]} must satisfy {names[1]} <= 2 * {names[0]} (a physical "
                         f"T1/T2 channel); got {names[1]}={_fmt(v2[bad])}, "
                         f"{names[0]}={_fmt(v1[bad])}")
