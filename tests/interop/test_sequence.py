"""qnjax as SeQUeNCe's Bell-diagonal backend: same physics, same runs (Python >= 3.12)."""

from __future__ import annotations

import types

import numpy as np
import pytest

pytest.importorskip("sequence")

from sequence.components.memory import Memory  # noqa: E402
from sequence.entanglement_management.purification import BBPSSW_BDS, DEJMPS_BDS, PurificationProtocol  # noqa: E402
from sequence.entanglement_management.swapping import (  # noqa: E402
    EntanglementSwappingA, EntanglementSwappingA_BDS, EntanglementSwappingB,
)
from sequence.kernel.quantum_manager import QuantumManager, QuantumManagerBellDiagonal  # noqa: E402
from sequence.kernel.timeline import Timeline  # noqa: E402

import qnjax  # noqa: E402
from qnjax.interop import _sequence_hooks as hooks  # noqa: E402
from qnjax.interop import sequence as qs  # noqa: E402

from ._sequence_world import run_chain  # noqa: E402

ORIGINAL_DECOHERE = hooks.ORIGINAL_DECOHERE


def _rand_bds(rng, n=None, lo=0.5):
    """Random SeQUeNCe-ordered states with fidelity >= lo."""
    shape = (4,) if n is None else (n, 4)
    x = rng.dirichlet(np.ones(4), size=None if n is None else n)
    f = lo + (1 - lo) * rng.random(size=None if n is None else n)
    x = x.reshape(shape)
    rest = x[..., 1:] / x[..., 1:].sum(-1, keepdims=True) * (1 - f)[..., None]
    return np.concatenate([np.reshape(f, shape[:-1] + (1,)), rest], -1)


# ------------------------------------------------------------------ fakes that let us call
# SeQUeNCe's own physics methods unbound, on chosen inputs

class _FakeQM:
    def __init__(self, states):
        self.states = {k: types.SimpleNamespace(state=np.asarray(v, float), keys=[k, k + 100])
                       for k, v in states.items()}
        self.last_set = None

    def get(self, key):
        return self.states[key]

    @staticmethod
    def get_active_formalism():
        return "bell_diagonal"

    def set(self, keys, state):
        self.last_set = (list(keys), np.asarray(state, float))


def _fake_protocol(left, right, gate_fid, meas_fid, remote_gate=None, remote_meas=None):
    qm = _FakeQM({1: left, 2: right})
    remote = types.SimpleNamespace(gate_fid=remote_gate if remote_gate is not None else gate_fid,
                                   meas_fid=remote_meas if remote_meas is not None else meas_fid)
    tl = types.SimpleNamespace(quantum_manager=qm, get_entity_by_name=lambda name: remote)
    owner = types.SimpleNamespace(timeline=tl, gate_fid=gate_fid, meas_fid=meas_fid, name="n")
    return types.SimpleNamespace(
        owner=owner, name="p", left_memo=types.SimpleNamespace(qstate_key=1),
        right_memo=types.SimpleNamespace(qstate_key=2), kept_memo=types.SimpleNamespace(qstate_key=1),
        meas_memo=types.SimpleNamespace(qstate_key=2), remote_node_name="r", is_twirled=True)


# ------------------------------------------------------------------ registration

def test_registered_names_and_hooks():
    assert QuantumManager._registry[qs.FORMALISM] is qs.QnjaxBellDiagonalManager
    assert EntanglementSwappingA._registry[qs.FORMALISM] is qs.QnjaxSwappingA
    assert EntanglementSwappingB._registry[qs.FORMALISM] is qs.QnjaxSwappingB
    assert PurificationProtocol._registry[qs.FORMALISM] is qs.QnjaxBBPSSW
    assert PurificationProtocol._registry[qs.DEJMPS_NAME] is qs.QnjaxDEJMPS
    from sequence.components import memory
    from sequence.entanglement_management.generation import single_heralded
    for mod in (memory, single_heralded):
        c = mod.BELL_DIAGONAL_STATE_FORMALISM
        assert c == "bell_diagonal" and "bell_diagonal" == c
        assert "qnjax_bell_diagonal" == c and c != "density_matrix" and "ket_vector" != c
    assert issubclass(qs.QnjaxBellDiagonalManager, QuantumManagerBellDiagonal)
    assert issubclass(qs.QnjaxSwappingA, EntanglementSwappingA_BDS)
    assert issubclass(qs.QnjaxBBPSSW, BBPSSW_BDS) and issubclass(qs.QnjaxDEJMPS, DEJMPS_BDS)


