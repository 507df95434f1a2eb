"""``qnjax evaluate``: exact delivery time, fidelity and key rate of a level protocol
(a thin layer over :func:`qnjax.delivery`)."""

from __future__ import annotations

import json
import math
import time
import warnings
from typing import Optional

import typer

from ._app import app, echo_warnings, fail, parse_floats, set_precision


@app.command()
def evaluate(
    protocol: str = typer.Option("swap,swap,swap", "--protocol",
                                 help="Bottom-up levels, comma-separated: swap (doubles the distance) or distill."),
    p_gen: float = typer.Option(0.1, "--p-gen", help="Elementary-link success probability per step, in (0, 1]."),
    p_swap: float = typer.Option(0.5, "--p-swap", help="Swap success probability, in (0, 1]."),
    w0: float = typer.Option(0.98, "--w0", help="Werner parameter of a fresh link, in [-1/3, 1]."),
    t_coh: float = typer.Option(400.0, "--t-coh", help="Pair coherence time in steps (inf = no decay)."),
    cutoff: Optional[str] = typer.Option(None, "--cutoff",
                                         help="Memory cut-off per level in steps, comma-separated (inf = none). "
                                              "Omitted: no cut-offs."),
    t_trunc: str = typer.Option("auto", "--t-trunc",
                                help="Truncation length in steps, or 'auto' (coverage >= 1 - 1e-9)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    plot: Optional[str] = typer.Option(None, "--plot", help="Save the delivery-time distribution and the "
                                                            "delivered Werner parameter against time to this file."),
    float32: bool = typer.Option(False, "--float32", help="Compute in float32 instead of float64."),
) -> None:
    """Exact delivery-time distribution, delivered fidelity and secret key rate of a repeater chain."""
    set_precision(float32)
    from ..exact import delivery
    from ..protocol import levels_segments, parse_levels

    try:
        levels = parse_levels(protocol)
    except ValueError as e:
        fail(f"--protocol: {e}")
    cut = None if cutoff is None else parse_floats(cutoff, "--cutoff")
    if cut is not None and len(cut) != len(levels):
        fail(f"--cutoff: {len(cut)} value(s) given for {len(levels)} level(s) ({','.join(levels)})")
    if t_trunc != "auto":
        try:
            t_trunc_v = int(t_trunc)
        except ValueError:
            fail(f"--t-trunc: expected an integer or 'auto'; got {t_trunc!r}")
    else:
        t_trunc_v = "auto"
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            r = delivery(levels, p_gen=p_gen, p_swap=p_swap, w0=w0, t_coh=t_coh, cutoff=cut, t_trunc=t_trunc_v)
        except ValueError as e:
            fail(str(e).replace("cutoff", "--cutoff", 1) if "cutoff" in str(e) else str(e))
    wall = time.perf_counter() - t0
    echo_warnings(caught)
    out = {
        "protocol": list(levels),
        "segments": levels_segments(levels),
        "cutoff": [None if c is None or math.isinf(c) else c for c in (cut or [math.inf] * len(levels))],
        "t_trunc": int(r.pmf.shape[-1]),
        "mean_time": float(r.mean_time),
        "mean_werner": float(r.mean_werner),
        "mean_fidelity": float(r.mean_fidelity),
        "coverage": float(r.coverage),
        "key_fraction": float(r.key_fraction),
        "secret_key_rate": float(r.secret_key_rate),
        "dtype": str(r.mean_time.dtype),
        "wall_s": wall,
    }
    if plot:
        _plot(r, levels, plot)
    if as_json:
        typer.echo(json.dumps(out))
        return
    from rich.console import Console
    from rich.table import Table

    tab = Table(title=f"qnjax evaluate: {','.join(levels)} over {out['segments']} segments")
    tab.add_column("quantity")
    tab.add_column("value", justify="right")
    tab.add_column("unit")
    rows = [
        ("cut-offs", ", ".join("none" if c is None else f"{c:g}" for c in out["cutoff"]), "steps"),
        ("mean delivery time", f"{out['mean_time']:.6g}", "steps"),
        ("mean delivered Werner parameter", f"{out['mean_werner']:.6g}", ""),
        ("mean delivered fidelity", f"{out['mean_fidelity']:.6g}", ""),
        ("BB84 key fraction", f"{out['key_fraction']:.6g}", "bits/pair"),
        ("secret key rate", f"{out['secret_key_rate']:.6g}", "bits/step"),
        ("coverage (t_trunc = %d)" % out["t_trunc"], f"{out['coverage']:.10f}", ""),
        ("wall time", f"{wall:.3f}", "s"),
    ]
    for row in rows:
        tab.add_row(*row)
    Console().print(tab)
    if plot:
        Console(stderr=True).print(f"plot saved to {plot}")


def _plot(r, levels, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        fail("--plot needs matplotlib: pip install 'qnjax[plot]'")
    import numpy as np

    pmf = np.asarray(r.pmf)
    w = np.asarray(r.state_t)
    t = np.arange(pmf.shape[-1])
    fig, ax = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    ax[0].plot(t, pmf, lw=1)
    ax[0].set_ylabel("P(T = t)")
    ax[0].set_title(f"{','.join(levels)}: mean T = {float(r.mean_time):.4g} steps, "
                    f"SKR = {float(r.secret_key_rate):.3g} bits/step")
    keep = pmf > 1e-12 * pmf.max()
    tmax = int(np.searchsorted(np.cumsum(pmf), min(1 - 1e-6, pmf.sum()))) + 1
    ax[0].set_xlim(0, max(tmax, 10))
    ax[1].plot(t[keep], w[keep], lw=1)
    ax[1].set_ylabel("E[w | T = t]")
    ax[1].set_xlabel("delivery time t (steps)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
