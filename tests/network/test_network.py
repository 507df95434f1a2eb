"""Network planning (qnjax.plan): loaders, the optimum against exhaustive search with the exact
engine, re-evaluation of every reported demand from its JSON, shared sites, bad input."""

from __future__ import annotations

import itertools
import json
import math

import networkx as nx
import numpy as np
import pytest

import qnjax
from qnjax.network import NetworkError, NetworkHardware, default_hardware, load_network, plan
from qnjax.network.chains import parse_tree, swap_shapes
from qnjax.network.search import time_shares
from qnjax.design.problems import Heralding, Memory, Station
from qnjax.protocol import format_tree, internal_nodes

# Short segments (mean delivery well inside one truncation bucket) keep the compile count small.
EDGES = [("A", "B", 18.0), ("B", "C", 22.0), ("C", "D", 20.0), ("A", "E", 35.0), ("E", "D", 33.0),
         ("C", "F", 15.0), ("F", "G", 25.0), ("E", "H", 12.0)]
PERFECT = NetworkHardware(0.2, Heralding("double_click", 0.9, 0.95, prep_time_s=1e-6),
                          Station(Memory(t_coh_s=math.inf), 0.9, 0.01, 0.005))
NOISY = NetworkHardware(0.2, Heralding("double_click", 0.9, 0.95, prep_time_s=1e-6),
                        Station(Memory(t_coh_s=0.01), 1.0, 0.01, 0.005))


def small_graph() -> nx.Graph:
    g = nx.Graph()
    for u, v, km in EDGES:
        g.add_edge(u, v, dist=km)
    return g


# --------------------------------------------------------------------------- reference
def chain_rate(hw, seg_km, tree, cutoff_steps=None, station=None):
    """Key rate (bits/s) of one chain from public qnjax functions only."""
    st = station or hw.repeater
    h = hw.heralding
    link = qnjax.double_click(np.asarray(seg_km, float), hw.attenuation_db_per_km, h.efficiency, h.visibility,
                              h.prep_time_s)
    clock = float(np.max(link.duration_s))
    n = len(seg_km)
    K = len(internal_nodes(tree))
    if K == 0:
        return float(qnjax.key_fraction_bb84(link.lam0[0]) * link.p_gen[0] / clock), clock
    rates = np.tile(np.asarray(st.memory.walsh_rates_per_s()) * clock, (n + 1, 1))
    nodes = internal_nodes(tree)
    is_swap = [type(v).__name__ == "Swap" for v in nodes]
    r = qnjax.delivery(tree, p_gen=link.p_gen, lam0=link.lam0,
                       p_swap=np.array([st.swap_success if s else 1.0 for s in is_swap]),
                       rates=qnjax.delivery_station_rates(tree, rates),
                       bsm_noise=np.array([st.bsm_walsh() if s else (1.0,) * 4 for s in is_swap]),
                       cutoff=None if cutoff_steps is None else np.asarray(cutoff_steps, float),
                       t_trunc="auto", coverage_target=1 - 1e-12, warn=False)
    return float(r.key_fraction / (r.mean_time * clock)), clock


_CHAIN_CACHE: dict = {}


def exhaustive(g, pairs, hw, budget, max_repeaters):
    """Max-min over every repeater set of `budget` nodes, every simple path and every usable
    subset and swap-tree shape, without cut-offs (optimal when memories do not decay)."""
    cache = _CHAIN_CACHE.setdefault(hw, {})

    def best(seg):
        if seg not in cache:
            cache[seg] = max(chain_rate(hw, seg, t)[0] for t in swap_shapes(0, len(seg)))
        return cache[seg]

    best_val, best_sets = -1.0, []
    for R in itertools.combinations(sorted(g.nodes), budget):
        rates = []
        for a, b in pairs:
            top = 0.0
            for path in nx.all_simple_paths(g, a, b):
                inner = [i for i in range(1, len(path) - 1) if path[i] in R]
                cum = np.concatenate([[0], np.cumsum([g.edges[u, v]["dist"] for u, v in zip(path, path[1:])])])
                for k in range(min(max_repeaters, len(inner)) + 1):
                    for sub in itertools.combinations(inner, k):
                        cuts = (0,) + sub + (len(path) - 1,)
                        seg = tuple(float(cum[j] - cum[i]) for i, j in zip(cuts, cuts[1:]))
                        top = max(top, best(seg))
            rates.append(top)
        v = min(rates)
        if v > best_val * (1 + 1e-9):
            best_val, best_sets = v, [set(R)]
        elif v >= best_val * (1 - 1e-9):
            best_sets.append(set(R))
    return best_val, best_sets


