"""``qnjax sweep``: optimized secret-key rate against distance, with PLOB, TGW and the same
scheme without repeaters (one segment over the whole distance). The API is
:func:`qnjax.sweep` (an optimization per distance); :func:`qnjax.sweep_designs` is the other
sweep, which evaluates given designs without optimizing."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer

from ._app import app, compilation_cache, fail, set_precision
from ._outputs import CSV_HELP, cell, check_csv, echo_result, columns_of, print_table, provenance_block, write_rows
from ._checks import (MAX_MEMORY_HELP, check_result, distinct_outputs, int_in, need_memory, output_path,
                      save_figure)
from .optimize import check_settings, optimize_bytes

DEFAULT_PLOT = "qnjax-sweep.png"


MAX_DISTANCES = 400


def parse_distances(text: str) -> list[float]:
    """``start:stop:step`` (stop included when on the grid) or a comma-separated list, in km.
    The number of distances is counted before any list is built (at most 400)."""
    text = text.strip()
    usage = (f"--distances must be START:STOP:STEP (km, STEP > 0, STOP >= START) or a comma-separated "
             f"list; got {text!r}")
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3 or any(not p.strip() for p in parts):
            raise ValueError(usage)
        try:
            a, b, s = (float(p) for p in parts)
        except ValueError:
            raise ValueError(usage) from None
        if not all(math.isfinite(x) for x in (a, b, s)):
            raise ValueError(f"--distances must be positive and finite (km); got {text!r}")
        if not (s > 0) or b < a:
            raise ValueError(usage)
        span = (b - a) / s
        if not math.isfinite(span) or span + 1 > MAX_DISTANCES:
            raise ValueError(f"--distances {text} gives {'more than 1e308' if not math.isfinite(span) else f'{span + 1:.4g}'} "
                             f"distances; at most {MAX_DISTANCES}")
        n = int(math.floor(span + 1e-9))
        out = [a + i * s for i in range(n + 1)]
        if len(set(out)) != len(out):
            raise ValueError(f"--distances {text}: STEP is below the floating-point resolution at START")
    else:
        parts = [p.strip() for p in text.split(",")]
        if any(not p for p in parts):
            raise ValueError(f"--distances: empty item in {text!r}; give comma-separated values without gaps")
        if len(parts) > MAX_DISTANCES:
            raise ValueError(f"--distances gives {len(parts)} distances; at most {MAX_DISTANCES}")
        try:
            out = [float(x) for x in parts]
        except ValueError:
            raise ValueError(usage) from None
    if not out or any(not (d > 0) or math.isinf(d) for d in out):
        raise ValueError(f"--distances must be positive and finite (km); got {text!r}")
    return out


def sweep_title(data: dict) -> str:
    """What was swept, without the scenario's own distance: scheme and distance range."""
    d = data["distance_km"]
    span = f"{min(d):g}–{max(d):g} km, {len(d)} distances" if len(d) > 1 else f"{d[0]:g} km"
    return f"{data.get('scheme') or 'repeater chain'}, {span}"


