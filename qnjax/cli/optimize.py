"""``qnjax optimize``: the design that maximizes the secret-key rate (step model or physical scenario)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer

from ._app import app, fail, set_precision
from ._checks import (MAX_MEMORY_HELP, SEED_MAX, check_result, delivery_bytes, echo_json, finite_or_null,
                      float_in, int_in, items, need_memory, output_path, save_figure)

DEFAULT_PLOT = "qnjax-optimize.png"


def _fmt(x, digits=4) -> str:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isinf(x):
        return "inf"
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e5):
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def _table(title, rows):
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, show_header=True, header_style="bold")
    t.add_column("quantity")
    t.add_column("value")
    for k, v in rows:
        t.add_row(k, v)
    Console().print(t)


def _physical_rows(res, scen):
    j = res.to_json()
    pos = ", ".join(f"{p:.1f}" for p in j["positions_km"])
    rate_use = j["skr_per_channel_use"]
    plob = j["plob_per_channel_use"]
    rows = [
        ("scenario", scen.name),
        ("heralding scheme", j.get("scheme", scen.heralding.scheme)),
        ("distance", f"{scen.distance_km:g} km"),
        ("segments", str(j["segments"])),
        ("station positions", f"{pos} km"),
        ("protocol (post-order nodes)", j["protocol"]),
        ("purification rounds per level", ",".join(map(str, j["rounds"]))),
        ("cut-offs", ", ".join(map(str, j["cutoff"])) + " steps"),
        ("cut-offs", ", ".join(_fmt(c * 1e3, 3) for c in j["cutoff_s"]) + " ms"),
        ("clock (longest attempt)", f"{_fmt(j['clock_s'] * 1e6)} µs"),
        ("secret-key rate", f"{_fmt(j['skr_bits_per_s'])} bits/s"),
        ("secret-key rate per channel use", f"{_fmt(rate_use)} bits"),
        ("PLOB bound at the same distance", f"{_fmt(plob)} bits per channel use"),
        ("TGW bound at the same distance", f"{_fmt(j['tgw_per_channel_use'])} bits per channel use"),
        ("rate / PLOB", _fmt(rate_use / plob if plob else float('nan'))),
        ("no repeater (same hardware)", f"{_fmt(j['no_repeater_per_channel_use'])} bits per channel use"),
        *([("single-click alpha", _fmt(j["alpha"], 4))] if "alpha" in j else []),
        *([("modes per round", str(j["modes"]))] if "modes" in j else []),
        ("gain over no cut-offs", f"{_fmt(j['gain_over_no_cutoff'])}x"),
        ("gain over uniform spacing", f"{_fmt(j['gain_over_uniform_spacing'])}x"),
        ("mean fidelity", _fmt(j["mean_fidelity"], 5)),
        ("mean delivery time", f"{_fmt(j['mean_time'])} steps"),
        ("coverage", _fmt(j["coverage"], 8)),
        ("wall time", f"{j['wall_s']:.1f} s (compilation included)"),
    ]
    return rows


def _candidate_rows(res):
    """One row per segment count (and purification structure) the search considered."""
    rows = []
    for c in res.to_json()["candidates"]:
        why = c.get("reason") or ""
        rows.append((str(c["segments"]), c["status"], _fmt(c["skr_bits_per_s"]), _fmt(c["bound_bits_per_s"]),
                     c["protocol"] if c["status"] in ("optimized", "screened") else why))
    return rows


def _candidates_table(res):
    from rich.console import Console
    from rich.table import Table

    t = Table(title="segment counts (key rate: best design found; bound: rigorous upper bound)",
              header_style="bold")
    for col in ("segments", "status", "bits/s", "bound bits/s", "protocol / reason"):
        t.add_column(col)
    for row in _candidate_rows(res):
        t.add_row(*row)
    Console().print(t)


def plot_physical(res, scen, path) -> None:
    """Chain layout, optimization history, the key rate against its baselines, and the key
    rate against the number of segments (with the upper bound that stopped the search)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    j = res.to_json()
    fig, ax = plt.subplots(1, 4, figsize=(19, 4.2), gridspec_kw={"width_ratios": [2.2, 1.2, 1.2, 1.4]})
    pos = np.asarray(j["positions_km"])
    a = ax[0]
    a.hlines(0, 0, pos[-1], color="0.6", lw=2)
    a.plot(pos, np.zeros_like(pos), "o", ms=11, color="C0")
    a.plot(pos[[0, -1]], [0, 0], "s", ms=13, color="C3")
    for i in range(len(pos) - 1):
        a.annotate(f"{pos[i + 1] - pos[i]:.1f} km", ((pos[i] + pos[i + 1]) / 2, 0.12 + 0.1 * (i % 2)),
                   ha="center", fontsize=9 if len(pos) <= 7 else 7)
    a.set_ylim(-1, 1)
    a.set_yticks([])
    a.set_xlabel("position (km)")
    a.set_title(f"{j['segments']} segments of {j['scheme']}, cut-offs {j['cutoff']} steps\n{j['protocol']}",
                fontsize=9)
    h = np.asarray(j["history"], float)
    ax[1].plot(np.arange(1, len(h) + 1), h)
    ax[1].set_xlabel("search round")
    ax[1].set_ylabel("log key rate (best design)")
    ax[1].set_title("optimization history", fontsize=9)
    names = ["optimized", "uniform\nspacing", "no\ncut-offs"]
    vals = [j["skr_bits_per_s"], j["uniform_spacing_skr_bits_per_s"], j["no_cutoff_skr_bits_per_s"]]
    ax[2].bar(names, vals, color=["C0", "C1", "C2"])
    ax[2].set_ylabel("secret-key rate (bits/s)")
    ax[2].set_title(f"{scen.name}\nrate/PLOB per channel use = "
                    f"{j['skr_per_channel_use'] / j['plob_per_channel_use']:.3g}", fontsize=9)
    cands = [c for c in j["candidates"] if not any(c.get("rounds") or [])]
    n = np.array([c["segments"] for c in cands])
    rate = np.array([c["skr_bits_per_s"] or 0.0 for c in cands], float)
    bound = np.array([c["bound_bits_per_s"] or 0.0 for c in cands], float)
    done = np.array([c["status"] in ("optimized", "screened") for c in cands], bool)
    a = ax[3]
    a.plot(n, bound, "k--", lw=1, label="upper bound")
    a.plot(n[done], rate[done], "o-", color="C0", label="best design found")
    a.plot(n[~done], np.zeros((~done).sum()), "x", color="0.5", label="pruned / infeasible")
    a.plot([j["segments"]], [j["skr_bits_per_s"]], "*", ms=14, color="C3", label="chosen")
    from matplotlib.ticker import MaxNLocator

    a.xaxis.set_major_locator(MaxNLocator(integer=True))
    a.set_xlabel("number of segments")
    a.set_ylabel("secret-key rate (bits/s)")
    a.set_title("key rate vs number of segments", fontsize=9)
    a.legend(fontsize=7)
    a.grid(alpha=0.3)
    from ..optimize._labels import add_notes_to_figure

    add_notes_to_figure(fig, j.get("notes", []), width=220)
    save_figure(fig, path, dpi=110)


