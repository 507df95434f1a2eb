"""Entry points: :func:`optimize` (step model or physical scenario) and :func:`sweep`."""

from __future__ import annotations

import dataclasses
import time
import warnings
from typing import Sequence, Union, overload

import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Float

from ..keyrate import plob_bound, tgw_bound
from ..physical import fiber_transmissivity
from ._labels import plob_note, scheme_label
from .chain import ALPHA_MAX, link_model, uniform_lengths
from .problems import PhysicalScenario, StepProblem
from .result import OptimizeResult
from .sweep_result import as_sweep_result
from .search import NoFeasibleDesign, evaluate, search
from .step import optimize_step


@overload
def optimize(problem: Union[StepProblem, PhysicalScenario], *, seed: int | None = None,
             n_starts: int | None = None, n_steps: int | None = None,
             learning_rate: float | None = None, progress: bool = False) -> OptimizeResult: ...


@overload
def optimize(problem: Sequence[StepProblem], *, seed: int | None = None,
             n_starts: int | None = None, n_steps: int | None = None,
             learning_rate: float | None = None, progress: bool = False) -> tuple[OptimizeResult, ...]: ...


def optimize(problem, *, seed: int | None = None, n_starts: int | None = None,
             n_steps: int | None = None, learning_rate: float | None = None,
             progress: bool = False):
    """Find the design that maximizes the secret-key rate.

    Args:
        problem: a :class:`StepProblem` (integer cut-offs per level, optionally distill
            placement; bits per step), a list of them sharing protocol, ``t_trunc`` and
            ``max_distill`` (solved together in one batched run; returns a tuple), or a
            :class:`PhysicalScenario` (segments, repeater positions, cut-offs per node,
            purification rounds; bits per second), or a :class:`qnjax.Chain` over a level
            protocol (its :meth:`StepProblem.from_chain` problem).
        seed: PRNG seed of the starts (default 0, or the scenario's ``search.seed``).
        n_starts, n_steps, learning_rate: optimizer settings (defaults: 8 starts × at most
            60 Adam steps, lr 0.15 for the step model; the scenario's ``[search]`` otherwise).
            A step problem's ``t_trunc`` is an upper bound: the search runs at a working
            truncation from the waiting-time scale and grows it until the winner is covered
            to 1e-9 (:func:`qnjax.design.step.optimize_step`).
        progress: progress on stderr (a bar with elapsed and remaining time on a terminal,
            one line per stage elsewhere).

    Returns:
        :class:`OptimizeResult` with the integer design and its exact clipped key rate, for
        one problem (always, whatever the problem's kind); for a list or tuple of step
        problems, a tuple of them in the same order.

    Raises:
        NoFeasibleDesign: (a ``ValueError``) a physical scenario where no structure yields a
            key; its message and ``reasons`` say what stopped each segment count.
    """
    step_kw = {k: v for k, v in dict(seed=seed, n_starts=n_starts, n_steps=n_steps,
                                      learning_rate=learning_rate).items() if v is not None}
    from ..chain import Chain

    if isinstance(problem, Chain):
        problem = StepProblem.from_chain(problem)
    if isinstance(problem, StepProblem):
        return optimize_step(problem, progress=progress, **step_kw)[0]
    if isinstance(problem, (list, tuple)) and problem and all(isinstance(p, StepProblem) for p in problem):
        return tuple(optimize_step(problem, progress=progress, **step_kw))
    if isinstance(problem, PhysicalScenario):
        return _optimize_physical(problem, seed=seed, n_starts=n_starts, n_steps=n_steps,
                                  learning_rate=learning_rate, progress=progress)
    raise TypeError(f"problem must be a StepProblem or a PhysicalScenario; got {type(problem).__name__}")


def settings_used(problem, *, seed=None, n_starts=None, n_steps=None, learning_rate=None) -> dict:
    """Every search setting :func:`optimize` / :func:`sweep` actually uses for ``problem``
    (an argument left ``None`` takes the scenario's ``[search]`` value, or the step model's
    default), so a result's provenance never holds a ``null`` setting."""
    if isinstance(problem, (list, tuple)):
        problem = problem[0]
    if isinstance(problem, StepProblem):
        d = dict(seed=0, n_starts=8, n_steps=60, learning_rate=0.15)
        extra = dict(t_trunc=problem.t_trunc, max_distill=problem.max_distill)
    else:
        s = problem.search
        d = dict(seed=s.seed, n_starts=s.starts, n_steps=s.steps, learning_rate=s.learning_rate)
        extra = dict(top_structures=s.top_structures, t_trunc=s.t_trunc or "auto")
    given = dict(seed=seed, n_starts=n_starts, n_steps=n_steps, learning_rate=learning_rate)
    d.update({k: v for k, v in given.items() if v is not None})
    d["seed"], d["n_starts"], d["n_steps"] = int(d["seed"]), int(d["n_starts"]), int(d["n_steps"])
    d["learning_rate"] = float(d["learning_rate"])
    return {**d, **extra}


