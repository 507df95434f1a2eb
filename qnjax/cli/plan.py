"""``qnjax plan``: repeater sites, routes, protocols and cut-offs on a fiber network
(a thin layer over :func:`qnjax.plan`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer

from ._app import app, fail, set_precision
from ._checks import echo_json


@app.command()
def plan(
    network: str = typer.Argument(..., help="A topohub key (topozoo/Surfnet, sndlib/germany50; needs "
                                            "qnjax[networks]) or a .json (node-link), .graphml or .toml file."),
    pairs: str = typer.Option(..., "--pairs", help="Demands as A:B,C:D (node names)."),
    budget: Optional[int] = typer.Option(None, "--budget", help="At most this many repeater sites."),
    target: Optional[float] = typer.Option(None, "--target", help="Fewest sites with every demand at this many bits/s."),
    objective: str = typer.Option("min", "--objective", help="min (max-min key rate) or sum."),
    hardware: Optional[Path] = typer.Option(None, "--hardware", help="Hardware TOML ([hardware] as in "
                                                                     "docs/scenario.md); default built in."),
    sharing: str = typer.Option("dedicated", "--sharing", help="dedicated memories per demand, or time-shared sites."),
    k_paths: int = typer.Option(2, "--k-paths", help="Candidate fiber routes per demand."),
    max_repeaters: int = typer.Option(3, "--max-repeaters", help="At most this many repeaters on one chain."),
    distill: bool = typer.Option(False, "--distill", help="Also try one distillation round on every link."),
    length_attr: str = typer.Option("dist", "--length-attr", help="Edge attribute with the fiber length in km."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Save a map of the plan with a table of demands."),
    float32: bool = typer.Option(False, "--float32", help="Compute in float32 (default float64)."),
) -> None:
    """Plan repeater sites, fiber routes, protocols and cut-offs for demands on a fiber network."""
    if budget is not None and target is not None:
        fail("--budget and --target: give one of them (with --target, sites are minimized)")
    if plot is not None:
        from .._style import check_path

        try:
            check_path(plot)
        except ValueError as exc:
            fail(str(exc))
    set_precision(float32)
    from ..network import NetworkError
    from ..network import plan as run_plan

    try:
        res = run_plan(network, pairs, hardware=str(hardware) if hardware else None, budget=budget,
                       target=target, objective=objective, sharing=sharing, k_paths=k_paths,
                       max_repeaters=max_repeaters, distill=distill, length_attr=length_attr)
    except (NetworkError, ValueError, TypeError) as exc:
        fail(str(exc).replace("\n", " "))
    out = res.to_json()
    if plot is not None:
        from ..network.load import load_network
        from ..network.plot import plot_plan

        plot_plan(res, load_network(network, length_attr=length_attr), plot)
    if as_json:
        if plot is not None:
            out["plot"] = str(plot)
        echo_json(out)
        return
    from rich.console import Console
    from rich.table import Table

    con = Console()
    head = (f"repeater sites ({len(res.repeaters)}): {', '.join(res.repeaters) or 'none'}; objective "
            f"{res.objective}; {'optimal' if res.optimal else 'bound %.4g bits/s' % res.bound} "
            f"({res.method}, {res.sharing} memories); {res.wall_s:.1f} s")
    t = Table(title=head)
    for col in ("pair", "route km", "repeaters", "protocol", "cut-offs (ms)", "key bits/s", "PLOB bits/s"):
        t.add_column(col)
    for d in res.demands:
        cut = ",".join("none" if math.isinf(c) else f"{1e3 * c:.3g}" for c in d.cutoff_s) or "–"
        t.add_row(":".join(d.pair), f"{sum(d.segments_km):.0f}", ",".join(d.repeaters) or "–", d.protocol,
                  cut, f"{d.skr_bits_per_s:.4g}", f"{d.plob_bits_per_s:.4g}")
    con.print(t)
    if plot is not None:
        typer.echo(f"plot saved to {plot}")
