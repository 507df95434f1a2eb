"""Shared check that a public numeric function works under jit, vmap and grad in float32 and float64."""

import jax
import jax.numpy as jnp
import numpy as np


def _loss(fn):
    def f(*args):
        tot = 0.0
        for x in jax.tree_util.tree_leaves(fn(*args)):
            if jnp.iscomplexobj(x):
                tot = tot + jnp.sum(jnp.real(x)) + jnp.sum(jnp.imag(x))
            elif jnp.issubdtype(x.dtype, jnp.floating):
                tot = tot + jnp.sum(x)
        return tot
    return f


def _np_loss(out):
    return sum(np.sum(np.real(x)) + np.sum(np.imag(x)) for x in jax.tree_util.tree_leaves(out)
               if np.asarray(x).dtype != np.bool_)


def check_transforms(fn, args, grad=True, fd=True):
    """Every public numeric function, in float64 and float32 (float32 in, float32 or
    complex64 out): ``jit(vmap(fn))`` agrees with the un-transformed batched call
    (``vmap`` over the leading batch axis equals broadcasting); ``jit(grad)`` of the
    summed output is finite and, in float64, agrees with central finite differences of
    the un-transformed function along a fixed random direction. ``args`` are float64
    arrays with a leading batch axis of 3 (boundary values welcome)."""
    argnums = tuple(range(len(args)))
    grad64 = None
    for dtype in (jnp.float64, jnp.float32):
        a = tuple(jnp.asarray(x, dtype) for x in args)
        f32 = dtype == jnp.float32
        tol = dict(rtol=1e-5, atol=1e-6) if f32 else dict(rtol=1e-12, atol=1e-13)
        cdt = jnp.complex64 if f32 else jnp.complex128
        out = fn(*a)  # un-transformed
        both = jax.jit(lambda *a: (jax.vmap(fn)(*a),
                                   jax.grad(_loss(fn), argnums)(*a) if grad else None))
        vm, g = both(*a)
        for leaf in jax.tree_util.tree_leaves((out, vm)):
            assert leaf.dtype in (dtype, cdt, jnp.bool_), (fn, leaf.dtype, dtype)
        same = lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), **tol)
        jax.tree_util.tree_map(same, vm, out)
        if not grad:
            continue
        for gi in g:
            assert gi.dtype == dtype and np.all(np.isfinite(gi)), (fn, gi)
        if not f32:
            grad64 = g
            if fd:
                rng = np.random.default_rng(0)
                v = [rng.normal(size=np.shape(x)) for x in args]
                h = 1e-6
                # evaluated with the compiled batch function (no boundary validation, so
                # the step may leave the domain by h); jit == un-transformed is checked above
                lp = _np_loss(both(*(x + h * vi for x, vi in zip(a, v)))[0])
                lm = _np_loss(both(*(x - h * vi for x, vi in zip(a, v)))[0])
                dd = sum(np.sum(np.asarray(gi) * vi) for gi, vi in zip(g, v))
                np.testing.assert_allclose((lp - lm) / (2 * h), dd, rtol=1e-5, atol=1e-6)
        else:
            for gi, g64 in zip(g, grad64):
                np.testing.assert_allclose(gi, g64, rtol=1e-3, atol=1e-4)