def _check_coverage(res, where):
    cov = float(res.coverage)
    if cov < 1 - 1e-6:
        warnings.warn(f"{where}: truncation coverage {cov:.6g} < 1 - 1e-6; the key rate is "
                      f"approximate (raise search.t_trunc)", RuntimeWarning, stacklevel=3)


def _optimize_physical(scen: PhysicalScenario, **kw) -> OptimizeResult:
    t0 = time.perf_counter()
    per, summaries = search(scen, [scen.distance_km], **kw)
    r = per[0]
    if r.reason is not None:
        raise NoFeasibleDesign(scen.distance_km, r.reason)
    st, best = r.structure, r.best
    _check_coverage(best, "optimize")
    dt = jnp.result_type(float)
    eta = float(fiber_transmissivity(scen.distance_km, scen.attenuation_db_per_km))
    lengths = np.asarray(best.lengths_km)
    cut = np.asarray(best.cutoff).astype(np.int64)
    design = {
        "segments": jnp.asarray(st.n),
        "positions_km": jnp.asarray(np.concatenate([[0.0], np.cumsum(lengths)])),
        "lengths_km": jnp.asarray(lengths),
        "rounds": jnp.asarray(np.array(st.rounds, np.int64)),
        "cutoff": jnp.asarray(cut),
        "cutoff_s": jnp.asarray(cut * float(best.clock_s)),
        "clock_s": jnp.asarray(best.clock_s),
        "p_gen": jnp.asarray(best.p_gen),
        "t_trunc": jnp.asarray(r.t_trunc),
    }
    if scen.heralding.scheme == "single_click":
        design["alpha"] = jnp.asarray(best.alpha)
    if scen.search.max_modes or scen.multiplexing.modes > 1:
        design["modes"] = jnp.asarray(int(round(best.modes)))
    uni, noc, free = r.uniform, r.no_cutoff, r.free
    direct = float(no_repeater_per_use(scen, [scen.distance_km])[0])
    plob = float(plob_bound(eta))
    note = plob_note(scen, [scen.distance_km], [direct], [plob])
    baselines = {
        "distance_km": jnp.asarray(scen.distance_km),
        "plob_per_channel_use": jnp.asarray(float(plob_bound(eta))),
        "tgw_per_channel_use": jnp.asarray(float(tgw_bound(eta))),
        "uniform_spacing_skr_bits_per_s": jnp.asarray(uni.skr),
        "uniform_spacing_cutoff": jnp.asarray(np.asarray(uni.cutoff).astype(np.int64)),
        "no_cutoff_skr_bits_per_s": jnp.asarray(noc.skr),
        "free_spacing_lengths_km": jnp.asarray(np.asarray(free.lengths_km)),
        "free_spacing_skr_bits_per_s": jnp.asarray(free.skr),
        "gain_over_uniform_spacing": jnp.asarray(best.skr / uni.skr if uni.skr > 0 else np.inf),
        "gain_over_no_cutoff": jnp.asarray(best.skr / noc.skr if noc.skr > 0 else np.inf),
        "skr_per_channel_use": jnp.asarray(best.skr_per_channel_use if best.skr > 0 else 0.0),
        "no_repeater_per_channel_use": jnp.asarray(direct),
    }
    res = OptimizeResult(
        kind="physical", protocol=st.tree, protocol_text=st.text, design=design,
        secret_key_rate=jnp.asarray(best.secret_key_rate, dt),
        skr_bits_per_s=jnp.asarray(best.skr, dt), mean_time=jnp.asarray(best.mean_time),
        mean_fidelity=jnp.asarray(best.mean_fidelity), mean_werner=jnp.asarray(best.mean_werner),
        key_fraction=jnp.asarray(best.key_fraction), coverage=jnp.asarray(best.coverage),
        history=jnp.asarray(r.history), baselines=baselines,
        candidates=tuple(tuple((k, v[0] if isinstance(v, list) and k not in ("rounds",) else v)
                               for k, v in s.items()) for s in summaries),
        wall_s=time.perf_counter() - t0, scheme=scheme_label(scen), notes=(note,) if note else (),
    )
    from ..chain import Chain

    return dataclasses.replace(res, chain=Chain.from_scenario(scen, res) if st.n_nodes else None)


