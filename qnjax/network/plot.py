"""Map of a network plan: fiber at its coordinates, repeater sites, routes coloured by key rate,
and a table of demands (needs matplotlib: ``pip install 'qnjax[plot]'``)."""

from __future__ import annotations


import networkx as nx
import numpy as np


def plot_plan(res, G: nx.Graph, path) -> None:
    """Save a figure of :class:`~qnjax.network.NetworkPlan` ``res`` on network ``G`` to ``path``
    (PNG, PDF or SVG; an existing file is replaced only if it is an image of that format).
    Nodes without coordinates are placed by a spring layout."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    pos = {n: d["pos"] for n, d in G.nodes(data=True) if "pos" in d}
    if len(pos) < G.number_of_nodes():
        pos = nx.spring_layout(G, weight="length_km", seed=0)
    fig, (ax, tx) = plt.subplots(1, 2, figsize=(15, 7.5), gridspec_kw={"width_ratios": [1.15, 1]})
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
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.6, label="key rate (bits/s)")
    ax.set_title(f"{G.graph.get('name') or 'network'}: {len(res.repeaters)} site(s), objective {res.objective}")
    ax.set_aspect("equal" if len(pos) and all(abs(p[1]) <= 90 for p in pos.values()) else "auto")
    ax.axis("off")
    tx.axis("off")
    rows = [[":".join(d.pair), f"{sum(d.segments_km):.0f}", ",".join(d.repeaters) or "–", d.protocol,
             f"{d.skr_bits_per_s:.3g}", f"{d.plob_bits_per_s:.3g}"] for d in res.demands]
    tab = tx.table(cellText=rows, colLabels=["pair", "km", "repeaters", "protocol", "bits/s", "PLOB"],
                   loc="upper center", cellLoc="left")
    tab.auto_set_font_size(False)
    tab.set_fontsize(7)
    tab.auto_set_column_width(list(range(6)))
    fig.tight_layout()
    from .._style import save

    save(fig, path)


__all__ = ["plot_plan"]