def test_unregister_register_roundtrip():
    qs.unregister()
    try:
        assert qs.FORMALISM not in QuantumManager._registry
        assert Memory.bds_decohere is ORIGINAL_DECOHERE
        from sequence.components import memory
        assert type(memory.BELL_DIAGONAL_STATE_FORMALISM) is str
    finally:
        qs.register()
    qs.register()  # idempotent
    assert QuantumManager._registry[qs.FORMALISM] is qs.QnjaxBellDiagonalManager


def test_use_qnjax_redirects_and_restores():
    native = QuantumManager._registry["bell_diagonal"]
    native_ep = PurificationProtocol._registry["dejmps_bds"]
    with qs.use_qnjax() as act:
        assert qs.is_active()
        assert qs.use_qnjax() is act  # idempotent
        assert Timeline(formalism="bell_diagonal").quantum_manager.__class__ is qs.QnjaxBellDiagonalManager
        assert EntanglementSwappingA._registry["bell_diagonal"] is qs.QnjaxSwappingA
        assert PurificationProtocol._registry["bell_diagonal"] is qs.QnjaxBBPSSW
        assert PurificationProtocol._registry["dejmps_bds"] is qs.QnjaxDEJMPS
    assert not qs.is_active()
    assert QuantumManager._registry["bell_diagonal"] is native
    assert PurificationProtocol._registry["dejmps_bds"] is native_ep
    assert type(Timeline(formalism="bell_diagonal").quantum_manager) is native
    qs.use_qnjax()
    qs.restore()
    qs.restore()
    assert QuantumManager._registry["bell_diagonal"] is native


# ------------------------------------------------------------------ manager

def test_manager_interface_and_orders():
    qm = qs.QnjaxBellDiagonalManager()
    k1, k2 = qm.new(), qm.new()
    with pytest.raises(Exception):
        qm.get(k1)
    qm.set([k1, k2], [0.7, 0.1, 0.15, 0.05])  # (I, Z, X, Y)
    assert qm.get(k1) is qm.get(k2)
    np.testing.assert_allclose(qm.get(k1).state, [0.7, 0.1, 0.15, 0.05])
    np.testing.assert_allclose(qm.get_bell(k1), [0.7, 0.15, 0.05, 0.1])  # (I, X, Y, Z)
    np.testing.assert_allclose(qm.get(k2).bell, [0.7, 0.15, 0.05, 0.1])
    keys, lam = qm.bell_array()
    assert keys == [(k1, k2)] and lam.shape == (1, 4)
    qm.set_bell([k1, k2], [0.8, 0.1, 0.05, 0.05])
    np.testing.assert_allclose(qm.get(k1).state, [0.8, 0.05, 0.1, 0.05])
    qm.set([k1], [complex(1), complex(0)])  # what Memory.reset does
    assert k1 not in qm.states and k2 in qm.states
    qm.discard(k2)
    assert k2 not in qm.states
    for bad in ([0.5, 0.5, 0.5, -0.5], [0.5, 0.2, 0.2], [0.9, 0.05, 0.05, 0.05]):
        with pytest.raises(ValueError):
            qm.set([k1, k2], bad)
    qm.set_to_noiseless([k1, k2])
    np.testing.assert_allclose(qm.get(k1).state, [1, 0, 0, 0])


def test_order_maps_are_inverse():
    x = np.arange(8.0).reshape(2, 4)
    np.testing.assert_array_equal(qs.to_sequence_order(qs.to_qnjax_order(x)), x)
    # Φ+ Φ− Ψ+ Ψ− (SeQUeNCe) -> Φ+ Ψ+ Ψ− Φ− (qnjax)
    np.testing.assert_array_equal(qs.to_qnjax_order([10, 11, 12, 13]), [10, 12, 13, 11])


# ------------------------------------------------------------------ physics vs SeQUeNCe's own code

