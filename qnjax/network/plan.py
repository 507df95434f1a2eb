"""``qnjax.plan``: repeater sites, fiber routes, protocols and cut-offs for a set of demands.

The problem (after Rabbie, Chakraborty, Avis & Wehner, npj Quantum Inf. 8, 5 (2022), who
place repeaters on SURFnet by linear programming over a link model without memories or
cut-offs): given a fiber graph, demands (node pairs) and hardware, choose a set of repeater
sites (at most ``budget``, only at nodes with ``repeater_site``), for every demand one of
its ``k_paths`` shortest fiber routes, the repeaters it uses on that route (at most
``max_repeaters``), the swap-tree shape over the unequal segments, optional distillation
and the cut-offs, maximizing the minimum key rate over demands (``"min"``), their sum
(``"sum"``), or with ``target`` using the fewest sites that give every demand ``target``
bits/s. Every candidate chain is priced by the exact delivery engine.

Shared sites (``sharing``):

* ``"dedicated"`` (default): a site hosts a separate memory pair and swap for every demand
  routed through it; chains do not interact and the site is counted once in the budget.
* ``"time"``: a site has one memory pair, time-shared; demands whose chains share a site
  take turns (:func:`qnjax.network.search.time_shares`), and a demand's reported rate is its
  chain's rate times its time share.

Method: (1) the candidate table (:mod:`qnjax.network.candidates`): every route × subset ×
tree shape, screened at a few cut-offs in batched engine calls, subsets skipped by a
rigorous upper bound; (2) the discrete search over repeater sets
(:mod:`qnjax.network.search`: exhaustive, or branch-and-bound with a certified bound);
(3) the chosen chains' cut-offs refined by gradient (Adam through the engine's continuous
cut-off relaxation, then rounded to integers), and the search repeated until the chosen
chains are all refined; (4) every reported rate is the exact engine's figure at the integer
cut-offs with ``t_trunc="auto"``. Optimality claims hold for the table's rates (exact
engine values at the cut-offs found); under time-sharing each demand takes its best chain
alone and the shares follow.
"""

from __future__ import annotations

import math
import time
from typing import Any, Iterable

import numpy as np

from ..keyrate import plob_bound
from ..physical import fiber_transmissivity
from ..protocol import format_tree
from . import candidates as cand
from .links import exact_rate
from .hardware import NetworkHardware, default_hardware, load_hardware
from .load import NetworkError, load_network
from .result import DemandPlan, NetworkPlan
from .search import Pricer, search

OBJECTIVES = ("min", "sum")
SHARING = ("dedicated", "time")


def parse_demands(G, demands: Any) -> list[tuple[str, str]]:
    """Demands as node-name pairs: ``"A:B,C:D"``, a list of pairs, or ``{"ends": [..]}`` for
    all pairs among listed end nodes. Raises :class:`NetworkError` naming unknown nodes."""
    if isinstance(demands, str):
        items = [s.strip() for s in demands.split(",") if s.strip()]
        pairs = []
        for s in items:
            parts = s.split(":")
            if len(parts) != 2 or not all(p.strip() for p in parts):
                raise NetworkError(f"pairs: {s!r} is not A:B")
            pairs.append((parts[0].strip(), parts[1].strip()))
    elif isinstance(demands, dict):
        ends = list(demands.get("ends", []))
        pairs = [(a, b) for i, a in enumerate(ends) for b in ends[i + 1:]]
    else:
        try:
            pairs = [tuple(p) for p in demands]
        except TypeError:
            raise NetworkError(f"demands: expected pairs of node names; got {demands!r}") from None
    if not pairs:
        raise NetworkError("demands: no pair given")
    out = []
    for p in pairs:
        if len(p) != 2:
            raise NetworkError(f"demands: {p!r} is not a pair")
        a, b = str(p[0]), str(p[1])
        for n in (a, b):
            if n not in G:
                near = sorted(x for x in G.nodes if x.lower().startswith(n[:2].lower()))[:5]
                hint = f"; similar: {', '.join(near)}" if near else ""
                raise NetworkError(f"pair {a}:{b}: unknown node {n!r}{hint}")
        if a == b:
            raise NetworkError(f"pair {a}:{b}: the two ends are the same node")
        out.append((a, b))
    return out


_TABLES: dict = {}


def _fingerprint(G) -> tuple:
    """What a candidate table depends on in a network: edges with lengths, node hardware."""
    from .hardware import NODE_KEYS

    edges = tuple(sorted((min(u, v), max(u, v), d["length_km"]) for u, v, d in G.edges(data=True)))
    nodes = tuple(sorted((n, tuple((k, d[k]) for k in NODE_KEYS if k in d)) for n, d in G.nodes(data=True)))
    return edges, nodes


