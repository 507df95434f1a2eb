"""``qnjax sweep``: optimized secret-key rate against distance, with PLOB, TGW and direct transmission."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

import typer

from ._app import app, fail, set_precision

DEFAULT_PLOT = "qnjax-sweep.png"


def parse_distances(text: str) -> list[float]:
    """``start:stop:step`` (stop included when on the grid) or a comma-separated list, in km."""
    text = text.strip()
    try:
        if ":" in text:
            parts = [float(x) for x in text.split(":")]
            if len(parts) != 3:
                raise ValueError
            a, b, s = parts
            if s <= 0 or b < a:
                raise ValueError
            n = int(math.floor((b - a) / s + 1e-9))
            out = [a + i * s for i in range(n + 1)]
        else:
            out = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--distances must be START:STOP:STEP (km, STEP > 0, STOP >= START) or a "
                         f"comma-separated list; got {text!r}") from None
    if not out or any(not (d > 0) or math.isinf(d) for d in out):
        raise ValueError(f"--distances must be positive and finite (km); got {text!r}")
    if len(out) > 400:
        raise ValueError(f"--distances gives {len(out)} distances; at most 400")
    return out


def plot_sweep(data: dict, title: str, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    d = np.asarray(data["distance_km"])
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    rate = np.asarray(data["skr_per_channel_use"], float)
    ax.semilogy(d, np.where(rate > 0, rate, np.nan), "o-", color="C0", label="qnjax optimized chain")
    ax.semilogy(d, data["plob"], "k--", label="PLOB bound")
    ax.semilogy(d, data["tgw"], "k:", label="TGW bound")
    direct = np.asarray(data["direct_per_channel_use"], float)
    ax.semilogy(d, np.where(direct > 0, direct, np.nan), "-", color="C2", label="direct transmission (same hardware)")
    for x, y, n in zip(d, rate, data["segments"]):
        if y > 0:
            ax.annotate(str(n), (x, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7)
    ax.set_xlabel("distance (km)")
    ax.set_ylabel("secret-key rate (bits per channel use)")
    ax.set_title(f"{title}\n(numbers: optimized segment count)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
) -> None:
    """Optimized key rate against distance; every distance optimized in the same batched run."""
    set_precision(float32)
    from ..distributed import initialize

    try:  # before anything touches a JAX device (importing the engine does)
        multi = initialize(coordinator, num_processes, process_id)
    except ValueError as exc:
        fail(str(exc).replace("\n", " "))
    from ..optimize import load_scenario, sweep

    if group < 1:
        fail(f"--group must be >= 1; got {group}")

    try:
        ds = parse_distances(distances)
        scen = load_scenario(scenario)
        for d in ds:
            scen.check_distance(d, "--distances")
        if starts is not None and starts < 1:
            raise ValueError(f"--starts must be >= 1; got {starts}")
        if steps is not None and steps < 1:
            raise ValueError(f"--steps must be >= 1; got {steps}")
    except (ValueError, TypeError) as exc:
        fail(str(exc).replace("\n", " "))
    if out is not None or multi:
        try:
            data = sweep(scen, ds, seed=seed, n_starts=starts, n_steps=steps, out=out, group=group,
                         progress=not json_out)
        except ValueError as exc:  # e.g. --out holds rows of another scenario or settings
            fail(str(exc).replace("\n", " "))
        if data is None:  # not process 0: process 0 reports
            return
    else:
        data = sweep(scen, ds, seed=seed, n_starts=starts, n_steps=steps, progress=True)
    plot_path = plot if plot is not None else (None if json_out else Path(DEFAULT_PLOT))
    if plot_path is not None:
        plot_sweep(data, scen.name, plot_path)
    if json_out:
        if plot_path is not None:
            data["plot"] = str(plot_path)
        typer.echo(json.dumps(data))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"qnjax sweep: {scen.name}", header_style="bold")
    for c in ("km", "segments", "bits/s", "bits/use", "PLOB", "rate/PLOB", "direct", "cut-offs"):
        t.add_column(c)
    for i, d in enumerate(data["distance_km"]):
        r, p = data["skr_per_channel_use"][i], data["plob"][i]
        t.add_row(f"{d:g}", str(data["segments"][i]), f"{data['skr_bits_per_s'][i]:.3g}", f"{r:.3g}",
                  f"{p:.3g}", f"{r / p:.3g}", f"{data['direct_per_channel_use'][i]:.3g}",
                  ",".join(map(str, data["cutoff"][i])))
    Console().print(t)
    typer.echo(f"wall time {data['wall_s']:.1f} s (compilation included)")
    if plot_path is not None:
        typer.echo(f"plot saved to {plot_path}")
