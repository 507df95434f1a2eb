"""``Chain``: the parameters of one repeater chain (or a batch of chains) for every engine.

One set of names, ranges and defaults for :func:`qnjax.delivery` (exact) and
:func:`qnjax.simulate_nested` (Monte Carlo): both take ``chain=Chain(...)`` or the same
parameters as keywords, with the same checks and messages:

* ``p_gen``: success probability of one elementary-link attempt, in ``(0, 1]``
  (Monte Carlo counts steps in int32 and refuses ``p_gen < 1e-6`` as a limit of that
  engine, not of the model);
* ``w0`` (Werner mode, distillation BBPSSW) or ``lam0`` (Bell-diagonal mode, DEJMPS);
  neither means perfect links, ``w0 = 1``; both is an error;
* ``p_swap`` in ``(0, 1]`` (default 1); ``t_coh > 0`` in steps (default ``inf``, no
  decay) or instead ``rates >= 0``, decay rates per step of a waiting pair (the old
  Monte Carlo name ``memory_rates`` is deprecated); ``cutoff >= 0`` in steps, ``inf``
  or ``None`` for none; ``bsm_noise`` Walsh multipliers in ``[−1, 1]``
  (:func:`qnjax.bsm_noise_walsh`).

Shapes: level protocols take per-design values (``(...)``; ``lam0`` ``(..., 4)``,
``rates`` ``(...)`` / ``(..., 4)``, ``cutoff`` ``(..., L)``, ``bsm_noise`` ``(..., 4)``);
trees add a trailing axis of one entry per segment (``p_gen``, ``w0``, ``lam0``) or per
internal node in post-order (``p_swap``, ``t_coh``, ``cutoff``, ``bsm_noise``;
``rates`` ``(..., K, 2[, 4])`` for the waiting left / right child). Leading axes are
design batch axes and broadcast like ``jax.numpy``.

:func:`qnjax.simulate_swap_asap` takes ``chain=`` too and runs the chain's hardware
under the swap-asap policy (:mod:`qnjax.montecarlo._asap_chain`); :func:`qnjax.optimize`
takes a level-protocol chain and finds its cut-offs, and every :class:`qnjax.OptimizeResult`
carries its winning design as ``result.chain``. :meth:`Chain.from_scenario` gives the chain
of a physical design (a scenario and the result of :func:`qnjax.optimize`) in clock steps.
"""

from __future__ import annotations

import math
import warnings
from typing import Optional, Union

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._validate import check_bell, check_nonnegative, check_positive, check_probability, check_range
from .protocol import Distill, Link, Node, Swap, internal_nodes, n_segments, parse_levels

PHYSICAL = ("p_gen", "w0", "lam0", "p_swap", "t_coh", "rates", "cutoff", "bsm_noise")
DEPRECATED = {"memory_rates": "rates"}


def _array(x):
    """Converter: ``None`` stays ``None``; anything else becomes a JAX array."""
    return None if x is None else jnp.asarray(x)


def _protocol(p):
    """Converter: a tree stays a tree; a level list becomes a tuple of level names."""
    return p if isinstance(p, (Link, Swap, Distill)) else parse_levels(p)