def no_repeater_per_use(scenario: PhysicalScenario,
                        distances: Float[ArrayLike, " distances"]) -> Float[np.ndarray, " distances"]:
    """Key rate per channel use of one segment over the whole distance, same hardware
    (the scheme's own link, delivered at its first success: ``p_gen`` times the key fraction
    of a fresh link, per mode)."""
    from .chain import Structure, build_tree, hardware

    distances = np.atleast_1d(np.asarray(distances, float))
    one = Structure(1, (0,), build_tree(1, (0,)))
    hw = hardware(scenario, one)
    if not (scenario.search.tune_alpha and scenario.heralding.scheme == "single_click"):
        f1 = evaluate(one, scenario.heralding.scheme, hw, distances[:, None],
                      np.zeros((len(distances), 0)), 0)
        return np.asarray(f1["skr_per_channel_use"])
    # alpha tuned: the best alpha on a fine grid at every distance (no memory waits, so cheap)
    grid = np.geomspace(1e-5, ALPHA_MAX, 256)
    dd, aa = np.repeat(distances, len(grid)), np.tile(grid, len(distances))
    f1 = evaluate(one, "single_click", hw, dd[:, None], np.zeros((len(dd), 0)), 0, alpha=aa)
    r = np.where(np.isfinite(f1["skr_per_channel_use"]), f1["skr_per_channel_use"], 0.0)
    return r.reshape(len(distances), len(grid)).max(axis=1)


