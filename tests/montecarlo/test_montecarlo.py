"""Monte Carlo engine: closed forms, an exact Markov chain, the exact engine, seeds, caps.

Compilation dominates the run time here, so each test batches its design points into one
call and the configurations are reused where possible.
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest

import jax

import qnjax as q
from qnjax.montecarlo import simulate_nested, simulate_swap_asap
from qnjax.protocol import Distill, Link, Swap

Z = 4.0  # agreement within 4 standard errors


def _z(est, se, exact):
    return np.abs((np.asarray(est) - exact) / np.asarray(se))


# ---------------------------------------------------------------- swap-asap

def test_swap_asap_closed_form_n3_cutoff2():
    """Iñesta et al. 2023: n = 3, p_swap = 1, cut-off 2."""
    ps = np.array([0.2, 0.45, 0.7, 0.9])
    exact = (2 * ps**3 - 6 * ps**2 + 4 * ps + 1) / (2 * ps**4 - 6 * ps**3 + 5 * ps**2)
    r = simulate_swap_asap(3, p_gen=np.stack([ps, ps], -1), cutoff=2, samples=20_000, seed=11)
    assert r.mean_time.shape == (4,)
    assert np.all(_z(r.mean_time, r.mean_time_stderr, exact) < Z), (r.mean_time, exact)
    assert np.all(np.asarray(r.samples) == 20_000) and np.all(np.asarray(r.undelivered) == 0)
    # the perfect chain delivers in one slot
    one = simulate_swap_asap(3, p_gen=1.0, samples=100, seed=0, keep=100)
    assert float(one.mean_time) == 1.0 and np.all(np.asarray(one.times) == 1)


def _swap_asap_chain(n, p_gen, p_swap, w0, t_coh, cutoff):
    """Exact Markov chain of the swap-asap model (pure Python, independent of the engine).

    A state is the set of links ``(a, b, age, w)``. Returns ``(E[T], E[w])``.
    """
    decay = math.exp(-1.0 / t_coh)
    start = ()
    index, trans, deliver = {start: 0}, [], []
    todo = [start]
    while todo:
        state = todo.pop()
        row, dmass, dw = {}, 0.0, 0.0
        right = {a for a, *_ in state}
        left = {b for _, b, *_ in state}
        free = [i for i in range(n - 1) if i not in right and i + 1 not in left]
        for gen in itertools.product((0, 1), repeat=len(free)):
            pg = math.prod(p_gen[i] if g else 1 - p_gen[i] for i, g in zip(free, gen))
            links = list(state) + [(i, i + 1, 0, w0) for i, g in zip(free, gen) if g]
            R = {a: (a, b, age, w) for a, b, age, w in links}
            L = {b for _, b, *_ in links}
            junctions = [j for j in range(1, n - 1) if j in R and j in L]
            for sw in itertools.product((0, 1), repeat=len(junctions)):
                psw = math.prod(p_swap[j] if s else 1 - p_swap[j] for j, s in zip(junctions, sw))
                ok = dict(zip(junctions, sw))
                new = []
                for a, lk in R.items():
                    if a in ok:
                        continue  # not the head of its run
                    b, age, w, good = lk[1], lk[2], lk[3], True
                    while b in ok:
                        good &= bool(ok[b])
                        nb = R[b]
                        b, age, w = nb[1], max(age, nb[2]), w * nb[3]
                    if good:
                        new.append((a, b, age, w))
                prob = pg * psw
                e2e = [lk for lk in new if lk[0] == 0 and lk[1] == n - 1]
                if e2e:
                    dmass += prob
                    dw += prob * e2e[0][3]
                    continue
                nxt = tuple(sorted((a, b, age + 1, round(w * decay, 13))
                                   for a, b, age, w in new if age < cutoff))
                if nxt not in index:
                    index[nxt] = len(index)
                    todo.append(nxt)
                row[index[nxt]] = row.get(index[nxt], 0.0) + prob
        while len(trans) <= index[state]:
            trans.append(None)
            deliver.append(None)
        trans[index[state]] = row
        deliver[index[state]] = (dmass, dw)
    N = len(index)
    M = np.eye(N)
    for i, row in enumerate(trans):
        for j, p in row.items():
            M[i, j] -= p
    t = np.linalg.solve(M, np.ones(N))
    w = np.linalg.solve(M, np.array([d[1] for d in deliver]))
    return t[0], w[0]


def test_swap_asap_vs_markov_chain_heterogeneous_n4():
    n, cut = 4, 3
    p_gen, p_swap = [0.5, 0.7, 0.6], [1.0, 0.8, 0.9, 1.0]
    et, ew = _swap_asap_chain(n, p_gen, p_swap, 0.95, 15.0, cut)
    r = simulate_swap_asap(n, p_gen=p_gen, p_swap=p_swap, w0=0.95, t_coh=15.0, cutoff=cut,
                           samples=20_000, seed=5)
    assert _z(r.mean_time, r.mean_time_stderr, et) < Z, (float(r.mean_time), et)
    assert _z(r.mean_werner, r.mean_werner_stderr, ew) < Z, (float(r.mean_werner), ew)


def test_swap_asap_vs_markov_chain_n5_interior_links():
    """n = 5: links form inside a longer one once its interior memories are free."""
    n, cut = 5, 3
    et, ew = _swap_asap_chain(n, [0.6] * 4, [0.85] * 5, 0.97, 30.0, cut)
    r = simulate_swap_asap(n, p_gen=0.6, p_swap=0.85, w0=0.97, t_coh=30.0, cutoff=cut,
                           samples=15_000, seed=6)
    assert _z(r.mean_time, r.mean_time_stderr, et) < Z, (float(r.mean_time), et)
    assert _z(r.mean_werner, r.mean_werner_stderr, ew) < Z, (float(r.mean_werner), ew)


def test_swap_asap_bell_mode_matches_werner_and_seeds():
    kw = dict(p_gen=0.5, p_swap=0.8, t_coh=12.0, cutoff=4, samples=5_000)
    a = simulate_swap_asap(4, w0=0.9, seed=1, **kw)
    b = simulate_swap_asap(4, w0=0.9, seed=1, **kw)
    c = simulate_swap_asap(4, w0=0.9, seed=2, **kw)
    lam = np.array([(1 + 3 * 0.9) / 4] + [(1 - 0.9) / 4] * 3)
    bell = simulate_swap_asap(4, lam0=lam, seed=1, **kw)
    assert float(a.mean_time) == float(b.mean_time)
    assert float(a.mean_werner) == float(b.mean_werner)
    np.testing.assert_array_equal(np.asarray(a.times), np.asarray(b.times))
    assert float(a.mean_time) != float(c.mean_time)
    # same random stream, depolarising memories: the same trajectories and states
    assert float(bell.mean_time) == float(a.mean_time)
    np.testing.assert_allclose(float(bell.mean_werner), float(a.mean_werner), rtol=1e-12)


def test_swap_asap_slot_cap_reports_undelivered():
    r = simulate_swap_asap(4, p_gen=0.2, p_swap=0.8, cutoff=3, samples=3_000, seed=3,
                           max_time=4, keep=3_000)
    und, got = int(r.undelivered), int(r.samples)
    assert und > 0 and und + got == 3_000 == int(r.trajectories)
    t = np.asarray(r.times)
    assert np.sum(t == -1) == und and np.all(t[t >= 0] <= 4)
    assert float(r.mean_time) <= 4


# ---------------------------------------------------------------- nested

def test_nested_two_segments_closed_forms():
    """Exact-engine issue: 2 segments with cut-off 17 and without (one batched call)."""
    p, ps, w0, tc = 0.1, 0.5, 0.98, 400.0
    q, lam = 1 - p, math.exp(-1 / tc)
    x, tau = q * lam, 17
    P = (p + 2 * q * (1 - q**tau)) / (2 - p)
    et_cut = (1 / (1 - q**2) + 2 * q * (1 - q**tau) / (p * (2 - p))) / (ps * P)
    ew_cut = w0**2 * (p / (2 - p)) * (1 + 2 * x * (1 - x**tau) / (1 - x)) / P
    assert abs(et_cut - 31.251331) < 1e-5 and abs(ew_cut - 0.94572834) < 1e-7
    et_inf = (3 - 2 * p) / (p * (2 - p) * ps)
    ew_inf = w0**2 * p * (1 + q * lam) / ((2 - p) * (1 - q * lam))
    r = simulate_nested("swap", p_gen=p, p_swap=ps, w0=w0, t_coh=tc,
                        cutoff=np.array([[tau], [np.inf]]), samples=40_000, seed=7)
    assert r.mean_time.shape == (2,)
    assert np.all(_z(r.mean_time, r.mean_time_stderr, [et_cut, et_inf]) < Z), r.mean_time
    assert np.all(_z(r.mean_werner, r.mean_werner_stderr, [ew_cut, ew_inf]) < Z), r.mean_werner
    # tiny chunks: every carry path (partial cycles, leftover outputs) is exercised
    s = simulate_nested("swap", p_gen=p, p_swap=ps, w0=w0, t_coh=tc, cutoff=[tau],
                        samples=20_000, seed=8, chunk_size=256)
    assert _z(s.mean_time, s.mean_time_stderr, et_cut) < Z
    assert _z(s.mean_werner, s.mean_werner_stderr, ew_cut) < Z


def test_nested_inclusion_exclusion_pswap1():
    """p_swap = 1, no cut-off, m = 2^n segments: E[T] = Σ (−1)^(k+1) C(m,k) / (1 − q^k)."""
    ps = np.array([0.15, 0.5])
    m = 4
    exact = [sum((-1) ** (k + 1) * math.comb(m, k) / (1 - (1 - p) ** k) for k in range(1, m + 1))
             for p in ps]
    r = simulate_nested(("swap", "swap"), p_gen=ps, samples=30_000, seed=9)
    assert np.all(_z(r.mean_time, r.mean_time_stderr, exact) < Z), (r.mean_time, exact)
    np.testing.assert_allclose(np.asarray(r.mean_werner), 1.0)


def test_nested_seeds_and_cap():
    kw = dict(p_gen=0.1, p_swap=0.5, w0=0.98, t_coh=400.0, cutoff=[17], samples=5_000, keep=5_000)
    a = simulate_nested("swap", seed=3, **kw)
    b = simulate_nested("swap", seed=3, **kw)
    c = simulate_nested("swap", seed=4, **kw)
    np.testing.assert_array_equal(np.asarray(a.times), np.asarray(b.times))
    assert float(a.mean_werner) == float(b.mean_werner)
    assert not np.array_equal(np.asarray(a.times), np.asarray(c.times))
    capped = simulate_nested("swap", seed=3, max_time=20, **kw)
    und = int(capped.undelivered)
    # the same trajectories, the long ones reported instead of averaged
    assert und == int(np.sum(np.asarray(a.times) > 20)) > 0
    assert und + int(capped.samples) == 5_000
    assert float(capped.mean_time) <= 20


def test_nested_tree_heterogeneous_runs():
    """Uneven tree, per-segment p_gen / w0, per-node p_swap, cut-offs and per-side rates."""
    tree = Swap(Swap(Link(0), Link(1)), Distill(Link(2)))
    kw = dict(p_gen=[0.3, 0.5, 0.4], w0=[0.95, 0.97, 0.9], p_swap=[0.9, 0.8, 1.0],
              rates=np.array([[0.01, 0.02], [0.015, 0.01], [0.03, 0.005]]), cutoff=[5, 9, 4])
    r = simulate_nested(tree, samples=20_000, seed=1, **kw)
    try:
        from qnjax.delivery import delivery
    except ImportError:  # pragma: no cover
        delivery = None
    if delivery is not None:
        ex = delivery(tree, t_trunc="auto", **kw)
        assert _z(r.mean_time, r.mean_time_stderr, float(ex.mean_time)) < Z
        assert _z(r.mean_werner, r.mean_werner_stderr, float(ex.mean_werner)) < Z
    with pytest.raises(ValueError, match="p_gen"):
        simulate_nested(tree, p_gen=[0.3, 0.5], samples=10)
    with pytest.raises(ValueError, match="cutoff"):
        simulate_nested("swap,swap", p_gen=0.3, cutoff=[1, 2, 3], samples=10)
    with pytest.raises(ValueError, match="p_swap"):
        simulate_nested("swap", p_gen=0.3, p_swap=0.0, samples=10)
    with pytest.raises(ValueError, match="samples"):
        simulate_nested("swap", p_gen=0.3, samples=0)


def _delivery():
    try:
        from qnjax.exact import delivery
    except ImportError:  # pragma: no cover - the exact engine lands separately
        pytest.skip("qnjax.delivery not available")
    return delivery


def test_nested_vs_exact_engine_werner_distill_cutoffs():
    delivery = _delivery()
    kw = dict(p_gen=0.3, p_swap=0.7, w0=0.95, t_coh=50.0, cutoff=[6, 10, 20])
    ex = delivery("swap,distill,swap", t_trunc="auto", **kw)
    mc = simulate_nested("swap,distill,swap", samples=25_000, seed=21, **kw)
    assert _z(mc.mean_time, mc.mean_time_stderr, float(ex.mean_time)) < Z
    assert _z(mc.mean_werner, mc.mean_werner_stderr, float(ex.mean_werner)) < Z


def test_nested_vs_exact_engine_bell_dejmps():
    delivery = _delivery()
    lam0 = np.array([0.9, 0.05, 0.03, 0.02])
    kw = dict(p_gen=0.25, p_swap=0.8, lam0=lam0, t_coh=40.0, cutoff=[8, 15])
    ex = delivery("distill,swap", t_trunc="auto", **kw)
    mc = simulate_nested("distill,swap", samples=25_000, seed=22, **kw)
    assert _z(mc.mean_time, mc.mean_time_stderr, float(ex.mean_time)) < Z
    assert _z(mc.mean_fidelity, mc.mean_fidelity_stderr, float(ex.mean_fidelity)) < Z


# ---------------------------------------------------------------- CLI

@pytest.fixture
def cli():
    try:
        from qnjax.cli import app
    except ImportError as e:  # pragma: no cover - sibling commands land separately
        pytest.skip(f"CLI not importable yet: {e}")
    from typer.testing import CliRunner

    yield app, CliRunner()
    jax.config.update("jax_enable_x64", True)  # --float32 flips the global flag


def _json(res):
    import json

    assert res.exit_code == 0, res.output
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_cli_simulate_json(cli):
    app, runner = cli
    d = _json(runner.invoke(app, ["simulate", "--policy", "swap-asap", "--nodes", "3", "--p-gen", "0.5",
                                  "--cutoff", "2", "--samples", "4000", "--seed", "0", "--json"]))
    for k in ("mean_time", "mean_time_stderr", "mean_werner", "mean_werner_stderr", "samples"):
        assert k in d
    assert d["samples"] == 4000 and abs(d["mean_time"] - 2.8) < 4 * d["mean_time_stderr"]
    d = _json(runner.invoke(app, ["simulate", "--policy", "nested", "--protocol", "swap", "--p-gen", "0.1",
                                  "--p-swap", "0.5", "--w0", "0.98", "--t-coh", "400", "--cutoff", "17",
                                  "--samples", "3000", "--json"]))
    assert abs(d["mean_time"] - 31.251331) < 4 * d["mean_time_stderr"]


def test_cli_simulate_table_and_errors(cli):
    app, runner = cli
    res = runner.invoke(app, ["simulate", "--policy", "nested", "--protocol", "swap", "--p-gen", "0.1",
                              "--samples", "1000"])
    assert res.exit_code == 0 and "mean delivery time [steps]" in res.stdout
    d = _json(runner.invoke(app, ["simulate", "--policy", "nested", "--protocol", "swap", "--p-gen", "0.1",
                                  "--p-swap", "0.5", "--w0", "0.98", "--t-coh", "400", "--samples", "3000",
                                  "--json", "--float32"]))
    p, q, lam = 0.1, 0.9, math.exp(-1 / 400)
    assert d["dtype"] == "float32"
    assert abs(d["mean_time"] - (3 - 2 * p) / (p * (2 - p) * 0.5)) < 4 * d["mean_time_stderr"]
    ew = 0.98**2 * p * (1 + q * lam) / ((2 - p) * (1 - q * lam))
    assert abs(d["mean_werner"] - ew) < 4 * d["mean_werner_stderr"] + 1e-5
    for args, word in (
        (["--policy", "nested", "--protocol", "swap,swop", "--p-gen", "0.1"], "protocol"),
        (["--policy", "nested", "--protocol", "swap,swap", "--p-gen", "0.1", "--cutoff", "3"], "cutoff"),
        (["--policy", "nested", "--protocol", "swap", "--p-gen", "1.5"], "--p-gen"),
        (["--policy", "swap-asap", "--p-gen", "0.5"], "--nodes"),
        (["--policy", "swap-asap", "--nodes", "3", "--p-gen", "0.5", "--cutoff", "1,2"], "--cutoff"),
        (["--policy", "swap-asap", "--nodes", "1", "--p-gen", "0.5"], "--nodes"),
        (["--policy", "nested", "--protocol", "swap", "--p-gen", "0.5", "--samples", "0"], "--samples"),
    ):
        res = runner.invoke(app, ["simulate", *args])
        assert res.exit_code == 2, (args, res.output)
        assert word in res.output and len(res.output.strip().splitlines()) == 1, res.output


# ----------------------------------------------------------------- resources and seeds (refused up front)


@pytest.mark.parametrize("call,match", [
    (lambda: q.simulate_nested("swap", p_gen=0.5, samples=10**12), "samples must be at most 2\\*\\*30"),
    (lambda: q.simulate_swap_asap(3, p_gen=0.5, samples=10**12), "samples must be at most 2\\*\\*30"),
    (lambda: q.simulate_nested("swap", p_gen=0.5, samples=10, seed=2**70), "seed must be an integer in \\[0, 2\\*\\*64 - 1\\]"),
    (lambda: q.simulate_nested("swap", p_gen=0.5, samples=10, seed=-1), "seed must be an integer"),
    (lambda: q.simulate_swap_asap(3, p_gen=0.5, samples=10, seed=True), "seed must be an integer"),
    (lambda: q.simulate_swap_asap(3, p_gen=0.5, samples=10, seed=1.5), "seed must be an integer"),
    (lambda: q.simulate_nested(",".join(["swap"] * 25), p_gen=0.5, samples=10), "node instances"),
    (lambda: q.simulate_swap_asap(10**6, p_gen=0.5, samples=10), "n_nodes must be at most"),
    (lambda: q.simulate_swap_asap(1000, p_gen=0.5, samples=10, max_memory=2**20), "needs about .* max_memory"),
    (lambda: q.simulate_nested("swap,swap", p_gen=0.5, samples=10, max_memory=2**16), "needs about .* max_memory"),
])
def test_resources_and_seeds_refused_before_running(call, match):
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=match):
        call()
    assert time.perf_counter() - t0 < 5


def test_largest_seed_is_accepted_and_distinct_from_zero():
    a = q.simulate_nested("swap", p_gen=0.5, samples=200, seed=2**64 - 1, keep=200)
    b = q.simulate_nested("swap", p_gen=0.5, samples=200, seed=0, keep=200)
    assert not np.array_equal(np.asarray(a.times), np.asarray(b.times))
