"""Every level protocol up to a depth in one compiled program (issue 11: compile once per
shape class).

A level protocol is a sequence of ``swap`` / ``distill`` levels over identical copies of the
level below (:func:`qnjax.delivery` with a level list). Here the sequence is *data*: the
operation of level ``i`` is an integer code (0 skip, 1 swap, 2 distill) and the non-root
levels run in a :func:`jax.lax.scan` over one node operation whose only operation-specific
part, the bilinear swap / distill map, is a :func:`jax.lax.cond` on that code (one scalar
shared by the whole batch, so a real branch, not a select computing both); a skip is a
second ``cond``. A protocol of ``L <= depth`` levels is left-padded with skips: the leaf
passes unchanged through them. The root level, which sums its renewal causally, follows the
scan. The program therefore holds two node operations (one inner, one root) whatever the
protocol, and every protocol of at most ``depth``
levels at one truncation, batch and dtype reuses it: an optimizer that compares protocols
(distill placements) or answers several questions compiles once.

The node operations are the exact engine's (:func:`.kernels.combine`), so the figures are
those of :func:`qnjax.delivery` at the same truncation up to rounding and the sub-protocols'
truncation deficit ``1 − attempt_coverage`` (the internal length is ``t_trunc + depth + 1``
instead of ``t_trunc + L + 1``, so the attempt decomposition sums a few more steps).
"""

from __future__ import annotations

from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np

from .. import _truncation as TR
from ..protocol import parse_levels
from .kernels import combine, leaf, node_deficit
from .plan import Plan

SKIP, SWAP, DISTILL = 0, 1, 2
CODES = {"swap": SWAP, "distill": DISTILL}


def padded_plan(depth: int, werner: bool, t_trunc: int, figures_only: bool = False) -> Plan:
    """The static plan of the depth-``depth`` padded program (levels are placeholders; the
    operations come from ``params["ops"]``); ``figures_only``: the root's pmf is not formed,
    only its sum (:func:`.kernels.root_coverage`)."""
    n_int = t_trunc + depth + 1
    return Plan(("pad",) * depth, None, werner, t_trunc, n_int, TR.fast_len(2 * n_int), padded=True,
                figures_only=figures_only)


def op_codes(levels, depth: int) -> np.ndarray:
    """``(depth,)`` int32 codes of a level protocol, left-padded with :data:`SKIP`."""
    levels = parse_levels(levels)
    if len(levels) > depth:
        raise ValueError(f"a protocol of {len(levels)} levels does not fit the padded depth {depth}")
    return np.array([SKIP] * (depth - len(levels)) + [CODES[lv] for lv in levels], np.int32)


def evaluate_padded(plan: Plan, params: dict):
    """Root Λ, the root's last attempt and the largest sub-protocol deficit (the return of
    :func:`.summary.evaluate`) for flattened ``(B,)`` parameters with ``params["ops"]``
    ``(B, depth)`` codes (row 0 is used: one protocol per call) and ``params["cutoff"]``
    ``(B, depth)`` (entries of skipped levels are ignored)."""
    depth = len(plan.levels)
    ops = params["ops"][0]
    cut = params["cutoff"]
    rates, p_swap, bsm = params["rates"], params["p_swap"], params["bsm"]
    lam, spec = leaf(plan, params["p_gen"], params["s0"])
    deficit = TR.leaf_deficit(params["p_gen"], plan.n_out)

    def level(carry, i):
        la, fa, dfc = carry
        out, fout, _, _ = combine(plan, ops[i], la, fa, None, None, jnp.take(cut, i, axis=1), rates, rates,
                                  p_swap, bsm, same=True)
        return out, fout, jnp.maximum(dfc, node_deficit(plan, out))

    def body(carry, i):
        return jax.lax.cond(ops[i] == SKIP, lambda c, i: c, level, carry, i), None

    if depth > 1:
        (lam, spec, deficit), _ = jax.lax.scan(body, (lam, spec, deficit), jnp.arange(depth - 1))
    lam, _, ls, f = combine(plan, ops[depth - 1], lam, spec, None, None, cut[:, depth - 1], rates, rates,
                            p_swap, bsm, same=True, root=True)
    return lam, ls, f, deficit


@partial(jax.jit, static_argnums=(0, 1))
def _run(plan: Plan, chunk: int, p_gen, w0, p_swap, t_coh, cut, codes):
    """The padded program on ``(B,)`` Werner parameters, ``(B, depth)`` cut-offs and the
    ``(depth,)`` operation codes (every array built here, in the program, not per call)."""
    from .summary import run

    B = p_gen.shape[0]
    r = 1 / t_coh
    params = {
        "p_gen": p_gen,
        "s0": jnp.stack([jnp.ones_like(p_gen), w0], -1),
        "p_swap": p_swap,
        "rates": jnp.stack([jnp.zeros_like(r), r], -1),
        "cutoff": cut,
        "bsm": jnp.ones((B, 2), p_gen.dtype),
        "invalid": jnp.zeros((B,), bool),
        "ops": jnp.broadcast_to(codes, (B, codes.shape[0])),  # rows follow lax.map's chunks
    }
    return run(plan, params, chunk)


FIGURES = ("coverage", "mean_time", "mean_werner", "mean_fidelity", "key_fraction", "key_fraction_smooth",
           "secret_key_rate", "secret_key_rate_smooth", "success_probability", "attempt_coverage", "status")