@pytest.mark.parametrize("twirled", [True, False])
@pytest.mark.parametrize("gate_fid,meas_fid", [(1.0, 1.0), (0.97, 0.99), (0.9, 0.8)])
def test_swap_matches_sequence(twirled, gate_fid, meas_fid):
    rng = np.random.default_rng(1)
    for left, right in zip(_rand_bds(rng, 20), _rand_bds(rng, 20)):
        p = _fake_protocol(left, right, gate_fid, meas_fid)
        p.is_twirled = twirled
        want = np.asarray(EntanglementSwappingA_BDS.swapping_res(p), float)
        got = qs.QnjaxSwappingA.swapping_res(p)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-14)


@pytest.mark.parametrize("native,ours", [(BBPSSW_BDS, qs.QnjaxBBPSSW), (DEJMPS_BDS, qs.QnjaxDEJMPS)])
@pytest.mark.parametrize("fids", [(1, 1, 1, 1), (0.99, 0.98, 0.97, 0.995), (0.9, 0.95, 0.85, 0.9)])
def test_purification_matches_sequence(native, ours, fids):
    p1, p2, e1, e2 = fids
    rng = np.random.default_rng(2)
    for kept, meas in zip(_rand_bds(rng, 20, 0.6), _rand_bds(rng, 20, 0.6)):
        p = _fake_protocol(kept, meas, p1, e1, p2, e2)
        ps_want, s_want = native.purification_res(p)
        ps_got, s_got = ours.purification_res(p)
        np.testing.assert_allclose(ps_got, ps_want, rtol=0, atol=1e-14)
        np.testing.assert_allclose(s_got, s_want, rtol=0, atol=1e-13)
        assert abs(s_got.sum() - 1) < 1e-13


@pytest.mark.parametrize("errors", [(1 / 3, 1 / 3, 1 / 3), (0.2, 0.3, 0.5), (1.0, 0.0, 0.0), (0, 0, 1.0)])
def test_memory_decoherence_matches_sequence(errors):
    rng = np.random.default_rng(3)
    for state, dt in zip(_rand_bds(rng, 10), rng.exponential(0.3, 10)):
        results = []
        for mgr in ("native", "qnjax"):
            qm = _FakeQM({7: state}) if mgr == "native" else qs.QnjaxBellDiagonalManager()
            if mgr == "qnjax":
                qm.set([7, 107], state)
            tl = types.SimpleNamespace(now=lambda: int(1e12 + dt * 1e12), quantum_manager=qm)
            mem = types.SimpleNamespace(decoherence_errors=list(errors), timeline=tl, last_update_time=int(1e12),
                                        decoherence_rate=1 / 0.7, qstate_key=7, name="m")
            if mgr == "native":
                ORIGINAL_DECOHERE(mem)
                results.append(qm.last_set[1])
            else:
                hooks.dispatching_bds_decohere(mem)
                results.append(qm.get(7).state)
            assert mem.last_update_time == tl.now()
        np.testing.assert_allclose(results[1], results[0], rtol=0, atol=1e-14)


def test_decoherence_skips_like_sequence():
    qm = qs.QnjaxBellDiagonalManager()
    qm.set([1, 2], [0.9, 0.05, 0.03, 0.02])
    tl = types.SimpleNamespace(now=lambda: 5, quantum_manager=qm)
    for last, errors in ((-1, [1 / 3] * 3), (5, [1 / 3] * 3), (1, None)):
        mem = types.SimpleNamespace(decoherence_errors=errors, timeline=tl, last_update_time=last,
                                    decoherence_rate=1.0, qstate_key=1, name="m")
        qm.decohere(mem)
        assert mem.last_update_time == last
    np.testing.assert_array_equal(qm.get(1).state, [0.9, 0.05, 0.03, 0.02])


# ------------------------------------------------------------------ one source of truth: the
# NumPy scalar path equals qnjax's batched JAX API