def _demand_plan(G, hw, e, share: float) -> DemandPlan:
    K = len(e.cut) if e.cut is not None else 0
    rate, clock, cov = exact_rate(e.tree, hw, e.seg_km, e.stations, e.cut if K else ())
    total = float(sum(e.seg_km))
    eta = float(fiber_transmissivity(total, hw.attenuation_db_per_km))
    mux = hw.multiplexing
    plob = float(plob_bound(eta)) * mux.modes * mux.memories / clock
    cut_steps = tuple(float(c) for c in (e.cut if K else ()))
    return DemandPlan(pair=(e.route[0], e.route[-1]), path=tuple(e.route), repeaters=tuple(e.reps),
                      segments_km=tuple(e.seg_km), protocol=format_tree(e.tree),
                      cutoff_s=tuple(c * clock for c in cut_steps), cutoff_steps=cut_steps,
                      clock_s=clock, skr_bits_per_s=rate * share, plob_bits_per_s=plob,
                      time_share=float(share), coverage=cov)


def plan(network: Any, demands: Any, *, hardware: NetworkHardware | str | None = None,
         budget: int | None = None, target: float | None = None, objective: str = "min",
         sharing: str = "dedicated", k_paths: int = 2, max_repeaters: int = 3, distill: bool = False,
         sites: Iterable[str] | None = None, max_segment_km: float = math.inf,
         length_attr: str = "dist", exhaustive_limit: int = 200000, node_limit: int = 100000,
         progress=None) -> NetworkPlan:
    """Plan repeater sites, routes, protocols and cut-offs for ``demands`` on ``network``.

    Args:
        network: a networkx graph, a topohub key or a file (:func:`qnjax.network.load_network`).
        demands: ``"A:B,C:D"``, a list of pairs, or ``{"ends": [...]}`` (all pairs among them).
        hardware: :class:`NetworkHardware`, a hardware TOML path, or ``None`` for the default.
        budget: at most this many repeater sites (``None``: as many as there are candidates).
        target: bits/s every demand must reach; then the fewest sites are sought (``budget``
            caps them) and ``objective`` is ``"target"``.
        objective: ``"min"`` (max-min key rate, ties broken by the sum) or ``"sum"``.
        sharing: ``"dedicated"`` memories per demand or ``"time"``-shared sites (module docstring).
        k_paths: candidate routes per demand (shortest simple paths by fiber length).
        max_repeaters: at most this many repeaters on one chain (more than the network's nodes
            less two is the same as that many).
        distill: also try one DEJMPS round on every elementary link.
        sites: nodes allowed to host repeaters (default: every node whose ``repeater_site``
            attribute is not false).
        max_segment_km: no elementary link longer than this (km).
        exhaustive_limit / node_limit: sizes of the exhaustive search / branch-and-bound.
        progress: optional callable receiving one-line progress messages.

    Returns:
        :class:`NetworkPlan`. Raises :class:`NetworkError` (a ``ValueError``) on bad input.
    """
    t0 = time.perf_counter()
    say = progress or (lambda msg: None)
    if objective not in OBJECTIVES:
        raise NetworkError(f"objective must be one of {', '.join(OBJECTIVES)}; got {objective!r}")
    if sharing not in SHARING:
        raise NetworkError(f"sharing must be one of {', '.join(SHARING)}; got {sharing!r}")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 0):
        raise NetworkError(f"budget must be an integer >= 0; got {budget!r}")
    if target is not None and not (isinstance(target, (int, float)) and target > 0 and math.isfinite(target)):
        raise NetworkError(f"target must be a positive rate in bits/s; got {target!r}")
    for name, v, lo in (("k_paths", k_paths, 1), ("max_repeaters", max_repeaters, 0)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise NetworkError(f"{name} must be an integer >= {lo}; got {v!r}")
    G = load_network(network, length_attr=length_attr)
    pairs = parse_demands(G, demands)
    # a chain's repeaters are interior nodes of a simple path, and repeater sites are nodes:
    # larger values change nothing but the work (a million used to loop for minutes)
    max_repeaters = min(max_repeaters, max(G.number_of_nodes() - 2, 0))
    if hardware is None:
        hw = default_hardware()
    elif isinstance(hardware, NetworkHardware):
        hw = hardware
    else:
        hw = load_hardware(hardware)
    if sites is None:
        allowed = frozenset(n for n, d in G.nodes(data=True) if d.get("repeater_site", True))
    else:
        allowed = frozenset(str(s) for s in sites)
        for s in allowed:
            if s not in G:
                raise NetworkError(f"sites: unknown node {s!r}")

    key = (_fingerprint(G), tuple(pairs), hw, k_paths, max_repeaters, distill, allowed, max_segment_km)
    table = _TABLES.pop(key, None)
    if table is None:
        say(f"candidate chains for {len(pairs)} demand(s)")
        table = cand.build_table(G, pairs, hw, k_paths=k_paths, max_repeaters=max_repeaters, distill=distill,
                                 sites=allowed, max_segment_km=max_segment_km)
    _TABLES[key] = table  # most recent last; plans of the same demands reuse it (e.g. a budget curve)
    while len(_TABLES) > 4:
        _TABLES.pop(next(iter(_TABLES)))
    for d, (a, b) in enumerate(pairs):
        if not table.by_demand[d]:
            raise NetworkError(f"pair {a}:{b}: no route has segments within max_segment_km = {max_segment_km}")
    b_max = min(budget if budget is not None else max_repeaters * len(pairs), G.number_of_nodes())

    # demands that cannot get a positive rate within the budget
    for d, (a, b) in enumerate(pairs):
        sizes = [len(table.entries[i].reps) for i in table.by_demand[d] if table.entries[i].rate > 0]
        need = min(sizes) if sizes else None
        if need is None:
            raise NetworkError(f"pair {a}:{b}: no chain with at most {max_repeaters} repeaters on its "
                               f"{k_paths} shortest route(s) gives a positive key rate")
        if need > b_max:
            raise NetworkError(f"budget {b_max} is below what pair {a}:{b} needs: "
                               f"{need} repeater(s) for a positive key rate")

    def run_search(bud, floor=None):
        for _ in range(4):
            pricer = Pricer(table, len(pairs), objective, sharing)
            out = search(pricer, bud, exhaustive_limit=exhaustive_limit, node_limit=node_limit, floor=floor)
            R = sum(pricer.bit[s] for s in out.sites)
            chosen = pricer.choose(R)
            for d, i in enumerate(chosen):
                if i < 0:
                    a, b = pairs[d]
                    raise NetworkError(f"budget {bud}: the best set leaves pair {a}:{b} without a chain "
                                       f"(its routes need segments within max_segment_km = {max_segment_km})")
            if all(table.entries[i].refined for i in chosen):
                return pricer, out, R, chosen
            say(f"refining cut-offs of {len(chosen)} chain(s)")
            cand.refine(table, chosen, hw)
        return pricer, out, R, chosen

    if target is None:
        say(f"searching repeater sets (budget {b_max})")
        pricer, out, R, chosen = run_search(b_max)
        obj, bud = objective, b_max
    else:
        obj, found = "target", None
        need = []
        for d, (a, b) in enumerate(pairs):
            ok = [len(table.entries[i].reps) for i in table.by_demand[d] if table.entries[i].rate >= target]
            if not ok:
                # rates may still rise with refinement: refine this demand's best entries first
                top = sorted(table.by_demand[d], key=lambda i: -table.entries[i].rate)[:4]
                cand.refine(table, top, hw)
                ok = [len(table.entries[i].reps) for i in table.by_demand[d] if table.entries[i].rate >= target]
            if not ok:
                best = max(table.entries[i].rate for i in table.by_demand[d])
                raise NetworkError(f"target {target:g} bits/s is out of reach for pair {a}:{b} "
                                   f"(best {best:.4g} bits/s with up to {max_repeaters} repeaters)")
            need.append(min(ok))
        objective = "min"
        for bud in range(max(need), b_max + 1):
            say(f"target: trying {bud} site(s)")
            pricer, out, R, chosen = run_search(bud, floor=(target, -math.inf))
            if out.value[0] >= target:
                found = bud
                break
        if found is None:
            raise NetworkError(f"target {target:g} bits/s needs more than {b_max} repeater sites")

    shares = pricer.shares(chosen)
    plans = tuple(_demand_plan(G, hw, table.entries[i], s) for i, s in zip(chosen, shares))
    return NetworkPlan(repeaters=tuple(sorted(pricer.names(R))), objective=obj, demands=plans,
                       wall_s=time.perf_counter() - t0, optimal=out.optimal, bound=float(out.bound[0]),
                       method=out.method, sharing=sharing, budget=bud, target=target,
                       chains_evaluated=table.evaluated)


__all__ = ["plan", "parse_demands"]
