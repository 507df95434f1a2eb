"""``qnjax simulate``: Monte Carlo of the nested or swap-asap policy (a thin layer over
:func:`qnjax.montecarlo.simulate_nested` / :func:`qnjax.montecarlo.simulate_swap_asap`)."""

from __future__ import annotations

import math
from enum import Enum
from typing import Optional

import typer

from ._app import app, fail, parse_floats, set_precision
from ._outputs import CSV_HELP, cell, check_csv, print_table, provenance_block, write_rows
from ._checks import (MAX_MEMORY_HELP, SEED_MAX, check_result, echo_json, float_in, int_in, items, need_memory)

SAMPLES_MAX = 2**30  # qnjax.montecarlo's per-design limit (int32 trajectory counters)
NODES_MAX = 2**14  # simulate_swap_asap's MAX_NODES
NESTED_INSTANCES_MAX = 255  # the nested Monte Carlo compiles one block per node of the expanded tree
WORK_MAX = 10**10  # estimated node updates of one run (about 1e6 per second on a CPU core)
MIN_LANES, MIN_SLOTS = 64, 64  # swap-asap runs at least 64 lanes for a few dozen slots
SLOT_CAP = 100_000  # simulate_swap_asap's default max_time


class Policy(str, Enum):
    swap_asap = "swap-asap"
    nested = "nested"


def _work(n: float, lower: str) -> None:
    if not n <= WORK_MAX:
        fail(f"this simulation needs about {n:.3g} node updates (--samples x nodes x expected attempts); "
             f"the limit is {WORK_MAX:.0e}; {lower}")


