"""The discrete search over repeater sets, on top of the candidate table.

Sites are the nodes that appear as a repeater in some table entry; a set ``R`` is a bit mask
over them. Under ``R`` a demand's rate is the best entry whose repeaters all lie in ``R``
(:meth:`Pricer.demand_rates`). The objective is compared lexicographically: max-min key rate
then the sum (``"min"``), or the sum then the minimum (``"sum"``).

* **Exhaustive** when the number of sets is at most ``exhaustive_limit``. With dedicated
  memories the objective never decreases when a site is added (a demand may ignore it), so
  only sets of exactly ``min(budget, sites)`` are enumerated; under time-sharing every size
  up to the budget is.
* **Branch and bound** otherwise: sites in greedy order, include before exclude, started
  from the greedy solution. The bound of a node (sites fixed in ``I``, out ``X``, ``r`` slots
  left) lets every demand use its best entry that avoids ``X`` and needs at most ``r`` sites
  outside ``I``; it is valid under both sharing models (time-sharing only lowers rates).
  When it finishes, the result is optimal for the table; when it hits its node limit it
  returns the best set found and a certified upper bound on the optimum (``bound``).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass

import networkx as nx
import numpy as np


@dataclass(frozen=True)
class SearchOutcome:
    """Best set (site names), its objective pair, whether it is proven optimal, the bound."""

    sites: tuple
    value: tuple
    optimal: bool
    bound: tuple
    method: str
    nodes: int


class Pricer:
    """Prices repeater sets from a candidate table.

    Args:
        table: :class:`~qnjax.network.candidates.Table`.
        n_demands: number of demands.
        objective: ``"min"`` or ``"sum"``.
        sharing: ``"dedicated"`` or ``"time"`` (see :mod:`qnjax.network.plan`).
    """

    def __init__(self, table, n_demands: int, objective: str = "min", sharing: str = "dedicated"):
        self.table, self.objective, self.sharing = table, objective, sharing
        names = sorted({r for e in table.entries for r in e.reps})
        self.sites = tuple(names)
        self.bit = {s: 1 << i for i, s in enumerate(names)}
        big = len(names) > 63
        self.dtype = object if big else np.uint64
        self.masks, self.rates, self.ids, self.size = [], [], [], []
        for d in range(n_demands):
            ids = table.by_demand[d]
            m = [sum(self.bit[r] for r in table.entries[i].reps) for i in ids]
            self.masks.append(np.array(m, dtype=self.dtype))
            self.rates.append(np.array([table.entries[i].rate for i in ids], float))
            self.ids.append(np.array(ids, int))
            self.size.append(np.array([len(table.entries[i].reps) for i in ids], int))
        self.full = (1 << len(names)) - 1

    def _mask(self, R: int):
        return self.dtype(R) if self.dtype is np.uint64 else R

    def choose(self, R: int) -> list[int]:
        """Index (into the table) of each demand's best entry under set ``R``."""
        out = []
        notR = self._mask(self.full & ~R)
        for d in range(len(self.masks)):
            ok = (self.masks[d] & notR) == 0
            r = np.where(ok, self.rates[d], -1.0)
            k = int(np.argmax(r)) if r.size else -1
            out.append(int(self.ids[d][k]) if k >= 0 and r[k] >= 0 else -1)
        return out

    def shares(self, chosen: list[int]) -> np.ndarray:
        """Time share of every demand (1 with dedicated memories)."""
        return time_shares([self.table.entries[i].reps if i >= 0 else () for i in chosen]) \
            if self.sharing == "time" else np.ones(len(chosen))

    def demand_rates(self, R: int) -> np.ndarray:
        """Rate of every demand under ``R`` (0 for a demand with no usable chain)."""
        chosen = self.choose(R)
        return np.array([self.table.entries[i].rate if i >= 0 else 0.0 for i in chosen]) * self.shares(chosen)

    def key(self, rates: np.ndarray) -> tuple:
        a, b = float(np.min(rates)), float(np.sum(rates))
        return (a, b) if self.objective == "min" else (b, a)

    def value(self, R: int) -> tuple:
        return self.key(self.demand_rates(R))

    def values_many(self, Rs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Objective pairs of many sets at once (dedicated memories; ``Rs`` uint64 masks)."""
        notR = (~Rs) & np.uint64(self.full)
        per = np.stack([np.where((self.masks[d][None, :] & notR[:, None]) == 0, self.rates[d][None, :], -1.0)
                        .max(axis=1, initial=-1.0) for d in range(len(self.masks))], axis=1)
        a, b = per.min(axis=1), per.sum(axis=1)
        return (a, b) if self.objective == "min" else (b, a)

    def bound(self, I: int, X: int, r: int) -> tuple:
        """Upper bound on the objective of every set ``R ⊇ I``, ``R ∩ X = ∅``, ``|R \\ I| <= r``."""
        ub = []
        Xm, notI = self._mask(X), self._mask(self.full & ~I)
        for d in range(len(self.masks)):
            m = self.masks[d]
            extra = np.array([bin(int(x)).count("1") for x in (m & notI)]) if self.dtype is object \
                else np.bitwise_count(m & notI)
            ok = ((m & Xm) == 0) & (extra <= r)
            ub.append(self.rates[d][ok].max(initial=0.0))
        return self.key(np.array(ub))

    def names(self, R: int) -> tuple:
        return tuple(s for s in self.sites if R & self.bit[s])


def time_shares(reps_per_demand: list) -> np.ndarray:
    """Time-sharing of repeater sites (one memory pair per site): demands whose chains use a
    common repeater site conflict; the conflict graph is coloured greedily (largest degree
    first) and every connected component runs its colour classes in turn, each for an equal
    share of the time. A demand's rate is its chain's rate times ``1 / (colours used in its
    component)``. Slots are assumed long against the delivery time (pairs lost at a slot
    boundary are neglected)."""
    n = len(reps_per_demand)
    g = nx.Graph()
    g.add_nodes_from(range(n))
    for i, j in itertools.combinations(range(n), 2):
        if set(reps_per_demand[i]) & set(reps_per_demand[j]):
            g.add_edge(i, j)
    colour = nx.greedy_color(g, strategy="largest_first")
    share = np.ones(n)
    for comp in nx.connected_components(g):
        share[list(comp)] = 1.0 / len({colour[i] for i in comp})
    return share


def _greedy(p: Pricer, budget: int) -> int:
    R = 0
    for _ in range(min(budget, len(p.sites))):
        best, best_v = None, p.value(R)
        for s in p.sites:
            if not R & p.bit[s]:
                v = p.value(R | p.bit[s])
                if v > best_v:
                    best, best_v = s, v
        if best is None:
            break
        R |= p.bit[best]
    return R


def search(p: Pricer, budget: int, *, exhaustive_limit: int = 200000, node_limit: int = 100000,
           time_limit_s: float = 300.0, floor: tuple | None = None) -> SearchOutcome:
    """Best repeater set of at most ``budget`` sites (see the module docstring). ``floor``: stop
    as soon as a set reaching this objective is found (used by target mode)."""
    n = len(p.sites)
    b = min(budget, n)
    monotone = p.sharing == "dedicated"
    sizes = [b] if monotone else range(b + 1)
    count = sum(math.comb(n, k) for k in sizes)
    if count <= exhaustive_limit and monotone and p.dtype is np.uint64:
        best_R, best_v = 0, p.value(0)
        combos = itertools.combinations(range(n), b)
        while True:
            chunk = list(itertools.islice(combos, 4096))
            if not chunk:
                break
            Rs = np.array([sum(1 << i for i in c) for c in chunk], dtype=np.uint64)
            v1, v2 = p.values_many(Rs)
            k = int(np.lexsort((v2, v1))[-1])
            if (v1[k], v2[k]) > best_v:
                best_R = int(Rs[k])
                best_v = p.value(best_R)
        return SearchOutcome(p.names(_prune(p, best_R)), best_v, True, best_v, "exhaustive", count)
    if count <= exhaustive_limit:
        best_R, best_v = 0, p.value(0)
        for k in sizes:
            for combo in itertools.combinations(range(n), k):
                R = sum(1 << i for i in combo)
                v = p.value(R)
                if v > best_v:
                    best_R, best_v = R, v
        return SearchOutcome(p.names(_prune(p, best_R)), best_v, True, best_v, "exhaustive", count)
    # branch and bound
    t0 = time.perf_counter()
    inc = _greedy(p, b)
    inc_v = p.value(inc)
    order = sorted(range(n), key=lambda i: -sum(p.rates[d][(p.masks[d] & p._mask(1 << i)) != 0].max(initial=0)
                                                for d in range(len(p.masks))))
    stack = [(0, 0, 0, b)]
    nodes = 0
    while stack:
        if nodes >= node_limit or time.perf_counter() - t0 > time_limit_s or (floor and inc_v >= floor):
            break
        I, X, k, r = stack.pop()
        nodes += 1
        ub = p.bound(I, X, r)
        if ub <= inc_v:
            continue
        if r == 0 or k == n:
            v = p.value(I)
            if v > inc_v:
                inc, inc_v = I, v
            continue
        s = 1 << order[k]
        stack.append((I, X | s, k + 1, r))  # exclude (explored second)
        stack.append((I | s, X, k + 1, r - 1))  # include first
    done = not stack
    bound = inc_v if done else max([inc_v] + [p.bound(I, X, r) for I, X, _, r in stack])
    return SearchOutcome(p.names(_prune(p, inc)), inc_v, done, bound, "branch-and-bound", nodes)


def _prune(p: Pricer, R: int) -> int:
    """Keep only the sites some demand's chosen chain uses (unused sites are not built)."""
    used = 0
    for i in p.choose(R):
        for r in (p.table.entries[i].reps if i >= 0 else ()):
            used |= p.bit[r]
    return used if p.value(used) >= p.value(R) else R


__all__ = ["Pricer", "SearchOutcome", "search", "time_shares"]
