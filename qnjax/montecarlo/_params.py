"""Boundary checks and broadcasting of Monte Carlo parameters (concrete NumPy side)."""

from __future__ import annotations

import numpy as np

from .._conventions import WALSH_NP
from ..protocol import Swap, internal_nodes, n_segments

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
    """Generation probability in ``(0, 1]`` (the model's range, as in :class:`qnjax.Chain`);
    Monte Carlo also needs ``p_gen >= 1e-6``: times are int32 steps, so waiting times of
    order ``1/p_gen`` times the chain's restarts must stay far below ``2**31``."""
    a = prob(x, name)
    low = a < P_GEN_MIN
    if np.any(low):
        raise ValueError(f"{name} must lie in [{P_GEN_MIN}, 1.0] for Monte Carlo (int32 step counters; the "
                         f"exact engine qnjax.delivery takes any p_gen in (0, 1]); got {float(a[low].ravel()[0])!r}")
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


gen_probability, bell_state = p_gen, bell  # names free of nested_arrays' keywords


def nested_arrays(tree, levels, node_levels, *, p_gen, w0, lam0, p_swap, t_coh, rates, cutoff):
    """Checked per-segment / per-node arrays of :func:`qnjax.simulate_nested` with their design
    axes broadcast and flattened: ``(bell, batch_shape, {log_q, s0, p_swap, rate, tau})``.

    ``node_levels``: level index of every internal node (post-order) for level protocols."""
    nodes = internal_nodes(tree)
    n_int, n_seg = len(nodes), n_segments(tree)
    if w0 is not None and lam0 is not None:
        raise ValueError("give either w0 (Werner mode) or lam0 (Bell-diagonal mode), not both")
    bell = lam0 is not None
    pg = gen_probability(p_gen)
    ps = prob(p_swap, "p_swap")
    tc = positive(np.inf if t_coh is None else t_coh, "t_coh")
    s0 = bell_state(lam0, "lam0") if bell else werner(1.0 if w0 is None else w0, "w0")
    mr = nonneg(rates, "rates") if rates is not None else None
    if mr is not None and bell and mr.shape[-1:] != (4,):
        raise ValueError(f"rates must have a last axis of 4 (Walsh coordinates) in Bell mode; got shape {mr.shape}")
    n_cut = len(levels) if levels is not None else n_int
    cut = cutoffs(cutoff, "cutoff", n_cut)
    if levels is not None:
        # per-design scalars; expand to segments / nodes
        lv = np.asarray(node_levels)
        pg = pg[..., None] * np.ones(n_seg)
        s0 = (s0[..., None, :] if bell else s0[..., None]) * (np.ones((n_seg, 1)) if bell else np.ones(n_seg))
        ps = ps[..., None] * np.ones(n_int)
        tc = tc[..., None] * np.ones(n_int)
        if mr is not None:  # (..., [4]) -> (..., K, 2, s)
            mr = mr[..., None] if not bell else mr
            mr = np.broadcast_to(mr[..., None, None, :], mr.shape[:-1] + (n_int, 2, mr.shape[-1]))
        cut = cut[..., lv]
    else:
        pg = trailing(pg, "p_gen", n_seg)
        s0 = trailing(s0, "lam0" if bell else "w0", n_seg, extra=1 if bell else 0)
        ps = trailing(ps, "p_swap", n_int)
        tc = trailing(tc, "t_coh", n_int)
        if mr is not None:
            mr = mr if bell else mr[..., None]
            if mr.ndim < 3 or mr.shape[-3:-1] != (n_int, 2):
                raise ValueError(f"rates of a tree must have shape (..., {n_int}, 2{', 4' if bell else ''}) "
                                 f"(internal node, waiting left/right child); got shape {np.shape(rates)}")
    if mr is None:
        with np.errstate(over="ignore", divide="ignore"):
            r = 1.0 / tc  # t_coh below 1e-308: infinite rate, the waiting pair is gone at once
        mr = np.stack([np.zeros_like(r), r, r, r], -1) if bell else r[..., None]
        mr = np.broadcast_to(mr[..., None, :], mr.shape[:-1] + (2, mr.shape[-1]))
    if bell:
        s0 = s0 @ WALSH_NP
    else:
        s0 = s0[..., None]
    kinds = np.array([isinstance(n, Swap) for n in nodes])
    ps = np.where(kinds, ps, 1.0)
    with np.errstate(divide="ignore"):
        log_q = np.log1p(-pg)
    arrays = dict(log_q=log_q, s0=s0, p_swap=ps, rate=mr, tau=cut)
    cores = dict(log_q=1, s0=2, p_swap=1, rate=3, tau=1)
    batch, flat = broadcast_designs(arrays, cores)
    return bell, batch, flat
