"""Resumable, multi-process distance sweeps: :func:`qnjax.design.sweep` over groups of distances
through :func:`qnjax.distributed.run_in_groups`.

The distances are cut into fixed groups of ``group`` (each group is optimized in one batched
run, as ``sweep`` does for all distances); groups are spread round-robin over the processes of
a ``jax.distributed`` run; each finished group's rows (one per distance, the per-distance
fields of ``sweep``'s output plus each structure's rate at that distance) are written to a
JSON-lines file, so an interrupted sweep resumes where it stopped. A group's result depends
only on its distances, so the rows do not depend on the number of processes or on where a run
was interrupted (they can differ slightly from one unsplit ``sweep`` call, whose pruning and
random starts see every distance at once).

A resumed file is checked whole before any work: rows of another run (scenario fingerprint,
settings) and rows whose figures no sweep writes (a NaN or negative key rate, a coverage
above 1, an infinite PLOB bound over a lossy fibre…: the file was edited or is corrupt) are
refused with a ``ValueError`` naming the file and the line, and the file is left unchanged.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from .._results_file import first_unphysical, scan_results
from ..distributed import run_in_groups
from .scenario import lossless_at

_SKIP = ("structures", "wall_s", "plot")
_NOT_FIGURES = ("structures", "scenario", "fingerprint", "settings")
KEY = "distance_km"


def scenario_fingerprint(scenario) -> str:
    """A short hash of everything in a scenario except its distance (which the sweep sets)."""
    text = repr(scenario).replace(f"distance_km={scenario.distance_km!r}", "")
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def rows_from_sweep(data: dict, wall_s: float) -> list[dict]:
    """One row per distance from ``sweep``'s dict of lists."""
    n = len(data["distance_km"])
    keys = [k for k, v in data.items() if k not in _SKIP and isinstance(v, list) and len(v) == n]
    rows = []
    for i in range(n):
        row = {k: data[k][i] for k in keys}
        row["structures"] = [{"structure": s["structure"], "protocol": s["protocol"],
                              "skr_bits_per_s": s["skr_bits_per_s"][i], "t_trunc": s["t_trunc"]}
                             for s in data.get("structures", [])]
        row["wall_s"] = wall_s / n
        rows.append(row)
    return rows


def sweep_from_rows(rows: list[dict]) -> dict:
    """``sweep``'s dict of lists (same keys) from per-distance rows, in row order."""
    keys = [k for k in rows[0] if k not in _SKIP and k not in ("scenario", "fingerprint", "settings")] if rows else []
    out = {k: [r[k] for r in rows] for k in keys}
    labels = {}
    for r in rows:
        for s in r.get("structures", []):
            labels.setdefault(s["structure"], s)
    out["structures"] = [{"structure": lab, "protocol": s["protocol"],
                          "skr_bits_per_s": [next((x["skr_bits_per_s"] for x in r.get("structures", [])
                                                   if x["structure"] == lab), 0.0) for r in rows],
                          "t_trunc": s["t_trunc"]} for lab, s in labels.items()]
    out["wall_s"] = sum(r.get("wall_s", 0.0) for r in rows)
    return out


def _first_settings(path):
    """The ``settings`` of the first row of an existing results file (``None`` if none)."""
    import json
    from pathlib import Path

    try:
        with Path(path).open("r", encoding="utf-8") as fh:
            return json.loads(fh.readline(1 << 20)).get("settings")
    except (OSError, ValueError, AttributeError):
        return None


def sweep_head(scenario, *, group: int, out=None, resume: bool = True, settings: dict | None = None,
               legacy_settings: dict | None = None) -> dict:
    """The fields stored in every row of a grouped sweep, which must match on resume: scenario
    name and fingerprint, ``settings`` and ``group`` (a file written before settings were
    stored as used keeps its own form, ``legacy_settings``)."""
    head = {"scenario": scenario.name, "fingerprint": scenario_fingerprint(scenario),
            "settings": dict(settings or {}, group=group)}
    if legacy_settings is not None and out is not None and resume:
        old = dict(legacy_settings, group=group)
        if old != head["settings"] and _first_settings(out) == old:
            head["settings"] = old
    return head


def unphysical_row(scenario, head: dict):
    """``row -> str | None``: the first figure of a sweep row that no sweep writes, in words
    (:func:`qnjax._results_file.first_unphysical`). A +inf PLOB / TGW is the bound of a lossless
    fibre: allowed where this scenario's fibre is lossless at the row's distance, and in a row
    of another run (whose fibre is unknown here; that row is refused for its run anyway)."""
    def unphysical(row: dict) -> str | None:
        ours = all(row.get(f) == v for f, v in head.items())
        figs = {f: v for f, v in row.items() if f not in _NOT_FIGURES and not (
            f in ("plob", "tgw") and v == float("inf") and (not ours or lossless_at(scenario, row.get(KEY))))}
        return first_unphysical(figs)

    return unphysical


def check_results_file(scenario, out, *, group: int, settings: dict | None = None,
                       legacy_settings: dict | None = None) -> None:
    """Check an existing results file ``out`` exactly as a resumed :func:`sweep_grouped` does,
    reading only (``ValueError`` naming the file and the line); no file, or one that cannot be
    read, is left to the sweep."""
    p = Path(out)
    if not p.is_file():
        return
    try:
        data = p.read_bytes()
    except OSError:
        return
    head = sweep_head(scenario, group=group, out=out, settings=settings, legacy_settings=legacy_settings)
    scan_results(p, data, key=KEY, head=head, unphysical=unphysical_row(scenario, head))


def sweep_grouped(sweep_fn, scenario, distances, *, group: int, out=None, resume: bool = True,
                  settings: dict | None = None, progress=None, legacy_settings: dict | None = None, **kw):
    """Run ``sweep_fn(scenario, group_distances, **kw)`` over fixed groups of distances with
    :func:`~qnjax.distributed.run_in_groups`; return ``sweep``'s dict on process 0, ``None``
    on the others. ``settings`` (seed, starts, …) and the scenario's fingerprint are stored in
    every row and must match when a file is resumed (:func:`sweep_head`); a resumed row whose
    figures are not finite or not physical is refused (:func:`unphysical_row`). A file written
    before settings were stored as used (``null`` for a default, ``legacy_settings``) is
    resumed in its own form."""
    head = sweep_head(scenario, group=group, out=out, resume=resume, settings=settings,
                      legacy_settings=legacy_settings)

    def compute(ds):
        t0 = time.perf_counter()
        data = sweep_fn(scenario, ds, **kw)
        return rows_from_sweep(data, time.perf_counter() - t0)

    rows = run_in_groups([float(d) for d in distances], compute, key=KEY, group=group, out=out,
                         resume=resume, head=head, unphysical=unphysical_row(scenario, head), progress=progress)
    return None if rows is None else sweep_from_rows(rows)
