"""``qnjax optimize``: the design that maximizes the secret-key rate (step model or physical scenario)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer

from ._app import app, compilation_cache, fail, set_precision
from ._outputs import CSV_HELP, cell, check_csv, echo_result, print_table, provenance_block, write_rows
from ._checks import (MAX_MEMORY_HELP, SEED_MAX, check_result, delivery_bytes, distinct_outputs, finite_or_null,
                      float_in, int_in, items, need_memory, output_path, save_figure)

DEFAULT_PLOT = "qnjax-optimize.png"


def _fmt(x, digits=4) -> str:  # kept for callers outside this module
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isinf(x):
        return "inf"
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e5):
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


NO_REPEATER = "n/a (one segment: no repeater, nothing waits in memory)"
_BOUNDS = ("plob_per_channel_use", "tgw_per_channel_use")
LOSSLESS = "inf (lossless fibre: no repeaterless bound)"


def _bound(value) -> float | None:
    """A repeaterless bound as a number; ``None`` when infinite (lossless fibre)."""
    v = float(value)
    return v if math.isfinite(v) else None


def _table(title, rows):
    print_table(title, ["quantity", "value"], [list(r) for r in rows], text_cols=(1,))


def _cutoffs(values, unit: str, scale: float = 1.0) -> str:
    values = list(values)
    if not values:
        return NO_REPEATER
    return ", ".join(cell(v * scale, digits=3) for v in values) + f" {unit}"


def _physical_rows(res, scen):
    j = res.to_json()
    pos = ", ".join(f"{p:.1f}" for p in j["positions_km"])
    rate_use = j["skr_per_channel_use"]
    plob = _bound(j["plob_per_channel_use"])
    one = j["segments"] == 1
    rows = [
        ("scenario", scen.name),
        ("heralding scheme", j.get("scheme", scen.heralding.scheme)),
        ("distance", f"{scen.distance_km:g} km"),
        ("segments", str(j["segments"]) + (" (no repeater)" if one else "")),
        ("station positions", f"{pos} km"),
        ("protocol (post-order nodes)", j["protocol"]),
        ("purification rounds per level", ",".join(map(str, j["rounds"]))),
        ("cut-offs", _cutoffs(j["cutoff"], "steps")),
        ("cut-offs (time)", _cutoffs(j["cutoff_s"], "ms", 1e3)),
        ("clock (longest attempt)", cell(j["clock_s"], "s")),
        ("secret-key rate", cell(j["skr_bits_per_s"], "bits/s")),
        ("secret-key rate per channel use", cell(rate_use, "bits")),
        ("PLOB bound at the same distance", cell(plob, "bits per channel use", na=LOSSLESS)),
        ("TGW bound at the same distance", cell(_bound(j["tgw_per_channel_use"]), "bits per channel use",
                                                na=LOSSLESS)),
        ("rate / PLOB", cell(rate_use / plob if plob else None,
                             na="n/a (PLOB is 0)" if plob == 0 else "n/a (PLOB is infinite)")),
        ("no repeater (same hardware)", cell(j["no_repeater_per_channel_use"], "bits per channel use")),
        *([("single-click alpha", cell(j["alpha"], digits=4))] if "alpha" in j else []),
        *([("modes per round", str(j["modes"]))] if "modes" in j else []),
        ("gain over no cut-offs", NO_REPEATER if one else
         cell(j["gain_over_no_cutoff"], "x", na="n/a (no key without cut-offs)")),
        ("gain over uniform spacing", NO_REPEATER if one else
         cell(j["gain_over_uniform_spacing"], "x", na="n/a (no key with uniform spacing)")),
        ("mean fidelity", f"{j['mean_fidelity']:.5g}"),
        ("mean delivery time", cell(j["mean_time"], "steps")),
        ("coverage", f"{j['coverage']:.8g}"),
        ("wall time", f"{j['wall_s']:.1f} s (compilation included)"),
    ]
    return rows


def _candidate_rows(res):
    """One row per segment count (and purification structure) the search considered."""
    rows = []
    for c in res.to_json()["candidates"]:
        why = c.get("reason") or "n/a"
        done = c["status"] in ("optimized", "screened")
        rows.append((str(c["segments"]), c["status"],
                     cell(c["skr_bits_per_s"], na="n/a (not computed)") if done else "n/a (not computed)",
                     cell(c["bound_bits_per_s"]), c["protocol"] if done else why))
    return rows


def _candidates_table(res):
    print_table("segment counts (key rate: best design found; bound: rigorous upper bound)",
                ["segments", "status", "bits/s", "bound bits/s", "protocol / reason"],
                [list(r) for r in _candidate_rows(res)], keep=1, text_cols=(4,))


def plot_physical(res, scen, path) -> None:
    """Chain layout, optimization history, the key rate against its standard comparisons, and
    the key rate against the number of segments (with the upper bound that stopped the search).

    A one-segment answer says "no repeater" and leaves out the panels that would be empty
    or trivial (history, gains over uniform spacing and no cut-offs, a single segment count)."""
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    from .._style import caption, figure
    from ..design._labels import hardware_summary

    j = res.to_json()
    one = j["segments"] == 1
    h = np.asarray(j["history"], float).reshape(-1)
    cands = [c for c in j["candidates"] if not any(c.get("rounds") or [])]
    panels = ["layout", *(["history"] if h.size else []), "compare", *(["counts"] if len(cands) > 1 else [])]
    fig, axes = figure(len(panels), 1, width=4.2, height=3.4)
    ax = dict(zip(panels, axes))
    pos = np.asarray(j["positions_km"])
    a = ax["layout"]
    a.hlines(0, 0, pos[-1], color="0.6", lw=2)
    a.plot(pos, np.zeros_like(pos), "o", ms=11, color="C0")
    a.plot(pos[[0, -1]], [0, 0], "s", ms=13, color="C1")
    for i in range(len(pos) - 1):
        a.annotate(f"{pos[i + 1] - pos[i]:.1f} km", ((pos[i] + pos[i + 1]) / 2, 0.12 + 0.1 * (i % 2)),
                   ha="center", fontsize=8 if len(pos) <= 7 else 6)
    a.set_ylim(-1, 1)
    a.set_yticks([])
    a.grid(False)
    a.set_xlabel("position along the fiber (km)")
    if one:
        a.set_title(f"no repeater: one {j['scheme']} link over {pos[-1]:g} km\n"
                    "(no memory wait, so no cut-offs)", fontsize=9)
    else:
        cut = ", ".join(cell(c * 1e3, digits=3) for c in j["cutoff_s"])
        a.set_title(f"{j['segments']} segments of {j['scheme']}\ncut-offs {cut} ms; {j['protocol']}",
                    fontsize=8)
    if "history" in ax:
        a = ax["history"]
        a.plot(np.arange(1, len(h) + 1), h)
        a.set_xlabel("search round (Adam step)")
        a.set_ylabel("log key rate of the best design (ln bits/s)")
        a.set_title("optimization history", fontsize=9)
    a = ax["compare"]
    comp = [("direct link\n(no repeater)" if one else f"qnjax design\n({j['segments']} segments)",
             j["skr_per_channel_use"], "C0")]
    if not one:
        # bits/s to bits per channel use with the design's own ratio (clock and modes alike)
        per_use = j["skr_per_channel_use"] / j["skr_bits_per_s"] if j["skr_bits_per_s"] else j["clock_s"]
        comp += [("uniform spacing", j["uniform_spacing_skr_bits_per_s"] * per_use, "C1"),
                 ("no cut-offs", j["no_cutoff_skr_bits_per_s"] * per_use, "C2")]
        comp += [("direct, same\nhardware", j["no_repeater_per_channel_use"], "C3")]
    comp += [(n, _bound(j[k]), c) for n, k, c in (("PLOB bound", "plob_per_channel_use", "0.25"),
                                                  ("TGW bound", "tgw_per_channel_use", "0.55"))
             if _bound(j[k]) is not None]  # a lossless fibre has no (finite) bound to draw
    vals = [max(float(v or 0.0), 0.0) for _, v, _ in comp]
    a.bar([n for n, _, _ in comp], [v if v > 0 else np.nan for v in vals], color=[c for _, _, c in comp])
    for i, v in enumerate(vals):
        if not v > 0:
            a.annotate("no key", (i, 0), ha="center", va="bottom", fontsize=7)
    if any(v > 0 for v in vals):
        a.set_yscale("log")
    a.tick_params(axis="x", labelsize=7, rotation=30)
    a.set_ylabel("secret-key rate (bits per channel use)")
    a.set_title("against repeaterless bounds at the same distance", fontsize=9)
    if "counts" in ax:
        n = np.array([c["segments"] for c in cands])
        rate = np.array([c["skr_bits_per_s"] or 0.0 for c in cands], float)
        bound = np.array([c["bound_bits_per_s"] or 0.0 for c in cands], float)
        done = np.array([c["status"] in ("optimized", "screened") for c in cands], bool)
        a = ax["counts"]
        a.plot(n, bound, "k--", lw=1, label="upper bound")
        a.plot(n[done], rate[done], "o-", color="C0", label="best design found")
        a.plot(n[~done], np.zeros((~done).sum()), "x", color="0.5", label="pruned / infeasible")
        a.plot([j["segments"]], [j["skr_bits_per_s"]], "*", ms=14, color="C3", label="chosen")
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
        a.set_xlabel("number of segments")
        a.set_ylabel("secret-key rate (bits/s)")
        a.set_title("key rate vs number of segments", fontsize=9)
        a.legend()
    caption(fig, [f"{scen.name}: {scen.distance_km:g} km; key rate {cell(j['skr_bits_per_s'], 'bits/s')} "
                  f"(BB84, asymptotic)", *hardware_summary(scen), *[f"note: {x}" for x in j.get("notes", [])]])
    save_figure(fig, path)


def plot_step(res, path) -> None:
    """Step model: the optimization history and the cut-off per level (a protocol without
    cut-offs, or a run without history, leaves that panel out and says so)."""
    import numpy as np

    from .._style import caption, figure

    j = res.to_json()
    h = np.asarray(j["history"], float).reshape(-1)
    cut = list(j["cutoff"])
    panels = [*(["history"] if h.size else []), *(["cutoff"] if cut else [])] or ["empty"]
    fig, axes = figure(len(panels), 1, width=4.6, height=3.4)
    ax = dict(zip(panels, axes))
    key = (f"{cell(j['secret_key_rate'], 'bits/step')}" if (j["secret_key_rate"] or 0) > 0
           else "no key (key rate 0)")
    if "history" in ax:
        ax["history"].plot(np.arange(1, len(h) + 1), h)
        ax["history"].set_xlabel("Adam step")
        ax["history"].set_ylabel("surrogate log key rate (ln bits/step)")
        ax["history"].set_title("optimization history (best start)", fontsize=9)
    if "cutoff" in ax:
        ax["cutoff"].bar([str(i) for i in range(len(cut))], cut)
        ax["cutoff"].set_xlabel("protocol level (bottom-up)")
        ax["cutoff"].set_ylabel("memory cut-off (steps)")
        ax["cutoff"].set_title(f"{j['protocol']}: {key}", fontsize=9)
    if "empty" in ax:
        ax["empty"].axis("off")
        ax["empty"].text(0.5, 0.5, f"{j['protocol']}: {key}\nno cut-offs to optimize", ha="center",
                         va="center")
    caption(fig, [f"step model, protocol {j['protocol']}; mean delivery time {cell(j['mean_time'], 'steps')}; "
                  f"Werner parameter {j['mean_werner']:.4g}; coverage {j['coverage']:.8f}"])
    save_figure(fig, path)


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
    csv: Optional[Path] = typer.Option(None, "--csv", help=CSV_HELP),
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
    check_csv(csv)

    compilation_cache()
    from ..design import NoFeasibleDesign, StepProblem, default_scenario, load_scenario, optimize
    from ..design.scenario import lossless_at

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
    distinct_outputs({"--plot": plot_path, "--csv": csv})
    try:
        res = optimize(problem, seed=seed, n_starts=starts, n_steps=steps, progress=True)
    except NoFeasibleDesign as exc:
        fail(str(exc))
    out = finite_or_null(res.to_json(), ("gain_",))
    # a lossless fibre (transmissivity 1) has no repeaterless bound: PLOB and TGW are "inf"
    unbounded = [k for k in _BOUNDS
                 if physical and lossless_at(problem, problem.distance_km) and str(out.get(k)) == "inf"]
    hint = "raise the truncation (search.t_trunc / --t-trunc) or report this design"
    tiny = [o for o, v in (("--p-gen", p_gen), ("--p-swap", p_swap), ("--t-coh", t_coh)) if protocol and v < 1e-12]
    if tiny:
        hint = f"{' and '.join(tiny)} below 1e-12 lies outside the range the engine resolves; raise it"
    check_result({k: v for k, v in out.items() if k != "history" and k not in unbounded}, hint)
    prov = optimize_provenance(problem, physical, seed=seed, starts=starts, steps=steps)
    if plot_path is not None:
        (plot_physical(res, problem, plot_path) if physical else plot_step(res, plot_path))
    out.pop("history", None)
    if csv is not None:
        write_rows(csv, [out], prov)
    if json_out:
        echo_result(out, prov, plot_path)
        return
    if physical:
        _table("qnjax optimize: physical scenario", _physical_rows(res, problem))
        for note in out.get("notes", []):
            typer.echo(f"note: {note}")
        _candidates_table(res)
    else:
        _table("qnjax optimize: step model", [
            ("protocol", out["protocol"]),
            ("cut-offs (per level)", ", ".join(map(str, out["cutoff"])) + " steps" if out["cutoff"]
             else "n/a (no level to cut off)"),
            ("secret-key rate", cell(out["secret_key_rate"], "bits/step", digits=4)),
            ("relaxed optimum's rate", cell(out["relaxed_secret_key_rate"], "bits/step", digits=4)),
            ("without cut-offs", cell(out["no_cutoff_secret_key_rate"], "bits/step", digits=4)),
            ("mean delivery time", cell(out["mean_time"], "steps")),
            ("mean Werner parameter", f"{out['mean_werner']:.6g}"),
            ("coverage", f"{out['coverage']:.8g}"),
            ("dtype", prov["dtype"]),
            ("wall time", f"{out['wall_s']:.1f} s (compilation included)"),
        ])
    if plot_path is not None:
        typer.echo(f"plot saved to {plot_path}")
    if csv is not None:
        typer.echo(f"table saved to {csv}")


def optimize_provenance(problem, physical: bool, *, seed, starts, steps) -> dict:
    """Provenance of an optimization: the settings actually used (no nulls) and, for a
    physical scenario, the scenario in full; re-running ``optimize`` on them gives the same
    design (same versions and dtype)."""
    import dataclasses

    from ..design.api import settings_used
    from ..design.scenario import scenario_to_dict

    used = settings_used(problem, seed=seed, n_starts=starts, n_steps=steps)
    if physical:
        return provenance_block(seed=used["seed"], settings=used, scenario=scenario_to_dict(problem))
    step = {f.name: getattr(problem, f.name) for f in dataclasses.fields(problem)}
    step["protocol"] = ",".join(step["protocol"]) if isinstance(step["protocol"], (list, tuple)) else step["protocol"]
    return provenance_block(seed=used["seed"], settings={**used, "step_problem": step})
