"""``qnjax evaluate``: exact delivery time, fidelity and key rate of a level protocol
(a thin layer over :func:`qnjax.delivery`)."""

from __future__ import annotations

import math
import time
import warnings
from typing import Optional

import typer

from ._app import app, echo_warnings, fail, parse_floats, set_precision
from ._checks import (MAX_MEMORY_HELP, check_result, delivery_bytes, echo_json, float_in, int_in, items,
                      memory_limit, need_memory, output_path, save_figure)


MIN_COVERAGE = 1e-3


def _bytes(levels, t_trunc: int) -> int:
    """Working memory of one design plus the returned pmf and state (float64)."""
    return delivery_bytes(len(levels), t_trunc) + 3 * 8 * int(t_trunc)


def _reason(r) -> str | None:
    """The engine's own explanation of a NaN field, when the result carries one as text."""
    import dataclasses

    for f in dataclasses.fields(r) if dataclasses.is_dataclass(r) else ():
        v = getattr(r, f.name, None)
        if "reason" in f.name and isinstance(v, str) and v:
            return v
    return None


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
    max_memory: Optional[str] = typer.Option(None, "--max-memory", help=MAX_MEMORY_HELP),
) -> None:
    """Exact delivery-time distribution, delivered fidelity and secret key rate of a repeater chain."""
    set_precision(float32)
    from ..protocol import levels_segments, parse_levels

    try:
        levels = parse_levels(items(protocol, "--protocol"))
    except ValueError as e:
        fail(f"--protocol: {e}")
    p_gen = float_in(p_gen, "--p-gen", 0, 1, lo_open=True)
    p_swap = float_in(p_swap, "--p-swap", 0, 1, lo_open=True)
    w0 = float_in(w0, "--w0", -1 / 3, 1)
    t_coh = float_in(t_coh, "--t-coh", 0, math.inf, lo_open=True, allow_inf=True)
    cut = None if cutoff is None else parse_floats(cutoff, "--cutoff")
    if cut is not None and len(cut) != len(levels):
        fail(f"--cutoff: {len(cut)} value(s) given for {len(levels)} level(s) ({','.join(levels)})")
    for c in cut or ():
        float_in(c, "--cutoff", 0, math.inf, allow_inf=True)
    limit = memory_limit(max_memory)[0]
    if t_trunc.strip().lower() != "auto":
        try:
            t_trunc_v = int(t_trunc)
        except ValueError:
            fail(f"--t-trunc: expected an integer or 'auto'; got {t_trunc!r}")
        int_in(t_trunc_v, "--t-trunc", 2)
        need_memory(_bytes(levels, t_trunc_v), max_memory, f"--t-trunc {t_trunc_v}", "lower --t-trunc")
        max_t = None
    else:
        t_trunc_v = "auto"
        max_t = 2**21  # the engine's cap, lowered to what fits the memory limit
        while max_t > 1024 and _bytes(levels, max_t) > limit:
            max_t //= 2
        need_memory(_bytes(levels, 1024), max_memory, "--t-trunc auto (from 1024 steps)", "lower the depth")
    plot = output_path(plot, "--plot")
    tiny = [o for o, v in (("--p-gen", p_gen), ("--p-swap", p_swap), ("--t-coh", t_coh)) if v < 1e-12]
    from ..exact import delivery

    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kw = {} if max_t is None else {"max_t_trunc": max_t}
        try:
            r = delivery(levels, p_gen=p_gen, p_swap=p_swap, w0=w0, t_coh=t_coh, cutoff=cut, t_trunc=t_trunc_v,
                         **kw)
        except ValueError as e:
            if tiny:
                fail(f"{' and '.join(tiny)} below 1e-12 lies outside the range the engine resolves; raise it")
            if t_trunc_v == "auto" and "nan" in str(e).lower() and "cutoff" not in str(e):
                fail(f"--t-trunc auto: the engine returned NaN at 1024 steps, so no truncation length "
                     f"could be estimated ({len(levels)} levels); give --t-trunc N or use fewer levels")
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
    n = out["t_trunc"]
    hint = (f"raise --t-trunc (now {n}) or use --t-trunc auto" if t_trunc_v != "auto" else
            f"the automatic truncation stopped at {n} steps; "
            + ("raise --max-memory" if n < 2**21 else f"give --t-trunc above {n} (memory permitting)"))
    if tiny:
        hint = f"{' and '.join(tiny)} below 1e-12 lies outside the range the engine resolves; raise it"
    check_result(out, hint, _reason(r))
    # below this the attempt decomposition has almost nothing to work with (p_gen 1e-9 at 2**21 steps:
    # coverage 3e-24 and a mean time about 100x the simple 27 / p_gen estimate)
    if out["coverage"] < MIN_COVERAGE:
        fail(f"the result is not trustworthy: t_trunc {n} covers only {out['coverage']:.3g} of the delivery-time "
             f"distribution (at least {MIN_COVERAGE:g} needed); {hint}")
    # every segment needs one successful attempt: E[T] >= 1 / p_gen
    if out["mean_time"] < (1 - 1e-6) / p_gen:
        fail(f"the result is not trustworthy: mean_time = {out['mean_time']:.6g} steps is below the physical "
             f"bound 1/p_gen = {1 / p_gen:.6g} (coverage {out['coverage']:.3g} at t_trunc {n}); {hint}")
    if plot:
        _plot(r, levels, plot)
    if as_json:
        echo_json(out)
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
    try:
        save_figure(fig, path, "--plot", dpi=120)
    finally:
        plt.close(fig)
