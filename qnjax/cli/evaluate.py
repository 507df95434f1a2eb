"""``qnjax evaluate``: exact delivery time, fidelity and key rate of a level protocol
(a thin layer over :func:`qnjax.delivery`)."""

from __future__ import annotations

import math
import time
import warnings
from typing import Optional

import typer

from ._app import app, echo_warnings, fail, parse_floats, set_precision
from ._outputs import CSV_HELP, cell, check_csv, print_table, provenance_block, write_rows
from ._checks import (MAX_MEMORY_HELP, check_result, delivery_bytes, distinct_outputs, echo_json, float_in,
                      int_in, items, memory_limit, need_memory, output_path, save_figure)


MIN_COVERAGE = 1e-3
# 2**32 elementary links; the exact engine already loses float64 precision below that (about 22
# swap levels with perfect hardware), so a deeper protocol is refused before any work
MAX_LEVELS = 32


def _bytes(levels, t_trunc: int) -> int:
    """Working memory of one design plus the returned pmf and state (float64)."""
    return delivery_bytes(len(levels), t_trunc) + 3 * 8 * int(t_trunc)


def _log_pi(levels, p_gen: float, p_swap: float, cut) -> list[float]:
    """:func:`qnjax._truncation.log_geometric_rates` (imported here: the CLI loads JAX lazily)."""
    from .._truncation import log_geometric_rates

    return log_geometric_rates(levels, p_gen, p_swap, cut)


def _out_of_reach(levels, p_gen: float, p_swap: float, cut, max_t: int) -> tuple[float, float] | None:
    """``(log steps needed, log of a lower bound on the mean delivery time)`` when no truncation the automatic
    rule may reach (``max_t``) can give a result the checks below accept, else ``None``.

    An accepted result needs (1) every sub-protocol (the links and every level but the last)
    delivered within the truncation up to ``ATTEMPT_DEFICIT_MAX`` (else the engine returns
    NaN) and (2) a root coverage of at least ``MIN_COVERAGE``. :func:`qnjax._truncation.log_geometric_rates` bounds both
    from below the delivery times, so the truncation needed is at least
    ``log_steps_needed`` of each; the mean is at least ``1 / π_L``. The refusal takes a factor
    two of margin: it comes only where even ``2 max_t`` steps would miss the mass (at
    ``max_t`` a sub-protocol then misses at least 1e-2, a hundred times what is allowed)."""
    from .._truncation import ATTEMPT_DEFICIT_MAX, log_steps_needed

    lp = _log_pi(levels, p_gen, p_swap, cut)
    log_need = max([log_steps_needed(x, ATTEMPT_DEFICIT_MAX) for x in lp[:-1]]
                   + [log_steps_needed(lp[-1], 1 - MIN_COVERAGE)])
    return (log_need, -lp[-1]) if log_need > math.log(2 * max_t) else None