class Chain(eqx.Module):
    """Per-segment and per-node parameters of a repeater chain (see the module docstring
    for names, units, ranges and shapes). A pytree: ``jit``/``vmap``/``grad`` go through it;
    the protocol is static.

    Build it with :meth:`levels` (identical segments over a level protocol), :meth:`tree`
    (a heterogeneous :class:`~qnjax.protocol.Swap` / ``Distill`` tree) or
    :meth:`from_keywords` (the engines' keyword form, either protocol kind).
    """

    protocol: Union[tuple, Node] = eqx.field(static=True, converter=_protocol)
    p_gen: Float[Array, "*batch"] = eqx.field(converter=_array)
    w0: Optional[Float[Array, "*batch"]] = eqx.field(default=None, converter=_array)
    lam0: Optional[Float[Array, "*batch 4"]] = eqx.field(default=None, converter=_array)
    p_swap: Float[Array, "*batch"] = eqx.field(default=1.0, converter=_array)
    t_coh: Optional[Float[Array, "*batch"]] = eqx.field(default=math.inf, converter=_array)
    rates: Optional[Float[Array, "*batch"]] = eqx.field(default=None, converter=_array)
    cutoff: Optional[Float[Array, "*batch K"]] = eqx.field(default=None, converter=_array)
    bsm_noise: Optional[Float[Array, "*batch 4"]] = eqx.field(default=None, converter=_array)

    def __check_init__(self):
        # Host-side checks of concrete values (skipped for traced ones), with the engines'
        # messages and ranges (qnjax._validate).
        if self.w0 is not None and self.lam0 is not None:
            raise ValueError("give either w0 (Werner mode) or lam0 (Bell-diagonal mode), not both")
        check_probability(self.p_gen, "p_gen", open_low=True)
        check_probability(self.p_swap, "p_swap", open_low=True)
        if self.w0 is not None:
            check_range(self.w0, "w0", -1 / 3, 1.0)
        if self.lam0 is not None:
            check_bell(self.lam0, "lam0")
        if self.t_coh is not None:
            check_positive(self.t_coh, "t_coh")
        if self.rates is not None:
            check_range(self.rates, "rates", 0.0, np.inf, hi_open=True)
        if self.cutoff is not None:
            check_nonnegative(self.cutoff, "cutoff")
        if self.bsm_noise is not None:
            if self.bsm_noise.shape[-1:] != (4,):
                raise ValueError(f"bsm_noise must have a last axis of 4 Walsh multipliers; "
                                 f"got shape {self.bsm_noise.shape}")
            check_range(self.bsm_noise, "bsm_noise", -1.0, 1.0)
        self._check_shapes()

    # ------------------------------------------------------------------ structure

    @property
    def is_tree(self) -> bool:
        """The protocol is a Link/Swap/Distill tree (else a level tuple)."""
        return not isinstance(self.protocol, tuple)

    @property
    def n_segments(self) -> int:
        """Number of elementary segments ``S`` (``2**n_swap`` for level protocols)."""
        if self.is_tree:
            return n_segments(self.protocol)
        return 2 ** sum(lv == "swap" for lv in self.protocol)

    @property
    def n_nodes(self) -> int:
        """Number of cut-off entries ``K``: levels, or internal nodes of a tree."""
        return len(internal_nodes(self.protocol)) if self.is_tree else len(self.protocol)

    @property
    def werner(self) -> bool:
        """Werner mode (``w0``) rather than Bell-diagonal mode (``lam0``)."""
        return self.lam0 is None

    def _check_shapes(self):
        K = self.n_nodes
        if self.is_tree:
            if self.protocol.span[0] != 0:
                raise ValueError(f"protocol tree must start at station 0; it spans {self.protocol.span}")
            if K == 0:
                raise ValueError("protocol tree must have at least one swap or distill node")
            S = self.n_segments
            for name, n, core in (("p_gen", S, 0), ("w0", S, 0), ("lam0", S, 1), ("p_swap", K, 0),
                                  ("t_coh", K, 0), ("bsm_noise", K, 1)):
                x = getattr(self, name)
                if x is None or x.ndim <= core:
                    continue
                if x.shape[x.ndim - core - 1] not in (1, n):
                    what = "segment" if n == S and name in ("p_gen", "w0", "lam0") else "internal node"
                    raise ValueError(f"{name} must have a trailing axis of one entry per {what} ({n}) "
                                     f"or be a single value; got shape {x.shape}")
        if self.cutoff is not None and (self.cutoff.ndim == 0 or self.cutoff.shape[-1] != K):
            what = f"{K} internal nodes" if self.is_tree else f"{K} levels"
            raise ValueError(f"cutoff must have a last axis of one entry per {what} ({K}); "
                             f"got shape {self.cutoff.shape}")
        kw = {k: getattr(self, k) for k in PHYSICAL if getattr(self, k) is not None}
        items = item_dims(not self.is_tree, self.werner)
        shapes = [x.shape[: max(0, x.ndim - items[k])] for k, x in kw.items()]
        try:
            np.broadcast_shapes(*shapes)
        except ValueError:
            raise ValueError(f"parameter batch shapes do not broadcast: "
                             f"{ {k: x.shape for k, x in kw.items()} }") from None

    @property
    def batch_shape(self) -> tuple:
        """Broadcast design batch shape of all parameters."""
        items = item_dims(not self.is_tree, self.werner)
        return tuple(np.broadcast_shapes(*[x.shape[: max(0, x.ndim - items[k])]
                                            for k, x in self.keywords().items() if x is not None]))

    def keywords(self) -> dict:
        """The physical parameters as the engines' keywords (``p_gen=``, ``w0=`` ...)."""
        return {k: getattr(self, k) for k in PHYSICAL}

    # ------------------------------------------------------------------ constructors

    @classmethod
    def levels(cls, protocol, **kw) -> "Chain":
        """A chain of identical segments over a level protocol (``"swap,distill,swap"`` or a
        tuple of names); keywords as in the module docstring, per design."""
        if isinstance(protocol, (Link, Swap, Distill)):
            raise TypeError("Chain.levels takes a level protocol; use Chain.tree for a protocol tree")
        return cls.from_keywords(protocol, **kw)

    @classmethod
    def tree(cls, tree: Node, **kw) -> "Chain":
        """A heterogeneous chain over a :class:`~qnjax.protocol.Swap` / ``Distill`` tree;
        per-segment and per-node values take a trailing axis (module docstring)."""
        if not isinstance(tree, (Link, Swap, Distill)):
            raise TypeError(f"Chain.tree takes a Link/Swap/Distill tree; got {type(tree).__name__} "
                            "(use Chain.levels for a level protocol)")
        return cls.from_keywords(tree, **kw)

    @classmethod
    def from_scenario(cls, scenario, result) -> "Chain":
        """The chain, in clock steps, of the design ``result`` (a physical
        :class:`qnjax.OptimizeResult` of ``scenario``, a :class:`qnjax.PhysicalScenario`):
        per-segment link success probability and state from the heralding scheme at the
        design's segment lengths, per-node swap hardware, memory decay per clock step of
        each waiting side, and the integer cut-offs. ``qnjax.delivery(chain=...)`` with the
        design's ``t_trunc`` reproduces the reported figures; bits per second are
        ``memories · secret_key_rate / clock_s`` (``result.design["clock_s"]``)."""
        from .design.chain import engine_chain, hardware
        from .design.records import design_of

        des = design_of(result, "Chain.from_scenario needs the OptimizeResult of")
        hw = hardware(scenario, des.structure)
        dt = hw["eff"].dtype
        for knob in ("alpha", "modes"):
            if getattr(des, knob) is not None:
                hw[knob] = jnp.asarray(getattr(des, knob), dt)
        return engine_chain(des.structure, scenario.heralding.scheme, hw, jnp.asarray(des.lengths_km, dt),
                            jnp.asarray(des.cutoff, dt))

    @classmethod
    def from_keywords(cls, protocol, **kw) -> "Chain":
        """A chain from the engines' keyword form: ``p_gen`` (required), ``w0`` or ``lam0``,
        ``p_swap``, ``t_coh`` or ``rates``, ``cutoff``, ``bsm_noise``. Deprecated names
        (``memory_rates``) are accepted with a ``DeprecationWarning``."""
        kw = rename_deprecated(kw, stacklevel=3)
        unknown = set(kw) - set(PHYSICAL)
        if unknown:
            raise TypeError(f"unknown chain parameter(s) {sorted(unknown)}; allowed: {', '.join(PHYSICAL)}")
        if kw.get("p_gen") is None:
            raise TypeError("p_gen (success probability per attempt) is required")
        if kw.get("rates") is not None:
            kw["t_coh"] = None
        if kw.get("w0") is None and kw.get("lam0") is None:
            kw["w0"] = 1.0
        for name, value in kw.items():  # a named error before the array converters see it
            if value is None or isinstance(value, jax.Array):
                continue
            try:
                a = np.asarray(value)
            except ValueError:
                raise ValueError(f"{name} must be a number or a rectangular array of numbers") from None
            if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
                raise TypeError(f"{name} must be numeric, got dtype {a.dtype}")
        return cls(protocol=protocol, **kw)


