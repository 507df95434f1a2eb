"""Tree shapes of a candidate chain: every binary swap tree over ``n`` segments (Catalan(n − 1)
shapes), optionally with one DEJMPS round on every elementary link; the protocol text
format and its parser; the depth and per-level node counts the padded programs need."""

from __future__ import annotations

from functools import lru_cache

from ..protocol import Distill, Link, Node, Swap, format_tree, n_segments
from .load import NetworkError


@lru_cache(maxsize=None)
def swap_shapes(lo: int, hi: int) -> tuple[Node, ...]:
    """Every binary swap tree over segments ``lo .. hi − 1``."""
    if hi - lo == 1:
        return (Link(lo),)
    return tuple(Swap(a, b) for mid in range(lo + 1, hi)
                 for a in swap_shapes(lo, mid) for b in swap_shapes(mid, hi))


def with_link_distill(tree: Node) -> Node:
    """The same tree with one distillation round on every elementary link."""
    if isinstance(tree, Link):
        return Distill(tree)
    if isinstance(tree, Swap):
        return Swap(with_link_distill(tree.left), with_link_distill(tree.right))
    return Distill(with_link_distill(tree.child))


def tree_shapes(n: int, distill: bool = False) -> tuple[Node, ...]:
    """Candidate protocols over ``n`` segments: all swap trees, and with ``distill`` also each
    with one round on every elementary link."""
    base = swap_shapes(0, n)
    return base + tuple(with_link_distill(t) for t in base) if distill else base


def parse_tree(text: str) -> Node:
    """Inverse of :func:`qnjax.protocol.format_tree`: ``"S(S(L0,L1),D(L2))"`` → tree."""
    s = text.replace(" ", "")
    pos = 0

    def node() -> Node:
        nonlocal pos
        if s.startswith("L", pos):
            end = pos + 1
            while end < len(s) and s[end].isdigit():
                end += 1
            if end == pos + 1:
                raise ValueError(f"protocol {text!r}: L needs a segment number at {pos}")
            seg, pos = int(s[pos + 1:end]), end
            return Link(seg)
        for tag in ("S(", "D("):
            if s.startswith(tag, pos):
                pos += 2
                a = node()
                if tag == "S(":
                    if not s.startswith(",", pos):
                        raise ValueError(f"protocol {text!r}: expected ',' at {pos}")
                    pos += 1
                    b = node()
                if not s.startswith(")", pos):
                    raise ValueError(f"protocol {text!r}: expected ')' at {pos}")
                pos += 1
                return Swap(a, b) if tag == "S(" else Distill(a)
        raise ValueError(f"protocol {text!r}: unexpected text at {pos}")

    tree = node()
    if pos != len(s):
        raise ValueError(f"protocol {text!r}: trailing text at {pos}")
    return tree



def check_tree(tree: Node, n: int) -> None:
    if n_segments(tree) != n or tree.span[0] != 0:
        raise NetworkError(f"protocol {format_tree(tree)} does not cover {n} segments")



def swap_depth(tree: Node) -> int | None:
    """Depth of a pure swap tree, ``None`` when it holds a distillation node."""
    if isinstance(tree, Link):
        return 0
    if isinstance(tree, Swap):
        a, b = swap_depth(tree.left), swap_depth(tree.right)
        return None if a is None or b is None else 1 + max(a, b)
    return None


def level_counts(tree: Node) -> tuple[int, ...]:
    """Swap nodes of a pure swap tree per level of its complete tree, bottom first: a node
    sits at the level of its depth below the root counted from the leaves of the complete
    tree (``swap_depth(tree) − distance from the root``), as in the padded layout."""
    d = swap_depth(tree)
    counts = [0] * d

    def rec(v, h):  # h: level of v (d at the root)
        if isinstance(v, Swap):
            counts[h - 1] += 1
            rec(v.left, h - 1)
            rec(v.right, h - 1)
    rec(tree, d)
    return tuple(counts)


@lru_cache(maxsize=None)
def level_widths(depth: int, n: int) -> tuple[int, ...]:
    """Node operations per level of the padded program that serves the swap trees of
    ``depth`` over ``n`` segments: the largest count at each level over those shapes when
    that at most halves the complete tree's ``2**depth − 1`` operations (a caterpillar over
    4 segments: ``(1, 1, 1)``, 3 instead of 7), else every slot (``(2, 1)`` for 3 segments
    too, whose own ``(1, 1)`` would save a third of little work at the price of a compiled
    program more)."""
    full = tuple(2 ** (depth - h - 1) for h in range(depth))
    shapes = [level_counts(t) for t in swap_shapes(0, n) if swap_depth(t) == depth]
    if not shapes:
        return full
    w = tuple(max(c[h] for c in shapes) for h in range(depth))
    return w if 2 * sum(w) <= sum(full) else full


__all__ = ["swap_shapes", "with_link_distill", "tree_shapes", "parse_tree", "check_tree", "swap_depth",
           "level_counts", "level_widths"]
