"""Typed records of the physical search (:func:`.search.search`): one design with its exact
figures, the outcome at one distance, and the fixed design a physical result holds
(:func:`design_of`, read by :meth:`qnjax.Chain.from_scenario` and :mod:`qnjax.sizing`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
from jaxtyping import Float

from .chain import Structure


@dataclass(frozen=True)
class DesignFigures:
    """One physical design and its exact figures (host floats and NumPy arrays).

    ``skr`` is the rate the search accepts, bits/s: ``skr_bits_per_s`` where it is finite and
    the truncation coverage is sufficient, else 0. Rates per clock step (``secret_key_rate``),
    per clock step and mode (``skr_per_channel_use``) and per second (``skr_bits_per_s``);
    ``mean_time`` in clock steps, ``clock_s`` in seconds."""

    lengths_km: Float[np.ndarray, " n"]
    cutoff: Float[np.ndarray, " K"]
    """Cut-off per internal node (post-order), steps; the working truncation means none."""
    alpha: float
    """Single-click bright-state population (the scenario's unless tuned)."""
    modes: float
    """Modes per round (the scenario's unless tuned; rounded when reported)."""
    skr: float
    secret_key_rate: float
    skr_per_channel_use: float
    skr_bits_per_s: float
    key_fraction: float
    mean_time: float
    mean_fidelity: float
    mean_werner: float
    coverage: float
    clock_s: float
    p_gen: Float[np.ndarray, " n"]
    """Success probability per attempt of every segment."""

    @classmethod
    def from_figs(cls, lengths_km, cutoff, alpha: float, modes: float, figs) -> "DesignFigures":
        """From a figures mapping (:func:`.treesearch.evaluate_designs`, :func:`.gradient.evaluate`
        rows); ``figs`` may override ``alpha`` / ``modes`` (tuned knobs)."""
        return cls(lengths_km=np.asarray(lengths_km, float), cutoff=np.asarray(cutoff, float),
                   alpha=float(figs.get("alpha", alpha)), modes=float(figs.get("modes", modes)),
                   skr=float(figs["skr"]), p_gen=np.asarray(figs["p_gen"]),
                   **{k: float(figs[k]) for k in _FLOATS})

    @classmethod
    def none(cls, distance_km: float, alpha: float, modes: float) -> "DesignFigures":
        """The record of "no design yields a key": one segment, every rate 0."""
        return cls(lengths_km=np.array([distance_km]), cutoff=np.zeros(0), alpha=alpha, modes=modes,
                   skr=0.0, secret_key_rate=0.0, skr_per_channel_use=0.0, skr_bits_per_s=0.0,
                   key_fraction=0.0, mean_time=math.inf, mean_fidelity=math.nan,
                   mean_werner=math.nan, coverage=0.0, clock_s=math.nan, p_gen=np.zeros(1))


_FLOATS = ("secret_key_rate", "skr_per_channel_use", "skr_bits_per_s", "key_fraction", "mean_time",
           "mean_fidelity", "mean_werner", "coverage", "clock_s")


@dataclass(frozen=True)
class DistanceResult:
    """Outcome of the search at one distance: the winning structure and four designs of it.

    ``best`` is the better of ``free`` (repeaters moved) and ``uniform`` (uniform spacing);
    ``no_cutoff`` is the free spacing without cut-offs. ``reason`` is ``None``, or, when no
    design yields a key (every design is then :meth:`DesignFigures.none`), what stopped each
    segment count."""

    distance_km: float
    structure: Structure
    t_trunc: int
    best: DesignFigures
    uniform: DesignFigures
    no_cutoff: DesignFigures
    free: DesignFigures
    history: Float[np.ndarray, " steps"]
    """The winner's search objective per step (log rate)."""
    reason: Optional[dict[Any, str]]



@dataclass(frozen=True)
class Design:
    """A fixed physical design: ``structure``, ``lengths_km`` (n), ``cutoff`` (steps per node),
    ``cutoff_s`` (seconds), ``t_trunc`` (steps), link knobs ``alpha`` / ``modes`` (or None)."""

    structure: Structure
    lengths_km: tuple
    cutoff: tuple
    cutoff_s: tuple
    t_trunc: int
    alpha: Optional[float]
    modes: Optional[float]

    def to_json(self) -> dict:
        pos = np.concatenate([[0.0], np.cumsum(self.lengths_km)])
        return {"segments": self.structure.n, "positions_km": [float(x) for x in pos],
                "protocol": self.structure.text, "rounds": list(self.structure.rounds),
                "cutoff": [int(round(c)) for c in self.cutoff], "cutoff_s": [float(c) for c in self.cutoff_s]}


def design_of(result, who: str = "sensitivity / requirements need") -> Design:
    """The design of a physical :class:`qnjax.OptimizeResult`; ``TypeError`` ("``who`` the
    result of a physical scenario") for any other result."""
    if getattr(result, "kind", None) != "physical":
        raise TypeError(f"{who} the result of a physical scenario")
    d = result.design
    rounds = tuple(int(r) for r in np.asarray(d["rounds"]))
    st = Structure(int(d["segments"]), rounds, result.protocol)
    return Design(st, tuple(float(x) for x in np.asarray(d["lengths_km"])),
                  tuple(float(c) for c in np.asarray(d["cutoff"]).reshape(-1)),
                  tuple(float(c) for c in np.asarray(d["cutoff_s"]).reshape(-1)), int(d["t_trunc"]),
                  float(d["alpha"]) if "alpha" in d else None,
                  float(d["modes"]) if "modes" in d else None)


__all__ = ["DesignFigures", "DistanceResult", "Design", "design_of"]