def item_dims(levels_mode: bool, werner: bool) -> dict:
    """Number of trailing per-item (non-batch) axes of each parameter."""
    if levels_mode:
        return {"p_gen": 0, "p_swap": 0, "t_coh": 0, "cutoff": 1, "rates": 0 if werner else 1, "bsm_noise": 1,
                "w0": 0, "lam0": 1}
    return {"p_gen": 1, "p_swap": 1, "t_coh": 1, "cutoff": 1, "rates": 2 if werner else 3, "bsm_noise": 2,
            "w0": 1, "lam0": 2}


def rename_deprecated(kw: dict, stacklevel: int = 2) -> dict:
    """Map deprecated keyword names to the current ones, with a ``DeprecationWarning``."""
    kw = dict(kw)
    for old, new in DEPRECATED.items():
        if old in kw:
            warnings.warn(f"{old}= is deprecated; use {new}= (same meaning)", DeprecationWarning,
                          stacklevel=stacklevel + 1)
            value = kw.pop(old)
            if kw.get(new) is not None and value is not None:
                raise TypeError(f"give {new}= only ({old}= is its deprecated name)")
            kw.setdefault(new, value)
            if kw[new] is None:
                kw[new] = value
    return kw


def resolve(protocol, chain: Optional[Chain], given: dict, defaults: dict, engine: str):
    """``(protocol, keywords)`` for an engine called either with ``chain=`` or with keywords.

    ``given``: the engine's physical keyword arguments; ``defaults``: their default
    values (an argument identical to its default counts as not given). With ``chain`` no
    other physical keyword nor ``protocol`` may be given."""
    if chain is None:
        if protocol is None:
            raise TypeError(f"{engine} needs a protocol (or chain=Chain(...))")
        return protocol, given
    if not isinstance(chain, Chain):
        raise TypeError(f"chain must be a qnjax.Chain; got {type(chain).__name__}")
    extra = [k for k, v in given.items() if v is not defaults.get(k)]
    if protocol is not None or extra:
        raise TypeError(f"{engine}: give chain= alone (its parameters are in the Chain); got also "
                        + ", ".join((["protocol"] if protocol is not None else []) + extra))
    return chain.protocol, chain.keywords()