def test_scalar_path_equals_batched_jax_api():
    import jax.numpy as jnp
    rng = np.random.default_rng(4)
    a, b = _rand_bds(rng, 16), _rand_bds(rng, 16)
    qa, qb = qs.to_qnjax_order(a), qs.to_qnjax_order(b)
    g, e = 0.03, 0.02
    batched = np.asarray(qnjax.swap(jnp.asarray(qa), jnp.asarray(qb), g, e))
    scalar = np.array([qs.bds_swap(x, y, 1 - g, 1 - e, twirled=False) for x, y in zip(a, b)])
    np.testing.assert_allclose(qs.to_qnjax_order(scalar), batched, atol=1e-12)

    p_b, out_b = qnjax.distill_dejmps(jnp.asarray(qa), jnp.asarray(qb))
    res = [qs.bds_dejmps(x, y) for x, y in zip(a, b)]
    np.testing.assert_allclose([r[0] for r in res], np.asarray(p_b), atol=1e-12)
    np.testing.assert_allclose(qs.to_qnjax_order(np.array([r[1] for r in res])), np.asarray(out_b), atol=1e-12)

    p_b, out_b = qnjax.distill_bbpssw(jnp.asarray(qa), jnp.asarray(qb))
    res = [qs.bds_bbpssw(x, y) for x, y in zip(a, b)]
    np.testing.assert_allclose([r[0] for r in res], np.asarray(p_b), atol=1e-12)
    np.testing.assert_allclose(qs.to_qnjax_order(np.array([r[1] for r in res])), np.asarray(out_b), atol=1e-12)

    # Pauli-rate idling == qnjax.pauli_channel with the same Pauli probabilities
    from qnjax.interop import _xp
    probs = np.asarray(_xp.pauli_rate_probs(0.2, 0.3, 0.5, 0.4, jnp))
    got = np.array([qs.bds_decohere(x, (0.2, 0.3, 0.5), 0.4) for x in a])
    np.testing.assert_allclose(qs.to_qnjax_order(got), np.asarray(qnjax.pauli_channel(jnp.asarray(qa), probs)),
                               atol=1e-12)


def test_xp_helpers_batch_jit_and_grad():
    import jax
    import jax.numpy as jnp
    from qnjax.interop import _xp
    rng = np.random.default_rng(5)
    a = jnp.asarray(qs.to_qnjax_order(_rand_bds(rng, 8)))
    b = jnp.asarray(qs.to_qnjax_order(_rand_bds(rng, 8)))

    @jax.jit
    def fid(a, b, j, s):
        num = _xp.noisy_recurrence_numerators(a, b, j, s, jnp)
        return num[..., 0] / num.sum(-1)

    out = fid(a, b, 0.98, 0.99)
    assert out.shape == (8,)
    ref = np.array([qs.bds_dejmps(qs.to_sequence_order(x), qs.to_sequence_order(y), 0.98, 1.0, 0.99, 1.0)[1][0]
                    for x, y in zip(np.asarray(a), np.asarray(b))])
    np.testing.assert_allclose(np.asarray(out), ref, atol=1e-12)
    grad = jax.grad(lambda j: fid(a, b, j, 1.0).sum())(0.95)
    assert np.isfinite(grad) and grad > 0


# ------------------------------------------------------------------ whole runs: native vs qnjax

def _assert_same_run(native, ours):
    for end in ("src", "dst"):
        assert len(native[end]) == len(ours[end])
        for x, y in zip(native[end], ours[end]):
            assert x[:5] == y[:5]  # time, memory index, state, remote node, remote memory
            assert y[5] == pytest.approx(x[5], abs=1e-12)  # fidelity
    assert native["events"] == ours["events"]
    assert native["time"] == ours["time"]
    assert len(native["memories"]) == len(ours["memories"])
    for x, y in zip(native["memories"], ours["memories"]):
        assert x[:3] == y[:3] and y[3] == pytest.approx(x[3], abs=1e-12)


