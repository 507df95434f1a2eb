"""Grouped work spread over processes and devices, with a resumable results file.

:func:`run_in_groups` runs groups of items whose rows are not design arrays (the optimizer's
distance sweeps), round-robin over the processes of a :func:`qnjax.distributed.initialize`
run and over the local accelerators. Public path: :mod:`qnjax.distributed`.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Mapping, Sequence

import numpy as np

import jax

from ._results_file import ResultsWriter, row_key
from ._runtime import gather_bytes


def run_in_groups(items: Sequence, compute: Callable[[list], list[dict]], *, key: str, group: int,
                  out=None, resume: bool = True, head: Mapping | None = None,
                  unphysical: Callable[[dict], str | None] | None = None,
                  progress: Callable[[int, int], Any] | None = None,
                  devices: Sequence[jax.Device] | None = None) -> list[dict] | None:
    """Run ``compute(list_of_items) -> list_of_rows`` over fixed groups of ``items``, spread over
    the processes, with a resumable JSON-lines file.

    The ``items`` (JSON values, e.g. distances) are cut into consecutive groups of ``group``;
    group ``g`` always holds the same items, so its rows do not depend on how many processes
    run or where a run was interrupted. Pending groups go round-robin to the processes; after
    each round, process 0 gathers the rows, writes them (``out``) and flushes. Each row must
    carry ``row[key]`` equal to its item. ``head`` fields are added to every row and must match
    on resume (e.g. the scenario); ``unphysical(row)`` names a figure no run writes (the file
    was edited or is corrupt: refused, see :class:`~qnjax.distributed.ResultsWriter`). A group
    is skipped when all its items have rows; a partly written group is recomputed whole and
    appended again (the last row of an item wins).
    ``progress(done, total)`` is called on process 0 after each round. With several local
    ``devices`` (default: the local accelerators; one CPU device, since CPU devices share the
    cores), each process runs one group per device at a time, in threads under
    ``jax.default_device``; the compiled code is per device.

    Returns the rows of all items in item order on process 0, ``None`` elsewhere.
    """
    items = list(items)
    if group < 1:
        raise ValueError(f"group must be >= 1; got {group}")
    head = dict(head or {})
    n_proc, me = jax.process_count(), jax.process_index()
    main = me == 0
    writer, old = None, {}
    if out is not None and main:  # checks the whole file (head fields included) before any write
        writer = ResultsWriter(out, resume=resume, key=key, head=head, unphysical=unphysical)
        old = writer.rows
    groups = [items[i:i + group] for i in range(0, len(items), group)]
    todo = np.array([not all(row_key(x) in old for x in g) for g in groups], bool)
    if n_proc > 1:
        from jax.experimental import multihost_utils

        todo = np.asarray(multihost_utils.broadcast_one_to_all(todo)).astype(bool)
    pending = [g for g, t in zip(groups, todo) if t]
    if devices is None:  # CPU "devices" share the same cores: one worker there
        devices = jax.local_devices()
        devices = devices[:1] if devices[0].platform == "cpu" else devices
    devs = list(devices)
    per = n_proc * len(devs)  # groups per round

    def on(dev, g):
        with jax.default_device(dev):
            return [dict(head, **row) for row in compute(g)]

    rows, pool = {}, None
    if len(devs) > 1:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(len(devs))
    try:
        for r in range(0, len(pending), per):
            mine = [(d, pending[r + me * len(devs) + w]) for w, d in enumerate(devs)
                    if r + me * len(devs) + w < len(pending)]
            if pool is None:
                got = [row for d, g in mine for row in on(d, g)]
            else:
                got = [row for f in [pool.submit(on, d, g) for d, g in mine] for row in f.result()]
            parts = gather_bytes(json.dumps(got).encode()) if n_proc > 1 else [json.dumps(got).encode()]
            if main:
                new = [row for p in parts for row in json.loads(p)]
                if writer is not None:
                    writer.write(new)
                rows.update((row_key(row[key]), row) for row in new)
                if progress is not None:
                    progress(min(r + per, len(pending)), len(pending))
    finally:
        if pool is not None:
            pool.shutdown()
        if writer is not None:
            writer.close()
    if not main:
        return None
    allrows = {**old, **rows}
    return [allrows[row_key(x)] for x in items if row_key(x) in allrows]
