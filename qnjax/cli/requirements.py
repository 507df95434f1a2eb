"""``qnjax sensitivity`` (elasticities of the optimized key rate) and ``qnjax requirements``
(the least-cost hardware reaching a target key rate)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer

from ._app import app, compilation_cache, fail, set_precision
from ._checks import check_result, distinct_outputs, echo_json, float_in, int_in, items, output_path, save_figure
from ._outputs import CSV_HELP, check_csv, print_table, write_rows


def _load(scenario: Path):
    from ..design import load_scenario

    try:
        return load_scenario(scenario)
    except (ValueError, TypeError) as exc:
        fail(str(exc).replace("\n", " "))


def _table(title, columns, rows):
    """The command's table through the CLI's layout that never cuts a number."""
    print_table(title, list(columns), [list(r) for r in rows])


def _provenance(scen, extra: dict) -> dict:
    """Provenance of a sizing result: the scenario in full and the optimizer settings used."""
    from ..design.api import settings_used
    from ..design.scenario import scenario_to_dict
    from ._outputs import provenance_block

    used = settings_used(scen)
    return provenance_block(seed=used["seed"], settings={**used, **extra}, scenario=scenario_to_dict(scen))


def plot_sensitivity(out: dict, name: str, path) -> None:
    """Horizontal bars: % more key for a 1 % better parameter (design re-optimized)."""
    from .._style import eng, figure

    rows = out["parameters"][::-1]
    fig, (ax,) = figure(width=7.5, height=0.38 * len(rows) + 1.4)
    gains = [r["gain_per_percent"] for r in rows]
    ax.barh([r["name"] for r in rows], gains, color=["C0" if g >= 0 else "C3" for g in gains])
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_xlabel("% more key for a 1 % better parameter")
    ax.set_title(f"{name}: {eng(out['skr_bits_per_s'], 'bits/s')} optimized", fontsize=9)
    ax.tick_params(axis="y", labelsize=8)
    save_figure(fig, path)


@app.command("sensitivity")
def sensitivity_cmd(
    scenario: Path = typer.Argument(..., help="Scenario TOML (docs/scenario.md)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Save a bar plot of the elasticities here."),
    parameters: Optional[str] = typer.Option(None, "--parameters", help="Comma-separated parameter names "
                                             "(default: every hardware parameter of the scenario)."),
    float32: bool = typer.Option(False, "--float32", help="Compute in float32 (default float64)."),
    csv: Optional[str] = typer.Option(None, "--csv", help=CSV_HELP),
) -> None:
    """Elasticities of the optimized key rate: a 1 % better parameter gives this many % more key."""
    set_precision(float32)
    output_path(plot, "--plot")
    csv = check_csv(csv)
    distinct_outputs({"--plot": plot, "--csv": csv})
    names = items(parameters, "--parameters") if parameters is not None else None
    scen = _load(scenario)
    from ..design import NoFeasibleDesign
    from ..sizing import sensitivity

    compilation_cache()
    try:
        res = sensitivity(scen, parameters=names, progress=not json_out)
    except (NoFeasibleDesign, ValueError, TypeError) as exc:
        fail(str(exc))
    out = res.to_json()
    check_result({"skr_bits_per_s": out["skr_bits_per_s"]}, "check the scenario's truncation (search.t_trunc)")
    if plot is not None:
        plot_sensitivity(out, scen.name, plot)
        out["plot"] = str(plot)
    out["provenance"] = _provenance(scen, {"parameters": names or "all"})
    if csv is not None:
        write_rows(csv, [{"skr_bits_per_s": out["skr_bits_per_s"], **r} for r in out["parameters"]],
                   out["provenance"])
    if json_out:
        echo_json(out)
        return
    from .._style import eng

    def gain(r):  # a probability already at 1 cannot be 1 % better
        return "n/a (perfect)" if r["form"] == "p" and r["theta"] >= 1 else f"{r['gain_per_percent']:+.4g} %"

    rows = [(r["name"], f"{r['value']:.6g}", gain(r),
             f"{r['elasticity']:+.4g}", f"{r['elasticity_fixed_design']:+.4g}") for r in out["parameters"]]
    _table(f"qnjax sensitivity: {scen.name} ({eng(out['skr_bits_per_s'], 'bits/s')}, "
                f"{out['design']['segments']} segments)",
                ("parameter", "value", "key, 1 % better", "ε re-opt.", "ε fixed"), rows)
    typer.echo("ε = d log(key rate) / d log(parameter), error parameters as probabilities of no error; "
               "re-opt.: design re-optimized (envelope theorem), fixed: cut-offs fixed in seconds")
    if plot is not None:
        typer.echo(f"plot saved to {plot}")
    if csv is not None:
        typer.echo(f"table saved to {csv}")


def plot_curve(results, target: float, name: str, path, cost: str) -> None:
    """The requirements curve: the cost of reaching each target key rate (left) and the
    improvement factor of every parameter that improves (right)."""
    from .._style import figure

    fig, (ax, ax2) = figure(2, width=5.6, height=4.0)
    ok = [r for r in results if not isinstance(r, Exception)]
    bad = [r for r in results if isinstance(r, Exception)]
    if ok:
        ax.plot([r.target_bits_per_s for r in ok], [r.cost for r in ok], "o-", color="C0", label="least cost found")
        for r in ok:
            if math.isclose(r.target_bits_per_s, target):
                ax.plot([r.target_bits_per_s], [r.cost], "*", ms=14, color="C3", label="target")
        names = [n for n in ok[0].improvement if any(r.improvement[n] > 1 + 1e-6 for r in ok)]
        for i, n in enumerate(names):
            ax2.plot([r.target_bits_per_s for r in ok], [r.improvement[n] for r in ok], "o-", ms=4,
                     color=f"C{i % 10}", label=n)
        if names:
            ax2.legend(fontsize=7)
    if bad:
        ax.axvline(bad[0].limit_bits_per_s, color="0.4", ls="--", label="rate at the bounds")
    for a in (ax, ax2):
        a.set_xscale("log")
        a.set_xlabel("target key rate (bits/s)")
        a.grid(alpha=0.3)
    ax2.set_yscale("log")
    ax2.set_ylabel("improvement factor k")
    ax.set_ylabel("cost " + ("Σ log k" if cost == "log-improvement" else "Σ k"))
    ax.set_title(f"{name}: hardware requirements curve", fontsize=9)
    ax2.set_title("required improvement per parameter", fontsize=9)
    ax.legend(fontsize=8)
    save_figure(fig, path)


def _bounds(text: Optional[str]):
    """``--bound name=kmax,...`` → dict."""
    out = {}
    if text is None:
        return out
    for item in items(text, "--bound"):
        name, sep, v = item.partition("=")
        if not sep:
            fail(f"--bound: expected name=factor, got {item!r}")
        try:
            out[name.strip()] = float(v)
        except ValueError:
            fail(f"--bound: not a number in {item!r}")
        float_in(out[name.strip()], f"--bound {name.strip()}", 1, math.inf)
    return out


def _check_write_scenario(path: Optional[Path], scenario: Path) -> None:
    """Refuse, before any work, a ``--write-scenario`` path that is the input scenario or one
    :func:`qnjax.sizing.write_scenario` would refuse (an existing file qnjax did not write)."""
    if path is None:
        return
    from ..sizing._toml import check_scenario_target

    try:
        same = path.exists() and path.samefile(scenario)
    except OSError:
        same = False
    if same:
        fail(f"--write-scenario: {str(path)!r} is the input scenario; not overwritten, give a new file name")
    try:
        check_scenario_target(path, "--write-scenario")
    except ValueError as exc:
        fail(str(exc))


@app.command("requirements")
def requirements_cmd(
    scenario: Path = typer.Argument(..., help="Scenario TOML (docs/scenario.md); its hardware is the baseline."),
    target: float = typer.Option(..., "--target", help="Target secret-key rate, bits/s."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Save the requirements curve (cost against "
                                        "target, --curve-points targets up to --target) here."),
    curve_points: int = typer.Option(5, "--curve-points", help="Targets on the plotted curve."),
    write_scenario: Optional[Path] = typer.Option(None, "--write-scenario",
                                                  help="Write the scenario with the required hardware here (.toml)."),
    parameters: Optional[str] = typer.Option(None, "--parameters", help="Comma-separated parameters that may "
                                             "improve (default: all of the scenario's hardware; the fibre's "
                                             "attenuation_db_per_km only when named)."),
    bound: Optional[str] = typer.Option(None, "--bound", help="Largest improvement per parameter, e.g. "
                                        "heralding.efficiency=1.05,memory.t2_s=10 (1 keeps it fixed)."),
    max_improvement: float = typer.Option(100.0, "--max-improvement",
                                          help="Largest improvement factor of a parameter without --bound."),
    cost: str = typer.Option("log-improvement", "--cost", help="log-improvement (Σ log k) or improvement (Σ k)."),
    float32: bool = typer.Option(False, "--float32", help="Compute in float32 (default float64)."),
    csv: Optional[str] = typer.Option(None, "--csv", help=CSV_HELP),
) -> None:
    """The least-cost hardware (cost model of da Silva et al. 2021) whose optimized design reaches --target."""
    set_precision(float32)
    csv = check_csv(csv)
    target = float_in(target, "--target", 0, math.inf, lo_open=True)
    max_improvement = float_in(max_improvement, "--max-improvement", 1, 1e12)
    int_in(curve_points, "--curve-points", 2, 50)
    from ..sizing._solve import COSTS

    if cost not in COSTS:
        fail(f"--cost must be one of {', '.join(COSTS)}; got {cost!r}")
    output_path(plot, "--plot")
    _check_write_scenario(write_scenario, scenario)
    distinct_outputs({"--plot": plot, "--csv": csv, "--write-scenario": write_scenario})
    scen = _load(scenario)
    names = items(parameters, "--parameters") if parameters is not None else None
    bounds = _bounds(bound)
    from ..sizing._params import check_names, requirement_names

    try:
        chosen = [p.name for p in check_names(scen, names if names is not None else requirement_names(scen))]
        check_names(scen, list(bounds))
    except ValueError as exc:
        fail(str(exc))
    missing = [b for b in bounds if b not in chosen]
    if missing:
        fail(f"--bound: {', '.join(missing)} not among the parameters that may improve")
    spec = {n: bounds.get(n) for n in chosen}
    from ..design import NoFeasibleDesign
    from ..sizing import TargetUnreachable, requirements_curve, write_scenario as write_toml

    compilation_cache()
    kw = dict(parameters=spec, cost=cost, max_improvement=max_improvement)
    try:
        if plot is None:
            results = requirements_curve(scen, [target], **kw)
        else:
            from ..design import optimize

            import numpy as np

            baseline = optimize(scen)  # sets the curve's range and is reused by the curve
            base = float(baseline.skr_bits_per_s)
            lo = min(base * 1.05, target) if base > 0 else target / 100
            targets = sorted(set(float(t) for t in np.geomspace(lo, target, curve_points)) | {target})
            results = requirements_curve(scen, targets, baseline=baseline, **kw)
    except (NoFeasibleDesign, ValueError, TypeError) as exc:
        fail(str(exc))
    res = results[-1]  # the targets are sorted and end at --target
    if isinstance(res, TargetUnreachable):
        if plot is not None:
            plot_curve(results, target, scen.name, plot, cost)
        fail(str(res))
    out = res.to_json()
    check_result({k: out[k] for k in ("target_bits_per_s", "skr_bits_per_s", "wall_s")},
                 "check the scenario's truncation (search.t_trunc)")
    if write_scenario is not None:
        _check_write_scenario(write_scenario, scenario)  # again: the file may have appeared meanwhile
        try:
            write_toml(res.scenario, write_scenario,
                       header=f"hardware required for {target:g} bits/s (qnjax requirements)",
                       option="--write-scenario")
        except (ValueError, OSError) as exc:
            fail(str(exc))
        out["scenario_file"] = str(write_scenario)
    if plot is not None:
        plot_curve(results, target, scen.name, plot, cost)
        out["plot"] = str(plot)
        out["curve"] = [{"target_bits_per_s": r.target_bits_per_s, "cost": r.cost} for r in results
                        if not isinstance(r, Exception)]
    out["provenance"] = _provenance(scen, {"target_bits_per_s": target, "parameters": spec, "cost": cost,
                                           "max_improvement": max_improvement})
    if csv is not None:
        write_rows(csv, [{"parameter": n, "baseline": out["baseline"][n], "required": out["required"][n],
                          "improvement": out["improvement"][n], "target_bits_per_s": out["target_bits_per_s"],
                          "skr_bits_per_s": out["skr_bits_per_s"], "cost": out["cost"]} for n in out["baseline"]],
                   out["provenance"])
    if json_out:
        echo_json(out)
        return
    from .._style import eng

    rows = [(n, f"{out['baseline'][n]:.6g}", f"{out['required'][n]:.6g}", f"{out['improvement'][n]:.4g}")
            for n in out["baseline"]]
    _table(f"qnjax requirements: {scen.name}, target {eng(target, 'bits/s')}",
                ("parameter", "baseline", "required", "improvement k"), rows)
    d = out["design"]
    typer.echo(f"key rate {eng(out['skr_bits_per_s'], 'bits/s')} (baseline "
               f"{eng(out['baseline_skr_bits_per_s'], 'bits/s')}); cost {out['cost']:.4g} ({cost}); "
               f"{d['segments']} segments at {', '.join(f'{p:.1f}' for p in d['positions_km'])} km; "
               f"cut-offs {', '.join(f'{c * 1e3:.3g}' for c in d['cutoff_s']) + ' ms' if d['cutoff_s'] else 'none'}")
    if write_scenario is not None:
        typer.echo(f"scenario written to {write_scenario}")
    if plot is not None:
        typer.echo(f"plot saved to {plot}")
    if csv is not None:
        typer.echo(f"table saved to {csv}")