"""The per-design figures :func:`figures_padded` returns (every scalar field of the exact
engine's result; ``mean_state`` and the time arrays are left out)."""


@partial(jax.jit, static_argnums=(0, 1))
def _run_figures(plan: Plan, chunk: int, *args):
    """:func:`_run`'s :data:`FIGURES` stacked into one ``(len(FIGURES), B)`` array (status as
    a float, exact) under a ``figures_only`` plan: one transfer to the host per call instead
    of one per field, and the root's coverage as one sum instead of its pmf."""
    r = _run(plan, chunk, *args)
    dt = r.mean_time.dtype
    return jnp.stack([getattr(r, k).astype(dt) for k in FIGURES])


@lru_cache(maxsize=256)
def _setup(depth: int, t_trunc: int, B: int, itemsize: int, chunk_bytes, max_memory, figures_only=False):
    """``(plan, chunk)`` of the padded program for ``B`` designs, after the memory check
    (raises ``ValueError`` above the limit; a refusal is not cached). Host work done once per
    shape: an optimizer calls the program hundreds of times with the same one."""
    from .api import DEFAULT_CHUNK_BYTES, DEFAULT_CHUNK_BYTES_ACCEL, chunk_and_bytes

    plan = padded_plan(depth, True, t_trunc, figures_only)
    if chunk_bytes is None:
        chunk_bytes = DEFAULT_CHUNK_BYTES if jax.default_backend() == "cpu" else DEFAULT_CHUNK_BYTES_ACCEL
    chunk, need = chunk_and_bytes(plan, B, depth, itemsize, chunk_bytes)
    TR.check_memory(need, TR.default_max_memory() if max_memory is None else float(max_memory),
                    f"the padded level program at t_trunc={t_trunc} for {B} design(s)",
                    "lower t_trunc (or the batch) or raise max_memory")
    return plan, chunk


def _arguments(levels, depth: int, p_gen, w0, p_swap, t_coh, cutoff):
    """The program's arguments: dtype, ``(B, depth)`` cut-offs (skipped levels ``inf``) and
    codes. NumPy arrays: jit's own transfer is cheaper than one ``jnp.asarray`` per array
    (about 0.5 ms of a 2-3 ms call on a CPU at t_trunc 256)."""
    codes = op_codes(levels, depth)
    L = int(np.sum(codes != SKIP))
    dt = jnp.result_type(p_gen)
    B = np.shape(p_gen)[0]
    cut = np.concatenate([np.full((B, depth - L), np.inf), np.asarray(cutoff, float).reshape(B, L)], axis=1)
    arr = lambda x: x.astype(dt) if isinstance(x, jax.Array) else np.asarray(x, dt)
    return dt, B, (arr(p_gen), arr(w0), arr(p_swap), arr(t_coh), np.asarray(cut, dt), codes)


def delivery_padded(levels, depth: int, *, p_gen, w0, p_swap, t_coh, cutoff, t_trunc: int,
                    chunk_bytes: int | None = None, max_memory: float | None = None):
    """Figures of a Werner level protocol (``levels``, at most ``depth`` levels) for a flat
    batch of designs: ``p_gen``, ``w0``, ``p_swap``, ``t_coh`` ``(B,)`` and ``cutoff``
    ``(B, L)``, at truncation ``t_trunc``; a :class:`.result.DeliveryResult` of batch ``(B,)``.

    The inputs must be valid (the callers are optimizers that built them; no host checks):
    ``p_gen``, ``p_swap`` in (0, 1], ``w0`` in [−1/3, 1], ``t_coh > 0``, ``cutoff >= 0``.
    The memory the call needs is estimated as for :func:`qnjax.delivery` and refused
    (``ValueError``) above ``max_memory`` (default: half the physical memory on CPU) before
    anything is allocated. One compiled program per ``(depth, t_trunc, B, dtype)`` serves
    every protocol."""
    dt, B, args = _arguments(levels, depth, p_gen, w0, p_swap, t_coh, cutoff)
    plan, chunk = _setup(depth, int(t_trunc), B, np.dtype(dt).itemsize, chunk_bytes, max_memory)
    return _run(plan, chunk, *args)


def figures_padded(levels, depth: int, *, p_gen, w0, p_swap, t_coh, cutoff, t_trunc: int,
                   chunk_bytes: int | None = None, max_memory: float | None = None) -> dict:
    """:func:`delivery_padded`'s :data:`FIGURES` as NumPy arrays ``(B,)`` (``status``
    ``int32``), from one compiled program per ``(depth, t_trunc, B, dtype)`` and one transfer:
    what an optimizer's inner loop needs, with less host work per call. The root's pmf is
    never formed (:func:`.kernels.root_coverage` sums it in one product), so ``coverage``
    agrees with :func:`delivery_padded`'s to rounding, and the check that flags a pmf entry
    below ``−slack`` as unphysical is made on the two densities the pmf is the convolution of
    (the successful attempt's and the renewal's)."""
    dt, B, args = _arguments(levels, depth, p_gen, w0, p_swap, t_coh, cutoff)
    plan, chunk = _setup(depth, int(t_trunc), B, np.dtype(dt).itemsize, chunk_bytes, max_memory, True)
    out = dict(zip(FIGURES, np.asarray(_run_figures(plan, chunk, *args))))
    out["status"] = out["status"].astype(np.int32)
    return out
