"""Minimal hardware requirements: the cheapest hardware whose optimized design reaches a
target secret-key rate.

Cost model of da Silva et al., Quantum Sci. Technol. 6, 035007 (2021), Sec. 3: every free
parameter is improved over its baseline by a factor ``k_i >= 1`` (probabilities of success /
no error ``p → p^(1/k)``, memory times ``T → k T``, preparation time and attenuation
``x → x / k``; :mod:`._params`) and the cost is ``Σ log k_i`` (``cost="log-improvement"``)
or ``Σ k_i`` (``cost="improvement"``).

Method (the problem ``min cost(y)  s.t.  log R*(θ(y)) >= log target``, ``y = log k``):

1. The baseline and the hardware at its bounds are optimized with :func:`qnjax.optimize`
   (its enumeration of segment counts and trees); a target above the bounds' rate is refused
   naming the bound that limits most (largest elasticity there).
2. From the design of each of them, a gradient continuation (:func:`_continuation`) raises
   the improvements ``y`` from the baseline in the direction of the largest marginal key gain
   per unit cost until the optimizer's smooth surrogate of ``log R`` reaches ``log target``,
   the relaxed cut-offs following by optax Adam ascent; at the end every improved parameter
   has the same marginal gain per cost (the KKT condition of the problem).
3. The scenario is re-optimized on the hardware found (:func:`qnjax.optimize`, discrete
   choices enumerated); the improvements are scaled by one common factor (bisection on the
   exact rate of that integer design) until the rate is the target, and the result is
   re-optimized once more to check it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..design._common import surrogate
from ..design.problems import PhysicalScenario
from ._design import Design, design_of, figures, rate_grad
from ._params import check_names, file_value, improve, requirement_names, scenario_with

COSTS = ("log-improvement", "improvement")
DEFAULT_MAX_IMPROVEMENT = 100.0


class TargetUnreachable(ValueError):
    """The target key rate exceeds what the hardware reaches with every free parameter at its
    bound; ``limit_bits_per_s`` is that rate and ``limiting`` the parameter whose bound limits most."""

    def __init__(self, message: str, limit_bits_per_s: float, limiting: str | None):
        super().__init__(message)
        self.limit_bits_per_s, self.limiting = limit_bits_per_s, limiting


@dataclass(frozen=True)
class RequirementsResult:
    """Least-cost hardware reaching ``target_bits_per_s``.

    Attributes:
        target_bits_per_s, skr_bits_per_s: the target and the key rate of the scenario
            re-optimized on the required hardware.
        cost: ``Σ log k`` or ``Σ k`` over the free parameters (``cost_model`` says which).
        baseline, required: parameter → value as in the scenario file.
        improvement: parameter → factor ``k >= 1``.
        design: the optimized design on the required hardware.
        scenario: the scenario with the required hardware (:class:`qnjax.PhysicalScenario`).
        wall_s: seconds.
    """

    target_bits_per_s: float
    skr_bits_per_s: float
    baseline_skr_bits_per_s: float
    cost: float
    cost_model: str
    baseline: dict
    required: dict
    improvement: dict
    design: dict
    scenario: PhysicalScenario
    wall_s: float

    def to_json(self) -> dict:
        return {"target_bits_per_s": self.target_bits_per_s, "skr_bits_per_s": self.skr_bits_per_s,
                "baseline_skr_bits_per_s": self.baseline_skr_bits_per_s, "cost": self.cost,
                "cost_model": self.cost_model, "baseline": dict(self.baseline),
                "required": dict(self.required), "improvement": dict(self.improvement),
                "design": dict(self.design), "wall_s": self.wall_s}




def _bounds(params, parameters, max_improvement):
    """``(log k_max, pairs)`` per parameter (0: fixed); ``pairs`` lists ``(i_t2, i_t1 or None, c)``
    for every memory whose ``T2`` may improve: ``T2 <= 2 T1`` reads ``y_t2 <= y_t1 + c`` with
    ``c = log(2 T1 / T2)`` at the baseline."""
    if parameters is None or not isinstance(parameters, dict):
        kmax = {p.name: max_improvement for p in params}
    else:
        kmax = {}
        for name, v in parameters.items():
            v = max_improvement if v is None else v
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 1 and math.isfinite(v)):
                raise ValueError(f"parameters[{name!r}]: the largest improvement factor must be a finite "
                                 f"number >= 1 (1 keeps it fixed); got {v!r}")
            kmax[name] = float(v)
    out = []
    for p in params:
        k = kmax[p.name]
        if p.form == "p" and p.theta >= 1:
            k = 1.0  # already perfect
        out.append(math.log(k))
    return np.array(out)


def _t2_pairs(scen, params):
    """``(i_t2, i_t1 or None, c)`` for every memory whose ``T2`` may improve: ``T2 <= 2 T1``
    reads ``y_t2 <= y_t1 + c`` (``y_t1 = 0`` when ``T1`` is fixed), ``c = log(2 T1 / T2)``."""
    idx = {p.name: i for i, p in enumerate(params)}
    pairs = []
    for p in params:
        if p.name.endswith("memory.t2_s"):
            head = p.name[: -len(".t2_s")]
            st = scen.repeater if head == "memory" else scen.stations[int(head.split("[")[1].split("]")[0])].station
            t1 = st.memory.t1_s
            pairs.append((idx[p.name], idx.get(head + ".t1_s"), math.log(2 * t1 / p.theta)))
    return tuple(pairs)


def _project(y, ymax, pairs):
    """``y`` into ``[0, ymax]`` and under ``T2 <= 2 T1`` (NumPy, or JAX inside jit)."""
    if isinstance(y, np.ndarray):
        y = np.clip(np.array(y, float), 0.0, ymax)
        for i2, i1, c in pairs:
            y[i2] = min(y[i2], (y[i1] if i1 is not None else 0.0) + c)
        return y
    y = jnp.clip(y, 0.0, ymax)
    for i2, i1, c in pairs:
        y = y.at[i2].min((y[i1] if i1 is not None else 0.0) + c)
    return y


def _cost(y, model):
    return jnp.sum(y) if model == "log-improvement" else jnp.sum(jnp.exp(y))


@lru_cache(maxsize=16)
def _surrogate_grad(scen, design: Design, params: tuple):
    """Jitted ``(y, u) ↦ (J, (∂J/∂y, ∂J/∂u))``: ``J`` the optimizer's smooth surrogate of ``log R``
    (:func:`qnjax.design._common.surrogate`, bits/s) of ``design`` on the hardware improved by
    ``k = e^y``, with cut-offs ``τ = e^u`` steps (relaxed)."""
    theta0 = jnp.asarray([p.theta for p in params])
    forms = [p.form for p in params]
    chains = float(scen.multiplexing.memories)

    def J(y, u):
        theta = jnp.stack([improve(theta0[i], jnp.exp(y[i]), f) for i, f in enumerate(forms)]) \
            if forms else theta0
        tau = jnp.exp(u) if design.structure.n_nodes else None
        f = figures(scen, design, list(params), theta, tau=tau)
        return surrogate(f.key_fraction_smooth, f.mean_time * f.clock_s) + math.log(chains) \
            - 50.0 * (1 - f.coverage)

    return jax.jit(jax.value_and_grad(J, argnums=(0, 1)))


def _continuation(scen, design, params, ymax, log_target, model, pairs=(), step=0.05, max_iter=400,
                  lr_u=0.05, band=0.95):
    """Least-cost improvements ``y = log k`` for ``design`` by marginal-rate continuation.

    The optimality (KKT) condition of ``min cost(y)`` s.t. ``J(y) >= log target`` with
    ``0 <= y <= y_max`` is that every improved parameter has the same marginal gain
    ``(∂J/∂y_i) / (∂cost/∂y_i)`` and no other parameter a larger one (Nocedal & Wright,
    *Numerical Optimization* (2006), Thm. 12.1). Starting from the baseline ``y = 0``, each step
    raises the parameters whose marginal gain is within ``band`` of the best by ``step``
    (less when that closes the gap), re-evaluating the gradient every step (water filling), so
    diminishing returns move the effort to the next parameter; the relaxed cut-offs follow with
    one optax Adam ascent step on ``J`` per step (the design stays near its optimum, so by the
    envelope theorem ``∂J/∂y`` is that of the re-optimized rate). Returns ``y``, or ``None``
    when the design's surrogate already claims the target on the baseline hardware (a design
    optimized for better hardware, e.g. with a truncation too short for the baseline)."""
    dt = jnp.result_type(float)
    vg = _surrogate_grad(scen, design, tuple(params))
    n_nodes = design.structure.n_nodes
    K = max(n_nodes, 1)
    tmax = math.log(max(design.t_trunc, 2))
    u = jnp.asarray((np.log(np.maximum(np.asarray(design.cutoff, float), 1e-3)) if n_nodes else np.zeros(K))
                    .reshape(K), dt)
    opt = optax.adam(lr_u)
    ost = opt.init(u)
    y = np.zeros(len(params))
    for it in range(max_iter):
        J, (gy, gu) = vg(jnp.asarray(y, dt), u)
        if it == 0 and float(J) >= log_target:
            return None  # the design claims the target on the baseline hardware: not its regime
        if n_nodes:
            upd, ost = opt.update(-jnp.nan_to_num(gu), ost, u)
            u = jnp.clip(optax.apply_updates(u, upd), -3.0, tmax)
        gap = log_target - float(J)
        if gap <= 0:
            break
        gy = np.nan_to_num(np.asarray(gy, float))
        dc = np.ones_like(y) if model == "log-improvement" else np.exp(y)
        room = _project(y + 1e-9, ymax, pairs) > y
        ratio = np.where(room & (gy > 0), gy / dc, 0.0)
        if ratio.max() <= 0:
            break
        sel = ratio >= band * ratio.max()
        d = min(step, gap / float(np.sum(gy[sel])))
        y = _project(np.where(sel, y + d, y), ymax, pairs)
    return y


def _theta(params, y):
    return np.array([float(improve(p.theta, math.exp(yi), p.form)) for p, yi in zip(params, y)])


def _calibrate(scen, design, params, y, ymax, target, pairs=(), rel=1e-6):
    """The common scale ``s`` of the improvements (``y → min(s·y, ymax)``) at which the exact
    rate of ``design`` first reaches ``target·(1 + rel)``, by bisection (``None`` when even
    ``s`` giving every free parameter its bound does not reach it)."""
    log_t = math.log(target * (1 + rel))
    f = jax.jit(lambda th: jnp.log(figures(scen, design, params, th).skr_bits_per_s))
    rate = lambda s: float(f(jnp.asarray(_theta(params, _project(s * y, ymax, pairs)))))
    if not np.any(y > 0):
        return None
    hi = float(np.max(np.where(y > 0, ymax / np.maximum(y, 1e-300), 0)))
    if not rate(hi) >= log_t:
        return None
    lo = 0.0
    if rate(lo) >= log_t:
        return np.zeros_like(y)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if rate(mid) < log_t else (lo, mid)
        if hi - lo < 1e-10 * max(hi, 1.0):
            break
    return _project(hi * y, ymax, pairs)


def requirements(scenario: PhysicalScenario, target_bits_per_s: float, *, parameters=None,
                 cost: str = "log-improvement", max_improvement: float = DEFAULT_MAX_IMPROVEMENT,
                 seed=None, n_starts=None, n_steps=None, progress: bool = False,
                 baseline=None, _memo: dict | None = None) -> RequirementsResult:
    """The least-cost hardware whose optimized design reaches ``target_bits_per_s`` (see the
    module docstring for the cost model and the method).

    Args:
        scenario: a :class:`qnjax.PhysicalScenario` (its hardware is the baseline).
        target_bits_per_s: the key rate to reach (bits/s, > 0).
        parameters: which parameters may improve: ``None`` (every hardware parameter of the
            scenario, :func:`qnjax.sizing.hardware_parameters`, except the installed
            fibre's attenuation, which stays at the baseline unless named), a list of names, or a dict
            ``name → largest improvement factor`` (1 keeps it fixed, ``None`` the default).
            Parameters not named stay at the baseline.
        cost: ``"log-improvement"`` (``Σ log k``) or ``"improvement"`` (``Σ k``).
        max_improvement: the largest factor ``k`` of a parameter without its own bound.
        seed, n_starts, n_steps, progress: passed to :func:`qnjax.optimize`.
        baseline: ``qnjax.optimize(scenario)`` already computed with the same settings (it is
            then not optimized again).

    Raises:
        ValueError: a target that is not a positive finite number, an unknown parameter name
            or cost model. :class:`TargetUnreachable` (a ``ValueError``): the target is above
            the rate with every free parameter at its bound.
    """
    from ..design import NoFeasibleDesign, optimize

    t0 = time.perf_counter()
    if not isinstance(scenario, PhysicalScenario):
        raise TypeError(f"scenario must be a PhysicalScenario; got {type(scenario).__name__}")
    try:
        target = float(target_bits_per_s)
    except (TypeError, ValueError):
        raise TypeError(f"target_bits_per_s must be a number; got {target_bits_per_s!r}") from None
    if not (math.isfinite(target) and target > 0):
        raise ValueError(f"target_bits_per_s must be a positive finite key rate (bits/s); got {target_bits_per_s!r}")
    if cost not in COSTS:
        raise ValueError(f"cost must be one of {', '.join(COSTS)}; got {cost!r}")
    if not (isinstance(max_improvement, (int, float)) and math.isfinite(max_improvement) and max_improvement >= 1):
        raise ValueError(f"max_improvement must be a finite number >= 1; got {max_improvement!r}")
    if isinstance(parameters, str):
        parameters = [parameters]
    names = requirement_names(scenario) if parameters is None else list(parameters)
    params = check_names(scenario, names)
    ymax = _bounds(params, parameters, float(max_improvement))
    pairs = _t2_pairs(scenario, params)
    ymax = _project(ymax, ymax, pairs)  # the bounds themselves keep T2 <= 2 T1
    kw = dict(seed=seed, n_starts=n_starts, n_steps=n_steps, progress=progress)

    memo = {} if _memo is None else _memo

    def opt(theta):
        s = scenario_with(scenario, params, theta)
        key = (s, tuple(sorted(kw.items())))
        if key not in memo:
            try:
                memo[key] = optimize(s, **kw)
            except NoFeasibleDesign:
                memo[key] = None
        return s, memo[key]

    theta0 = np.array([p.theta for p in params])
    if baseline is not None:
        memo[(scenario_with(scenario, params, theta0), tuple(sorted(kw.items())))] = baseline
    _, base = opt(theta0)
    base_rate = float(base.skr_bits_per_s) if base is not None else 0.0
    baseline = {p.name: file_value(scenario, p, p.theta) for p in params}

    def finish(y, scen_req, res):
        th = _theta(params, y)
        k = {p.name: (float(math.exp(yi)) if p.form != "p" or p.theta < 1 else 1.0) for p, yi in zip(params, y)}
        c = float(np.sum(y)) if cost == "log-improvement" else float(sum(k.values()))
        return RequirementsResult(target, float(res.skr_bits_per_s), base_rate, c, cost, baseline,
                                  {p.name: file_value(scenario, p, t) for p, t in zip(params, th)}, k,
                                  design_of(res).to_json(), scen_req, time.perf_counter() - t0)

    if base_rate >= target:
        return finish(np.zeros(len(params)), scenario, base)
    # ---- the hardware at its bounds
    scen_max, top = opt(_theta(params, ymax))
    top_rate = float(top.skr_bits_per_s) if top is not None else 0.0
    if top_rate < target:
        limiting = None
        if top is not None and len(params):
            _, g = rate_grad(scen_max, design_of(top), params, _theta(params, ymax))
            # a perfect parameter (probability 1) has no bound to raise
            free = [(abs(gi), p.name) for gi, p in zip(g, params)
                    if np.isfinite(gi) and not (p.form == "p" and p.theta >= 1)]
            limiting = max(free)[1] if free else None
        where = (f"; the bound that limits most is {limiting!r} (largest elasticity at the bounds): raise "
                 f"its bound in parameters" if limiting else "")
        raise TargetUnreachable(
            f"target_bits_per_s = {target:.6g} is above {top_rate:.6g} bits/s, the optimized rate with every "
            f"free parameter at its bound (largest improvement {max_improvement:g} unless bounded){where}",
            top_rate, limiting)
    # ---- gradient stage from the designs at the baseline and at the bounds
    log_t = math.log(target)
    cands = [design_of(base)] if base is not None else []
    if not cands or design_of(top).structure != cands[0].structure:
        cands.append(design_of(top))
    best = None
    for design in cands:
        y = _continuation(scenario, design, params, ymax, log_t, cost, pairs)
        if y is None:
            continue
        val = float(_cost(jnp.asarray(y), cost))
        if best is None or val < best[0]:
            best = (val, y)
    if best is None:  # no design's gradients lead anywhere: start the calibration from the bounds
        best = (None, ymax.copy())
    y = _project(np.where(best[1] > 1e-3 * np.maximum(ymax, 1e-300), best[1], 0.0), ymax, pairs)
    # ---- re-optimize on that hardware, calibrate the common scale, check
    found = None  # (y, scenario, result) of the last calibrated hardware
    for _ in range(3):
        scen_y, res = opt(_theta(params, y))
        if res is None:
            y = _project(y * 1.1 + 1e-3, ymax, pairs)
            continue
        ycal = _calibrate(scenario, design_of(res), params, y, ymax, target, pairs)
        if ycal is None:
            y = _project(y * 1.1 + 1e-3, ymax, pairs)
            continue
        scen_req, res_req = opt(_theta(params, ycal))
        if res_req is not None:
            found = (ycal, scen_req, res_req)
            if target * 0.995 <= float(res_req.skr_bits_per_s) <= target * 1.002:
                return finish(ycal, scen_req, res_req)
        y = ycal
    # the calibration did not land within [0.995, 1.002] x target: a hardware that reaches the
    # target is still an answer (its cost an upper bound); one that misses it is not
    if found is None or float(found[2].skr_bits_per_s) < 0.995 * target:
        got = "" if found is None else f" (the last calibrated hardware gives {float(found[2].skr_bits_per_s):.6g} bits/s)"
        raise TargetUnreachable(f"requirements: no design found reaching target_bits_per_s = {target:.6g}{got}",
                                top_rate, None)
    return finish(*found)


def requirements_curve(scenario: PhysicalScenario, targets, **kw) -> list:
    """:func:`requirements` for every target of ``targets`` (bits/s), sharing the optimizations
    of the baseline and of the bounds (``baseline=`` passes one already computed); a target that
    cannot be reached gives its :class:`TargetUnreachable` in place of a result."""
    memo: dict = {}
    out = []
    for t in targets:
        try:
            out.append(requirements(scenario, t, _memo=memo, **kw))
        except TargetUnreachable as exc:
            out.append(exc)
    return out


__all__ = ["requirements", "requirements_curve", "RequirementsResult", "TargetUnreachable", "COSTS"]