def sweep(scenario: PhysicalScenario, distances: Float[ArrayLike, " distances"], *, seed=None,
          n_starts=None, n_steps=None,
          learning_rate=None, progress: bool = False, out=None, group: int | None = None,
          resume: bool = True):
    """Optimized key rate against distance (km): the best design at every distance, as a
    :class:`.SweepResult` (a dict of per-distance lists, the keys of :func:`_sweep_batch`, with
    typed rows from ``result.rows()``); :func:`qnjax.sweep_designs` instead evaluates given
    designs without optimizing.

    Without ``out`` / ``group`` in a single process, every distance is optimized in the same
    batched run per structure. With ``out`` (a JSON-lines file, one row per distance, written
    as groups finish; a rerun with ``resume`` skips the distances already there), with
    ``group``, or under ``jax.distributed`` (:func:`qnjax.init_distributed`), the distances are
    optimized in fixed groups of ``group`` (default 4) spread over the processes
    (:mod:`qnjax.design._scaleout`); process 0 returns the result, the others ``None``.
    An ``out`` file (its folder must exist) is checked whole before any work and left
    unchanged when refused (``ValueError`` naming the file and the line): rows of another run,
    and rows whose figures are not finite or not physical (edited or corrupt; a +inf PLOB /
    TGW is accepted where the fibre is lossless).
    """
    import jax

    kw = dict(seed=seed, n_starts=n_starts, n_steps=n_steps, learning_rate=learning_rate)
    if out is None and group is None and jax.process_count() == 1:
        return as_sweep_result(_label_sweep(scenario, _sweep_batch(scenario, distances, progress=progress, **kw)))
    from ._scaleout import sweep_grouped

    g = _group(group)
    given, kw = kw, _stored_settings(scenario, kw)
    for d in np.atleast_1d(np.asarray(distances, float)):
        scenario.check_distance(float(d), "distance")
    if progress:
        from ._common import Progress

        bar = Progress(True, "sweeping groups", -(-len(np.atleast_1d(distances)) // g))
        seen = [0]

        def prog(done, total):
            bar.advance(done - seen[0], description=f"sweeping groups ({done}/{total} to do)")
            seen[0] = done
    else:
        bar, prog = None, None
    try:
        return as_sweep_result(_label_sweep(scenario, sweep_grouped(
            _sweep_batch, scenario, distances, group=g, out=out, resume=resume, settings=kw,
            progress=prog, legacy_settings=given, **kw)))
    finally:
        if bar is not None:
            bar.close()


def _group(group) -> int:
    g = 4 if group is None else int(group)
    if g < 1:
        raise ValueError(f"group must be >= 1; got {group}")
    return g


def _stored_settings(scenario, kw: dict) -> dict:
    """The settings stored in every row of a grouped sweep: the ones used (no nulls), the same
    numbers as leaving them None, so a row does not depend on whether a setting was given."""
    used = settings_used(scenario, **kw)
    return {k: used[k] for k in kw}


def check_sweep_out(scenario: PhysicalScenario, out, *, seed=None, n_starts=None, n_steps=None,
                    learning_rate=None, group: int | None = None) -> None:
    """Check an existing ``out`` file exactly as :func:`sweep` (``resume=True``) will, without
    writing: a ``ValueError`` naming the file and the line for rows of another run and for rows
    whose figures are not finite or not physical (:mod:`qnjax.design._scaleout`). Lets a
    caller refuse the file before its own work (the CLI's memory estimate, compilation)."""
    from ._scaleout import check_results_file

    kw = dict(seed=seed, n_starts=n_starts, n_steps=n_steps, learning_rate=learning_rate)
    check_results_file(scenario, out, group=_group(group), settings=_stored_settings(scenario, kw),
                       legacy_settings=kw)


def _label_sweep(scenario: PhysicalScenario, data):
    """Add ``scheme`` (the link scheme in words), ``no_repeater_per_channel_use`` (the same
    figure as ``direct_per_channel_use``: one segment, same hardware) and ``notes``."""
    if data is None:
        return None
    data["scheme"] = scheme_label(scenario)
    data["no_repeater_per_channel_use"] = list(data["direct_per_channel_use"])
    note = plob_note(scenario, data["distance_km"], data["direct_per_channel_use"], data["plob"])
    data["notes"] = [note] if note else []
    return data


def _sweep_batch(scenario: PhysicalScenario, distances, *, seed=None, n_starts=None, n_steps=None,
                 learning_rate=None, progress: bool = False) -> dict:
    """Optimized key rate against distance; every distance is optimized in the same batched
    run per structure. Returns a dict of arrays (one entry per distance): ``distance_km``,
    ``segments``, ``protocol``, ``skr_bits_per_s``, ``skr_per_channel_use``, ``plob``, ``tgw``
    (bits per channel use), ``direct_per_channel_use`` (one segment, same hardware: ``p_gen``
    times the key fraction of a fresh link), ``positions_km``, ``cutoff``, ``coverage``,
    ``alpha`` (single-click; tuned with ``search.tune_alpha``), ``modes`` (per round),
    ``reason`` (``None``, or why no design yields a key at that distance: its rate is 0), and
    ``structures`` (every segment count considered, as :func:`.search.search` reports them)."""
    t0 = time.perf_counter()
    distances = np.atleast_1d(np.asarray(distances, float))
    per, summaries = search(scenario, distances, seed=seed, n_starts=n_starts, n_steps=n_steps,
                            learning_rate=learning_rate, progress=progress, description="sweeping")
    eta = np.asarray(fiber_transmissivity(distances, scenario.attenuation_db_per_km))
    out = {
        "distance_km": distances.tolist(),
        "segments": [r.structure.n for r in per],
        "protocol": [r.structure.text for r in per],
        "rounds": [list(r.structure.rounds) for r in per],
        "skr_bits_per_s": [float(r.best.skr) for r in per],
        "skr_per_channel_use": [float(r.best.skr_per_channel_use) if r.best.skr > 0 else 0.0 for r in per],
        "plob": np.asarray(plob_bound(eta)).tolist(),
        "tgw": np.asarray(tgw_bound(eta)).tolist(),
        "direct_per_channel_use": no_repeater_per_use(scenario, distances).tolist(),
        "positions_km": [np.concatenate([[0.0], np.cumsum(r.best.lengths_km)]).tolist() for r in per],
        "cutoff": [np.asarray(r.best.cutoff).astype(int).tolist() for r in per],
        "coverage": [float(r.best.coverage) for r in per],
        "alpha": [float(r.best.alpha) for r in per],  # single-click (tuned with search.tune_alpha)
        "modes": [int(round(r.best.modes)) for r in per],
        "reason": [None if r.reason is None else str(NoFeasibleDesign(r.distance_km, r.reason))
                   for r in per],
        "structures": summaries,
    }
    out["wall_s"] = time.perf_counter() - t0
    return out


__all__ = ["optimize", "sweep", "settings_used", "no_repeater_per_use", "link_model", "uniform_lengths"]
