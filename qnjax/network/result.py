"""Typed results of :func:`qnjax.plan` and their JSON form."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class DemandPlan:
    """The plan of one demand.

    Attributes:
        pair: the two end nodes.
        path: the fiber route (node names, end to end).
        repeaters: repeater sites this chain uses, in route order.
        segments_km: fiber length of every segment (km).
        protocol: the tree in text form (``S`` swap, ``D`` distill, ``Li`` link over segment ``i``;
            :func:`qnjax.protocol.format_tree`).
        cutoff_s: memory cut-off of every internal node in post-order (s); ``inf``: none.
        cutoff_steps: the same in clock steps (integers or ``inf``).
        clock_s: duration of one step, the longest elementary-link attempt (s).
        skr_bits_per_s: BB84 secret-key rate (bits/s), times ``time_share``.
        plob_bits_per_s: PLOB repeaterless bound of the whole route at the chain's attempt
            rate, ``−log2(1 − η(route)) · modes · memories / clock_s`` (pure fiber loss; one
            channel use per mode and memory per clock step).
        time_share: fraction of time the chain runs (1 with dedicated memories).
        coverage: truncation coverage of the exact evaluation.
    """

    pair: tuple
    path: tuple
    repeaters: tuple
    segments_km: tuple
    protocol: str
    cutoff_s: tuple
    cutoff_steps: tuple
    clock_s: float
    skr_bits_per_s: float
    plob_bits_per_s: float
    time_share: float = 1.0
    coverage: float = 1.0

    def to_json(self, sharing: str = "dedicated") -> dict:
        d = dict(pair=list(self.pair), path=list(self.path), repeaters=list(self.repeaters),
                 segments_km=list(self.segments_km), protocol=self.protocol,
                 cutoff_s=[None if math.isinf(c) else c for c in self.cutoff_s],
                 skr_bits_per_s=self.skr_bits_per_s, plob_bits_per_s=self.plob_bits_per_s)
        if sharing == "time":
            d["time_share"] = self.time_share
        return d


@dataclass(frozen=True)
class NetworkPlan:
    """Result of :func:`qnjax.plan`.

    Attributes:
        repeaters: repeater sites to build (node names, sorted).
        objective: ``"min"`` (max-min key rate), ``"sum"``, or ``"target"`` (fewest sites with
            every demand at ``target`` bits/s).
        demands: one :class:`DemandPlan` per demand, in the order given.
        wall_s: wall-clock time of the whole plan (s).
        optimal: whether the repeater set is proven optimal for the candidate table.
        bound: certified upper bound on the objective over the candidate table (bits/s;
            the max-min or the sum).
        method: ``"exhaustive"`` or ``"branch-and-bound"``.
        sharing: ``"dedicated"`` or ``"time"``.
        budget: the site budget searched (``None`` in target mode before it is found).
        target: the target rate (bits/s) or ``None``.
        chains_evaluated: chain evaluations by the exact engine (entries × shapes × cut-offs).
    """

    repeaters: tuple
    objective: str
    demands: tuple
    wall_s: float
    optimal: bool
    bound: float
    method: str
    sharing: str
    budget: int | None
    target: float | None
    chains_evaluated: int

    @property
    def min_rate(self) -> float:
        return min(d.skr_bits_per_s for d in self.demands)

    @property
    def sum_rate(self) -> float:
        return sum(d.skr_bits_per_s for d in self.demands)

    def to_json(self) -> dict:
        """The JSON object of ``qnjax plan --json``."""
        return dict(repeaters=list(self.repeaters), objective=self.objective, wall_s=self.wall_s,
                    demands=[d.to_json(self.sharing) for d in self.demands],
                    optimal=self.optimal, bound_bits_per_s=self.bound, method=self.method,
                    sharing=self.sharing, budget=self.budget, target=self.target)


__all__ = ["DemandPlan", "NetworkPlan"]
