"""Static repeater protocols: binary trees of swap and distill nodes over elementary links.

Protocols are hashable Python data (never traced), shared by the exact engine
(:mod:`qnjax.exact`) and the Monte Carlo engine (:mod:`qnjax.montecarlo`).

Two forms:

* **Levels** — the homogeneous shorthand of Li, Coopmans & Elkouss, IEEE TQE 2,
  4100315 (2021): a bottom-up tuple such as ``("swap", "distill", "swap")`` over
  ``2**(number of swap levels)`` identical segments. Swap levels double the
  distance, distill levels use two copies of the level below. Parameters are
  per level (one cut-off per level).
* **Tree** — any binary tree of :class:`Link`, :class:`Swap` and :class:`Distill`
  nodes over any number of segments, with per-segment and per-node parameters.
  Internal nodes are numbered in post-order (children before parents, left
  before right); per-node parameter arrays carry that index in their last axis.

Stations (repeater nodes) are numbered ``0 .. n_segments``; segment ``i`` joins
stations ``i`` and ``i + 1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Union

LEVEL_NAMES = ("swap", "distill")


@dataclass(frozen=True)
class Link:
    """Elementary link over segment ``segment`` (stations ``segment``, ``segment + 1``).

    Attributes:
        segment: segment index, ``0 .. n_segments − 1`` from the left end node. Per-segment
            parameters of the engines (``p_gen``, ``lam0``) carry this index in their last axis.
    """

    segment: int

    @property
    def span(self) -> tuple[int, int]:
        return (self.segment, self.segment + 1)


@dataclass(frozen=True)
class Swap:
    """Entanglement swap at the station shared by two adjacent sub-chains.

    Attributes:
        left, right: the sub-trees (:class:`Link`, :class:`Swap` or :class:`Distill`); the
            right one must start at the station where the left one ends (else ``ValueError``).
    """

    left: "Node"
    right: "Node"

    def __post_init__(self):
        if self.left.span[1] != self.right.span[0]:
            raise ValueError(
                f"Swap children must be adjacent: left spans stations {self.left.span}, "
                f"right spans {self.right.span}"
            )

    @property
    def span(self) -> tuple[int, int]:
        return (self.left.span[0], self.right.span[1])


@dataclass(frozen=True)
class Distill:
    """Distillation of two independent copies of ``child`` (same stations).

    Attributes:
        child: the sub-tree both copies follow; each copy is generated independently
            (DEJMPS in Bell-diagonal mode, BBPSSW in Werner mode).
    """

    child: "Node"

    @property
    def span(self) -> tuple[int, int]:
        return self.child.span


Node = Union[Link, Swap, Distill]


def parse_levels(levels: Union[str, Iterable[str]]) -> tuple[str, ...]:
    """Normalise a level list: ``"swap,distill,swap"`` or an iterable of names.

    Raises ``ValueError`` naming the bad level.
    """
    if isinstance(levels, str):
        items = [s.strip() for s in levels.split(",") if s.strip()]
    else:
        try:
            items = [str(s).strip() for s in levels]
        except TypeError:
            raise TypeError("protocol must be a level list ('swap,distill,swap'), a tuple of level names or "
                            f"a Link/Swap/Distill tree; got {type(levels).__name__}") from None
    if not items:
        raise ValueError("protocol must have at least one level (swap or distill)")
    for s in items:
        if s not in LEVEL_NAMES:
            raise ValueError(f"protocol: unknown level {s!r}; allowed: {', '.join(LEVEL_NAMES)}")
    return tuple(items)


def levels_segments(levels: tuple[str, ...]) -> int:
    """Number of segments of a level protocol: ``2 ** (number of swap levels)``."""
    return 2 ** sum(1 for s in levels if s == "swap")


def levels_to_tree(levels: Union[str, Iterable[str]]) -> Node:
    """Expand a level list into the explicit tree over ``2**n_swap`` segments.

    ``levels``: ``"swap,distill,swap"`` or an iterable of ``"swap"`` / ``"distill"``,
    bottom-up (Li, Coopmans & Elkouss, IEEE TQE 2, 4100315 (2021)). Example:
    ``levels_to_tree("swap,swap")`` is ``Swap(Swap(Link(0), Link(1)), Swap(Link(2), Link(3)))``.
    """
    levels = parse_levels(levels)
    nodes: list[Node] = [Link(i) for i in range(levels_segments(levels))]
    for lv in levels:
        if lv == "swap":
            nodes = [Swap(nodes[2 * i], nodes[2 * i + 1]) for i in range(len(nodes) // 2)]
        else:
            nodes = [Distill(n) for n in nodes]
    assert len(nodes) == 1
    return nodes[0]


def n_segments(tree: Node) -> int:
    s = tree.span
    return s[1] - s[0]


def internal_nodes(tree: Node) -> tuple[Node, ...]:
    """Internal (swap / distill) nodes in post-order; their position is the node index."""
    out: list[Node] = []

    def visit(n: Node):
        if isinstance(n, Swap):
            visit(n.left)
            visit(n.right)
            out.append(n)
        elif isinstance(n, Distill):
            visit(n.child)
            out.append(n)

    visit(tree)
    return tuple(out)


def tree_depth(tree: Node) -> int:
    """Number of node operations on the longest root-to-leaf path (0 for a link)."""
    if isinstance(tree, Link):
        return 0
    if isinstance(tree, Swap):
        return 1 + max(tree_depth(tree.left), tree_depth(tree.right))
    return 1 + tree_depth(tree.child)


def validate_tree(tree: Node) -> Node:
    """Check that a tree's links cover segments ``0 .. n-1`` exactly once (per copy)."""
    if not isinstance(tree, (Link, Swap, Distill)):
        raise TypeError(f"protocol must be a Link/Swap/Distill tree or a level list; got {type(tree).__name__}")
    lo, hi = tree.span
    if lo != 0:
        raise ValueError(f"protocol tree must start at station 0; it spans stations {tree.span}")
    return tree


def swap_asap_tree(n_segments_: int) -> Node:
    """A balanced swap tree over ``n_segments_ >= 1`` segments (left-heavy split).

    Example: 3 segments give ``Swap(Swap(Link(0), Link(1)), Link(2))``; one segment gives
    ``Link(0)``. The physical-scenario optimizer builds its chains from this tree.
    """
    if n_segments_ < 1:
        raise ValueError(f"n_segments must be >= 1; got {n_segments_}")

    def build(lo: int, hi: int) -> Node:
        if hi - lo == 1:
            return Link(lo)
        mid = lo + (hi - lo + 1) // 2
        return Swap(build(lo, mid), build(mid, hi))

    return build(0, n_segments_)


def format_tree(tree: Node) -> str:
    """Compact text form, e.g. ``S(S(L0,L1),D(L2))``."""
    if isinstance(tree, Link):
        return f"L{tree.segment}"
    if isinstance(tree, Swap):
        return f"S({format_tree(tree.left)},{format_tree(tree.right)})"
    return f"D({format_tree(tree.child)})"
