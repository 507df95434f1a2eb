"""qnjax-backed requsim pieces against requsim's own implementations."""

from __future__ import annotations

import importlib.util
import pathlib

import numpy as np
import pytest

pytest.importorskip("requsim")

import jax.numpy as jnp  # noqa: E402
import requsim.libs.matrix as mat  # noqa: E402
from requsim.events import EntanglementSwappingEvent  # noqa: E402
from requsim.libs.epp import dejmps_protocol  # noqa: E402
from requsim.noise import NoiseChannel, NoiseModel  # noqa: E402
from requsim.quantum_objects import Pair, Station  # noqa: E402
from requsim.tools.noise_channels import w_noise_channel, x_noise_channel, y_noise_channel, z_noise_channel  # noqa: E402
from requsim.world import World  # noqa: E402

import qnjax  # noqa: E402
from qnjax.interop import requsim as qr  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]

try:  # purification and BSM run qnjax's circuit-level module
    import qnjax.circuits  # noqa: F401
    HAS_CIRCUITS = True
except ImportError:  # pragma: no cover
    HAS_CIRCUITS = False
needs_circuits = pytest.mark.skipif(not HAS_CIRCUITS, reason="qnjax.circuits not available")


def _rdm(rng, n=4):
    g = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    r = g @ g.conj().T
    return r / np.trace(r)


def _bell_dm(lam):
    return np.asarray(qnjax.bell_to_dm(jnp.asarray(lam)))


def _rand_bell(rng, lo=0.6):
    f = lo + (1 - lo) * rng.random()
    rest = rng.dirichlet(np.ones(3)) * (1 - f)
    return np.array([f, *rest])


# ------------------------------------------------------------------ memory channels

@pytest.mark.parametrize("qubit", [0, 1])
def test_dephasing_equals_requsim_z_noise(qubit):
    rng = np.random.default_rng(0)
    rho = _rdm(rng)
    for t in (0.0, 0.01, 0.2):
        got = qr.dephasing_channel(0.05).apply_to(rho, [qubit], t=t)
        want = z_noise_channel.apply_to(rho, [qubit], epsilon=(1 - np.exp(-t / 0.05)) / 2)
        np.testing.assert_allclose(got, want, atol=1e-14)


@pytest.mark.parametrize("qubit", [0, 1])
def test_depolarizing_equals_requsim_w_noise(qubit):
    rng = np.random.default_rng(1)
    rho = _rdm(rng)
    got = qr.depolarizing_channel(0.1).apply_to(rho, [qubit], t=0.03)
    want = w_noise_channel.apply_to(rho, [qubit], alpha=np.exp(-0.3))
    np.testing.assert_allclose(got, want, atol=1e-14)


def test_pauli_channel_equals_requsim_x_y_noise():
    rng = np.random.default_rng(2)
    rho = _rdm(rng)
    got = qr.pauli_channel([0.9, 0.1, 0, 0]).apply_to(rho, [0])
    np.testing.assert_allclose(got, x_noise_channel.apply_to(rho, [0], epsilon=0.1), atol=1e-14)
    got = qr.pauli_channel([0.8, 0, 0.2, 0]).apply_to(rho, [1])
    np.testing.assert_allclose(got, y_noise_channel.apply_to(rho, [1], epsilon=0.2), atol=1e-14)


@pytest.mark.parametrize("qubit", [0, 1])
def test_t1t2_equals_qnjax_memory_decohere_dm(qubit):
    rng = np.random.default_rng(3)
    rho = _rdm(rng)
    got = qr.t1t2_channel(0.3, 0.2).apply_to(rho, [qubit], t=0.07)
    want = np.asarray(qnjax.memory_decohere_dm(jnp.asarray(rho), 0.07, 0.3, 0.2, qubits=(qubit,)))
    np.testing.assert_allclose(got, want, atol=1e-13)
    # T1 = inf: pure dephasing, the same as the dephasing memory with T_dp = T2
    got = qr.t1t2_channel(np.inf, 0.2).apply_to(rho, [qubit], t=0.07)
    np.testing.assert_allclose(got, qr.dephasing_channel(0.2).apply_to(rho, [qubit], t=0.07), atol=1e-14)


def test_channel_arguments_are_checked():
    with pytest.raises(ValueError):
        qr.t1t2_channel(0.1, 0.3)
    with pytest.raises(ValueError):
        qr.dephasing_channel(0.0)
    with pytest.raises(ValueError):
        qr.pauli_channel([0.5, 0.5, 0.5, -0.5])
    with pytest.raises(ValueError):
        qr.dejmps(cnot_depolarizing=1.5)
    assert isinstance(qr.t1t2_channel(1, 1), NoiseChannel)
    assert isinstance(qr.bsm_noise_model(), NoiseModel)


# ------------------------------------------------------------------ purification