@app.command()
def simulate(
    policy: Policy = typer.Option(Policy.nested, "--policy", help="swap-asap (linear chain) or nested (protocol tree)."),
    nodes: Optional[int] = typer.Option(None, "--nodes", help="swap-asap: number of nodes n >= 2 (n - 1 segments)."),
    p_gen: float = typer.Option(..., "--p-gen", help="Elementary-link success probability per step, in [1e-6, 1]; "
                                "settings whose mean delivery time would overflow the step counters are refused."),
    p_swap: float = typer.Option(1.0, "--p-swap", help="Swap success probability, in (0, 1]."),
    w0: float = typer.Option(1.0, "--w0", help="Werner parameter of a fresh link, in [-1/3, 1]."),
    t_coh: float = typer.Option(math.inf, "--t-coh", help="Pair coherence time in steps (inf = no decay)."),
    cutoff: Optional[str] = typer.Option(None, "--cutoff", help="Memory cut-off(s) in steps: nested: one per level, comma-separated; swap-asap: one value."),
    protocol: Optional[str] = typer.Option(None, "--protocol", help="nested: bottom-up levels, e.g. swap,distill,swap."),
    samples: int = typer.Option(100_000, "--samples", help="Trajectories to simulate (>= 2, for a standard error); "
                                "a run in which any trajectory hits the 100,000-slot cap is refused."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same numbers)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    float32: bool = typer.Option(False, "--float32", help="Compute in float32 instead of float64."),
    max_memory: Optional[str] = typer.Option(None, "--max-memory", help=MAX_MEMORY_HELP),
    csv: Optional[str] = typer.Option(None, "--csv", help=CSV_HELP),
) -> None:
    """Monte Carlo delivery time, delivered Werner parameter / fidelity and key rate."""
    set_precision(float32)
    int_in(samples, "--samples", 1, SAMPLES_MAX)
    if samples < 2:
        fail(f"--samples must be at least 2 (a standard error needs two or more trajectories); got {samples}")
    int_in(seed, "--seed", 0, SEED_MAX)
    p_gen = float_in(p_gen, "--p-gen", 1e-6, 1)
    p_swap = float_in(p_swap, "--p-swap", 0, 1, lo_open=True)
    w0 = float_in(w0, "--w0", -1 / 3, 1)
    t_coh = float_in(t_coh, "--t-coh", 0, math.inf, lo_open=True, allow_inf=True)
    cut = None if cutoff is None else parse_floats(cutoff, "--cutoff")
    for c in cut or ():
        float_in(c, "--cutoff", 0, math.inf, allow_inf=True)
    if policy is Policy.swap_asap and nodes is not None:
        int_in(nodes, "--nodes", 2, NODES_MAX)
        # at least 64 parallel lanes of nodes x (int32 fields + state), with the engine's margin
        need_memory(64 * nodes * (12 + 8 * 2) * 16, max_memory, f"--nodes {nodes}", "lower --nodes")
        from ..montecarlo._estimate import swap_asap_censored_bound

        # censored trajectories would bias the mean: refuse when some surely hit the slot cap
        low = float(swap_asap_censored_bound([p_gen] * (nodes - 1), SLOT_CAP))
        if samples * low >= 1:
            fail(f"at least {low:.3g} of all trajectories ({samples * low:,.0f} of {samples:,}) would still be "
                 f"undelivered at the slot cap of {SLOT_CAP:,} slots (each of the {nodes - 1} segments must first "
                 f"generate a link at --p-gen {p_gen:g}), biasing the mean time and key rate; raise --p-gen or "
                 "lower --nodes")
        # every trajectory runs at least 1 / (p_gen p_swap) slots (or to the slot cap) over n nodes,
        # in at least MIN_LANES parallel lanes for at least one chunk of slots
        slots = min(SLOT_CAP, 1 / (p_gen * p_swap)) if p_gen * p_swap > 0 else SLOT_CAP
        _work(max(samples * slots, MIN_LANES * MIN_SLOTS) * nodes,
              "lower --samples or --nodes, or raise --p-gen / --p-swap")
    if protocol is not None:
        from ..protocol import parse_levels

        try:
            levels = parse_levels(items(protocol, "--protocol"))
        except ValueError as e:
            fail(f"--protocol: {e}")
        if 2 ** len(levels) - 1 > NESTED_INSTANCES_MAX:
            fail(f"--protocol: {len(levels)} levels expand to {2 ** len(levels) - 1} node instances; the nested "
                 f"Monte Carlo compiles one block per instance and allows at most {NESTED_INSTANCES_MAX} "
                 "(8 levels); use qnjax evaluate (exact engine) for deeper protocols")
        protocol = ",".join(levels)
        from ..montecarlo._estimate import levels_estimate

        # a failed swap or a cut-off restarts the sub-tree: node attempts per delivery
        _, attempts = levels_estimate(levels, p_gen, p_swap, cut, w0)
        _work(samples * attempts, "lower --samples, or raise --p-gen / --p-swap / --cutoff")
    csv = check_csv(csv)
    from ..montecarlo import simulate_nested, simulate_swap_asap

    kwargs = dict(p_gen=p_gen, p_swap=p_swap, w0=w0, t_coh=t_coh, samples=samples, seed=seed)
    if policy is Policy.swap_asap:
        if nodes is None:
            fail("--nodes is required for --policy swap-asap (number of nodes, >= 2)")
        if protocol is not None:
            fail("--protocol applies to --policy nested only")
        if cut is not None and len(cut) != 1:
            fail(f"--cutoff: swap-asap takes one value; got {len(cut)}")
        run = lambda progress: simulate_swap_asap(  # noqa: E731
            nodes, cutoff=None if cut is None else cut[0], progress=progress, **kwargs)
        desc = f"swap-asap, {nodes} nodes"
    else:
        if protocol is None:
            fail("--protocol is required for --policy nested (e.g. swap,swap,swap)")
        if nodes is not None:
            fail("--nodes applies to --policy swap-asap only (nested: the protocol sets the segments)")
        run = lambda progress: simulate_nested(protocol, cutoff=cut, progress=progress, **kwargs)  # noqa: E731
        desc = f"nested {protocol}"

    from .._progress import Progress

    bars = []

    def progress(done, total=None):  # the bar starts with the first chunk, after the library's
        if not bars:                 # checks: a refused input prints its one error line only
            bars.append(Progress(True, f"simulate {desc}", samples))
        bars[0].update(done, total)

    try:
        result = run(progress)
    except (ValueError, TypeError) as e:
        fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    finally:
        for bar in bars:
            bar.close()

    d = result.to_dict()
    d.update(policy=policy.value, seed=seed, dtype="float32" if float32 else "float64")
    if d.get("undelivered", 0) > 0:  # means over the delivered ones only would be biased
        fail(f"{d['undelivered']:,} of {d['trajectories']:,} trajectories hit the slot cap of {SLOT_CAP:,} slots "
             "undelivered, so the mean delivery time and key rate of the rest would be biased; raise --p-gen, "
             "--p-swap or --cutoff, or shorten the chain")
    check_result(d, "the Monte Carlo estimate is not defined for these parameters; check --p-gen, --t-coh "
                    "and --cutoff")
    settings = {"policy": policy.value, "p_gen": p_gen, "p_swap": p_swap, "w0": w0, "t_coh": t_coh,
                "cutoff": cut if cut is not None else "none", "samples": samples,
                **({"nodes": nodes} if policy is Policy.swap_asap else {"protocol": protocol})}
    prov = provenance_block(seed=seed, settings=settings, dtype=d["dtype"])
    if csv:
        write_rows(csv, [d], prov)
    if as_json:
        echo_json({**d, "provenance": prov})
        return
    na = "n/a (a function of the mean state)"
    rows = [
        ["trajectories", f"{d['trajectories']:,}", "n/a (a count)"],
        ["delivered", f"{d['samples']:,}", "n/a (a count)"],
        ["undelivered (slot cap)", f"{d['undelivered']:,}", "n/a (a count)"],
        ["mean delivery time \\[steps]", f"{d['mean_time']:.6g}", cell(d["mean_time_stderr"])],
        ["mean Werner parameter", f"{d['mean_werner']:.6g}", cell(d["mean_werner_stderr"])],
        ["mean fidelity", f"{d['mean_fidelity']:.6g}", cell(d["mean_fidelity_stderr"])],
        ["BB84 key fraction (mean state, bits/pair)", cell(d["key_fraction"]), na],
        ["secret key rate \\[bits/step]", cell(d["secret_key_rate"], digits=4), na],
        ["seed, dtype", f"{seed}, {d['dtype']}", "n/a"],
    ]
    print_table(f"Monte Carlo: {desc}", ["quantity", "value", "std. error"], rows, text_cols=(2,))
    if csv:
        typer.echo(f"table saved to {csv}", err=True)