def plot_step(res, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    j = res.to_json()
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
    h = np.asarray(j["history"], float)
    ax[0].plot(np.arange(1, len(h) + 1), h)
    ax[0].set_xlabel("Adam step")
    ax[0].set_ylabel("surrogate log key rate (best start)")
    ax[1].bar([str(i) for i in range(len(j["cutoff"]))], j["cutoff"])
    ax[1].set_xlabel("level")
    ax[1].set_ylabel("cut-off (steps)")
    ax[1].set_title(f"{j['protocol']}: {j['secret_key_rate']:.4g} bits/step", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def check_settings(seed, starts, steps) -> None:
    """Optimizer options shared by optimize and sweep (ranges of the scenario's [search])."""
    int_in(seed, "--seed", 0, SEED_MAX)
    int_in(starts, "--starts", 1, 1024)
    int_in(steps, "--steps", 1, 100_000)


def optimize_bytes(problem, starts, n_distances: int) -> int:
    """About the working memory of the batched optimizer: one exact-engine design per start and
    distance (forward and gradient); automatic truncation counted at 4096 steps (a lower bound)."""
    search = getattr(problem, "search", None)
    if search is not None:
        n = starts or search.starts
        t = search.t_trunc or 4096
        # without a segments list every count up to 16 shares the depth-4 padded program
        depth = max(search.segments or (16,)).bit_length() + search.max_rounds_total
    else:
        n = (starts or 8) * (1 + 3 * problem.max_distill)
        t, depth = problem.t_trunc, len(problem.protocol) + problem.max_distill
    return 3 * n * n_distances * delivery_bytes(depth, t)


@app.command("optimize")
def optimize_cmd(
    scenario: Optional[Path] = typer.Argument(
        None, help="Scenario TOML (docs/scenario.md). Omitted: the built-in default scenario, "
                   "or the step model when --protocol is given."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    plot: Optional[Path] = typer.Option(
        None, "--plot", help=f"Save a plot here (physical scenarios save {DEFAULT_PLOT} by default "
                             "unless --json)."),
    protocol: Optional[str] = typer.Option(
        None, "--protocol", help="Step model: bottom-up levels, e.g. swap,swap,swap."),
    p_gen: Optional[float] = typer.Option(None, "--p-gen", help="Step model: link success probability per step."),
    p_swap: float = typer.Option(1.0, "--p-swap", help="Step model: swap success probability."),
    w0: float = typer.Option(1.0, "--w0", help="Step model: Werner parameter of fresh links."),
    t_coh: float = typer.Option(math.inf, "--t-coh", help="Step model: pair coherence time in steps."),
    t_trunc: int = typer.Option(4096, "--t-trunc", help="Step model: truncation length (steps)."),
    max_distill: int = typer.Option(0, "--max-distill", help="Step model: also insert up to K distill levels."),
    seed: Optional[int] = typer.Option(None, "--seed", help="PRNG seed (deterministic per seed)."),
    starts: Optional[int] = typer.Option(None, "--starts", help="Optimizer starts (vmapped)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Adam steps per start."),
    float32: bool = typer.Option(False, "--float32", help="Compute in float32 (default float64)."),
    max_memory: Optional[str] = typer.Option(None, "--max-memory", help=MAX_MEMORY_HELP),
) -> None:
    """Find the design with the highest secret-key rate (BB84, bits per step or per second)."""
    set_precision(float32)
    check_settings(seed, starts, steps)
    if protocol is not None:
        protocol = ",".join(items(protocol, "--protocol"))
        p_gen = float_in(p_gen, "--p-gen", 0, 1, lo_open=True)
        p_swap = float_in(p_swap, "--p-swap", 0, 1, lo_open=True)
        w0 = float_in(w0, "--w0", 0, 1)
        t_coh = float_in(t_coh, "--t-coh", 0, math.inf, lo_open=True, allow_inf=True)
        int_in(t_trunc, "--t-trunc", 16, 2**20)
        int_in(max_distill, "--max-distill", 0, 3)
    output_path(plot, "--plot")
    from ..cache import enable_compilation_cache

    enable_compilation_cache()
    from ..optimize import NoFeasibleDesign, StepProblem, default_scenario, load_scenario, optimize

    try:
        if protocol is not None:
            if scenario is not None:
                raise ValueError("give either a SCENARIO file or --protocol (step model), not both")
            if p_gen is None:
                raise ValueError("--p-gen is required with --protocol")
            problem = StepProblem(protocol, p_gen=p_gen, p_swap=p_swap, w0=w0, t_coh=t_coh,
                                  t_trunc=t_trunc, max_distill=max_distill)
        else:
            problem = default_scenario() if scenario is None else load_scenario(scenario)
    except (ValueError, TypeError) as exc:
        fail(str(exc).replace("\n", " "))
    need_memory(optimize_bytes(problem, starts, 1), max_memory, "this optimization",
                "lower --starts or --t-trunc" if protocol is not None else "lower --starts or search.t_trunc")
    physical = protocol is None
    plot_path = plot if plot is not None else (Path(DEFAULT_PLOT) if physical and not json_out else None)
    output_path(plot_path, "--plot")
    try:
        res = optimize(problem, seed=seed, n_starts=starts, n_steps=steps, progress=True)
    except NoFeasibleDesign as exc:
        fail(str(exc))
    out = finite_or_null(res.to_json(), ("gain_",))
    hint = "raise the truncation (search.t_trunc / --t-trunc) or report this design"
    tiny = [o for o, v in (("--p-gen", p_gen), ("--p-swap", p_swap), ("--t-coh", t_coh)) if protocol and v < 1e-12]
    if tiny:
        hint = f"{' and '.join(tiny)} below 1e-12 lies outside the range the engine resolves; raise it"
    check_result({k: v for k, v in out.items() if k != "history"}, hint)
    if plot_path is not None:
        (plot_physical(res, problem, plot_path) if physical else plot_step(res, plot_path))
    if json_out:
        out.pop("history", None)
        if plot_path is not None:
            out["plot"] = str(plot_path)
        echo_json(out)
        return
    if physical:
        _table("qnjax optimize: physical scenario", _physical_rows(res, problem))
        for note in out.get("notes", []):
            typer.echo(f"note: {note}")
        _candidates_table(res)
    else:
        _table("qnjax optimize: step model", [
            ("protocol", out["protocol"]),
            ("cut-offs (steps, per level)", ", ".join(map(str, out["cutoff"]))),
            ("secret-key rate", f"{_fmt(out['secret_key_rate'])} bits/step"),
            ("relaxed optimum's rate", f"{_fmt(out['relaxed_secret_key_rate'])} bits/step"),
            ("without cut-offs", f"{_fmt(out['no_cutoff_secret_key_rate'])} bits/step"),
            ("mean delivery time", f"{_fmt(out['mean_time'])} steps"),
            ("mean Werner parameter", _fmt(out["mean_werner"], 6)),
            ("coverage", _fmt(out["coverage"], 8)),
            ("wall time", f"{out['wall_s']:.1f} s (compilation included)"),
        ])
    if plot_path is not None:
        typer.echo(f"plot saved to {plot_path}")