# --------------------------------------------------------------------------- loaders
def test_loaders_agree(tmp_path):
    g = small_graph()
    data = nx.node_link_data(g, edges="links")
    (tmp_path / "g.json").write_text(json.dumps(data))
    nx.write_graphml(g, tmp_path / "g.graphml")
    toml = "\n".join(["[[nodes]]\nname = \"%s\"" % n for n in g.nodes]
                     + ["[[links]]\na = \"%s\"\nb = \"%s\"\nlength_km = %g" % (u, v, d["dist"])
                        for u, v, d in g.edges(data=True)])
    (tmp_path / "g.toml").write_text(toml)
    ref = load_network(g)
    for f in ("g.json", "g.graphml", "g.toml"):
        h = load_network(tmp_path / f)
        assert sorted(h.nodes) == sorted(ref.nodes)
        assert {frozenset((u, v)): d["length_km"] for u, v, d in h.edges(data=True)} == \
               {frozenset((u, v)): d["length_km"] for u, v, d in ref.edges(data=True)}


def test_coordinates_give_great_circle_times_route_factor(tmp_path):
    (tmp_path / "c.toml").write_text(
        '[[nodes]]\nname = "Delft"\nlon = 4.36\nlat = 52.01\n[[nodes]]\nname = "Amsterdam"\nlon = 4.90\nlat = 52.37\n'
        '[[links]]\na = "Delft"\nb = "Amsterdam"\n')
    g = load_network(tmp_path / "c.toml", route_factor=1.5)
    from qnjax.network.load import great_circle_km

    gc = great_circle_km((4.36, 52.01), (4.90, 52.37))
    assert 50 < gc < 60
    assert g.edges["Delft", "Amsterdam"]["length_km"] == pytest.approx(1.5 * gc)


def test_topohub_surfnet_offline():
    pytest.importorskip("topohub")
    g = load_network("topozoo/Surfnet")
    assert (g.number_of_nodes(), g.number_of_edges()) == (50, 68)
    assert "Amsterdam" in g and all(d["length_km"] > 0 for _, _, d in g.edges(data=True))
    assert all("pos" in d for _, d in g.nodes(data=True))


def test_tree_text_round_trip():
    for n in range(1, 5):
        for t in swap_shapes(0, n):
            assert parse_tree(format_tree(t)) == t
    assert format_tree(parse_tree("S(D(L0),S(L1,L2))")) == "S(D(L0),S(L1,L2))"


