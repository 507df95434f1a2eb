"""Sharded exact-engine design sweeps: :func:`sweep_designs` and :func:`design_grid`.

:func:`sweep_designs` evaluates a list of designs (:func:`design_grid` builds Cartesian grids)
with :func:`qnjax.delivery`, the design axis laid over a 1-D mesh of all devices
(``jax.shard_map``: each device runs the engine on its own block) in bounded steps, results
gathered in design order and equal to the unsharded call (bitwise in practice; XLA may fuse an
element-wise tail differently for another block size, a last-bit difference). With ``out=``
each design becomes one JSON line, flushed per step; a restart skips the rows already there.
Under :func:`qnjax.distributed.initialize` the mesh spans every process's devices and process 0
writes and returns the results. Public path: :mod:`qnjax.distributed`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Mapping, Sequence

import numpy as np
from jaxtyping import Float, Shaped

import jax

from ._results_file import ResultsWriter
from ._runtime import AXIS, default_chunk_bytes, make_mesh
from ._truncation import design_bytes
from ._validate import check_bell, check_nonnegative, check_positive, check_probability, check_range
from .protocol import Distill, Link, Swap, format_tree, internal_nodes, parse_levels, tree_depth

PARAMS = ("p_gen", "w0", "lam0", "p_swap", "t_coh", "rates", "cutoff", "bsm_noise")
OUTPUTS = ("pmf", "state_t", "coverage", "mean_time", "mean_werner", "mean_state", "mean_fidelity",
           "key_fraction", "key_fraction_smooth", "secret_key_rate", "secret_key_rate_smooth",
           "success_probability")
DEFAULT_OUTPUTS = ("coverage", "mean_time", "mean_werner", "mean_fidelity", "mean_state",
                   "key_fraction", "secret_key_rate", "success_probability")


def design_grid(**axes: Sequence) -> dict[str, Float[np.ndarray, "n *param"]]:
    """Cartesian product of parameter axes, flattened to one leading design axis.

    Each keyword is a delivery parameter and a list of its values (a value may itself be a
    vector: ``cutoff=[[10, 20], [20, 40]]``). The first axis varies slowest (like
    ``itertools.product``). ``design_grid(p_gen=[.1, .2], t_coh=[100, 400])`` gives four designs.
    """
    if not axes:
        raise ValueError("design_grid needs at least one parameter axis")
    vals = {k: np.asarray(v, dtype=float) for k, v in axes.items()}
    for k, v in vals.items():
        if v.ndim == 0 or len(v) == 0:
            raise ValueError(f"design_grid: {k} must be a non-empty list of values; got shape {v.shape}")
    idx = np.indices([len(v) for v in vals.values()]).reshape(len(vals), -1)
    return {k: v[idx[i]] for i, (k, v) in enumerate(vals.items())}


def _protocol_text(protocol) -> str:
    if isinstance(protocol, (Link, Swap, Distill)):
        return format_tree(protocol)
    return ",".join(parse_levels(protocol))


def _protocol_key(protocol):
    if isinstance(protocol, (Link, Swap, Distill)):
        return protocol
    return parse_levels(protocol)


def _per_design_bytes(protocol, t_trunc: int, werner: bool) -> int:
    """delivery's own estimate of one design's working memory (:func:`qnjax._truncation.design_bytes`)."""
    if isinstance(protocol, (Link, Swap, Distill)):
        return design_bytes(t_trunc, tree_depth(protocol), len(internal_nodes(protocol)), werner)
    return design_bytes(t_trunc, len(parse_levels(protocol)), None, werner)


def _validate(values: Mapping[str, np.ndarray]) -> None:
    """Boundary checks of delivery's parameters, on concrete host arrays."""
    for name, v in values.items():
        if name in ("p_gen", "p_swap"):
            check_probability(v, name, open_low=True)
        elif name == "w0":
            check_range(v, name, -1 / 3, 1.0)
        elif name == "lam0":
            check_bell(v, name)
        elif name == "t_coh":
            check_positive(v, name)
        elif name in ("rates", "cutoff"):
            check_nonnegative(v, name)


@lru_cache(maxsize=32)
def _compiled(protocol, t_trunc: int, names: tuple, outputs: tuple, fixed_key: tuple, mesh, chunk_bytes: int):
    from jax.sharding import PartitionSpec as P

    from .exact import delivery

    fixed = {k: np.frombuffer(b, dtype=dt).reshape(shape) for k, dt, shape, b in fixed_key}

    def local(values):
        res = delivery(protocol, **values, **fixed, t_trunc=t_trunc, chunk_bytes=chunk_bytes, warn=False)
        return {k: getattr(res, k) for k in outputs}

    spec = {k: P(AXIS) for k in names}
    return jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(spec,), out_specs=P(AXIS)))


