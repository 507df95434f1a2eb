"""Noise channels (qnjax.channels) against explicit Kraus computations in NumPy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import qnjax as q
from support.transforms_check import check_transforms

SETTINGS = settings(max_examples=20, deadline=None, derandomize=True)

from support.bell_reference import BELL, KET0, KET1  # noqa: F401
PAULI = [np.eye(2, dtype=complex), np.array([[0, 1], [1, 0]], complex),
         np.array([[0, -1j], [1j, 0]]), np.diag([1.0, -1.0]).astype(complex)]

bell_st = st.lists(st.floats(0.0, 1.0), min_size=4, max_size=4).filter(
    lambda v: sum(v) > 1e-3).map(lambda v: np.asarray(v) / np.sum(v))
prob_st = st.floats(0.0, 1.0)


def bell_dm(lam):
    return sum(lam[k] * np.outer(BELL[k], BELL[k].conj()) for k in range(4))


def bell_diag(rho):
    return np.real([BELL[k].conj() @ rho @ BELL[k] for k in range(4)])


def kraus_on(rho, ks, qubit):
    out = 0
    for k in ks:
        full = np.kron(k, np.eye(2)) if qubit == 0 else np.kron(np.eye(2), k)
        out = out + full @ rho @ full.conj().T
    return out


def pauli_kraus(p):
    return [np.sqrt(p[k]) * PAULI[k] for k in range(4)]


def rand_dm(rng):
    a = rng.normal(size=(4, 4)) + 1j * rng.normal(size=(4, 4))
    r = a @ a.conj().T
    return r / np.trace(r)


def t1t2_np(t, t1, t2):
    """Amplitude damping (N&C eq. 8.108) then dephasing to reach coherence exp(-t/T2)."""
    g = 1 - np.exp(-t / t1)
    ad = [np.array([[1, 0], [0, np.sqrt(1 - g)]]), np.array([[0, np.sqrt(g)], [0, 0]])]
    lam = np.exp(-t / t2) / np.sqrt(1 - g)  # remaining coherence factor
    pz = (1 - lam) / 2
    return [np.sqrt(1 - pz) * k for k in ad] + [np.sqrt(pz) * PAULI[3] @ k for k in ad]


# --------------------------------------------------------- explicit references

@pytest.mark.parametrize("qubit", [0, 1])
def test_pauli_channel_matches_kraus(qubit):
    rng = np.random.default_rng(0)
    lam, p = rng.dirichlet(np.ones(4)), rng.dirichlet(np.ones(4))
    ref = bell_diag(kraus_on(bell_dm(lam), pauli_kraus(p), qubit))
    np.testing.assert_allclose(q.pauli_channel(lam, p), ref, atol=1e-12)


def test_depolarize_pair_explicit():
    rng = np.random.default_rng(1)
    lam = rng.dirichlet(np.ones(4))
    for p in (0.0, 0.3, 1.0):
        ref = bell_diag((1 - p) * bell_dm(lam) + p * np.eye(4) / 4)
        np.testing.assert_allclose(q.depolarize(lam, p), ref, atol=1e-12)


@pytest.mark.parametrize("qubit", [0, 1])
def test_depolarize_qubit_and_dephase_explicit(qubit):
    rng = np.random.default_rng(2)
    lam = rng.dirichlet(np.ones(4))
    rho = bell_dm(lam)
    p = 0.27
    # (1 − p) ρ + p tr_q(ρ) ⊗ 1/2 on the qubit, written with partial trace
    r = rho.reshape(2, 2, 2, 2)
    if qubit == 0:
        red = np.einsum("abad->bd", r)
        mixed = np.kron(np.eye(2) / 2, red)
    else:
        red = np.einsum("abcb->ac", r)
        mixed = np.kron(red, np.eye(2) / 2)
    ref = bell_diag((1 - p) * rho + p * mixed)
    np.testing.assert_allclose(q.depolarize_qubit(lam, p), ref, atol=1e-12)
    ref_z = bell_diag(kraus_on(rho, [np.sqrt(1 - p) * PAULI[0], np.sqrt(p) * PAULI[3]], qubit))
    np.testing.assert_allclose(q.dephase(lam, p), ref_z, atol=1e-12)


@pytest.mark.parametrize("qubit", [0, 1])
def test_density_matrix_channels_match_kraus(qubit):
    rng = np.random.default_rng(3)
    rho = rand_dm(rng)
    p = rng.dirichlet(np.ones(4))
    np.testing.assert_allclose(q.pauli_channel_dm(rho, p, qubit),
                               kraus_on(rho, pauli_kraus(p), qubit), atol=1e-12)
    dp = 0.4
    np.testing.assert_allclose(
        q.depolarize_dm(rho, dp, qubit),
        kraus_on(rho, pauli_kraus([1 - 3 * dp / 4, dp / 4, dp / 4, dp / 4]), qubit), atol=1e-12)
    ks = t1t2_np(0.3, 1.0, 0.8)
    np.testing.assert_allclose(q.apply_kraus(rho, np.array(ks), qubit),
                               kraus_on(rho, ks, qubit), atol=1e-12)
    np.testing.assert_allclose(q.memory_decohere_dm(rho, 0.3, 1.0, 0.8, qubits=(qubit,)),
                               kraus_on(rho, ks, qubit), atol=1e-12)


def test_t1t2_kraus_explicit_and_complete():
    ks = np.asarray(q.t1t2_kraus(0.4, 1.3, 0.9))
    np.testing.assert_allclose(sum(k.conj().T @ k for k in ks), np.eye(2), atol=1e-12)
    rho1 = np.array([[0.3, 0.2 - 0.1j], [0.2 + 0.1j, 0.7]])
    out = sum(k @ rho1 @ k.conj().T for k in ks)
    ref = sum(k @ rho1 @ k.conj().T for k in t1t2_np(0.4, 1.3, 0.9))
    np.testing.assert_allclose(out, ref, atol=1e-12)
    # populations relax with T1, coherences with T2 (Nielsen & Chuang §8.3)
    np.testing.assert_allclose(out[1, 1], 0.7 * np.exp(-0.4 / 1.3), atol=1e-12)
    np.testing.assert_allclose(out[0, 1], rho1[0, 1] * np.exp(-0.4 / 0.9), atol=1e-12)


def test_t1t2_twirl_equals_bell_twirl_of_kraus():
    """One qubit under the Pauli-twirled T1/T2 channel = Bell twirl of the Kraus
    (untwirled) version applied to a Bell-diagonal state; two qubits = the same with a
    Bell twirl between the two memories."""
    rng = np.random.default_rng(4)
    lam = rng.dirichlet(np.ones(4), size=3)
    t, t1, t2 = np.array([0.0, 0.5, 2.0]), 1.5, 1.1
    one = q.dm_to_bell(q.memory_decohere_dm(q.bell_to_dm(lam), t, t1, t2, qubits=(0,)))
    np.testing.assert_allclose(q.memory_decohere(lam, t, t1, t2, qubits=1), one, atol=1e-12)
    one_b = q.dm_to_bell(q.memory_decohere_dm(q.bell_to_dm(lam), t, t1, t2, qubits=(1,)))
    np.testing.assert_allclose(one_b, one, atol=1e-12)
    two = q.dm_to_bell(q.memory_decohere_dm(q.bell_to_dm(one), t, t1, t2, qubits=(1,)))
    np.testing.assert_allclose(q.memory_decohere(lam, t, t1, t2, qubits=2), two, atol=1e-12)


def test_two_memory_kraus_keeps_correlated_relaxation():
    """Untwirled amplitude damping of both memories relaxes to |00> (Bell diagonal
    (1/2, 0, 0, 1/2)); the per-memory twirled model relaxes to 1/4 (documented)."""
    lam = np.array([1.0, 0, 0, 0])
    kraus = q.dm_to_bell(q.memory_decohere_dm(q.bell_to_dm(lam), 60.0, 1.0, 1.0))
    np.testing.assert_allclose(kraus, [0.5, 0, 0, 0.5], atol=1e-12)
    np.testing.assert_allclose(q.memory_decohere(lam, 60.0, 1.0, 1.0), [0.25] * 4, atol=1e-12)


def test_t1t2_pauli_probs_values():
    p = q.t1t2_pauli_probs(0.7, 2.0, 1.5)
    e1, e2 = np.exp(-0.7 / 2.0), np.exp(-0.7 / 1.5)
    np.testing.assert_allclose(p, [(1 + e1 + 2 * e2) / 4, (1 - e1) / 4, (1 - e1) / 4,
                                   (1 + e1 - 2 * e2) / 4], atol=1e-15)
    np.testing.assert_allclose(np.sum(p), 1.0)


def test_memory_walsh_rates_are_exponents():
    rng = np.random.default_rng(5)
    lam = rng.dirichlet(np.ones(4))
    t, t1, t2 = 0.8, 1.7, 1.2
    rates = q.memory_walsh_rates(t1, t2)
    for n in (1, 2):
        out = q.memory_decohere(lam, t, t1, t2, qubits=n)
        np.testing.assert_allclose(q.walsh(out), q.walsh(lam) * np.exp(-n * t * rates),
                                   atol=1e-12)


def test_werner_decay_explicit():
    """w exp(−t/t_coh) = each memory depolarised with (1 − p)^2 = exp(−t/t_coh)."""
    w, t, tc = 0.9, 0.3, 1.2
    p = 1 - np.sqrt(np.exp(-t / tc))
    ks = pauli_kraus([1 - 3 * p / 4, p / 4, p / 4, p / 4])
    rho = kraus_on(kraus_on(bell_dm(q.werner_to_bell(w)), ks, 0), ks, 1)
    w_ref = (4 * bell_diag(rho)[0] - 1) / 3
    np.testing.assert_allclose(q.werner_decay(w, t, tc), w_ref, atol=1e-12)
    np.testing.assert_allclose(q.werner_decay(w, t, np.inf), w)


# ------------------------------------------------------------------ properties

@SETTINGS
@given(bell_st, bell_st, prob_st)
def test_channels_preserve_trace_and_positivity(lam, p, d):
    for out in (q.pauli_channel(lam, p), q.depolarize(lam, d), q.depolarize_qubit(lam, d),
                q.dephase(lam, d), q.memory_decohere(lam, d * 3, 1.0, 0.7)):
        out = np.asarray(out)
        assert abs(out.sum() - 1) < 1e-12 and out.min() > -1e-15


@SETTINGS
@given(bell_st, prob_st)
def test_dm_channels_preserve_state(lam, d):
    rho = q.bell_to_dm(lam)
    # a non-Bell-diagonal state: rotate one qubit
    u = np.array([[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]])
    rho = np.kron(u, np.eye(2)) @ np.asarray(rho) @ np.kron(u, np.eye(2)).T
    for out in (q.depolarize_dm(rho, d, 0), q.memory_decohere_dm(rho, 2 * d, 1.0, 1.5)):
        assert bool(q.is_valid_dm(out, atol=1e-10))


@SETTINGS
@given(bell_st, bell_st, bell_st)
def test_pauli_channels_compose_by_convolution(lam, p1, p2):
    one = q.pauli_channel(q.pauli_channel(lam, p1), p2)
    two = q.pauli_channel(lam, q.pauli_channel(p1, p2))
    np.testing.assert_allclose(one, two, atol=1e-12)


# --------------------------------------------------------------- gradients

def test_finite_gradients_at_boundaries():
    lam = jnp.array([1.0, 0.0, 0.0, 0.0])
    rho = q.bell_to_dm(lam)
    grads = jax.jit(jax.vmap(jax.grad(lambda p: jnp.stack([
        q.fidelity(q.depolarize(lam, p)), q.fidelity(q.depolarize_qubit(lam, p)),
        q.fidelity(q.dephase(lam, p)), q.dm_fidelity(q.depolarize_dm(rho, p, 0)),
        q.dm_fidelity(q.pauli_channel_dm(rho, jnp.stack([1 - p, 0 * p, 0 * p, p]), 1)),
    ]).sum())))(jnp.array([0.0, 1.0]))
    assert np.all(np.isfinite(grads))
    g = jax.jit(jax.grad(lambda t: q.dm_fidelity(q.memory_decohere_dm(rho, t, 1.0, 1.0))))(0.0)
    assert np.isfinite(g) and g < 0
    g = jax.jit(jax.grad(lambda t: q.fidelity(q.memory_decohere(lam, t, 1.0, 2.0))))(0.0)
    assert np.isfinite(g) and g < 0
    g = jax.jit(jax.grad(q.werner_decay, argnums=(0, 1, 2)))(1.0, 0.0, jnp.inf)
    assert all(np.isfinite(x) for x in g)


# ----------------------------------------------------------- jit / vmap / grad

LAM3 = np.array([[0.7, 0.1, 0.1, 0.1], [1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])
P3 = np.array([[0.9, 0.05, 0.0, 0.05], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
D3 = np.array([0.0, 0.3, 1.0])
T3, T1_3, T2_3 = np.array([0.0, 0.5, 3.0]), np.array([1.0, 2.0, 0.5]), np.array([1.0, 1.5, 0.2])
CHANNEL_FNS = [
    ("pauli_channel", q.pauli_channel, (LAM3, P3)),
    ("depolarize", q.depolarize, (LAM3, D3)),
    ("depolarize_qubit", q.depolarize_qubit, (LAM3, D3)),
    ("dephase", q.dephase, (LAM3, D3)),
    ("t1t2_pauli_probs", q.t1t2_pauli_probs, (T3, T1_3, T2_3)),
    ("memory_walsh_rates", q.memory_walsh_rates, (T1_3, T2_3)),
    ("memory_decohere", q.memory_decohere, (LAM3, T3, T1_3, T2_3)),
    ("werner_decay", q.werner_decay, (D3, T3, T1_3)),
    ("apply_kraus", lambda lam, t: q.apply_kraus(q.bell_to_dm(lam), q.t1t2_kraus(t + 0.1, 1.0, 1.0),
                                                 0), (LAM3, T3)),
    ("pauli_channel_dm", lambda lam, p: q.pauli_channel_dm(q.bell_to_dm(lam), p, 1), (LAM3, P3)),
    ("t1t2_kraus", lambda t, t1: q.t1t2_kraus(t + 0.1, t1, t1), (T3, T1_3)),
    ("memory_decohere_dm", lambda lam, t, t1, t2: q.memory_decohere_dm(q.bell_to_dm(lam), t, t1,
                                                                        t2), (LAM3, T3, T1_3, T2_3)),
    ("depolarize_dm", lambda lam, p: q.depolarize_dm(q.bell_to_dm(lam), p, 0), (LAM3, D3)),
]


@pytest.mark.parametrize("name,fn,args", CHANNEL_FNS, ids=[f[0] for f in CHANNEL_FNS])
def test_channel_functions_transform_and_dtypes(name, fn, args):
    check_transforms(fn, args)
