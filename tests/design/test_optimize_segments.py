"""The optimizer searches the number of segments: padded trees reproduce the exact engine, the
key-rate bound that stops the search is an upper bound, and the default scenario's answer is
the best over every segment count."""

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qnjax.exact import delivery, delivery_station_rates
from qnjax.design import NoFeasibleDesign, default_scenario, optimize, scenario_from_dict, sweep
from qnjax.design.chain import Structure, hardware, rate_upper_bound
from qnjax.design.padded import evaluate_padded, layout, layout_arrays, node_params
from qnjax.design.treesearch import balanced_variants, tree_variants
from qnjax.protocol import Link, Swap, internal_nodes


def _with(scen, **search):
    return dataclasses.replace(scen, search=dataclasses.replace(scen.search, **search))


@pytest.mark.parametrize("tree, depth", [
    (Swap(Swap(Link(0), Link(1)), Link(2)), 2),
    (Swap(Link(0), Swap(Link(1), Link(2))), 3),
    (Swap(Swap(Swap(Link(0), Link(1)), Link(2)), Swap(Link(3), Link(4))), 3),
    (Swap(Swap(Swap(Link(0), Link(1)), Link(2)), Swap(Link(3), Swap(Link(4), Link(5)))), 4),
])
def test_padded_tree_matches_engine(tree, depth):
    """A tree embedded in the complete tree of any depth (trivial links beside short
    branches) gives the exact engine's figures for the same design to 1e-9."""
    rng = np.random.default_rng(depth)
    S, K = tree.span[1], len(internal_nodes(tree))
    p = rng.uniform(0.2, 0.5, S)
    lam0 = rng.dirichlet([300, 2, 1, 3], S)
    st_r = np.concatenate([np.zeros((S + 1, 1)), rng.uniform(0, 0.01, (S + 1, 3))], 1)
    ps = rng.uniform(0.7, 1, S + 1)
    bsm = np.concatenate([np.ones((S + 1, 1)), rng.uniform(0.97, 1, (S + 1, 3))], 1)
    cut = rng.uniform(3, 40, K)
    sta = [v.left.span[1] for v in internal_nodes(tree)]
    ref = delivery(tree, p_gen=p, lam0=lam0, p_swap=ps[sta], rates=delivery_station_rates(tree, st_r),
                   cutoff=cut, bsm_noise=bsm[sta], t_trunc=256, warn=False)
    lay = {k: jnp.asarray(v) for k, v in layout_arrays(layout(tree, depth)).items()}
    prm = node_params(lay, *(jnp.asarray(a) for a in (p, lam0, st_r, ps, bsm, cut)))
    got = evaluate_padded(depth, 256, jax.tree.map(lambda a: a[None], prm))
    assert float(ref.coverage) > 1 - 1e-9
    for k in ("mean_time", "mean_fidelity", "key_fraction_smooth", "coverage"):
        np.testing.assert_allclose(np.asarray(getattr(got, k))[0], float(getattr(ref, k)), rtol=1e-9)


def test_tree_variants():
    assert len(balanced_variants(3)) == 2 and len(tree_variants(3, symmetric=True)) == 1
    assert len(balanced_variants(4)) == 1 and len(balanced_variants(8)) == 1
    six = balanced_variants(6)  # 3 + 3, each 2 + 1 or 1 + 2
    assert len(six) == 4 and len(tree_variants(6, symmetric=True)) == 3
    assert len(tree_variants(6, symmetric=False)) == 4
    assert all(t.span == (0, 11) for t in tree_variants(11, symmetric=False))


@pytest.mark.slow
def test_default_answer_is_best_over_counts_and_bound_holds(monkeypatch):
    """``optimize(default_scenario())`` reaches >= 99 % of the best of per-count optimizations
    over 1..16 segments, and the stopping bound lies above every optimized rate. A count
    without key (15) stops lengthening its truncation at ``NO_KEY_GROWTH`` times its first."""
    from qnjax.design import treesearch

    growth = []
    evaluate = treesearch.evaluate_designs

    def watched(scheme, hw, designs):
        growth.extend(d[0].t / d[0].t_first for d in designs)
        return evaluate(scheme, hw, designs)

    monkeypatch.setattr(treesearch, "evaluate_designs", watched)
    scen = default_scenario()
    full = optimize(scen)
    scheme = scen.heralding.scheme
    per = {}
    for n in range(1, 17):
        st = Structure(n, (0,) * 5, None)
        ub = rate_upper_bound(st, scheme, hardware(scen, dataclasses.replace(st, tree=Link(0)) if n == 1
                                                   else _struct(n)), scen.distance_km)
        growth.clear()
        try:
            r = float(optimize(_with(scen, segments=(n,))).skr_bits_per_s)
        except NoFeasibleDesign:
            r = 0.0
        per[n] = r
        assert ub >= r, (n, ub, r)
        if n == 15:  # no key: the search grew its truncation (512 steps first), within the limit
            assert r == 0.0 and 1 < max(growth) <= treesearch.NO_KEY_GROWTH, growth
    best = max(per.values())
    assert float(full.skr_bits_per_s) >= 0.99 * best, (float(full.skr_bits_per_s), per)
    assert float(full.skr_bits_per_s) >= 29.0
    for c in full.to_json()["candidates"]:
        assert c["bound_bits_per_s"] >= c["skr_bits_per_s"]
        assert c["status"] in ("optimized", "screened", "pruned", "infeasible", "no key")
        if c["status"] == "pruned":
            assert c["bound_bits_per_s"] < float(full.skr_bits_per_s) * (1 + 1e-9) or c["reason"]


