"""Boundary checks for concrete inputs.

Every public numeric function calls these on its arguments. They inspect *concrete*
values: under ``jit``/``vmap``/``grad`` the arguments are tracers and the host checks
are skipped (no host round-trip, no recompilation). Engines then mark invalid designs
with NaN instead of raising (NaN propagates; it never becomes a key). With
``runtime=True`` a traced argument is wrapped in :func:`equinox.error_if` instead, so
the compiled program raises at run time with the host check's message (without the
offending value, which is not known when the program is built); the caller must use
the returned array for the check to take effect.
"""

from __future__ import annotations

import numpy as np
import jax
import jax.numpy as jnp


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


def range_message(name: str, lo: float = -np.inf, hi: float = np.inf,
                  lo_open: bool = False, hi_open: bool = False) -> str:
    """``"<name> must lie in [lo, hi]"``: the start of :func:`check_range`'s message."""
    lb = "(" if lo_open else "["
    rb = ")" if hi_open else "]"
    return f"{name} must lie in {lb}{lo}, {hi}{rb}"


def outside(x, lo: float = -np.inf, hi: float = np.inf, lo_open: bool = False, hi_open: bool = False):
    """Element-wise ``x`` is NaN or outside the range (NumPy or traced JAX arrays)."""
    xp = np if isinstance(x, np.ndarray) else jnp
    bad = xp.isnan(x) if xp.issubdtype(x.dtype, xp.floating) else xp.zeros(x.shape, bool)
    bad = bad | ((x <= lo) if lo_open else (x < lo))
    return bad | ((x >= hi) if hi_open else (x > hi))


def runtime_error_if(x, bad, message: str):
    """``equinox.error_if``: the compiled program raises ``message`` where ``bad`` holds."""
    import equinox as eqx

    return eqx.error_if(x, bad, message)


def check_range(x, name: str, lo: float = -np.inf, hi: float = np.inf,
                lo_open: bool = False, hi_open: bool = False, runtime: bool = False):
    """Raise ``ValueError`` if any concrete element of ``x`` is NaN or lies outside the range.

    ``runtime``: a traced ``x`` comes back wrapped in :func:`equinox.error_if` with the
    same message (use the returned array).
    """
    msg = range_message(name, lo, hi, lo_open, hi_open)
    v = _concrete(x)
    if v is None:
        if runtime and isinstance(x, jax.core.Tracer):
            return runtime_error_if(x, outside(x, lo, hi, lo_open, hi_open), msg)
        return x
    if not np.issubdtype(v.dtype, np.number) and v.dtype != bool:
        raise TypeError(f"{name} must be numeric, got dtype {v.dtype}")
    bad = outside(v, lo, hi, lo_open, hi_open)
    if np.any(bad):
        raise ValueError(
            f"{msg}; got {_fmt(v[bad])}"
            + (f" (and {int(bad.sum()) - 1} more)" if bad.sum() > 1 else "")
        )
    return x


def check_probability(x, name: str, open_low: bool = False, runtime: bool = False):
    """Probabilities in ``[0, 1]`` (or ``(0, 1]`` with ``open_low``)."""
    return check_range(x, name, 0.0, 1.0, lo_open=open_low, runtime=runtime)


def check_nonnegative(x, name: str, runtime: bool = False):
    """Lengths, times, rates: ``>= 0`` (``inf`` allowed)."""
    return check_range(x, name, 0.0, np.inf, runtime=runtime)


def check_positive(x, name: str, runtime: bool = False):
    """Strictly positive quantities (``inf`` allowed)."""
    return check_range(x, name, 0.0, np.inf, lo_open=True, runtime=runtime)


def bell_problems(lam, atol: float = 1e-6):
    """``(nan, negative, unnormalized)`` element masks over the batch axes of Bell-diagonal
    ``lam`` (NumPy or traced JAX arrays)."""
    xp = np if isinstance(lam, np.ndarray) else jnp
    nan = xp.any(xp.isnan(lam), axis=-1)
    neg = xp.any(lam < -atol, axis=-1)
    unnorm = xp.abs(lam.sum(-1) - 1) > atol
    return nan, neg, unnorm


def check_bell(lam, name: str = "lam", atol: float = 1e-6, allow_nan: bool = False, runtime: bool = False):
    """Bell-diagonal coefficients: last axis of size 4, not NaN, non-negative, summing to 1.

    ``allow_nan``: NaN entries pass (figures of merit of a NaN state are NaN, never a
    number). ``runtime``: see :func:`check_range`.
    """
    v = _concrete(lam)
    shape = np.shape(lam)
    if len(shape) == 0 or shape[-1] != 4:
        raise ValueError(f"{name} must have a last axis of size 4 (I, X, Y, Z); got shape {shape}")
    msgs = (f"{name} must not contain NaN", f"{name} must be non-negative",
            f"{name} must sum to 1 over its last axis")
    if v is None:
        if runtime and isinstance(lam, jax.core.Tracer):
            for m, bad in zip(msgs, bell_problems(lam, atol)):
                if not (allow_nan and m is msgs[0]):
                    lam = runtime_error_if(lam, bad, m)
        return lam
    if not np.issubdtype(v.dtype, np.number):
        raise TypeError(f"{name} must be numeric, got dtype {v.dtype}")
    v = v.astype(np.float64)
    nan = np.isnan(v).any(-1)
    if np.any(nan) and not allow_nan:
        raise ValueError(f"{msgs[0]}; got {v[nan][0].tolist()!r}")
    ok = ~nan
    if np.any(v[ok] < -atol):
        raise ValueError(f"{msgs[1]}; got min {v[ok].min()!r}")
    s = v.sum(-1)
    badsum = ok & (np.abs(s - 1) > atol)
    if np.any(badsum):
        raise ValueError(f"{msgs[2]}; got sum {_fmt(s[badsum])}")
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
