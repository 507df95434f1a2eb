"""The candidate table of a plan: for every demand, route and usable repeater subset, the best
chain (tree shape, distillation, cut-offs) and its key rate.

A demand's key rate under a set ``R`` of repeater sites depends on ``R`` only through which
subsets ``S ⊆ R`` lie on its routes, so the engine work is done once per (route, subset)
and every repeater set of the discrete search (:mod:`qnjax.network.search`) is then priced
by table look-ups. Subsets are built by size; a subset is skipped (never evaluated) when its
rigorous upper bound (:func:`qnjax.network.rate_upper_bound`) does not exceed the
best rate of one of its own subsets on the same route — whenever it is available, that
smaller subset is too and does at least as well.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from ..protocol import Node, internal_nodes
from .cutoffs import cutoff_grid, refine_designs
from .links import link_numpy, rate_upper_bound, station_arrays, too_slow
from .screen import evaluate_designs
from .shapes import tree_shapes
from .load import NetworkError


@dataclass
class Entry:
    """One chain: demand ``d`` on route ``route`` (node names) using repeaters ``reps``."""

    d: int
    route: tuple
    reps: tuple
    seg_km: tuple
    stations: tuple
    rate: float = 0.0
    tree: Node | None = None
    cut: np.ndarray | None = None
    refined: bool = False


@dataclass
class Table:
    """All entries, and per demand the indices of its entries."""

    entries: list = field(default_factory=list)
    by_demand: list = field(default_factory=list)
    evaluated: int = 0  # chains (entry × shape × cut-off) evaluated by the engine
    skipped: int = 0  # subsets skipped by the upper bound
    deduped: int = 0  # entries that repeat another entry's chain (evaluated and refined once)
    same: dict = field(default_factory=dict)  # chain key -> indices of the entries of that chain


def k_routes(G: nx.Graph, a: str, b: str, k: int) -> list[tuple]:
    """The ``k`` shortest simple paths by fiber length (Yen's algorithm via networkx)."""
    try:
        gen = nx.shortest_simple_paths(G, a, b, weight="length_km")
        return [tuple(p) for p in itertools.islice(gen, k)]
    except nx.NetworkXNoPath:
        raise NetworkError(f"pair {a}:{b}: no fiber route joins these nodes") from None


def chain_key(e: Entry) -> tuple:
    """What an entry's chain depends on: its segment lengths and its stations' hardware
    (entries of different demands or routes with the same key are the same chain)."""
    return e.seg_km, e.stations


def _evaluate(entries: list, hw, distill: bool, table: Table) -> None:
    """Best tree shape and screening cut-off of every entry (same segment count): every
    (distinct chain × shape × screening cut-off) in one batched call
    (:func:`qnjax.network.evaluate_designs`)."""
    if not entries:
        return
    n = len(entries[0].seg_km)
    uniq: dict = {}
    for e in entries:
        uniq.setdefault(chain_key(e), []).append(e)
    reps = [v[0] for v in uniq.values()]
    table.deduped += len(entries) - len(reps)
    seg = np.array([e.seg_km for e in reps], float)
    arrs = [station_arrays(e.stations) for e in reps]
    rates_s, ps, bsm = (np.stack([a[i] for a in arrs]) for i in range(3))
    clock = link_numpy(hw, seg)[1].max(-1)
    designs = []  # (chain, tree, cut-offs) in the order shapes and cut-offs are tried
    for tree in tree_shapes(n, distill):
        K = len(internal_nodes(tree))
        keep = np.nonzero(~too_slow(tree, hw, seg))[0]
        if keep.size == 0:
            continue
        grid = cutoff_grid(hw, rates_s, clock, K) if K else [np.zeros((len(reps), 0))]
        for cut in grid:
            designs += [(i, tree, cut[i]) for i in keep]
    table.evaluated += len(designs)
    idx = np.array([d[0] for d in designs], int)
    r, _ = evaluate_designs([d[1] for d in designs], hw, seg[idx], rates_s[idx], ps[idx], bsm[idx],
                                   [d[2] for d in designs])
    r = np.nan_to_num(r, nan=0.0)
    best = np.full(len(reps), -1.0)
    for (i, tree, cut), v in zip(designs, r):
        if v > best[i]:  # the first of equal rates wins, as shapes and cut-offs are listed
            best[i] = v
            reps[i].rate, reps[i].tree, reps[i].cut = float(v), tree, cut.copy()
    for e in reps:
        e.rate = max(e.rate, 0.0)
        if e.tree is None:  # every shape too slow: keep it out of the search
            e.tree = tree_shapes(n, distill)[0]
            e.cut = np.full(len(internal_nodes(e.tree)), np.inf)
    for same in uniq.values():
        for e in same[1:]:
            e.rate, e.tree, e.cut = same[0].rate, same[0].tree, same[0].cut.copy()


def build_table(G: nx.Graph, demands: list, hw, *, k_paths: int = 2, max_repeaters: int = 3,
                distill: bool = False, sites: frozenset, max_segment_km: float = float("inf")) -> Table:
    """Evaluate every (demand, route, repeater subset) chain worth evaluating.

    Args:
        G: normalised network (:func:`qnjax.network.load_network`).
        demands: list of ``(a, b)`` node names.
        hw: :class:`~qnjax.network.hardware.NetworkHardware`.
        k_paths: routes per demand (shortest simple paths).
        max_repeaters: at most this many repeaters per chain (``max_repeaters + 1`` segments).
        distill: also try one distillation round on every elementary link.
        sites: nodes allowed to host repeaters.
        max_segment_km: chains with a longer segment are not considered.
    """
    table = Table(by_demand=[[] for _ in demands])
    station = {n: hw.station(G.nodes[n], n) for n in G.nodes}
    per_route = []  # (d, route, interior sites, cumulative km)
    for d, (a, b) in enumerate(demands):
        for route in k_routes(G, a, b, k_paths):
            cum = np.concatenate([[0.0], np.cumsum([G.edges[u, v]["length_km"] for u, v in zip(route, route[1:])])])
            inner = [i for i in range(1, len(route) - 1) if route[i] in sites]
            per_route.append((d, route, inner, cum))
    best_sub: dict = {}  # (route id, subset of positions) -> best rate of it and its subsets
    for size in range(0, max_repeaters + 1):
        batch, keys = [], []
        for rid, (d, route, inner, cum) in enumerate(per_route):
            for sub in itertools.combinations(inner, size):
                cuts = (0,) + sub + (len(route) - 1,)
                seg = tuple(float(cum[j] - cum[i]) for i, j in zip(cuts, cuts[1:]))
                if max(seg) > max_segment_km:
                    continue
                e = Entry(d, route, tuple(route[i] for i in sub), seg, tuple(station[route[i]] for i in cuts))
                batch.append(e)
                keys.append((rid, sub))
        if not batch:
            continue
        ub = rate_upper_bound(hw, np.array([e.seg_km for e in batch]),
                                     np.stack([station_arrays(e.stations)[2] for e in batch]), distill)
        todo = []
        for e, key, u in zip(batch, keys, ub):
            rid, sub = key
            below = max((best_sub.get((rid, s), 0.0) for s in itertools.combinations(sub, size - 1)),
                        default=0.0) if size else 0.0
            if size and u <= below:
                best_sub[key] = below
                table.skipped += 1
                continue
            todo.append((e, key, below))
        _evaluate([t[0] for t in todo], hw, distill, table)
        for e, key, below in todo:
            best_sub[key] = max(below, e.rate)
            table.by_demand[e.d].append(len(table.entries))
            table.same.setdefault(chain_key(e), []).append(len(table.entries))
            table.entries.append(e)
    return table


def refine(table: Table, ids, hw) -> None:
    """Gradient-refine the cut-offs of entries ``ids`` (all of a segment count together,
    across tree shapes: :func:`qnjax.network.cutoffs.refine_designs`). Every entry of the same
    chain (another demand or route over the same segments and stations) takes the result, so
    a chain is refined once per table."""
    groups: dict = {}
    for i in ids:
        e = table.entries[i]
        # without memory decay a cut-off only discards pairs: no cut-off is optimal
        decays = any(any(r > 0 for r in s.memory.walsh_rates_per_s()) for s in e.stations)
        if not e.refined and e.tree is not None and internal_nodes(e.tree) and decays:
            groups.setdefault(len(e.seg_km), {}).setdefault(chain_key(e), i)
        for j in table.same.get(chain_key(e), [i]):
            table.entries[j].refined = True
    for by_key in groups.values():
        es = [table.entries[i] for i in by_key.values()]
        arrs = [station_arrays(e.stations) for e in es]
        rates_s, ps, bsm = (np.stack([a[k] for a in arrs]) for k in range(3))
        cut, r = refine_designs([e.tree for e in es], hw, np.array([e.seg_km for e in es]), rates_s, ps, bsm,
                                [e.cut for e in es])
        for key, e0, c, v in zip(by_key, es, cut, r):
            for j in table.same.get(key, [by_key[key]]):
                e = table.entries[j]
                if v > e.rate and e.tree == e0.tree:
                    e.rate, e.cut = float(v), c.copy()


__all__ = ["Entry", "Table", "build_table", "k_routes", "refine"]