def _exp_text(log_x: float) -> str:
    """``exp(log_x)`` as ``%.3g`` text, also beyond the float range."""
    if log_x < 700:
        return f"{math.exp(log_x):.3g}"
    e = math.floor(log_x / math.log(10))
    return f"{10 ** (log_x / math.log(10) - e):.3g}e+{e}"


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
    csv: Optional[str] = typer.Option(None, "--csv", help=CSV_HELP),
) -> None:
    """Exact delivery-time distribution, delivered fidelity and secret key rate of a repeater chain."""
    set_precision(float32)
    from ..protocol import levels_segments, parse_levels

    try:
        levels = parse_levels(items(protocol, "--protocol"))
    except ValueError as e:
        fail(f"--protocol: {e}")
    if len(levels) > MAX_LEVELS:
        fail(f"--protocol: {len(levels)} levels (2^{len(levels)} elementary links) exceed the {MAX_LEVELS} "
             "the exact engine can resolve; use fewer levels")
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
    csv = check_csv(csv)
    distinct_outputs({"--plot": plot, "--csv": csv})
    tiny = [o for o, v in (("--p-gen", p_gen), ("--p-swap", p_swap), ("--t-coh", t_coh)) if v < 1e-12]
    far = None if max_t is None else _out_of_reach(levels, p_gen, p_swap, cut, max_t)
    if far is not None:  # before any work: the automatic truncation would grow for minutes, then refuse
        log_need, log_mean = far
        slow = [o for o in tiny if o != "--t-coh"]  # the probabilities that make the times long
        hint = (f"{' and '.join(slow)} below 1e-12 lies outside the range the engine resolves; raise it" if slow
                else ("raise --max-memory, " if max_t < 2**21 and log_need <= math.log(2**22) else "")
                + "use fewer levels or raise --p-gen or --p-swap")
        fail(f"--t-trunc auto: the result would not be trustworthy: {len(levels)} level(s) at p_gen {p_gen:g} "
             f"and p_swap {p_swap:g} need a truncation above {_exp_text(log_need)} steps (the mean delivery "
             f"time is at least {_exp_text(log_mean)} steps), beyond the {max_t} steps the automatic truncation "
             f"may reach{' within --max-memory' if max_t < 2**21 else ''}; {hint}")
    from ..exact import delivery

    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kw = {} if max_t is None else {"max_t_trunc": max_t, "progress": True}
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
    settings = {"protocol": ",".join(levels), "p_gen": p_gen, "p_swap": p_swap, "w0": w0, "t_coh": t_coh,
                "cutoff": out["cutoff"], "t_trunc": t_trunc_v, "t_trunc_used": n,
                **({} if max_t is None else {"max_t_trunc": max_t})}
    prov = provenance_block(settings=settings, dtype=out["dtype"])
    hardware = (f"p_gen {p_gen:g}, p_swap {p_swap:g}, w0 {w0:g}, t_coh {_steps(t_coh)}, cut-offs "
                + ", ".join("none" if c is None else f"{c:g}" for c in out["cutoff"]) + " steps")
    if plot:
        _plot(r, levels, plot, hardware, out)
    if csv:
        write_rows(csv, [out], prov)
    if as_json:
        echo_json({**out, "provenance": prov})
        return
    cuts = ", ".join("none" if c is None else f"{c:g}" for c in out["cutoff"])
    rows = [
        ["protocol", ",".join(levels), ""],
        ["segments", str(out["segments"]), ""],
        ["cut-offs", cuts, "steps"],
        ["mean delivery time", cell(out["mean_time"]), "steps"],
        ["mean delivered Werner parameter", f"{out['mean_werner']:.6g}", ""],
        ["mean delivered fidelity", f"{out['mean_fidelity']:.6g}", ""],
        ["BB84 key fraction", cell(out["key_fraction"]), "bits/pair"],
        ["secret key rate", cell(out["secret_key_rate"], digits=4), "bits/step"],
        [f"coverage (t_trunc = {n})", f"{out['coverage']:.10f}", ""],
        ["dtype", out["dtype"], ""],
        ["wall time", f"{wall:.3f}", "s"],
    ]
    print_table(f"qnjax evaluate: {','.join(levels)} over {out['segments']} segments",
                ["quantity", "value", "unit"], rows, text_cols=(1,))
    if plot:
        typer.echo(f"plot saved to {plot}", err=True)
    if csv:
        typer.echo(f"table saved to {csv}", err=True)


def _steps(t_coh: float) -> str:
    return "inf" if math.isinf(t_coh) else f"{t_coh:g} steps"


def _plot(r, levels, path: str, hardware: str, out: dict) -> None:
    """The delivery-time distribution and the delivered Werner parameter against time."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        fail("--plot needs matplotlib: pip install 'qnjax[plot]'")
    import numpy as np

    from .._style import caption, figure

    pmf = np.asarray(r.pmf, float)
    w = np.asarray(r.state_t, float)
    t = np.arange(pmf.shape[-1])
    fig, ax = figure(1, 2, width=6.0, height=2.6)
    key = "no key (key fraction 0)" if not out["key_fraction"] > 0 else \
        f"key rate {cell(out['secret_key_rate'], 'bits/step')}"
    ax[0].plot(t, pmf, lw=1)
    ax[0].set_ylabel("P(T = t) (probability per step)")
    ax[0].set_title(f"{','.join(levels)}: mean T = {cell(out['mean_time'], 'steps')}, {key}", fontsize=9)
    keep = pmf > 1e-12 * pmf.max() if pmf.max() > 0 else np.zeros_like(pmf, bool)
    tmax = int(np.searchsorted(np.cumsum(pmf), min(1 - 1e-6, pmf.sum()))) + 1
    ax[0].set_xlim(0, max(tmax, 10))
    ax[0].set_xlabel("delivery time t (steps)")
    ax[1].plot(t[keep], w[keep], lw=1)
    ax[1].set_xlim(0, max(tmax, 10))
    ax[1].set_ylabel("Werner parameter E[w | T = t] (dimensionless)")
    ax[1].set_xlabel("delivery time t (steps)")
    caption(fig, [f"exact engine, {out['segments']} segment(s); {hardware}",
                  f"t_trunc {out['t_trunc']} steps, coverage {out['coverage']:.8f}, {out['dtype']}"])
    save_figure(fig, path, "--plot")