@needs_circuits
def test_dejmps_equals_requsim_dejmps_on_general_states():
    rng = np.random.default_rng(4)
    proto = qr.dejmps()
    for _ in range(5):
        rho = np.kron(_rdm(rng), _rdm(rng))
        p_want, s_want = dejmps_protocol(rho)
        p_got, s_got = proto(rho)
        assert p_got == pytest.approx(float(np.real(p_want)), abs=1e-13)
        np.testing.assert_allclose(s_got, s_want, atol=1e-13)


@needs_circuits
def test_bbpssw_and_noisy_dejmps_match_closed_forms():
    rng = np.random.default_rng(5)
    a, b = _rand_bell(rng), _rand_bell(rng)
    rho = np.kron(_bell_dm(a), _bell_dm(b))
    p, s = qr.bbpssw()(rho)
    p_ref, lam_ref = qnjax.distill_bbpssw(jnp.asarray(a), jnp.asarray(b))
    assert p == pytest.approx(float(p_ref), abs=1e-13)
    np.testing.assert_allclose(s, _bell_dm(lam_ref), atol=1e-13)
    # noisy DEJMPS = qnjax.circuits on the same pair states
    p, s = qr.dejmps(0.02, 0.01)(rho)
    p_ref, s_ref = qnjax.distill_dejmps_dm(jnp.asarray(_bell_dm(a)), jnp.asarray(_bell_dm(b)), 0.02, 0.01)
    assert p == pytest.approx(float(p_ref), abs=1e-13)
    np.testing.assert_allclose(s, np.asarray(s_ref), atol=1e-13)


def test_split_pairs_rejects_entangled_inputs():
    rng = np.random.default_rng(6)
    ra, rb = _rdm(rng), _rdm(rng)
    a, b = qr.split_pairs(np.kron(ra, rb))
    np.testing.assert_allclose(a, ra, atol=1e-14)
    np.testing.assert_allclose(b, rb, atol=1e-14)
    with pytest.raises(ValueError):
        qr.split_pairs(_rdm(rng, 16))
    with pytest.raises(ValueError):
        qr.split_pairs(np.eye(4))


# ------------------------------------------------------------------ Bell-state measurement

def _swap_in_requsim(lam_a, lam_b, noise_model):
    """Swap two pairs A–C1, C2–B at station C with requsim's own EntanglementSwappingEvent."""
    world = World()
    sa = Station(world=world, position=0)
    sc = Station(world=world, position=1, BSM_noise_model=noise_model)
    sb = Station(world=world, position=2)
    p1 = Pair(world=world, qubits=[sa.create_qubit(), sc.create_qubit()], initial_state=_bell_dm(lam_a))
    p2 = Pair(world=world, qubits=[sc.create_qubit(), sb.create_qubit()], initial_state=_bell_dm(lam_b))
    ev = EntanglementSwappingEvent(time=0, pairs=[p1, p2], station=sc)
    world.event_queue.add_event(ev)
    out = world.event_queue.resolve_next_event()
    return np.asarray(out["output_pair"].state)


@needs_circuits
def test_bsm_equals_requsim_bsm_on_bell_diagonal_pairs():
    rng = np.random.default_rng(7)
    lam_bsm = 0.97

    def depol(rho):
        return lam_bsm * rho + (1 - lam_bsm) * mat.I(4) / 4 * np.trace(rho)

    native = NoiseModel(channel_before=NoiseChannel(n_qubits=2, channel_function=depol))
    for _ in range(3):
        a, b = _rand_bell(rng), _rand_bell(rng)
        np.testing.assert_allclose(_swap_in_requsim(a, b, qr.bsm_noise_model()),
                                   _swap_in_requsim(a, b, NoiseModel()), atol=1e-13)
        np.testing.assert_allclose(_swap_in_requsim(a, b, qr.bsm_noise_model(1 - lam_bsm)),
                                   _swap_in_requsim(a, b, native), atol=1e-13)
        # with read-out errors: the closed form qnjax.swap
        got = _swap_in_requsim(a, b, qr.bsm_noise_model(0.03, 0.02))
        want = _bell_dm(qnjax.swap(jnp.asarray(a), jnp.asarray(b), 0.03, 0.02))
        np.testing.assert_allclose(got, want, atol=1e-13)


# ------------------------------------------------------------------ a whole requsim repeater

@needs_circuits
def test_example_repeater_same_as_requsim_builtins():
    spec = importlib.util.spec_from_file_location("requsim_chain", ROOT / "examples" / "requsim_chain.py")
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)
    t_r, s_r = ex.run("requsim", n_pairs=25, seed=3)
    t_q, s_q = ex.run("qnjax", n_pairs=25, seed=3)
    np.testing.assert_array_equal(t_q, t_r)
    np.testing.assert_allclose(s_q, s_r, atol=1e-12)
    assert 0.9 < ex.fidelity(s_q).mean() < 1
