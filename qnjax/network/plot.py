"""Map of a network plan: fiber at its coordinates, repeater sites, routes coloured by key rate,
and a table of demands (needs matplotlib: ``pip install 'qnjax[plot]'``)."""

from __future__ import annotations


import networkx as nx
import numpy as np


def hardware_lines(hw) -> list[str]:
    """The caption's summary of a :class:`~qnjax.network.NetworkHardware` (units included)."""
    if hw is None:
        return []
    h, st = hw.heralding, hw.repeater
    m = st.memory
    mem = (f"T1 {m.t1_s:g} s, T2 {m.t2_s:g} s" if m.t_coh_s is None else f"t_coh {m.t_coh_s:g} s")
    return [f"hardware: {h.scheme.replace('_', '-')} heralding, efficiency {h.efficiency:g}, "
            f"fiber {hw.attenuation_db_per_km:g} dB/km, prep {h.prep_time_s * 1e6:g} µs; "
            f"memories {mem}, swap success {st.swap_success:g}, gate depolarizing "
            f"{st.gate_depolarizing:g}, measurement error {st.measurement_error:g}"]


def plot_plan(res, G: nx.Graph, path, hardware=None) -> None:
    """Save a figure of :class:`~qnjax.network.NetworkPlan` ``res`` on network ``G`` to ``path``
    (PNG, PDF or SVG; an existing file is replaced only if it is an image of that format):
    routes coloured by key rate (bits/s, log scale), repeater sites starred, a table of demands,
    and a caption with the search and, when given, the ``hardware``
    (:class:`~qnjax.network.NetworkHardware`). A plan without repeater sites or without key says
    so in the title (no empty legend or colour bar). Nodes without coordinates are placed by a
    spring layout."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    from .._style import caption, eng, figure, save

    pos = {n: d["pos"] for n, d in G.nodes(data=True) if "pos" in d}
    if len(pos) < G.number_of_nodes():
        pos = nx.spring_layout(G, weight="length_km", seed=0)
    fig, (ax, tx) = figure(2, width=7.5, height=7.5)
    nx.draw_networkx_edges(G, pos, ax=ax, edge_color="0.8", width=1.0)
    nx.draw_networkx_nodes(G, pos, ax=ax, node_size=12, node_color="0.55")
    rates = np.array([d.skr_bits_per_s for d in res.demands])
    pos_r = rates[rates > 0]
    norm = LogNorm(vmin=max(pos_r.min(), 1e-9) if pos_r.size else 1e-3,
                   vmax=max(pos_r.max(), 1e-9) * 1.0001 if pos_r.size else 1.0)
    cmap = plt.get_cmap("viridis")
    for d, r in zip(res.demands, rates):
        xy = np.array([pos[n] for n in d.path])
        ax.plot(xy[:, 0], xy[:, 1], "-", lw=3, alpha=0.75, color=cmap(norm(r)) if r > 0 else "red")
        ax.plot(xy[[0, -1], 0], xy[[0, -1], 1], "s", ms=7, color="k")
    if res.repeaters:
        xy = np.array([pos[n] for n in res.repeaters])
        ax.plot(xy[:, 0], xy[:, 1], "*", ms=17, color="C3", mec="k", label="repeater site")
        for n in res.repeaters:
            ax.annotate(n, pos[n], xytext=(4, 4), textcoords="offset points", fontsize=8)
        ax.legend(loc="lower left")
    if pos_r.size:
        fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.6, label="key rate (bits/s)")
    sites = f"{len(res.repeaters)} repeater site(s)" if res.repeaters else "no repeater sites (direct links)"
    key = "" if pos_r.size == rates.size else (" — no key for any demand" if not pos_r.size
                                                 else f" — no key for {rates.size - pos_r.size} demand(s) (red)")
    ax.set_title(f"{G.graph.get('name') or 'network'}: {sites}, objective {res.objective}{key}", fontsize=9)
    ax.set_aspect("equal" if len(pos) and all(abs(p[1]) <= 90 for p in pos.values()) else "auto")
    ax.axis("off")
    tx.axis("off")
    rows = [[":".join(d.pair), f"{sum(d.segments_km):.0f}", ",".join(d.repeaters) or "none", d.protocol,
             eng(d.skr_bits_per_s) if d.skr_bits_per_s > 0 else "no key", eng(d.plob_bits_per_s)]
            for d in res.demands]
    tab = tx.table(cellText=rows, colLabels=["pair", "km", "repeaters", "protocol", "key bits/s", "PLOB bits/s"],
                   loc="upper center", cellLoc="left")
    tab.auto_set_font_size(False)
    tab.set_fontsize(7)
    tab.auto_set_column_width(list(range(6)))
    fig.tight_layout()
    caption(fig, [f"{len(res.demands)} demand(s); {res.method} search, "
                  f"{'optimal' if res.optimal else 'best found (bound ' + eng(res.bound, 'bits/s') + ')'}; "
                  f"{res.sharing} memories; PLOB: repeaterless bound of the same route and attempt rate",
                  *hardware_lines(hardware)])
    save(fig, path)


__all__ = ["plot_plan", "hardware_lines"]
