"""A :class:`qnjax.Chain` as the inputs of the swap-asap policy.

Swap-asap keeps the chain's hardware and replaces its protocol by the policy: every station
swaps as soon as it holds both links, whatever the tree shape says. The mapping is exact
where the two descriptions share a parameter; otherwise it refuses with a ``ValueError``:

* segments: ``n`` segments give ``n + 1`` nodes; ``p_gen`` and ``w0`` / ``lam0`` keep
  their per-segment values;
* ``p_swap``: a level chain's value applies at every station; a tree's value at a swap
  node applies at the station that node joins (the node between its left and right
  sub-chains);
* memory decay: one ``t_coh`` for the whole chain (a level chain's, or a tree's if every
  node has the same). A tree's per-node ``t_coh`` describes a waiting *pair* and per-side
  ``rates`` have no per-qubit counterpart, so both are refused;
* ``cutoff``: swap-asap discards a link once its age reaches one cut-off per design, so
  the chain's cut-offs must all be equal (or absent);
* distillation and ``bsm_noise`` are outside the policy.
"""

from __future__ import annotations

import numpy as np

from ..protocol import Distill, Link, Swap, internal_nodes, n_segments


def _join_station(node) -> int:
    """Index of the station a swap node joins: the first segment of its right sub-chain."""
    right = node.right
    while not isinstance(right, Link):
        right = right.left if isinstance(right, Swap) else right.child
    return right.segment


def _same_along_last(x, name: str):
    """The common value of the last axis of ``x`` (per design), or ``ValueError``."""
    a = np.asarray(x, dtype=float)
    if a.shape[-1:] and a.shape[-1] > 0:
        first = a[..., :1]
        same = (a == first) | (np.isinf(a) & np.isinf(first))
        if not np.all(same):
            raise ValueError(f"swap-asap takes one {name} per design; this chain's differ along its nodes")
        return a[..., 0]
    return a


def swap_asap_inputs(chain) -> tuple[int, dict]:
    """``(n_nodes, keywords)`` of :func:`qnjax.simulate_swap_asap` for ``chain``."""
    if chain.bsm_noise is not None:
        raise ValueError("swap-asap has no BSM noise model; drop bsm_noise from the chain")
    if chain.rates is not None:
        raise ValueError("swap-asap takes memory decay per node as t_coh; a chain's per-side rates "
                         "have no per-qubit counterpart")
    kw = {"p_gen": chain.p_gen, "w0": chain.w0, "lam0": chain.lam0}
    if not chain.is_tree:
        if any(level != "swap" for level in chain.protocol):
            raise ValueError("swap-asap has no distillation; the chain's levels must all be 'swap'")
        n = 2 ** len(chain.protocol)
        kw.update(p_swap=chain.p_swap, t_coh=chain.t_coh)
        if chain.cutoff is not None:
            kw["cutoff"] = _same_along_last(chain.cutoff, "cutoff")
        return n + 1, kw
    tree = chain.protocol
    nodes = internal_nodes(tree)
    if any(isinstance(v, Distill) for v in nodes):
        raise ValueError("swap-asap has no distillation; the chain's tree must hold swaps only")
    n = n_segments(tree)
    if nodes:
        ps = np.asarray(chain.p_swap, dtype=float)
        ps = ps if ps.ndim else np.full(len(nodes), float(ps))
        per_node = np.ones(ps.shape[:-1] + (n + 1,))
        for k, v in enumerate(nodes):
            per_node[..., _join_station(v)] = ps[..., k]
        kw["p_swap"] = per_node
        kw["t_coh"] = _same_along_last(chain.t_coh, "t_coh")
        if chain.cutoff is not None:
            kw["cutoff"] = _same_along_last(chain.cutoff, "cutoff")
    return n + 1, kw