def sweep_designs(
    protocol,
    designs: Mapping[str, Float[np.ndarray, "n *param"]],
    *,
    fixed: Mapping[str, Float[np.ndarray, "*param"] | float] | None = None,
    t_trunc: int = 4096,
    outputs: Sequence[str] = DEFAULT_OUTPUTS,
    out=None,
    resume: bool = True,
    limit: int | None = None,
    per_device: int | None = None,
    chunk_bytes: int | None = None,
    devices=None,
    dtype=None,
    progress: bool = False,
) -> dict[str, Shaped[np.ndarray, "m *field"]] | None:
    """Evaluate many exact-engine designs, sharded over every device (and process).

    Args:
        protocol: level list (``"swap,swap,swap"``) or protocol tree, as in :func:`qnjax.delivery`.
        designs: delivery parameters that vary, each an array whose leading axis runs over the
            ``n`` designs, followed by the parameter's own axes (``cutoff`` ``(n, K)``, ``lam0``
            ``(n, 4)``…); scalars and shorter arrays are not allowed here (put them in ``fixed``).
            :func:`design_grid` builds a Cartesian grid.
        fixed: delivery parameters shared by every design (broadcast as in ``delivery``).
        t_trunc: truncation length in steps (an integer; ``"auto"`` is not available here).
        outputs: :class:`~qnjax.DeliveryResult` fields to return (``pmf`` / ``state_t`` are
            ``t_trunc`` long per design; only ask for them on small sweeps).
        out: path of a JSON-lines file, one row per design (``index``, ``protocol``,
            ``t_trunc``, the parameters and the outputs), written as steps finish.
        resume: with ``out``, skip the designs whose rows are already in the file (their
            parameters must match, else ``ValueError``); ``False`` starts the file afresh.
        limit: evaluate at most this many new designs, then return (a time-boxed run; call
            again to continue).
        per_device: designs per device per step (default from ``chunk_bytes``).
        chunk_bytes: working-memory budget per device and step (default 256 MiB on CPU,
            4 GiB on accelerators), estimated as in :func:`qnjax.delivery`.
        devices: devices to use (default ``jax.devices()``: all devices of all processes).
        dtype: floating dtype (default float64 with ``jax_enable_x64``, else float32).
        progress: progress with elapsed and remaining time on stderr (process 0).

    Returns:
        On process 0, a dict of NumPy arrays over the ``m`` designs done so far, in index
        order: ``index`` ``(m,)``, every varying parameter, and each output. ``None`` on other processes.
    """
    from jax.experimental import multihost_utils

    fixed = dict(fixed or {})
    designs = dict(designs)
    for name in list(designs) + list(fixed):
        if name not in PARAMS:
            raise ValueError(f"unknown delivery parameter {name!r}; allowed: {', '.join(PARAMS)}")
    both = set(designs) & set(fixed)
    if both:
        raise ValueError(f"parameters given both in designs and fixed: {sorted(both)}")
    if not designs:
        raise ValueError("designs must hold at least one parameter array with a leading design axis")
    if not isinstance(t_trunc, (int, np.integer)) or t_trunc < 2:
        raise ValueError(f"t_trunc must be an integer >= 2; got {t_trunc!r}")
    outputs = tuple(outputs)
    for o in outputs:
        if o not in OUTPUTS:
            raise ValueError(f"unknown output {o!r}; allowed: {', '.join(OUTPUTS)}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0; got {limit}")
    dtype = np.dtype(jax.dtypes.canonicalize_dtype(np.float64 if dtype is None else dtype))
    designs = {k: np.asarray(v, dtype) for k, v in designs.items()}
    fixed = {k: np.asarray(v, dtype) for k, v in fixed.items()}
    lens = {k: (v.shape[0] if v.ndim else None) for k, v in designs.items()}
    if len(set(lens.values())) != 1 or None in lens.values():
        raise ValueError(f"every designs array needs the same leading design axis; got lengths {lens}")
    n = next(iter(lens.values()))
    _validate({**designs, **fixed})
    werner = "w0" in designs or "w0" in fixed
    names = tuple(sorted(designs))

    mesh = make_mesh(devices)
    n_dev = mesh.devices.size
    chunk_bytes = int(chunk_bytes or default_chunk_bytes(mesh))
    if per_device is None:
        per_device = max(1, chunk_bytes // _per_design_bytes(protocol, int(t_trunc), werner))
        per_device = min(per_device, max(1, -(-n // n_dev)))
    per_device = int(per_device)
    step = per_device * n_dev
    main = jax.process_index() == 0
    multi = jax.process_count() > 1

    # structural errors (cut-off length, w0 vs lam0, shapes) before any device work
    from .exact import delivery

    probe = {k: jax.ShapeDtypeStruct((1,) + v.shape[1:], dtype) for k, v in designs.items()}
    jax.eval_shape(lambda d: delivery(protocol, **d, **fixed, t_trunc=int(t_trunc), warn=False), probe)

    # constant part of every row, and each design's parameters as JSON values
    head = {"protocol": _protocol_text(protocol), "t_trunc": int(t_trunc),
            **{k: v.tolist() for k, v in sorted(fixed.items())}}
    plist = {k: designs[k].tolist() for k in names}

    writer, done_rows = None, {}
    if out is not None and main:
        def check_row(row, line):  # every row already there must be a design of this sweep
            i = row["index"]
            if isinstance(i, bool) or not (isinstance(i, int) and 0 <= i < n):
                raise ValueError(f"out: {out} line {line} holds index {i!r}, outside this sweep's 0..{n - 1}; "
                                 "use a new file or resume=False")
            want = {**head, **{k: plist[k][i] for k in names}}
            bad = [k for k in want if row.get(k) != want[k]]
            if bad:
                raise ValueError(f"out: row {i} of {out} has {bad[0]}={row.get(bad[0])!r} but this sweep's "
                                 f"design has {want[bad[0]]!r}; use a new file or resume=False")

        writer = ResultsWriter(out, resume=resume, check=check_row)
        done_rows = writer.rows
    done = np.zeros(n, bool)
    if done_rows:
        done[np.fromiter(done_rows.keys(), np.int64)] = True
    if multi:
        done = np.asarray(multihost_utils.broadcast_one_to_all(done)).astype(bool)
    pending = np.flatnonzero(~done)
    if limit is not None:
        pending = pending[:limit]

    fixed_key = tuple((k, v.dtype.str, v.shape, v.tobytes()) for k, v in sorted(fixed.items()))
    fn = _compiled(_protocol_key(protocol), int(t_trunc), names, outputs, fixed_key, mesh, chunk_bytes)
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(AXIS))

    from ._progress import Progress

    bar = Progress(bool(progress and main and len(pending)), "evaluating designs", len(pending))

    new = {o: [] for o in outputs}

    def finish(idx, res):  # fetch one step's outputs, keep and write them
        res = multihost_utils.process_allgather(res, tiled=True) if multi else jax.device_get(res)
        res = {k: np.asarray(v)[: len(idx)] for k, v in res.items()}
        if main:
            for o in outputs:
                new[o].append(res[o])
            if writer is not None:
                cols = {o: res[o].tolist() for o in outputs}
                writer.write({"index": int(i), **head, **{k: plist[k][i] for k in names},
                              **{o: cols[o][j] for o in outputs}} for j, i in enumerate(idx))
            bar.advance(len(idx))

    inflight = None  # one step in flight: the device computes step s+1 while step s is written
    try:
        for s in range(0, len(pending), step):
            idx = pending[s:s + step]
            padded = np.concatenate([idx, np.repeat(idx[-1:], step - len(idx))])
            args = {k: jax.make_array_from_callback((step,) + designs[k].shape[1:], sharding,
                                                    lambda ix, a=designs[k][padded]: a[ix])
                    for k in names}
            nxt = (idx, fn(args))
            if inflight is not None:
                finish(*inflight)
            inflight = nxt
        if inflight is not None:
            finish(*inflight)
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    if not main:
        return None

    # assemble: rows from the file (resumed) and rows computed now, in index order
    now = pending[: sum(len(a) for a in new[outputs[0]])] if outputs else pending
    old = np.array(sorted(int(i) for i in done_rows), np.int64)
    order = np.union1d(now, old).astype(np.int64)
    result = {"index": order}
    for k in names:
        result[k] = designs[k][order]
    for o in outputs:
        parts = new[o]
        fresh = np.concatenate(parts) if parts else None
        odt = fresh.dtype if fresh is not None else dtype
        prev = np.asarray([done_rows[i][o] for i in old], odt) if len(old) else None
        shape = (fresh if fresh is not None else prev).shape[1:] if (fresh is not None or prev is not None) else ()
        col = np.zeros((len(order),) + shape, odt)
        if fresh is not None:
            col[np.searchsorted(order, now)] = fresh
        if prev is not None:
            col[np.searchsorted(order, old)] = prev
        result[o] = col
    return result
