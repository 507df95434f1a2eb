"""The result pytree of :func:`qnjax.optimize`."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import numpy as np
from jaxtyping import Array, Float


def _py(x):
    """JSON-friendly Python value."""
    a = np.asarray(x)
    if a.ndim == 0:
        v = a.item()
        if isinstance(v, float) and not np.isfinite(v):
            return None if np.isnan(v) else ("inf" if v > 0 else "-inf")
        return v
    return [_py(v) for v in a]


class OptimizeResult(eqx.Module):
    """Best design found, its exact figures, and the search history.

    Attributes:
        kind: ``"step"`` or ``"physical"``.
        protocol: the winning protocol (level tuple, or a Link/Swap/Distill tree).
        protocol_text: the protocol as text (``"swap,distill,swap"`` or ``S(L0,L1)``).
        design: arrays of the design. Step model: ``cutoff`` (per level, integer steps).
            Physical: ``segments``, ``positions_km`` (stations 0..n), ``lengths_km``,
            ``rounds`` (purification rounds per level, bottom-up), ``cutoff`` (per node in
            post-order, integer steps), ``cutoff_s``, ``clock_s``, ``p_gen`` per segment.
        secret_key_rate: exact clipped BB84 key rate of the integer design, bits per step
            (physical: per clock step = per channel use).
        skr_bits_per_s: bits per second (physical; ``nan`` for the step model).
        mean_time: mean delivery time, steps. mean_fidelity / mean_werner: of the mean
            delivered state. key_fraction: clipped BB84 fraction. coverage: Σ pmf.
        history: best surrogate objective over starts at every Adam step (winning structure).
        baselines: reference figures: step model ``no_cutoff_secret_key_rate`` and
            ``relaxed_secret_key_rate`` (bits/step); physical ``uniform_spacing_skr_bits_per_s``
            (best design with repeaters kept uniform), ``no_cutoff_skr_bits_per_s``,
            ``free_spacing_*`` (best start that moved the repeaters; the reported design is the
            better of it and uniform spacing), ``plob_per_channel_use``, ``tgw_per_channel_use``
            (repeaterless bounds at the same total distance), ``skr_per_channel_use`` (bits per
            clock step and optical mode), ``no_repeater_per_channel_use`` (one segment over the
            whole distance, same hardware).
        scheme: the elementary-link scheme in words (physical), e.g. "midpoint single-click".
        notes: caveats to print with the result, e.g. when a rate without repeaters exceeds PLOB.
        candidates: one summary dict per structure tried (protocol text, key rate, ...).
        chain: the winning design as a :class:`qnjax.Chain` in steps (step model: the problem's
            parameters and the integer cut-offs; physical: :meth:`qnjax.Chain.from_scenario`);
            ``qnjax.delivery(chain=result.chain, t_trunc=...)`` reproduces the figures;
            ``None`` for a one-segment design without purification (no node to evaluate).
        wall_s: wall time of the call, seconds (compilation included).
    """

    kind: str = eqx.field(static=True)
    protocol: Any = eqx.field(static=True)
    protocol_text: str = eqx.field(static=True)
    design: dict[str, Array]
    secret_key_rate: Float[Array, ""]
    skr_bits_per_s: Float[Array, ""]
    mean_time: Float[Array, ""]
    mean_fidelity: Float[Array, ""]
    mean_werner: Float[Array, ""]
    key_fraction: Float[Array, ""]
    coverage: Float[Array, ""]
    history: Float[Array, " steps"]
    baselines: dict[str, Array]
    candidates: tuple = eqx.field(static=True)
    wall_s: float = eqx.field(static=True)
    scheme: str = eqx.field(static=True, default="")
    notes: tuple = eqx.field(static=True, default=())
    chain: Any = None

    def to_json(self) -> dict:
        """A JSON-ready dict with the keys the CLI prints."""
        out: dict[str, Any] = {"kind": self.kind, "protocol": self.protocol_text}
        for k, v in self.design.items():
            out[k] = _py(v)
        if "cutoff" in out:
            out["cutoff"] = [int(c) for c in np.asarray(self.design["cutoff"]).reshape(-1)]
        out.update(
            secret_key_rate=_py(self.secret_key_rate), mean_time=_py(self.mean_time),
            mean_werner=_py(self.mean_werner), mean_fidelity=_py(self.mean_fidelity),
            key_fraction=_py(self.key_fraction), coverage=_py(self.coverage),
        )
        if self.kind == "physical":
            out["skr_bits_per_s"] = _py(self.skr_bits_per_s)
            out["skr_per_channel_use"] = _py(self.secret_key_rate)  # per mode: see baselines
            out["scheme"] = self.scheme
            out["notes"] = list(self.notes)
        for k, v in self.baselines.items():
            out[k] = _py(v)
        out["candidates"] = [dict(c) for c in self.candidates]
        out["history"] = _py(self.history)
        out["wall_s"] = round(float(self.wall_s), 3)
        return out
