"""``qnjax plan``: repeater sites, routes, protocols and cut-offs on a fiber network
(a thin layer over :func:`qnjax.plan`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer

from ._app import app, fail, set_precision
from ._checks import distinct_outputs
from ._outputs import CSV_HELP, cell, check_csv, echo_result, print_table, provenance_block, write_rows


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
    max_repeaters: int = typer.Option(3, "--max-repeaters", help="At most this many repeaters on one chain "
                                      "(a larger value than the network's nodes less two is clamped to that)."),
    distill: bool = typer.Option(False, "--distill", help="Also try one distillation round on every link."),
    length_attr: str = typer.Option("dist", "--length-attr", help="Edge attribute with the fiber length in km."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Save a map of the plan with a table of demands."),
    float32: bool = typer.Option(False, "--float32", help="Compute in float32 (default float64)."),
    csv: Optional[Path] = typer.Option(None, "--csv", help=CSV_HELP + " One row per demand."),
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
    check_csv(csv)
    distinct_outputs({"--plot": plot, "--csv": csv})
    set_precision(float32)
    from ..network import NetworkError
    from ..network import plan as run_plan
    from ..network.load import load_network

    if Path(network).is_dir():
        fail(f"network: {network!r} is a directory; give a network file (.toml, .json, .graphml) or a topohub key")
    try:
        graph = load_network(network, length_attr=length_attr)
    except (NetworkError, ValueError, TypeError) as exc:
        fail(str(exc).replace("\n", " "))
    try:
        res = run_plan(network, pairs, hardware=str(hardware) if hardware else None, budget=budget,
                       target=target, objective=objective, sharing=sharing, k_paths=k_paths,
                       max_repeaters=max_repeaters, distill=distill, length_attr=length_attr,
                       progress=lambda msg: typer.echo(f"qnjax: plan: {msg}", err=True))
    except (NetworkError, ValueError, TypeError) as exc:
        fail(str(exc).replace("\n", " "))
    out = res.to_json()
    prov = provenance_block(settings=dict(
        network=network, network_sha256=_file_hash(network), pairs=pairs, budget=budget, target=target,
        objective=objective, hardware=str(hardware) if hardware else "built-in",
        hardware_sha256=_file_hash(hardware) if hardware else None, sharing=sharing, k_paths=k_paths,
        max_repeaters=max_repeaters, distill=distill, length_attr=length_attr))
    if csv is not None:
        write_rows(csv, [{"repeater_sites": list(res.repeaters), **d} for d in out["demands"]], prov)
    if plot is not None:
        from ..network.hardware import default_hardware, load_hardware
        from ..network.plot import plot_plan

        hw = load_hardware(hardware) if hardware else default_hardware()
        plot_plan(res, graph, plot, hardware=hw)
    if as_json:
        echo_result(out, prov, plot)
        return
    head = (f"repeater sites ({len(res.repeaters)}): {', '.join(res.repeaters) or 'none'}; objective "
            f"{res.objective}; {'optimal' if res.optimal else 'bound %s bits/s' % cell(res.bound)} "
            f"({res.method}, {res.sharing} memories); {res.wall_s:.1f} s")
    rows = []
    for d in res.demands:
        cut = ", ".join("none" if math.isinf(c) else cell(1e3 * c) for c in d.cutoff_s) or \
            "n/a (no repeater)"
        rows.append([":".join(d.pair), f"{sum(d.segments_km):.0f}", ", ".join(d.repeaters) or "none (direct)",
                     d.protocol, cut, cell(d.skr_bits_per_s), cell(d.plob_bits_per_s)])
    print_table(head, ["pair", "route km", "repeaters", "protocol", "cut-offs (ms)", "key bits/s", "PLOB bits/s"],
                rows, keep=1, text_cols=(2, 3, 4))
    if plot is not None:
        typer.echo(f"plot saved to {plot}")
    if csv is not None:
        typer.echo(f"table saved to {csv}")


def _file_hash(name) -> str | None:
    """SHA-256 of a network or hardware file (``None`` for a topohub key)."""
    import hashlib

    p = Path(str(name))
    return hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