def test_only_covered_designs_without_key_stop_the_truncation_growing():
    from qnjax.design.treesearch import _no_key

    assert _no_key({"obj": -12.0, "skr": 0.0})  # covered, key fraction <= 0
    assert not _no_key({"obj": -np.inf, "skr": 0.0})  # not covered: its zero rate says nothing
    assert not _no_key({"obj": 1.5, "skr": 3.0})


def _struct(n):
    from qnjax.design.chain import build_tree, n_levels

    return Structure(n, (0,) * n_levels(n), build_tree(n, (0,) * n_levels(n)))


def test_list_restricts_the_search_and_nothing_feasible_is_a_named_error():
    scen = _with(default_scenario(), segments=(16,))
    with pytest.raises(NoFeasibleDesign, match="16 segments: no key"):
        optimize(scen)
    res = optimize(_with(default_scenario(), segments=(9, 10)))
    assert [c["segments"] for c in res.to_json()["candidates"]] == [9, 10]


def math_inf():
    return float("inf")


def test_sweep_reports_infeasible_distances_as_rows():
    scen = _with(default_scenario(), segments=(2,))
    data = sweep(scen, [60.0, 3000.0])
    assert data["skr_bits_per_s"][0] > 0 and data["reason"][0] is None
    assert data["skr_bits_per_s"][1] == 0.0 and "truncation" in data["reason"][1]


def test_cli_no_feasible_design_exits_2(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from qnjax.cli import app

    monkeypatch.setenv("QNJAX_CACHE_DIR", "")
    p = tmp_path / "s.toml"
    p.write_text('distance_km = 300\n[heralding]\nefficiency = 0.9\nvisibility = 0.98\n'
                 '[memory]\nt_coh_s = 1.0\n[repeater]\ngate_depolarizing = 0.005\n'
                 'measurement_error = 0.002\n[search]\nsegments = [16]\n')
    out = CliRunner().invoke(app, ["optimize", str(p), "--json"])
    assert out.exit_code == 2, out.output
    assert "no design yields a secret key" in out.output and "Traceback" not in out.output


@pytest.mark.slow
def test_cli_default_scenario_reports_29_bits(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from qnjax.cli import app

    monkeypatch.setenv("QNJAX_CACHE_DIR", "")
    monkeypatch.chdir(tmp_path)
    out = CliRunner().invoke(app, ["optimize", "--json"])
    assert out.exit_code == 0, out.output
    j = json.loads(out.stdout.strip().splitlines()[-1])
    assert j["skr_bits_per_s"] >= 29.0
    assert j["segments"] >= 8
    for c in j["candidates"]:
        for k in ("segments", "protocol", "skr_bits_per_s", "bound_bits_per_s", "status", "reason"):
            assert k in c


def test_compilation_cache_is_opt_in(tmp_path, monkeypatch):
    import subprocess
    import sys

    from qnjax.cache import default_cache_dir, enable_compilation_cache

    # importing the library (optimizer and CLI modules included) never enables the cache
    code = ("import qnjax, qnjax.design, qnjax.cache, qnjax.cli, jax; "
            "print(jax.config.jax_compilation_cache_dir)")
    env = {k: v for k, v in os.environ.items() if k != "QNJAX_CACHE_DIR" and not k.startswith("JAX_COMPILATION")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True).stdout.strip()
    assert out == "None"
    monkeypatch.setenv("QNJAX_CACHE_DIR", "")
    assert default_cache_dir() is None and enable_compilation_cache() is None
    monkeypatch.setenv("QNJAX_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("QNJAX_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x" / "qnjax" / "jax"
