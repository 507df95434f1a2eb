"""Host-side dtype checks and the jitted canonicalisation of raw keyword parameters to flat
``(B, ...)`` arrays (Walsh states, decay rates, cut-offs, invalid-design mask) before the run."""

from __future__ import annotations

import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .._conventions import walsh_matrix
from .._validate import bell_problems, outside
from .plan import Plan
from .summary import run


def walsh_from_werner(w):
    return jnp.stack([jnp.ones_like(w), w], axis=-1)


def bsm_walsh(bsm_noise, dtype, werner):
    b = jnp.asarray(bsm_noise, dtype)
    if b.shape[-1:] != (4,):
        raise ValueError(f"bsm_noise must have a last axis of 4 Walsh multipliers; got shape {b.shape}")
    if werner:
        if not isinstance(b, jax.core.Tracer):
            bn = np.asarray(b)
            if not (np.allclose(bn[..., 1], bn[..., 2]) and np.allclose(bn[..., 1], bn[..., 3])):
                raise ValueError("bsm_noise must be depolarizing (equal X, Y, Z multipliers) in Werner mode; "
                                 "pass lam0 for Bell-diagonal states")
        return b[..., :2]
    return b



WARNED: set = set()


def warn_once(cause: str, message: str) -> None:
    """Warn about ``cause`` once per process (the optimizer and sweeps call the engine many
    times; the same cause is not repeated)."""
    if cause in WARNED:
        return
    WARNED.add(cause)
    warnings.warn(message, RuntimeWarning, stacklevel=4)


def check_representable(raw: dict, dtype) -> None:
    """A positive or finite concrete parameter must stay so in the working dtype (p_gen =
    1e-50 is 0 in float32, t_coh = 1e-300 too): refuse instead of computing with 0 or inf."""
    fi = np.finfo(dtype)
    for name, x in raw.items():
        if x is None or isinstance(x, jax.core.Tracer):
            continue
        v = np.asarray(x, np.float64)
        a = np.abs(v)
        with np.errstate(over="ignore", under="ignore"):
            zero = (a > 0) & (np.asarray(v, dtype) == 0)
        if name in ("p_gen", "p_swap", "t_coh") and np.any(zero):
            raise ValueError(f"{name} must be at least {float(fi.tiny):.3g} in {dtype} (smaller values are 0 "
                             f"there); got {fmt_first(v[zero])}"
                             + ("; use float64" if dtype != np.float64 else ""))
        if np.any(np.isfinite(v) & (a > fi.max)):
            raise ValueError(f"{name} must be at most {float(fi.max):.3g} in {dtype}; "
                             f"got {fmt_first(v[np.isfinite(v) & (a > fi.max)])}")


def fmt_first(v) -> str:
    return repr(float(np.ravel(v)[0]))


def item_dims(levels_mode: bool, werner: bool) -> dict:
    """Number of trailing per-item axes of each parameter (levels vs tree mode)."""
    if levels_mode:
        return {"p_gen": 0, "p_swap": 0, "t_coh": 0, "cutoff": 1, "rates": 0 if werner else 1, "bsm": 1,
                "s0": 0 if werner else 1}
    return {"p_gen": 1, "p_swap": 1, "t_coh": 1, "cutoff": 1, "rates": 2 if werner else 3, "bsm": 2,
            "s0": 1 if werner else 2}


@partial(jax.jit, static_argnums=(0, 1, 2, 3, 4, 5))
def prepare_and_run(plan: Plan, chunk: int, batch: tuple, K: int, S, dtype, raw: dict):
    """Canonicalise the raw parameters to flat (B, ...) arrays and evaluate."""
    werner, levels_mode = plan.werner, plan.levels is not None
    C = plan.comps
    item = item_dims(levels_mode, werner)
    nb = int(np.prod(batch)) if batch else 1

    def lift(name):  # promote scalars given for per-item quantities
        x = jnp.asarray(raw[name], dtype)
        n_item = item[name]
        return x if x.ndim >= n_item else x.reshape(x.shape + (1,) * (n_item - x.ndim))

    def flat(x, tail):
        return jnp.broadcast_to(x, batch + tail).reshape((nb,) + tail)

    h = walsh_matrix(dtype)
    s0 = lift("s0")
    s0w = walsh_from_werner(s0) if werner else s0 @ h
    if "rates" in raw:
        rt = lift("rates")
        rt_c = jnp.stack([jnp.zeros_like(rt), rt], -1) if werner else rt.at[..., 0].set(0)
    else:
        r1 = 1 / lift("t_coh")
        if not levels_mode:
            r1 = jnp.broadcast_to(r1, r1.shape[:-1] + (K,))
            r1 = jnp.stack([r1, r1], -1)
        rt_c = jnp.stack([jnp.zeros_like(r1)] + [r1] * (C - 1), -1)
    co = lift("cutoff") if "cutoff" in raw else jnp.full((K,), jnp.inf, dtype)
    seg = () if levels_mode else (S,)
    node = () if levels_mode else (K,)
    bsm = jnp.asarray(raw["bsm"], dtype) if "bsm" in raw else jnp.ones((C,), dtype)
    params = {
        "p_gen": flat(lift("p_gen"), seg),
        "s0": flat(s0w, seg + (C,)),
        "p_swap": flat(lift("p_swap"), node),
        "rates": flat(rt_c, node + ((2,) if not levels_mode else ()) + (C,)),
        "cutoff": flat(co, (K,)),
        "bsm": flat(bsm, node + (C,)),
    }
    # Designs with a parameter that is NaN or out of range (reachable under jit, where the
    # host checks cannot look) give NaN everywhere rather than a number.
    s0_bad = outside(s0, -1 / 3, 1) if werner else jnp.any(jnp.stack(bell_problems(s0)), 0)

    def anybad(x, tail):
        return jnp.any(flat(x, tail).reshape(nb, -1), axis=-1)

    invalid = (anybad(outside(lift("p_gen"), 0, 1, lo_open=True), seg) | anybad(s0_bad, seg)
               | anybad(outside(lift("p_swap"), 0, 1, lo_open=True), node)
               | anybad(outside(rt_c, 0, jnp.inf, hi_open=True), node + ((2,) if not levels_mode else ()) + (C,))
               | anybad(outside(co, 0, jnp.inf), (K,)) | anybad(outside(bsm, -1, 1), node + (C,)))
    params = {k: jnp.where(invalid.reshape((nb,) + (1,) * (v.ndim - 1)), jnp.ones_like(v) if k != "cutoff" else
                           jnp.full_like(v, jnp.inf), v) for k, v in params.items()}
    params["invalid"] = invalid
    res = run(plan, params, chunk)
    return jax.tree.map(lambda x: x.reshape(batch + x.shape[1:]), res)