SCENARIOS = {
    # 2-router link: generation, memory decoherence, purification until the target
    "link-bbpssw": dict(n_routers=2, target_fidelity=0.93, purification="bell_diagonal"),
    "link-dejmps-noisy": dict(n_routers=2, target_fidelity=0.93, purification="dejmps_bds",
                              gate_fid=0.99, meas_fid=0.99),
    # 3-router chain: link purification, then swapping; asymmetric Pauli memory errors
    "chain3-bbpssw": dict(n_routers=3, target_fidelity=0.87, raw_fidelity=0.85, memory_size=6),
    "chain3-dejmps-noisy": dict(n_routers=3, target_fidelity=0.87, raw_fidelity=0.85, memory_size=6,
                                purification="dejmps_bds", gate_fid=0.995, meas_fid=0.995,
                                decoherence_errors=(0.2, 0.3, 0.5)),
    # 5-router chain: nested swapping, many deliveries
    "chain5-swap": dict(n_routers=5, target_fidelity=0.7, raw_fidelity=0.95, stop_time=0.12),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_use_qnjax_run_equals_native_bell_diagonal(name):
    kw = SCENARIOS[name]
    native = run_chain(**kw)
    with qs.use_qnjax():
        ours = run_chain(**kw)
    assert native["manager"] is QuantumManagerBellDiagonal
    assert ours["manager"] is qs.QnjaxBellDiagonalManager
    assert len(native["dst"]) > 0
    _assert_same_run(native, ours)


@pytest.mark.parametrize("name", ["link-dejmps-noisy", "chain3-bbpssw"])
def test_qnjax_formalism_run_equals_native(name):
    kw = dict(SCENARIOS[name])
    native = run_chain(**kw)
    pur = {"bell_diagonal": qs.FORMALISM, "dejmps_bds": qs.DEJMPS_NAME}[kw.pop("purification", "bell_diagonal")]
    ours = run_chain(formalism=qs.FORMALISM, purification=pur, **kw)
    assert ours["manager"] is qs.QnjaxBellDiagonalManager
    _assert_same_run(native, ours)


def test_runs_go_through_the_shared_formulas(monkeypatch):
    """The qnjax run computes with qnjax._formulas (not a private copy of the physics)."""
    from qnjax import _formulas as F
    calls = {"klein_conv": 0, "dejmps_numerators": 0, "swap_bell": 0}
    for name in calls:
        orig = getattr(F, name)

        def counted(*a, _orig=orig, _name=name, **k):
            calls[_name] += 1
            return _orig(*a, **k)

        monkeypatch.setattr(F, name, counted)
    with qs.use_qnjax():
        run_chain(**SCENARIOS["chain3-bbpssw"])
    assert calls["swap_bell"] > 0 and calls["dejmps_numerators"] > 0 and calls["klein_conv"] > calls["swap_bell"]
    before = dict(calls)
    run_chain(**SCENARIOS["chain3-bbpssw"])  # native: no qnjax physics
    assert calls == before


def test_configure_selects_qnjax_everywhere():
    from sequence.entanglement_management.generation import EntanglementGenerationA
    try:
        qs.configure(purification="dejmps")
        assert QuantumManager.get_active_formalism() == qs.FORMALISM
        assert EntanglementSwappingA.get_formalism() == qs.FORMALISM
        assert PurificationProtocol.get_formalism() == qs.DEJMPS_NAME
        assert EntanglementGenerationA.get_global_type() == "single_heralded"
        with pytest.raises(ValueError):
            qs.configure(purification="bogus")
    finally:
        QuantumManager.set_global_manager_formalism("bell_diagonal")


def test_every_bell_diagonal_comparison_in_sequence_is_covered():
    """Scan the installed SeQUeNCe for comparisons with "bell_diagonal"; each must sit in a
    method qnjax overrides or in a module whose constant qnjax replaces (fails if a new
    SeQUeNCe release adds a site the plugin does not know)."""
    import ast
    import pathlib
    import warnings

    import sequence

    overridden = {
        ("sequence.entanglement_management.swapping.swapping_bds", "swapping_res"),
        ("sequence.entanglement_management.purification.bbpssw_bds", "purification_res"),
        ("sequence.entanglement_management.purification.dejmps_bds", "purification_res"),
    }
    patched_modules = {m.__name__ for m in hooks.CONSTANT_SITES}
    root = pathlib.Path(sequence.__file__).parent
    found = []
    for path in root.rglob("*.py"):
        mod = "sequence." + ".".join(path.relative_to(root).with_suffix("").parts)
        with warnings.catch_warnings():  # SeQUeNCe docstrings contain invalid escapes
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(path.read_text())
        for func in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
            for node in ast.walk(func):
                if not isinstance(node, ast.Compare):
                    continue
                names = [node.left, *node.comparators]
                if any((isinstance(x, ast.Name) and x.id == "BELL_DIAGONAL_STATE_FORMALISM")
                       or (isinstance(x, ast.Constant) and x.value == "bell_diagonal") for x in names):
                    found.append((mod, func.name))
    assert found, "expected SeQUeNCe to compare the formalism name somewhere"
    uncovered = [(m, f) for m, f in found if (m, f) not in overridden and m not in patched_modules]
    assert not uncovered, f"Bell-diagonal comparisons not covered by qnjax.interop.sequence: {uncovered}"
