"""Fiber networks in: networkx graphs, topohub keys, node-link JSON, GraphML and TOML files.

Every loader returns a normalised undirected :class:`networkx.Graph` whose nodes are
strings (the node names), with edge attribute ``length_km`` (fiber length, km) and, where
known, node attributes ``pos = (longitude, latitude)`` in degrees and ``repeater_site``
(bool, default ``True``). Parallel edges keep the shortest fiber. Hardware overrides given
as node attributes (``t_coh_s``, ``t1_s``, ``t2_s``, ``swap_success``,
``gate_depolarizing``, ``measurement_error``) are kept as they are.

Where an edge has no length but both ends have coordinates, the length is the
great-circle distance times ``route_factor`` (default 1.5: fiber follows roads and
rights of way, not geodesics; measured ratios of fiber to geodesic length are typically
1.2 to 1.6).
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Any

import networkx as nx

DEFAULT_ROUTE_FACTOR = 1.5
EARTH_RADIUS_KM = 6371.0


class NetworkError(ValueError):
    """A network or demand the planner cannot use; the message names the culprit."""


def great_circle_km(a, b) -> float:
    """Haversine distance (km) between ``(longitude, latitude)`` points in degrees."""
    lon1, lat1, lon2, lat2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def _pos(d: dict):
    p = d.get("pos")
    if p is None and "Longitude" in d and "Latitude" in d:  # Topology Zoo GraphML
        p = (d["Longitude"], d["Latitude"])
    if p is None and "lon" in d and "lat" in d:
        p = (d["lon"], d["lat"])
    if p is None and "x" in d and "y" in d:
        p = (d["x"], d["y"])
    if isinstance(p, str):  # GraphML keeps lists as text
        try:
            p = json.loads(p)
        except ValueError:
            return None
    try:
        return (float(p[0]), float(p[1])) if p is not None else None
    except (TypeError, ValueError, IndexError):
        return None


def _bool(v, where: str) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return v.strip().lower() in ("true", "1", "yes")
    raise NetworkError(f"{where}: repeater_site must be true or false; got {v!r}")


def normalize(graph: Any, *, length_attr: str = "dist", route_factor: float = DEFAULT_ROUTE_FACTOR,
              name_attr: str | None = "name") -> nx.Graph:
    """Normalise any networkx graph (see the module docstring).

    Args:
        graph: a networkx (multi)graph, directed or not (directions are dropped).
        length_attr: edge attribute holding the fiber length in km (``length_km`` also accepted).
        route_factor: fiber length per great-circle km for edges without a length (>= 1).
        name_attr: node attribute to use as the node name when every node has a distinct one.
    """
    if not isinstance(graph, nx.Graph):
        raise NetworkError(f"network: expected a networkx graph; got {type(graph).__name__}")
    if not (isinstance(route_factor, (int, float)) and route_factor >= 1):
        raise NetworkError(f"route_factor must be a number >= 1; got {route_factor!r}")
    if graph.number_of_nodes() == 0:
        raise NetworkError("network: the graph has no nodes")
    names = {n: str(n) for n in graph.nodes}
    if name_attr:
        cand = [graph.nodes[n].get(name_attr) for n in graph.nodes]
        if all(isinstance(c, str) and c for c in cand) and len(set(cand)) == len(cand):
            names = dict(zip(graph.nodes, cand))
    if len(set(names.values())) != len(names):
        raise NetworkError("network: node names are not unique once written as text")
    g = nx.Graph(name=str(graph.graph.get("name", "")))
    for n, d in graph.nodes(data=True):
        attrs = {k: v for k, v in d.items() if k not in ("pos", "repeater_site")}
        p = _pos(d)
        if p is not None:
            attrs["pos"] = p
        attrs["repeater_site"] = _bool(d.get("repeater_site", True), f"node {names[n]!r}")
        g.add_node(names[n], **attrs)
    for u, v, d in graph.edges(data=True):
        a, b = names[u], names[v]
        if a == b:
            continue
        length = d.get(length_attr, d.get("length_km"))
        if length is not None:
            try:
                length = float(length)
            except (TypeError, ValueError):
                raise NetworkError(f"edge {a}–{b}: {length_attr} = {length!r} is not a number") from None
            if not (math.isfinite(length) and length > 0):
                raise NetworkError(f"edge {a}–{b}: {length_attr} = {length!r} must be a positive length in km")
        else:
            pa, pb = g.nodes[a].get("pos"), g.nodes[b].get("pos")
            if pa is None or pb is None:
                raise NetworkError(f"edge {a}–{b} has no {length_attr!r} length and its nodes have no "
                                   "coordinates; give every edge a length in km")
            length = max(great_circle_km(pa, pb) * route_factor, 1e-3)
        if g.has_edge(a, b) and g.edges[a, b]["length_km"] <= length:
            continue
        g.add_edge(a, b, length_km=length)
    return g


def _from_node_link(data: dict, where: str):
    if not isinstance(data, dict) or "nodes" not in data:
        raise NetworkError(f"{where}: not node-link graph data (needs 'nodes' and 'links' or 'edges')")
    key = "edges" if "edges" in data else "links"
    if key not in data:
        raise NetworkError(f"{where}: node-link data has no 'links' or 'edges'")
    try:
        return nx.node_link_graph(data, edges=key)
    except (KeyError, TypeError, nx.NetworkXError) as exc:
        raise NetworkError(f"{where}: cannot read node-link data ({exc})") from None


def _from_toml(data: dict, where: str) -> nx.Graph:
    nodes, links = data.get("nodes"), data.get("links")
    if not isinstance(nodes, list) or not isinstance(links, list):
        raise NetworkError(f"{where}: a network TOML needs [[nodes]] (with name) and [[links]] (with a, b)")
    g = nx.Graph(name=str(data.get("name", "")))
    for i, nd in enumerate(nodes):
        if not isinstance(nd, dict) or "name" not in nd:
            raise NetworkError(f"{where}: nodes[{i}] needs a name")
        nd = dict(nd)
        name = str(nd.pop("name"))
        if "lon" in nd and "lat" in nd:
            nd["pos"] = (float(nd.pop("lon")), float(nd.pop("lat")))
        g.add_node(name, **nd)
    for i, ln in enumerate(links):
        if not isinstance(ln, dict) or "a" not in ln or "b" not in ln:
            raise NetworkError(f"{where}: links[{i}] needs a and b (node names)")
        ln = dict(ln)
        a, b = str(ln.pop("a")), str(ln.pop("b"))
        for n in (a, b):
            if n not in g:
                raise NetworkError(f"{where}: links[{i}] names unknown node {n!r}")
        g.add_edge(a, b, **ln)
    return g


def load_network(source: Any, *, length_attr: str = "dist",
                 route_factor: float = DEFAULT_ROUTE_FACTOR) -> nx.Graph:
    """A fiber network from a networkx graph, a topohub key (``"topozoo/Surfnet"``,
    ``"sndlib/germany50"``; needs ``pip install qnjax[networks]``), or a file: node-link
    ``.json``, ``.graphml`` or ``.toml`` (``[[nodes]]`` with ``name``, optional ``lon``/``lat``,
    ``repeater_site`` and hardware overrides; ``[[links]]`` with ``a``, ``b`` and
    ``length_km``). TOML links use ``length_km`` unless ``length_attr`` names another key.

    Raises :class:`NetworkError` (a ``ValueError``) with a one-line message.
    """
    if isinstance(source, nx.Graph):
        return normalize(source, length_attr=length_attr, route_factor=route_factor)
    if not isinstance(source, (str, Path)):
        raise NetworkError(f"network: expected a graph, a file or a topohub key; got {type(source).__name__}")
    p = Path(source)
    if p.is_file():
        suffix = p.suffix.lower()
        try:
            text = p.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise NetworkError(f"{p}: cannot read ({exc})") from None
        if suffix == ".json":
            try:
                data = json.loads(text)
            except ValueError as exc:
                raise NetworkError(f"{p}: not valid JSON ({exc})") from None
            g = _from_node_link(data, str(p))
        elif suffix in (".graphml", ".xml"):
            try:
                g = nx.parse_graphml(text)
            except Exception as exc:  # networkx raises several parser errors
                raise NetworkError(f"{p}: not a GraphML graph ({type(exc).__name__})") from None
        elif suffix == ".toml":
            try:
                data = tomllib.loads(text)
            except tomllib.TOMLDecodeError as exc:
                raise NetworkError(f"{p}: not valid TOML ({exc})") from None
            g = _from_toml(data, str(p))
            if length_attr == "dist":
                length_attr = "length_km"
        else:
            raise NetworkError(f"{p}: unknown network file type {suffix!r}; use .json (node-link), "
                               ".graphml or .toml")
        return normalize(g, length_attr=length_attr, route_factor=route_factor)
    if isinstance(source, str) and "/" in source and not p.suffix:
        try:
            import topohub
        except ImportError:
            raise NetworkError(f"network {source!r}: topohub keys need the optional extra: "
                               "pip install 'qnjax[networks]'") from None
        try:
            data = topohub.get(source)
        except (KeyError, FileNotFoundError, OSError):
            raise NetworkError(f"network {source!r}: no such topohub topology "
                               "(keys look like topozoo/Surfnet or sndlib/germany50)") from None
        g = _from_node_link(data, source)
        g.graph.setdefault("name", source)
        return normalize(g, length_attr=length_attr, route_factor=route_factor)
    raise NetworkError(f"network {str(source)!r}: no such file, and not a topohub key (group/name)")


__all__ = ["NetworkError", "load_network", "normalize", "great_circle_km", "DEFAULT_ROUTE_FACTOR"]