def test_compact_padded_levels_match_engine():
    """The padded program that computes only the node operations a level needs
    (``level_widths``: 3 for a caterpillar over 4 segments instead of the complete tree's 7)
    gives the exact engine's figures for every swap tree over 4 segments (depths 2 and 3, with
    and without trivial links)."""
    import jax
    import jax.numpy as jnp

    from qnjax.exact import delivery, delivery_station_rates
    from qnjax.network.shapes import level_widths, swap_depth
    from qnjax.design.padded import evaluate_padded, layout, layout_arrays, node_params

    for n in (4,):
        rng = np.random.default_rng(n)
        p = rng.uniform(0.2, 0.5, n)
        lam0 = rng.dirichlet([300, 2, 1, 3], n)
        st_r = np.concatenate([np.zeros((n + 1, 1)), rng.uniform(0, 0.01, (n + 1, 3))], 1)
        ps = rng.uniform(0.7, 1, n + 1)
        bsm = np.concatenate([np.ones((n + 1, 1)), rng.uniform(0.97, 1, (n + 1, 3))], 1)
        cut = rng.uniform(3, 40, n - 1)
        for tree in swap_shapes(0, n):
            d = swap_depth(tree)
            sta = [v.left.span[1] for v in internal_nodes(tree)]
            ref = delivery(tree, p_gen=p, lam0=lam0, p_swap=ps[sta], rates=delivery_station_rates(tree, st_r),
                           cutoff=cut, bsm_noise=bsm[sta], t_trunc=256, warn=False)
            lay = {k: jnp.asarray(v) for k, v in layout_arrays(layout(tree, d)).items()}
            prm = node_params(lay, *(jnp.asarray(a) for a in (p, lam0, st_r, ps, bsm, cut)))
            got = evaluate_padded(d, 256, jax.tree.map(lambda a: a[None], prm), level_widths(d, n))
            for k in ("mean_time", "mean_fidelity", "key_fraction_smooth", "coverage"):
                np.testing.assert_allclose(np.asarray(getattr(got, k))[0], float(getattr(ref, k)), rtol=1e-9)
    assert level_widths(3, 4) == (1, 1, 1) and level_widths(2, 4) == (2, 1) and level_widths(2, 3) == (2, 1)


# --------------------------------------------------------------------------- the optimum
@pytest.mark.parametrize("budget", [2])
def test_plan_finds_exhaustive_optimum(budget):
    g = small_graph()
    pairs = [("A", "D"), ("A", "G")]
    res = plan(g, "A:D,A:G", hardware=PERFECT, budget=budget, k_paths=20, max_repeaters=2)
    ref, sets = exhaustive(g, pairs, PERFECT, budget, 2)
    assert res.min_rate == pytest.approx(ref, rel=1e-9)
    assert res.optimal and res.method == "exhaustive"
    assert any(set(res.repeaters) <= R for R in sets)


def test_branch_and_bound_agrees_with_exhaustive():
    g = small_graph()
    a = plan(g, "A:D,A:G,B:H", hardware=PERFECT, budget=2, k_paths=20, max_repeaters=2)
    b = plan(g, "A:D,A:G,B:H", hardware=PERFECT, budget=2, k_paths=20, max_repeaters=2, exhaustive_limit=0)
    assert b.method == "branch-and-bound" and b.optimal
    assert b.min_rate == pytest.approx(a.min_rate, rel=1e-9)
    assert b.sum_rate == pytest.approx(a.sum_rate, rel=1e-9)


def test_every_demand_reevaluates_from_its_json():
    g = small_graph()
    res = plan(g, "A:D,A:G", hardware=NOISY, budget=2, max_repeaters=2)
    doc = json.loads(json.dumps(res.to_json()))
    assert set(doc) >= {"repeaters", "objective", "wall_s", "demands"}
    for d in doc["demands"]:
        assert set(d) >= {"pair", "path", "repeaters", "segments_km", "protocol", "cutoff_s",
                          "skr_bits_per_s", "plob_bits_per_s"}
        assert set(d["repeaters"]) <= set(doc["repeaters"]) and set(d["repeaters"]) <= set(d["path"])
        tree = parse_tree(d["protocol"])
        h = NOISY.heralding
        clock = float(np.max(qnjax.double_click(np.asarray(d["segments_km"]), 0.2, h.efficiency, h.visibility,
                                                h.prep_time_s).duration_s))
        cut = [math.inf if c is None else round(c / clock) for c in d["cutoff_s"]]
        rate, _ = chain_rate(NOISY, d["segments_km"], tree, cut if cut else None)
        assert rate == pytest.approx(d["skr_bits_per_s"], rel=1e-9)
        eta = 10 ** (-0.2 * sum(d["segments_km"]) / 10)
        assert d["plob_bits_per_s"] == pytest.approx(-math.log2(1 - eta) / clock, rel=1e-9)
    # cut-offs matter with 10 ms memories: some chain uses a finite one, and beats none
    assert any(c is not None for d in doc["demands"] for c in d["cutoff_s"])


