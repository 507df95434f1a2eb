"""Static plan of one exact-engine evaluation: hashable structure, never traced."""

from __future__ import annotations

from dataclasses import dataclass

from .. import _truncation as TR
from ..protocol import Node, tree_depth


@dataclass(frozen=True)
class Plan:
    """Hashable static structure of one evaluation."""

    levels: tuple | None  # level names, or None for a tree
    tree: Node | None
    werner: bool
    n_out: int  # t_trunc
    n_int: int  # internal length (t_trunc + depth + 1)
    fft_len: int
    padded: bool = False  # levels are placeholders; the operations are data (padded_levels)
    figures_only: bool = False  # the root's pmf is not formed: only its sum (the coverage)

    @property
    def comps(self) -> int:
        return 2 if self.werner else 4


def make_plan(levels, tree, werner, t_trunc) -> Plan:
    depth = len(levels) if levels is not None else tree_depth(tree)
    n_int = t_trunc + depth + 1
    return Plan(levels, tree, werner, t_trunc, n_int, TR.fast_len(2 * n_int))