def plot_sweep(data: dict, title: str, path, scenario=None) -> None:
    """Optimized key rate per channel use against distance with PLOB, TGW and direct
    transmission over the same hardware; distances without a key are marked on the axis."""
    import numpy as np

    from .._style import caption, figure
    from ..design._labels import hardware_summary

    d = np.asarray(data["distance_km"], float)
    fig, (ax,) = figure(1, 1, width=6.4, height=4.0)
    rate = np.asarray(data["skr_per_channel_use"], float)
    key = rate > 0
    scheme = data.get("scheme", "same scheme")
    if key.any():
        ax.semilogy(d, np.where(key, rate, np.nan), "o-", color="C0", label="qnjax optimized chain")
    for k, style, name in (("plob", "k--", "PLOB"), ("tgw", "k:", "TGW")):
        b = np.asarray([float(v) for v in data[k]])
        if np.isfinite(b).any():  # none at a lossless fibre (infinite bound)
            ax.semilogy(d, np.where(np.isfinite(b), b, np.nan), style,
                        label=f"{name} bound (repeaterless, same total distance)")
    direct = np.asarray(data["direct_per_channel_use"], float)
    if (direct > 0).any():
        ax.semilogy(d, np.where(direct > 0, direct, np.nan), "-", color="C2",
                    label=f"direct transmission: {scheme}, same hardware, no repeater")
    if (~key).any():
        ax.plot(d[~key], np.full((~key).sum(), 0.02), "x", color="C3", transform=ax.get_xaxis_transform(),
                label="no key at this distance" if key.any() else "no key at any distance")
    for x, y, n in zip(d, rate, data["segments"]):
        if y > 0:
            ax.annotate(str(n), (x, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7)
    ax.set_xlabel("distance between the end nodes (km)")
    ax.set_ylabel("secret-key rate (bits per channel use)")
    ax.set_title(f"{title}\n(numbers: optimized segment count)", fontsize=9)
    ax.legend(loc="lower left")
    lines = hardware_summary(scenario) if scenario is not None else []
    name = f"scenario {scenario.name!r} (its distance replaced by the sweep)" if scenario is not None else ""
    caption(fig, [name, *lines, *[f"note: {x}" for x in data.get("notes", [])]])
    save_figure(fig, path)


@app.command("sweep")
def sweep_cmd(
    scenario: Path = typer.Argument(..., help="Scenario TOML (its distance_km is replaced by --distances)."),
    distances: str = typer.Option("50:800:25", "--distances", help="START:STOP:STEP in km, or a list."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    plot: Optional[Path] = typer.Option(None, "--plot", help=f"Save the plot here (default {DEFAULT_PLOT} unless --json)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="PRNG seed."),
    starts: Optional[int] = typer.Option(None, "--starts", help="Optimizer starts per distance."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Adam steps."),
    float32: bool = typer.Option(False, "--float32", help="Compute in float32 (default float64)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write one JSON row per distance to this file as "
                                       "groups finish; rerunning with the same file resumes."),
    group: int = typer.Option(4, "--group", help="With --out or several processes: distances optimized "
                              "together in one batched run (fixed groups, so resumed rows are identical)."),
    coordinator: Optional[str] = typer.Option(None, "--coordinator", help="Multi-host: host:port of process 0 "
                                              "(or QNJAX_COORDINATOR; SLURM is detected)."),
    num_processes: Optional[int] = typer.Option(None, "--num-processes", help="Multi-host: number of processes."),
    process_id: Optional[int] = typer.Option(None, "--process-id", help="Multi-host: this process's rank."),
    max_memory: Optional[str] = typer.Option(None, "--max-memory", help=MAX_MEMORY_HELP),
    csv: Optional[Path] = typer.Option(None, "--csv", help=CSV_HELP),
) -> None:
    """Optimized key rate against distance; every distance optimized in the same batched run."""
    set_precision(float32)
    check_settings(seed, starts, steps)
    int_in(group, "--group", 1, 400)
    int_in(num_processes, "--num-processes", 1, 65536)
    if process_id is not None:
        int_in(process_id, "--process-id", 0, (num_processes or 65536) - 1)
    if coordinator is not None:
        host, _, port = coordinator.rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            fail(f"--coordinator must be HOST:PORT (port 1 .. 65535); got {coordinator!r}")
    if out is not None:
        from .._files import check_target

        try:
            check_target(out, "--out")
        except ValueError as exc:
            fail(str(exc))
    plot_path = plot if plot is not None else (None if json_out else Path(DEFAULT_PLOT))
    output_path(plot_path, "--plot")
    check_csv(csv)
    distinct_outputs({"--out": out, "--plot": plot_path, "--csv": csv})

    compilation_cache()
    from ..distributed import initialize

    try:  # before anything touches a JAX device (importing the engine does)
        multi = initialize(coordinator, num_processes, process_id)
    except ValueError as exc:
        fail(str(exc).replace("\n", " "))
    from ..design import load_scenario, sweep
    from ..design.scenario import lossless_at

    try:
        ds = parse_distances(distances)
        scen = load_scenario(scenario)
        from ..design.scenario import check_fiber

        for d in ds:
            check_fiber(d, scen.attenuation_db_per_km, "--distances")
            scen.check_distance(d, "--distances")
    except (ValueError, TypeError) as exc:
        fail(str(exc).replace("\n", " "))
    if out is not None:  # the library's own resume check, before the memory estimate and any work
        from ..design.api import check_sweep_out

        try:
            check_sweep_out(scen, out, seed=seed, n_starts=starts, n_steps=steps, group=group)
        except ValueError as exc:
            fail(out_message(exc))
    batch = min(len(ds), group) if (out is not None or multi) else len(ds)
    need_memory(optimize_bytes(scen, starts, batch), max_memory, f"sweeping {batch} distance(s) at once",
                "lower --starts, --group or the number of --distances")
    if out is not None or multi:
        try:
            data = sweep(scen, ds, seed=seed, n_starts=starts, n_steps=steps, out=out, group=group,
                         progress=True)
        except ValueError as exc:  # --out is not a results file of this run: left unchanged
            fail(out_message(exc))
        if data is None:  # not process 0: process 0 reports
            return
    else:
        data = sweep(scen, ds, seed=seed, n_starts=starts, n_steps=steps, progress=True)
    checked = {k: v for k, v in data.items() if k != "structures"}
    for k in ("plob", "tgw"):  # a lossless fibre (transmissivity 1) has no repeaterless bound: "inf"
        if k in data:
            data[k] = ["inf" if math.isinf(float(v)) and v > 0 and lossless_at(scen, d) else v
                       for v, d in zip(data[k], data["distance_km"])]
            checked[k] = [0.0 if v == "inf" else v for v in data[k]]
    check_result(checked, "raise search.t_trunc in the scenario or report this design")
    from ..design.api import settings_used
    from ..design.scenario import scenario_to_dict

    used = settings_used(scen, seed=seed, n_starts=starts, n_steps=steps)
    if out is not None or multi:
        used["group"] = group
    prov = provenance_block(seed=used["seed"], settings={**used, "distances_km": ds},
                            scenario=scenario_to_dict(scen))
    title = sweep_title(data)
    if plot_path is not None:
        plot_sweep(data, title, plot_path, scen)
    if csv is not None:
        write_rows(csv, sweep_rows(data), prov)
    if json_out:
        echo_result(data, prov, plot_path)
        return
    n = len(data["distance_km"])
    reasons = data.get("reason") or [None] * n
    rows = []
    for i, d in enumerate(data["distance_km"]):
        r, p = data["skr_per_channel_use"][i], float(data["plob"][i])
        none = reasons[i] is not None
        cut = data["cutoff"][i]
        rows.append([f"{d:g}", str(data["segments"][i]), cell(data["skr_bits_per_s"][i]), cell(r), cell(p),
                     cell(r / p if p and math.isfinite(p) else None,
                          na="n/a (PLOB 0)" if p == 0 else "n/a (PLOB infinite: lossless fibre)"),
                     cell(data["direct_per_channel_use"][i]),
                     reasons[i] if none else (", ".join(map(str, cut)) if cut else
                                              "n/a (one segment: no repeater)")])
    print_table(f"qnjax sweep: {title}",
                ["km", "segments", "bits/s", "bits per use", "PLOB bits per use", "rate / PLOB",
                 "no repeater bits per use", "cut-offs (steps) / reason"], rows, keep=1, text_cols=(7,),
                caption=f"scenario {scen.name!r}, its distance replaced by the sweep; bits per use: per "
                        "channel use (clock step and optical mode)")
    for note in data.get("notes", []):
        typer.echo(f"note: {note}")
    typer.echo(f"wall time {data['wall_s']:.1f} s (compilation included)")
    if plot_path is not None:
        typer.echo(f"plot saved to {plot_path}")
    if csv is not None:
        typer.echo(f"table saved to {csv}")


def out_message(exc: ValueError) -> str:
    """The library's refusal of an ``out`` file, worded for ``--out`` (file and line kept)."""
    msg = str(exc).replace("\n", " ").replace("use a new file or resume=False", "use a new --out file")
    msg = msg.replace("or use a new file", "or use a new --out file")
    return msg.replace("out: ", "--out: ", 1) if msg.startswith("out: ") else msg


def sweep_rows(data: dict) -> list[dict]:
    """One CSV row per distance: every per-distance field of the sweep's JSON."""
    return columns_of(data, [k for k in data if k not in ("structures", "notes")])
