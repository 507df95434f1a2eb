"""Honest labels: which heralding scheme a figure belongs to, what it idealizes, and a note
whenever a rate without repeaters exceeds the repeaterless PLOB bound.

PLOB (Pirandola, Laurenza, Ottaviani & Banchi, Nat. Commun. 8, 15043 (2017)) bounds any
point-to-point protocol over a lossy channel of the *total* distance. A midpoint station that
measures photons (single- or double-click heralding) is a relay, not a point-to-point channel:
single-click links scale as √η and can exceed PLOB without memories, as twin-field QKD does
(Lucamarini, Yuan, Dynes & Shields, Nature 557, 400 (2018)), until dark counts take over.
"""

from __future__ import annotations

import numpy as np

from .problems import SCHEME_LABELS, PhysicalScenario


def scheme_label(scenario: PhysicalScenario) -> str:
    """The elementary-link scheme in words, with its multiplexing (e.g. ``"midpoint
    single-click, 4 modes"``)."""
    label = SCHEME_LABELS[scenario.heralding.scheme]
    mux = scenario.multiplexing
    if mux.modes > 1:
        label += f", {mux.modes} modes"
    if mux.memories > 1:
        label += f", {mux.memories} parallel chains"
    return label


def idealizations(scenario: PhysicalScenario) -> list[str]:
    """What the scenario's link model leaves out (see docs/scenario.md for the full list)."""
    h = scenario.heralding
    out = []
    if h.dark_count_rate_hz == 0:
        out.append("detectors without dark counts")
    if h.scheme == "single_click" and h.phase_noise_rad == 0:
        out.append("a perfectly stable optical phase")
    eff = h.efficiency * h.detector_efficiency
    if eff >= 0.5:
        out.append(f"a per-photon efficiency of {eff:.3g} (emission × coupling × detection)")
    return out


def plob_note(scenario: PhysicalScenario, distances, no_repeater_per_use, plob) -> str | None:
    """A note if the rate without repeaters (bits per channel use, one per distance) exceeds
    PLOB at the same total distance; ``None`` otherwise."""
    d = np.atleast_1d(np.asarray(distances, float))
    with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 where no key: not over PLOB
        ratio = np.asarray(no_repeater_per_use, float) / np.asarray(plob, float)
    over = np.isfinite(ratio) & (ratio > 1)
    if not over.any():
        return None
    span = f"{d[over].min():g} km" if over.sum() == 1 else f"{d[over].min():g}–{d[over].max():g} km"
    text = (f"without repeaters the {SCHEME_LABELS[scenario.heralding.scheme]} link exceeds PLOB "
            f"(up to {ratio[over].max():.3g}x at {span})")
    if scenario.heralding.scheme == "direct":
        return text + ": a point-to-point link cannot; check the scenario's efficiencies"
    text += (": the midpoint station is a relay, not a point-to-point channel, so PLOB does not "
             "bound it (as in twin-field QKD)")
    ideal = idealizations(scenario)
    if ideal:
        text += "; this result assumes " + ", ".join(ideal)
    return text


__all__ = ["scheme_label", "idealizations", "plob_note"]


def add_notes_to_figure(fig, notes, width: int = 140) -> None:
    """Print ``notes`` under a figure (wrapped, small) and lay the axes out above them."""
    import textwrap

    lines = [ln for note in notes for ln in textwrap.wrap("note: " + note, width)]
    if not lines:
        fig.tight_layout()
        return
    h = 0.03 * len(lines) + 0.02
    fig.text(0.01, 0.01, "\n".join(lines), fontsize=7, va="bottom", ha="left", color="0.25")
    fig.tight_layout(rect=(0, h, 1, 1))


def hardware_summary(scenario: PhysicalScenario) -> list[str]:
    """The scheme and hardware of a scenario in two short lines, for a figure's caption."""
    h, rep, mux = scenario.heralding, scenario.repeater, scenario.multiplexing
    mem = rep.memory
    t_mem = (f"T = {mem.t_coh_s:g} s" if mem.t_coh_s is not None else f"T1 = {mem.t1_s:g} s, T2 = {mem.t2_s:g} s")
    line1 = (f"{scheme_label(scenario)}; fiber {scenario.attenuation_db_per_km:g} dB/km; efficiency "
             f"{h.efficiency:g} x detector {h.detector_efficiency:g}; visibility {h.visibility:g}; "
             f"dark counts {h.dark_count_rate_hz:g} Hz")
    line2 = (f"memories {t_mem}; swap success {rep.swap_success:g}; gate depolarizing "
             f"{rep.gate_depolarizing:g}; measurement error {rep.measurement_error:g}"
             + (f"; {mux.modes} modes x {mux.mode_time_s:g} s" if mux.modes > 1 else "")
             + (f"; {len(scenario.stations)} station override(s)" if scenario.stations else ""))
    return [line1, line2]