# --------------------------------------------------------------------------- shared sites
def test_time_shares_colour_conflicts():
    # demands 0 and 1 share site X, 1 and 2 share Y, 3 is alone
    s = time_shares([("X",), ("X", "Y"), ("Y",), ("Z",)])
    assert s.tolist() == [0.5, 0.5, 0.5, 1.0]
    s = time_shares([("X",), ("X",), ("X",)])
    assert s.tolist() == pytest.approx([1 / 3] * 3)


def test_shared_site_time_sharing_halves_rates():
    g = nx.Graph()
    for u, v in (("A", "H"), ("H", "B"), ("C", "H"), ("H", "D")):
        g.add_edge(u, v, dist=40.0)
    for n in "ABCD":
        g.nodes[n]["repeater_site"] = False
    ded = plan(g, "A:B,C:D", hardware=PERFECT, budget=1)
    tim = plan(g, "A:B,C:D", hardware=PERFECT, budget=1, sharing="time")
    assert ded.repeaters == tim.repeaters == ("H",)
    for a, b in zip(ded.demands, tim.demands):
        assert b.time_share == 0.5
        assert b.skr_bits_per_s == pytest.approx(a.skr_bits_per_s / 2, rel=1e-12)
    assert tim.to_json()["demands"][0]["time_share"] == 0.5


def test_target_uses_fewest_sites():
    g = small_graph()
    free = plan(g, "A:D", hardware=PERFECT, budget=0)
    one = plan(g, "A:D", hardware=PERFECT, budget=1)
    assert one.min_rate > free.min_rate
    t = plan(g, "A:D", hardware=PERFECT, target=0.5 * (free.min_rate + one.min_rate))
    assert t.objective == "target" and len(t.repeaters) == 1
    assert t.min_rate >= t.target


def test_huge_repeater_limits_change_nothing_but_cost_nothing():
    """More repeaters per chain than a path has interior nodes, or more sites than nodes, are
    the same question (a million used to loop for minutes)."""
    g = small_graph()
    n = g.number_of_nodes()
    ref = plan(g, "A:D", hardware=PERFECT, max_repeaters=n - 2)
    big = plan(g, "A:D", hardware=PERFECT, max_repeaters=10**6)
    assert big.repeaters == ref.repeaters and big.min_rate == ref.min_rate
    t = 0.99 * ref.min_rate
    assert plan(g, "A:D", hardware=PERFECT, target=t, max_repeaters=10**6).repeaters == \
        plan(g, "A:D", hardware=PERFECT, target=t, max_repeaters=n - 2).repeaters
    assert plan(g, "A:D", hardware=PERFECT, budget=10**6).min_rate == plan(g, "A:D", hardware=PERFECT, budget=n).min_rate


# --------------------------------------------------------------------------- bad input
def test_bad_input_named_errors(tmp_path):
    g = small_graph()
    with pytest.raises(NetworkError, match="unknown node 'Z'"):
        plan(g, "A:Z", hardware=PERFECT)
    g2 = g.copy()
    g2.add_node("Q")
    with pytest.raises(NetworkError, match="no fiber route"):
        plan(g2, "A:Q", hardware=PERFECT)
    g3 = g.copy()
    g3.add_edge("A", "Q")
    with pytest.raises(NetworkError, match="no 'dist' length"):
        load_network(g3)
    (tmp_path / "x.json").write_text("[1, 2, 3]")
    with pytest.raises(NetworkError, match="not node-link"):
        load_network(tmp_path / "x.json")
    (tmp_path / "x.graphml").write_text("hello")
    with pytest.raises(NetworkError, match="not a GraphML"):
        load_network(tmp_path / "x.graphml")
    far = nx.Graph()
    far.add_edge("A", "M", dist=100.0)
    far.add_edge("M", "B", dist=100.0)
    with pytest.raises(NetworkError, match="budget 0 is below what pair A:B needs: 1 repeater"):
        plan(far, "A:B", hardware=PERFECT, budget=0, max_segment_km=150)
    with pytest.raises(NetworkError, match="budget must be"):
        plan(g, "A:D", budget=-1)


