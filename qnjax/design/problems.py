"""Design problems for :func:`qnjax.optimize`: frozen dataclasses validated on construction.

Two kinds of problem:

* :class:`StepProblem` — the literature's abstract step model (Li, Coopmans & Elkouss,
  IEEE TQE 2, 4100315 (2021)): given ``p_gen``, ``p_swap``, ``w0``, ``t_coh`` (in steps)
  and a level list, find the integer cut-off of every level (and optionally where to
  insert up to ``max_distill`` distill levels) that maximizes the secret-key rate in
  bits per step.
* :class:`PhysicalScenario` — end nodes ``distance_km`` apart, fibre, a heralding
  scheme, memories and repeater hardware; choose the number of segments, the repeater
  positions, the cut-off of every protocol node and purification rounds per level,
  maximizing bits per second.

Validation is pure Python and runs before anything is compiled; every error names the
field (``ValueError`` / ``TypeError``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from ..protocol import parse_levels

SCHEMES = ("direct", "double_click", "single_click")
SCHEME_LABELS = {"direct": "direct (point-to-point)", "double_click": "midpoint double-click",
                 "single_click": "midpoint single-click"}


def _num(value, name: str, lo=-math.inf, hi=math.inf, lo_open=False, hi_open=False,
         allow_inf=False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number; got {value!r}")
    v = float(value)
    if math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise ValueError(f"{name} must be finite; got {value!r}")
    if (v <= lo if lo_open else v < lo) or (v >= hi if hi_open else v > hi):
        lb, rb = "(" if lo_open else "[", ")" if hi_open else "]"
        raise ValueError(f"{name} must lie in {lb}{lo}, {hi}{rb}; got {value!r}")
    return v


def _int(value, name: str, lo: int = 0, hi: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise TypeError(f"{name} must be an integer; got {value!r}")
    if value < lo or (hi is not None and value > hi):
        rng = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        shown = repr(value) if abs(value) < 10**15 else f"{float(value):.3g}"  # not a 309-digit integer
        raise ValueError(f"{name} must be an integer in {rng}; got {shown}")
    return int(value)


def _set(obj, name, value):
    object.__setattr__(obj, name, value)


# --------------------------------------------------------------------------- step model
@dataclass(frozen=True)
class StepProblem:
    """Cut-off (and distill placement) design in the abstract step model.

    Attributes:
        protocol: bottom-up level list, e.g. ``("swap", "swap", "swap")`` or ``"swap,distill"``.
        p_gen: elementary-link success probability per step, in (0, 1].
        p_swap: swap success probability, in (0, 1].
        w0: Werner parameter of a fresh elementary link, in [0, 1].
        t_coh: pair coherence time in steps (``w · exp(−Δ / t_coh)`` while waiting), > 0; inf allowed.
        t_trunc: truncation length of the delivery-time distribution (steps).
        max_distill: also try inserting up to this many distill levels anywhere in the list.
    """

    protocol: tuple
    p_gen: float
    p_swap: float = 1.0
    w0: float = 1.0
    t_coh: float = math.inf
    t_trunc: int = 4096
    max_distill: int = 0

    @classmethod
    def from_chain(cls, chain, **kw) -> "StepProblem":
        """The cut-off problem of a :class:`qnjax.Chain` over a level protocol with one design
        (scalar ``p_gen``, ``p_swap``, ``w0``, ``t_coh``); the chain's own cut-offs are what
        the optimizer chooses, so they are ignored. ``kw``: ``t_trunc``, ``max_distill``.
        A tree, a batch, a Bell-diagonal ``lam0``, per-side ``rates`` or ``bsm_noise`` are
        outside the step model (``ValueError``)."""
        if chain.is_tree:
            raise ValueError("the step model optimizes level protocols; this Chain is a tree "
                             "(use a PhysicalScenario for unequal segments)")
        if chain.batch_shape:
            raise ValueError(f"optimize one design at a time; this Chain has batch shape {chain.batch_shape}")
        for name in ("lam0", "rates", "bsm_noise"):
            if getattr(chain, name) is not None:
                raise ValueError(f"the step model has no {name}; give w0 / t_coh (or use a PhysicalScenario)")
        return cls(protocol=chain.protocol, p_gen=float(chain.p_gen), p_swap=float(chain.p_swap),
                   w0=float(chain.w0), t_coh=float(chain.t_coh), **kw)

    def __post_init__(self):
        _set(self, "protocol", parse_levels(self.protocol))
        _set(self, "p_gen", _num(self.p_gen, "p_gen", 0, 1, lo_open=True))
        _set(self, "p_swap", _num(self.p_swap, "p_swap", 0, 1, lo_open=True))
        _set(self, "w0", _num(self.w0, "w0", 0, 1))
        _set(self, "t_coh", _num(self.t_coh, "t_coh", 0, math.inf, lo_open=True, allow_inf=True))
        _set(self, "t_trunc", _int(self.t_trunc, "t_trunc", 16, 2**20))
        _set(self, "max_distill", _int(self.max_distill, "max_distill", 0, 3))


# --------------------------------------------------------------------------- physical
@dataclass(frozen=True)
class Heralding:
    """Elementary-link generation (see :mod:`qnjax.physical`).

    Attributes:
        scheme: ``"direct"`` (emit + absorb), ``"double_click"`` or ``"single_click"`` (midpoint station).
        efficiency: lumped emission/coupling/detection efficiency per photon, in (0, 1].
        visibility: two-photon interference visibility (midpoint schemes), in [0, 1].
        source_fidelity: fidelity of the emitted pair (``direct``), in [0.25, 1].
        alpha: bright-state population (``single_click``), in (0, 1).
        prep_time_s: local preparation time per attempt, seconds (>= 0).
        detector_efficiency: efficiency of each detector, in (0, 1] (multiplies ``efficiency``).
        dark_count_rate_hz: dark-count rate of each detector, Hz (>= 0; 0 = ideal detectors).
        detection_window_s: detection window, seconds (> 0); a detector fires spuriously with
            probability ``1 − exp(−rate · window)`` per window.
        phase_noise_rad: standard deviation of the interferometric phase (``single_click``),
            radians (>= 0).
    """

    scheme: str = "double_click"
    efficiency: float = 1.0
    visibility: float = 1.0
    source_fidelity: float = 1.0
    alpha: float = 0.1
    prep_time_s: float = 0.0
    detector_efficiency: float = 1.0
    dark_count_rate_hz: float = 0.0
    detection_window_s: float = 1e-9
    phase_noise_rad: float = 0.0

    def __post_init__(self):
        if self.scheme not in SCHEMES:
            raise ValueError(f"heralding.scheme must be one of {', '.join(SCHEMES)}; got {self.scheme!r}")
        _set(self, "efficiency", _num(self.efficiency, "heralding.efficiency", 0, 1, lo_open=True))
        _set(self, "visibility", _num(self.visibility, "heralding.visibility", 0, 1))
        _set(self, "source_fidelity", _num(self.source_fidelity, "heralding.source_fidelity", 0.25, 1))
        _set(self, "alpha", _num(self.alpha, "heralding.alpha", 0, 1, lo_open=True, hi_open=True))
        _set(self, "prep_time_s", _num(self.prep_time_s, "heralding.prep_time_s", 0))
        _set(self, "detector_efficiency", _num(self.detector_efficiency, "heralding.detector_efficiency",
                                               0, 1, lo_open=True))
        _set(self, "dark_count_rate_hz", _num(self.dark_count_rate_hz, "heralding.dark_count_rate_hz", 0))
        _set(self, "detection_window_s", _num(self.detection_window_s, "heralding.detection_window_s",
                                              0, 1, lo_open=True))
        _set(self, "phase_noise_rad", _num(self.phase_noise_rad, "heralding.phase_noise_rad", 0, 10))
        if self.dark_count_probability >= 0.5:
            raise ValueError(f"heralding: dark_count_rate_hz × detection_window_s gives a dark-count "
                             f"probability {self.dark_count_probability:.3g} per window; must be < 0.5")

    @property
    def dark_count_probability(self) -> float:
        """Dark-count probability of one detector per window, ``1 − exp(−rate · window)``."""
        return -math.expm1(-self.dark_count_rate_hz * self.detection_window_s)

    @property
    def label(self) -> str:
        """The scheme in words, for tables and plots."""
        return SCHEME_LABELS[self.scheme]


@dataclass(frozen=True)
class Multiplexing:
    """Several attempts per round and several memories per station.

    Attributes:
        modes: attempts (modes) per round on every link (integer >= 1); a round succeeds with
            ``1 − (1 − p)^modes`` (:func:`qnjax.multiplex`) and keeps the first success.
        mode_time_s: time per mode, seconds (>= 0): the attempt lasts ``prep + modes ·
            mode_time_s + travel`` (0: modes sent in parallel, e.g. frequency multiplexing).
        memories: memories per station (integer >= 1), run as that many independent
            parallel chains: the key rate in bits/s is ``memories`` times one chain's (the
            parallel-chains model; cross-connecting links across chains can only do better).
    """

    modes: int = 1
    mode_time_s: float = 0.0
    memories: int = 1

    def __post_init__(self):
        _set(self, "modes", _int(self.modes, "multiplexing.modes", 1, 10**6))
        _set(self, "mode_time_s", _num(self.mode_time_s, "multiplexing.mode_time_s", 0))
        _set(self, "memories", _int(self.memories, "multiplexing.memories", 1, 10**6))


@dataclass(frozen=True)
class Memory:
    """A quantum memory: either a depolarizing time ``t_coh_s`` or ``t1_s`` and ``t2_s`` (seconds).

    ``t_coh_s`` T: each stored qubit's Bloch vector shrinks as ``exp(−t/T)`` (Walsh rates
    ``(0, 1, 1, 1)/T``); ``t1_s``/``t2_s``: amplitude damping and dephasing (Walsh rates
    ``(0, 1/T1, 1/T2, 1/T2)``, :func:`qnjax.memory_rates_per_step`). A pair decays with the
    sum of the rates of the two memories holding it.
    """

    t_coh_s: Optional[float] = None
    t1_s: Optional[float] = None
    t2_s: Optional[float] = None

    def __post_init__(self, prefix: str = "memory"):
        if self.t_coh_s is not None:
            if self.t1_s is not None or self.t2_s is not None:
                raise ValueError(f"{prefix}: give either t_coh_s or t1_s and t2_s, not both")
            _set(self, "t_coh_s", _num(self.t_coh_s, f"{prefix}.t_coh_s", 0, math.inf,
                                       lo_open=True, allow_inf=True))
        else:
            if self.t1_s is None or self.t2_s is None:
                raise ValueError(f"{prefix}: needs t_coh_s, or both t1_s and t2_s")
            _set(self, "t1_s", _num(self.t1_s, f"{prefix}.t1_s", 0, math.inf, lo_open=True, allow_inf=True))
            _set(self, "t2_s", _num(self.t2_s, f"{prefix}.t2_s", 0, math.inf, lo_open=True, allow_inf=True))
            if self.t2_s > 2 * self.t1_s:
                raise ValueError(f"{prefix}.t2_s = {self.t2_s} exceeds 2 * t1_s = {2 * self.t1_s} "
                                 f"(unphysical: T2 <= 2 T1)")

    def walsh_rates_per_s(self) -> tuple[float, float, float, float]:
        """Walsh-coordinate decay rates of one memory, per second."""
        if self.t_coh_s is not None:
            r = 1.0 / self.t_coh_s
            return (0.0, r, r, r)
        return (0.0, 1.0 / self.t1_s, 1.0 / self.t2_s, 1.0 / self.t2_s)


@dataclass(frozen=True)
class Station:
    """Hardware of one station (repeater or end node).

    Attributes:
        memory: the station's memories.
        swap_success: probability that a Bell-state measurement succeeds, in (0, 1].
        gate_depolarizing: depolarizing probability of the swap's two-qubit gate, in [0, 1].
        measurement_error: bit-flip probability of each swap measurement, in [0, 0.5].
    """

    memory: Memory = field(default_factory=lambda: Memory(t_coh_s=1.0))
    swap_success: float = 1.0
    gate_depolarizing: float = 0.0
    measurement_error: float = 0.0

    def __post_init__(self, prefix: str = "repeater"):
        _set(self, "swap_success", _num(self.swap_success, f"{prefix}.swap_success", 0, 1, lo_open=True))
        _set(self, "gate_depolarizing", _num(self.gate_depolarizing, f"{prefix}.gate_depolarizing", 0, 1))
        _set(self, "measurement_error", _num(self.measurement_error, f"{prefix}.measurement_error", 0, 0.5))

    def bsm_walsh(self) -> tuple[float, float, float, float]:
        """Walsh multiplier of a noisy swap: gate ``(1, 1−g, 1−g, 1−g)`` times
        measurement flips ``(1, 1−2e, (1−2e)², 1−2e)``."""
        g, e = self.gate_depolarizing, 1 - 2 * self.measurement_error
        return (1.0, (1 - g) * e, (1 - g) * e * e, (1 - g) * e)


@dataclass(frozen=True)
class Search:
    """What the optimizer may choose, and how hard it looks.

    Attributes:
        segments: candidate numbers of segments (each >= 1); empty (the default): every
            count the segment bounds allow, searched by branch and bound on the key rate.
        min_segment_km / max_segment_km: bounds on every segment length (km).
        max_rounds_per_level: purification rounds tried at each level (0 = none).
        max_rounds_total: total purification rounds over all levels.
        starts: gradient stage (structures with purification rounds): starts per structure.
        steps: gradient stage: Adam steps per start.
        learning_rate: gradient stage: Adam step size in the unconstrained coordinates.
        top_structures: at most this many screened structures per distance are refined (and
            this many purification structures optimized); bound-dominated ones are skipped.
        seed: PRNG seed (results are deterministic per seed).
        t_trunc: truncation length (steps) or 0 for automatic.
        tune_alpha: optimize the single-click ``alpha`` (in (0, 0.5)) jointly with the
            cut-offs and spacing, starting from ``heralding.alpha``.
        max_modes: 0 keeps ``multiplexing.modes``; ``>= 1`` optimizes the modes per round in
            ``1 .. max_modes`` (each mode costs ``multiplexing.mode_time_s`` per attempt).
    """

    segments: tuple = ()
    min_segment_km: float = 0.0
    max_segment_km: float = math.inf
    max_rounds_per_level: int = 0
    max_rounds_total: int = 1
    starts: int = 8
    steps: int = 120
    learning_rate: float = 0.08
    top_structures: int = 4
    seed: int = 0
    t_trunc: int = 0
    tune_alpha: bool = False
    max_modes: int = 0

    def __post_init__(self):
        _set(self, "max_modes", _int(self.max_modes, "search.max_modes", 0, 10**6))
        if not isinstance(self.tune_alpha, bool):
            raise TypeError(f"search.tune_alpha must be true or false; got {self.tune_alpha!r}")
        segs = () if self.segments is None else self.segments
        if isinstance(segs, int) and not isinstance(segs, bool):
            segs = (segs,)
        if not isinstance(segs, (list, tuple)):
            raise TypeError(f"search.segments must be an integer or a list of integers; got {segs!r}")
        segs = tuple(sorted({_int(s, "search.segments", 1, 64) for s in segs}))
        _set(self, "segments", segs)
        _set(self, "min_segment_km", _num(self.min_segment_km, "search.min_segment_km", 0))
        _set(self, "max_segment_km", _num(self.max_segment_km, "search.max_segment_km", 0, math.inf,
                                          lo_open=True, allow_inf=True))
        if self.max_segment_km < self.min_segment_km:
            raise ValueError(f"search.max_segment_km ({self.max_segment_km}) is below "
                             f"search.min_segment_km ({self.min_segment_km})")
        _set(self, "max_rounds_per_level", _int(self.max_rounds_per_level, "search.max_rounds_per_level", 0, 3))
        _set(self, "max_rounds_total", _int(self.max_rounds_total, "search.max_rounds_total", 0, 4))
        _set(self, "starts", _int(self.starts, "search.starts", 1, 1024))
        _set(self, "steps", _int(self.steps, "search.steps", 1, 100000))
        _set(self, "learning_rate", _num(self.learning_rate, "search.learning_rate", 0, 10, lo_open=True))
        _set(self, "top_structures", _int(self.top_structures, "search.top_structures", 1, 64))
        _set(self, "seed", _int(self.seed, "search.seed", 0))
        t = _int(self.t_trunc, "search.t_trunc", 0, 2**20)
        if 0 < t < 16:
            raise ValueError(f"search.t_trunc must be 0 (automatic) or >= 16; got {t}")
        _set(self, "t_trunc", t)


@dataclass(frozen=True)
class StationOverride:
    """Hardware of one particular station; ``index`` 0 is the left end node, negative
    indices count from the right end (−1 is the right end node)."""

    index: int
    station: Station


@dataclass(frozen=True)
class PhysicalScenario:
    """A repeater-chain design problem in physical units.

    Attributes:
        distance_km: distance between the end nodes (km).
        attenuation_db_per_km: fibre loss (dB/km).
        heralding: elementary-link generation scheme and its efficiencies.
        repeater: hardware of every station unless overridden (memories, swap success, noise).
        stations: per-station overrides (e.g. one poor memory).
        search: the design space and optimizer settings.
        name: a label for tables and plots.
        multiplexing: modes per attempt and memories per station (default: one of each).
    """

    distance_km: float
    attenuation_db_per_km: float = 0.2
    heralding: Heralding = field(default_factory=Heralding)
    repeater: Station = field(default_factory=Station)
    stations: tuple = ()
    search: Search = field(default_factory=Search)
    name: str = "scenario"
    multiplexing: Multiplexing = field(default_factory=Multiplexing)

    def __post_init__(self):
        _set(self, "distance_km", _num(self.distance_km, "distance_km", 0, math.inf, lo_open=True))
        _set(self, "attenuation_db_per_km", _num(self.attenuation_db_per_km, "attenuation_db_per_km", 0))
        _set(self, "stations", tuple(self.stations))
        self.check_distance(self.distance_km)
        for ov in self.stations:
            for n in self.search.segments:
                if not (-(n + 1) <= ov.index <= n):
                    raise ValueError(
                        f"station.index {ov.index} does not exist in a chain of {n} segments "
                        f"(stations 0..{n}); restrict search.segments or change the index")

    def check_distance(self, distance_km: float, name: str = "distance_km") -> None:
        """Raise if some listed segment count (or, without a list, every count up to 64)
        cannot satisfy the segment-length bounds at this distance."""
        s = self.search
        if not s.segments:
            lo = math.ceil(distance_km * (1 - 1e-12) / s.max_segment_km) if math.isfinite(s.max_segment_km) else 1
            hi = math.floor(distance_km * (1 + 1e-12) / s.min_segment_km) if s.min_segment_km > 0 else 64
            if max(lo, 1) > min(hi, 64):
                raise ValueError(
                    f"no segment count in 1..64 keeps every segment within search.min_segment_km = "
                    f"{s.min_segment_km} and search.max_segment_km = {s.max_segment_km} at {name} = "
                    f"{distance_km}")
            return
        for n in s.segments:
            if n * s.min_segment_km > distance_km * (1 + 1e-12):
                raise ValueError(
                    f"search.min_segment_km = {s.min_segment_km} times {n} segments exceeds "
                    f"{name} = {distance_km}; lower it or drop {n} from search.segments")
            if n * s.max_segment_km < distance_km * (1 - 1e-12):
                raise ValueError(
                    f"search.max_segment_km = {s.max_segment_km} times {n} segments is below "
                    f"{name} = {distance_km}; raise it or drop {n} from search.segments")

    def station(self, i: int, n_segments: int) -> Station:
        """Hardware of station ``i`` (0..n_segments) in a chain of ``n_segments``."""
        for ov in self.stations:
            if ov.index % (n_segments + 1) == i:
                return ov.station
        return self.repeater
