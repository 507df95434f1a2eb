"""Boundary checks and broadcasting of Monte Carlo parameters (concrete NumPy side)."""

from __future__ import annotations

import numpy as np

from .._validate import check_bell, check_nonnegative, check_positive, check_probability, check_range


def as_array(x, name):
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be numeric; got {x!r}") from None
    return a


def prob(x, name):
    a = as_array(x, name)
    check_probability(a, name, open_low=True)
    return a


P_GEN_MIN = 1e-6


def p_gen(x, name="p_gen"):
    """Generation probability in ``[1e-6, 1]``: times are int32 steps, so waiting times of
    order ``1/p_gen`` times the chain's restarts must stay far below ``2**31``."""
    a = prob(x, name)
    check_range(a, name, P_GEN_MIN, 1.0)
    return a


def werner(x, name):
    a = as_array(x, name)
    check_range(a, name, -1 / 3, 1.0)
    return a


def bell(x, name):
    a = as_array(x, name)
    check_bell(a, name)
    return a


def positive(x, name):
    a = as_array(x, name)
    check_positive(a, name)
    return a


def nonneg(x, name):
    a = as_array(x, name)
    check_nonnegative(a, name)
    return a


def cutoffs(x, name, n):
    """Cut-offs with a trailing axis of ``n`` entries; ``None`` = no cut-off; ``inf`` allowed.
    Finite entries must be non-negative integers."""
    if x is None:
        return np.full((n,), np.inf)
    a = as_array(x, name)
    if a.ndim == 0:
        a = np.broadcast_to(a, (n,))
    if a.shape[-1] != n:
        raise ValueError(f"{name} must have a trailing axis of {n} entries (one per "
                         f"level/node); got shape {a.shape}")
    check_nonnegative(a, name)
    fin = np.isfinite(a)
    if np.any(a[fin] != np.floor(a[fin])):
        raise ValueError(f"{name} must be integers (steps) or inf; got {a[fin][a[fin] != np.floor(a[fin])].ravel()[0]!r}")
    return a


def trailing(a, name, n, extra=0):
    """Give ``a`` a trailing axis of ``n`` (before ``extra`` state axes), broadcasting scalars."""
    core = a.shape[a.ndim - extra:] if extra else ()
    lead = a.shape[: a.ndim - extra]
    if len(lead) == 0:
        return np.broadcast_to(a, (n,) + core)
    if lead[-1] != n:
        raise ValueError(f"{name} must have a trailing axis of {n} entries (one per "
                         f"segment/node) or be a single value; got shape {a.shape}")
    return a


def broadcast_designs(arrays: dict, cores: dict):
    """Broadcast the design (leading) axes of all arrays; ``cores[name]`` is the number of
    trailing non-design axes. Returns ``(batch_shape, {name: array (D, *core)})``."""
    try:
        batch = np.broadcast_shapes(*[a.shape[: a.ndim - cores[k]] for k, a in arrays.items()])
    except ValueError as e:
        shapes = {k: a.shape for k, a in arrays.items()}
        raise ValueError(f"parameter design axes do not broadcast: {shapes}") from e
    D = int(np.prod(batch)) if batch else 1
    out = {}
    for k, a in arrays.items():
        core = a.shape[a.ndim - cores[k]:] if cores[k] else ()
        out[k] = np.ascontiguousarray(np.broadcast_to(a, batch + core).reshape((D,) + core))
    return batch, out