def test_cli_plan_json_plot_and_errors(tmp_path):
    from typer.testing import CliRunner

    from qnjax.cli import app

    g = small_graph()
    for n, (x, y) in zip(sorted(g.nodes), [(4.3, 52.0), (4.6, 52.1), (4.9, 52.3), (5.2, 52.1), (4.7, 51.8),
                                          (5.0, 52.5), (5.3, 52.6), (4.9, 51.7)]):
        g.nodes[n]["pos"] = [x, y]
    f = tmp_path / "net.json"
    f.write_text(json.dumps(nx.node_link_data(g, edges="links")))
    hw = tmp_path / "hw.toml"
    hw.write_text('[hardware]\nattenuation_db_per_km = 0.2\n[hardware.heralding]\nscheme = "double_click"\n'
                  'efficiency = 0.9\nvisibility = 0.95\nprep_time = "1 us"\n[hardware.memory]\nt_coh = "inf s"\n'
                  '[hardware.repeater]\nswap_success = 0.9\ngate_depolarizing = 0.01\nmeasurement_error = 0.005\n')
    run = CliRunner().invoke
    png = tmp_path / "plan.png"
    r = run(app, ["plan", str(f), "--pairs", "A:D,A:G", "--budget", "1", "--hardware", str(hw),
                  "--max-repeaters", "2", "--json", "--plot", str(png)])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert len(doc["repeaters"]) <= 1 and doc["objective"] == "min" and png.stat().st_size > 10_000
    for args, msg in ((["--pairs", "A:Nowhere"], "unknown node"), (["--pairs", "A:D", "--budget", "-2"], "budget"),
                      (["--pairs", "A:D", "--budget", "1", "--target", "3"], "--target")):
        r = run(app, ["plan", str(f)] + args)
        assert r.exit_code == 2 and msg in r.output and "Traceback" not in r.output
        assert len(r.output.strip().splitlines()) == 1
    r = run(app, ["plan", str(tmp_path / "hw.toml"), "--pairs", "A:B"])
    assert r.exit_code == 2 and "Traceback" not in r.output


@pytest.mark.parametrize("ext", ["png", "pdf", "svg"])
def test_plan_figure_normal_no_repeater_and_no_key(tmp_path, ext):
    """The plan figure in every format, for a plan with a repeater site, one without any (direct
    links) and one where no demand gets key; the figure is a pure function of the result."""
    from qnjax.network.plot import hardware_lines, plot_plan
    from qnjax.network.result import DemandPlan, NetworkPlan

    g = small_graph()
    for n, (x, y) in zip(sorted(g.nodes), [(4.3, 52.0), (4.6, 52.1), (4.9, 52.3), (5.2, 52.1), (4.7, 51.8),
                                          (5.0, 52.5), (5.3, 52.6), (4.9, 51.7)]):
        g.nodes[n]["pos"] = [x, y]

    def demand(rep, rate):
        return DemandPlan(("A", "D"), ("A", "B", "C", "D"), rep, (40.0, 20.0) if rep else (60.0,),
                          "S(L0,L1)" if rep else "L0", (0.01,) if rep else (), (10,) if rep else (), 1e-4,
                          rate, 0.5)

    magic = {"png": b"\x89PNG", "pdf": b"%PDF", "svg": b"<?xml"}[ext]
    for name, rep, rate in (("normal", ("C",), 12.5), ("direct", (), 3.0), ("nokey", (), 0.0)):
        res = NetworkPlan(rep, "min", (demand(rep, rate),), 1.0, True, rate, "exhaustive", "time-shared",
                          len(rep), None, 1)
        out = tmp_path / f"{name}.{ext}"
        plot_plan(res, g, out, hardware=PERFECT)
        assert out.read_bytes()[:5].startswith(magic) and out.stat().st_size > 5_000
    assert "0.2 dB/km" in hardware_lines(PERFECT)[0] and "t_coh inf s" in hardware_lines(PERFECT)[0]
