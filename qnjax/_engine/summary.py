"""Evaluation of a plan (levels or tree) and the summary of the root: pmf, means (Wald's
attempt decomposition), key figures, ``status`` bits; chunked over designs."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .. import _truncation as TR
from .._conventions import walsh_matrix
from ..keyrate import key_fraction_bb84, key_fraction_bb84_smooth
from ..protocol import Link, Swap, internal_nodes
from .kernels import combine, leaf, node_deficit, psum
from .plan import Plan
from .result import DeliveryResult


def evaluate(plan: Plan, params: dict):
    """Root Λ, the root's last attempt arrays and the largest truncation deficit of the
    sub-protocols (:func:`node_deficit`), for flattened (B,) parameters."""
    if plan.padded:
        from .padded_levels import evaluate_padded

        return evaluate_padded(plan, params)
    if plan.levels is not None:
        lam, spec = leaf(plan, params["p_gen"], params["s0"])
        deficit = TR.leaf_deficit(params["p_gen"], plan.n_out)
        ls = f = None
        for i, lv in enumerate(plan.levels):
            root = i == len(plan.levels) - 1
            lam, spec, ls, f = combine(
                plan, lv, lam, spec, None, None, params["cutoff"][:, i], params["rates"],
                params["rates"], params["p_swap"], params["bsm"], same=True, root=root,
            )
            if not root:
                deficit = jnp.maximum(deficit, node_deficit(plan, lam))
        return lam, ls, f, deficit

    nodes = internal_nodes(plan.tree)
    index = {id(n): k for k, n in enumerate(nodes)}
    last = {"deficit": jnp.max(TR.leaf_deficit(params["p_gen"], plan.n_out), axis=-1)}

    def rec(node):
        if isinstance(node, Link):
            i = node.segment
            return leaf(plan, params["p_gen"][:, i], params["s0"][:, i])
        k = index[id(node)]
        root = node is plan.tree
        args = (params["cutoff"][:, k], params["rates"][:, k, 0], params["rates"][:, k, 1],
                params["p_swap"][:, k], params["bsm"][:, k])
        if isinstance(node, Swap):
            out = combine(plan, "swap", *rec(node.left), *rec(node.right), *args, same=False, root=root)
        else:
            out = combine(plan, "distill", *rec(node.child), None, None, *args, same=True, root=root)
        last["ls"], last["f"] = out[2], out[3]
        if not root:
            last["deficit"] = jnp.maximum(last["deficit"], node_deficit(plan, out[0]))
        return out[0], out[1]

    lam, _ = rec(plan.tree)
    return lam, last["ls"], last["f"], last["deficit"]


def safe_div(num, den):
    ok = den > 0
    return jnp.where(ok, num / jnp.where(ok, den, 1), 0)


def summarize(plan: Plan, params: dict, lam, ls, f, deficit):
    """Result fields from the root's Λ and last attempt; NaN and ``status`` bits where the
    parameters were invalid, the truncation too short, or a mean unphysical."""
    n = plan.n_out
    dt = ls.dtype
    sl = TR.slack(dt)
    h = walsh_matrix(dt)
    if plan.figures_only:  # lam: the root's coverage and density check (kernels.root_coverage)
        (coverage, pmf_low), pmf, state_t = lam, None, None
    else:
        pmf = lam[:, 0, :n]
        coverage = psum(pmf)
        state_t = (safe_div(lam[:, 1, :n], pmf) if plan.werner
                   else safe_div(jnp.einsum("bct,ck->btk", lam[:, :, :n], h) / 4, pmf[..., None]))
        pmf_low = jnp.any(pmf < -sl, -1)
    t = jnp.arange(plan.n_int, dtype=dt)
    s = ls[:, 0]
    p_succ = psum(s)
    p_ok = p_succ > 0
    p_den = jnp.where(p_ok, p_succ, 1)
    mean_time = psum((s + f) * t) / p_den
    mean_walsh = psum(ls) / p_den[:, None]
    if plan.werner:
        w = mean_walsh[:, 1]
        mean_state = jnp.stack([(1 + 3 * w) / 4] + [(1 - w) / 4] * 3, -1)
    else:
        mean_state = mean_walsh @ h / 4
    # physical ranges: E[T] >= 1 / p_gen of every link (at most one generation per step, Wald)
    t_min = 1 / jnp.min(params["p_gen"].reshape(p_succ.shape[0], -1), axis=-1)
    unphys = (~p_ok | (p_succ > 1 + sl) | (coverage > 1 + sl) | (mean_time < t_min * (1 - sl))
              | jnp.any(mean_state < -sl, -1) | jnp.any(mean_state > 1 + sl, -1) | pmf_low)
    mean_state = jnp.clip(mean_state, 0, 1)
    if plan.werner:
        mean_w = jnp.clip(w, -1 / 3, 1)
    else:
        mean_w = (4 * mean_state[:, 0] - 1) / 3
    kf = key_fraction_bb84(mean_state)
    kfs = key_fraction_bb84_smooth(mean_state)
    mean_time = jnp.maximum(mean_time, t_min)
    invalid = params["invalid"]
    trunc = ~invalid & (deficit > TR.ATTEMPT_DEFICIT_MAX)
    unphys = unphys & ~invalid & ~trunc
    status = (TR.INVALID * invalid + TR.TRUNCATED * trunc + TR.UNPHYSICAL * unphys).astype(jnp.int32)
    bad = status != 0

    def nan(x):
        return jnp.where(bad.reshape(bad.shape + (1,) * (x.ndim - 1)), jnp.nan, x)

    return DeliveryResult(
        pmf=None if pmf is None else nan(jnp.maximum(pmf, 0)),
        state_t=None if state_t is None else nan(state_t), coverage=nan(jnp.clip(coverage, 0, 1)),
        mean_time=nan(mean_time), mean_werner=nan(mean_w), mean_state=nan(mean_state),
        mean_fidelity=nan(mean_state[:, 0]), key_fraction=nan(kf), key_fraction_smooth=nan(kfs),
        secret_key_rate=nan(kf / mean_time), secret_key_rate_smooth=nan(kfs / mean_time),
        success_probability=nan(jnp.clip(p_succ, 0, 1)),
        attempt_coverage=jnp.where(invalid, jnp.nan, 1 - jnp.clip(deficit, 0, 1)), status=status,
    )


def run(plan: Plan, params: dict, chunk: int):
    """Evaluate flattened params (B, ...) in chunks of ``chunk`` designs (lax.map)."""
    nb = params["p_gen"].shape[0]

    def one(p):
        return summarize(plan, p, *evaluate(plan, p))

    if chunk >= nb:
        return one(params)
    n_chunks = -(-nb // chunk)
    chunk = -(-nb // n_chunks)  # balance the chunks: at most n_chunks - 1 padded designs
    pad = n_chunks * chunk - nb
    padded = jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], pad, 0)]) if pad else x, params)
    stacked = jax.tree.map(lambda x: x.reshape((n_chunks, chunk) + x.shape[1:]), padded)
    out = jax.lax.map(one, stacked)
    return jax.tree.map(lambda x: x.reshape((n_chunks * chunk,) + x.shape[2:])[:nb], out)
