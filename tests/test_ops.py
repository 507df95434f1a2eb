"""Entanglement swapping and distillation closed forms (qnjax.ops).

Each closed form is checked against an explicit computation built here: the
4-qubit density matrix as a NumPy tensor, the Bell-state measurement projector or
the bilocal CNOT applied with einsum, projection onto the outcome, partial trace.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import qnjax as q
from support.transforms_check import check_transforms

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True)

from support.bell_reference import BELL, KET0, KET1  # noqa: F401
X = np.array([[0, 1], [1, 0]], complex)
Z = np.diag([1.0, -1.0]).astype(complex)
PAULI = [np.eye(2, dtype=complex), X, np.array([[0, -1j], [1j, 0]]), Z]
CNOT = np.zeros((2, 2, 2, 2))  # CNOT[out_c, out_t, in_c, in_t]
for c, t in itertools.product((0, 1), repeat=2):
    CNOT[c, t ^ c, c, t] = 1
# (phase bit, parity bit) of a CNOT + Hadamard Bell measurement for Φ+, Ψ+, Ψ−, Φ−.
BITS = [(0, 0), (0, 1), (1, 1), (1, 0)]

bell_st = st.lists(st.floats(0.0, 1.0), min_size=4, max_size=4).filter(
    lambda v: sum(v) > 1e-3).map(lambda v: np.asarray(v) / np.sum(v))
w_st = st.floats(-1 / 3, 1.0)
prob_st = st.floats(0.0, 1.0)


def bell_dm(lam):
    return sum(lam[k] * np.outer(BELL[k], BELL[k].conj()) for k in range(4))


def bell_diag(rho):
    return np.real([BELL[k].conj() @ rho @ BELL[k] for k in range(4)])


def four(rho_a, rho_b):
    """Tensor T[a, b, c, d, a', b', c', d'] of rho_a (qubits a b) ⊗ rho_b (qubits c d)."""
    return np.einsum("abxy,cdzw->abcdxyzw", rho_a.reshape(2, 2, 2, 2), rho_b.reshape(2, 2, 2, 2))


def np_swap(lam_a, lam_b, g=0.0, e=0.0):
    """BSM on the middle qubits (B1 B2) by Bell projectors; correction Z^m1 X^m2 on C from
    the reported (flipped with prob e) bits; with prob g the middle qubits are replaced
    by 1/4 before measurement."""
    t = four(bell_dm(lam_a), bell_dm(lam_b))
    tr_mid = np.einsum("abcdxbcw->adxw", t)  # ρ_AC with B1 B2 traced out
    t = (1 - g) * t + g * np.einsum("adxw,bz,cy->abcdxzyw", tr_mid, np.eye(2) / 2,
                                    np.eye(2) / 2)
    out = np.zeros((4, 4), complex)
    for k in range(4):
        v = BELL[k].reshape(2, 2)
        post = np.einsum("bc,abcdxyzw,yz->adxw", v.conj(), t, v).reshape(4, 4)
        for f1, f2 in itertools.product((0, 1), repeat=2):
            w = (e if f1 else 1 - e) * (e if f2 else 1 - e)
            r1, r2 = BITS[k][0] ^ f1, BITS[k][1] ^ f2
            corr = np.kron(np.eye(2), np.linalg.matrix_power(Z, r1) @ np.linalg.matrix_power(X, r2))
            out += w * corr @ post @ corr.conj().T
    return out


def np_bilocal(rho_a, rho_b):
    """Bilocal CNOT (a control, b target) on (a.A, a.B, b.A, b.B); keep when the Z
    measurements of pair b agree. Returns (p, unnormalised rho)."""
    t = four(rho_a, rho_b)  # indices: aA aB bA bB
    # CNOT aA -> bA and aB -> bB on rows, conjugate on columns
    t = np.einsum("pqac,rsbd,abcdxyzw->prqsxyzw", CNOT, CNOT, t)
    t = np.einsum("abcdxyzw,pqxz,rsyw->abcdprqs", t, CNOT, CNOT)
    out = sum(t[:, :, m, m, :, :, m, m] for m in (0, 1)).reshape(4, 4)
    return np.trace(out).real, out


def np_dejmps(lam_a, lam_b):
    rx = lambda th: np.cos(th / 2) * np.eye(2) - 1j * np.sin(th / 2) * X
    u = np.kron(rx(np.pi / 2), rx(-np.pi / 2))
    p, out = np_bilocal(u @ bell_dm(lam_a) @ u.conj().T, u @ bell_dm(lam_b) @ u.conj().T)
    return p, bell_diag(out / p), out / p


def np_bbpssw(lam_a, lam_b):
    tw = lambda lam: np.array([lam[0]] + [(1 - lam[0]) / 3] * 3)
    p, out = np_bilocal(bell_dm(tw(lam_a)), bell_dm(tw(lam_b)))
    return p, tw(bell_diag(out / p))


# ------------------------------------------------------ explicit references

@pytest.mark.parametrize("g,e", [(0.0, 0.0), (0.3, 0.0), (0.0, 0.15), (0.2, 0.1), (1.0, 0.5)])
def test_swap_matches_explicit_bsm(g, e):
    rng = np.random.default_rng(0)
    for _ in range(3):
        a, b = rng.dirichlet(np.ones(4)), rng.dirichlet(np.ones(4))
        ref = np_swap(a, b, g, e)
        np.testing.assert_allclose(ref, bell_dm(bell_diag(ref)), atol=1e-12)  # Bell-diagonal
        np.testing.assert_allclose(q.swap(a, b, g, e), bell_diag(ref), atol=1e-12)


def test_swap_werner_matches_swap():
    for wa, wb, g in [(0.9, 0.8, 0.0), (1.0, -1 / 3, 0.1), (0.5, 0.5, 1.0)]:
        ref = q.swap(q.werner_to_bell(wa), q.werner_to_bell(wb), g)
        np.testing.assert_allclose(q.werner_to_bell(q.swap_werner(wa, wb, g)), ref, atol=1e-14)


def test_dejmps_matches_explicit_bilocal_cnot():
    rng = np.random.default_rng(1)
    for _ in range(5):
        a, b = rng.dirichlet(np.ones(4)), rng.dirichlet(np.ones(4))
        p_ref, lam_ref, rho_ref = np_dejmps(a, b)
        np.testing.assert_allclose(rho_ref, bell_dm(lam_ref), atol=1e-12)  # Bell-diagonal
        p, lam = q.distill_dejmps(a, b)
        np.testing.assert_allclose(p, p_ref, atol=1e-12)
        np.testing.assert_allclose(lam, lam_ref, atol=1e-12)


def test_dejmps_paper_labels():
    """A=Φ+, B=Ψ−, C=Ψ+, D=Φ− (Deutsch et al. 1996): A' ∝ A1A2 + B1B2 etc."""
    a = np.array([0.6, 0.1, 0.2, 0.1])  # (Φ+, Ψ+, Ψ−, Φ−) -> A=.6, C=.1, B=.2, D=.1
    b = np.array([0.7, 0.05, 0.15, 0.1])
    A1, C1, B1, D1 = a
    A2, C2, B2, D2 = b
    n = (A1 + B1) * (A2 + B2) + (C1 + D1) * (C2 + D2)
    p, lam = q.distill_dejmps(a, b)
    np.testing.assert_allclose(p, n)
    np.testing.assert_allclose(lam, np.array([A1 * A2 + B1 * B2, C1 * C2 + D1 * D2,
                                              C1 * D2 + D1 * C2, A1 * B2 + B1 * A2]) / n)


def test_bbpssw_matches_explicit_bilocal_cnot():
    rng = np.random.default_rng(2)
    for _ in range(5):
        a, b = rng.dirichlet(np.ones(4)), rng.dirichlet(np.ones(4))
        p_ref, lam_ref = np_bbpssw(a, b)
        p, lam = q.distill_bbpssw(a, b)
        np.testing.assert_allclose(p, p_ref, atol=1e-12)
        np.testing.assert_allclose(lam, lam_ref, atol=1e-12)


def test_bbpssw_werner_matches_bell_form():
    for wa, wb in [(0.9, 0.8), (1.0, 1.0), (-1 / 3, 0.5), (0.2, 1.0)]:
        p, w = q.distill_bbpssw_werner(wa, wb)
        p2, lam = q.distill_bbpssw(q.werner_to_bell(wa), q.werner_to_bell(wb))
        np.testing.assert_allclose(p, p2, atol=1e-14)
        np.testing.assert_allclose(q.werner_to_bell(w), lam, atol=1e-14)


def test_dejmps_orthogonal_inputs_are_nan_free():
    p, lam = q.distill_dejmps(np.array([1.0, 0, 0, 0]), np.array([0.0, 0, 0, 1.0]))
    assert float(p) == 0.0 and np.all(np.isfinite(lam))


# -------------------------------------------------------------- properties

@SETTINGS
@given(bell_st, bell_st, prob_st, prob_st)
def test_swap_commutative_and_valid(a, b, g, e):
    ab, ba = q.swap(a, b, g, e), q.swap(b, a, g, e)
    np.testing.assert_allclose(ab, ba, atol=1e-12)
    assert abs(float(np.sum(ab)) - 1) < 1e-12 and float(np.min(ab)) >= -1e-15


@SETTINGS
@given(bell_st, bell_st, bell_st)
def test_swap_associative(a, b, c):
    np.testing.assert_allclose(q.swap(q.swap(a, b), c), q.swap(a, q.swap(b, c)), atol=1e-12)


@SETTINGS
@given(bell_st, bell_st)
def test_swap_is_product_in_walsh_coordinates(a, b):
    np.testing.assert_allclose(q.walsh(q.swap(a, b)), q.walsh(a) * q.walsh(b), atol=1e-12)


@SETTINGS
@given(w_st, w_st, prob_st)
def test_swap_of_werners_is_product_of_w(wa, wb, g):
    out = q.swap(q.werner_to_bell(wa), q.werner_to_bell(wb), g)
    np.testing.assert_allclose(out, q.werner_to_bell((1 - g) * wa * wb), atol=1e-12)
    np.testing.assert_allclose(q.swap_werner(wa, wb, g), (1 - g) * wa * wb, atol=1e-14)


@SETTINGS
@given(w_st, w_st)
def test_bbpssw_equals_dejmps_on_werner_inputs(wa, wb):
    a, b = q.werner_to_bell(wa), q.werner_to_bell(wb)
    p1, l1 = q.distill_bbpssw(a, b)
    p2, l2 = q.distill_dejmps(a, b)
    np.testing.assert_allclose(p1, p2, atol=1e-12)
    np.testing.assert_allclose(q.fidelity(l1), q.fidelity(l2), atol=1e-12)


@SETTINGS
@given(bell_st, bell_st)
def test_distillation_outputs_valid_and_p_in_range(a, b):
    for fn in (q.distill_bbpssw, q.distill_dejmps):
        p, lam = fn(a, b)
        assert -1e-15 <= float(p) <= 1 + 1e-12
        if float(p) > 1e-9:
            assert abs(float(np.sum(lam)) - 1) < 1e-9 and float(np.min(lam)) >= -1e-12


def test_distillation_improves_good_werner_pairs():
    p, w = q.distill_bbpssw_werner(0.8, 0.8)
    assert w > 0.8
    p, lam = q.distill_dejmps(q.werner_to_bell(0.8), q.werner_to_bell(0.8))
    assert q.fidelity(lam) > q.werner_fidelity(0.8)


# ------------------------------------------------------------ gradients

def test_finite_gradients_at_boundaries():
    def f(w):
        lam = q.werner_to_bell(w)
        return jnp.stack([
            q.swap_werner(w, w, 0.1), q.fidelity(q.swap(lam, lam, 1.0 - w, 1.0 - w)),
            q.distill_bbpssw_werner(w, w)[1], q.fidelity(q.distill_bbpssw(lam, lam)[1]),
            q.fidelity(q.distill_dejmps(lam, lam)[1]), q.distill_dejmps(lam, lam)[0],
        ])
    jac = jax.jit(jax.vmap(jax.jacobian(f)))(jnp.array([1.0, -1 / 3, 0.0]))
    assert np.all(np.isfinite(jac))
    gp = jax.jit(jax.grad(lambda g: q.fidelity(q.swap(q.werner_to_bell(0.9),
                                                     q.werner_to_bell(0.9), g, g))))(1.0)
    assert np.isfinite(gp)
    gd = jax.jit(jax.grad(lambda x: q.distill_dejmps(
        jnp.array([1.0, 0, 0, 0]), jnp.stack([1 - x, 0 * x, 0 * x, x]))[1][0]))(1.0)
    assert np.isfinite(gd)


# ----------------------------------------------------------- jit / vmap / grad

LAM3 = np.array([[0.7, 0.1, 0.1, 0.1], [1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])
LAM3B = np.array([[0.9, 0.0, 0.05, 0.05], [0.6, 0.2, 0.1, 0.1], [1.0, 0.0, 0.0, 0.0]])
W3 = np.array([1.0, 0.5, -1 / 3])
P3 = np.array([0.0, 0.2, 1.0])
OPS_FNS = [
    ("swap", q.swap, (LAM3, LAM3B, P3, P3[::-1])),
    ("swap_werner", q.swap_werner, (W3, W3[::-1], P3)),
    ("distill_dejmps", q.distill_dejmps, (LAM3, LAM3B)),
    ("distill_bbpssw", q.distill_bbpssw, (LAM3, LAM3B)),
    ("distill_bbpssw_werner", q.distill_bbpssw_werner, (W3, W3[::-1])),
]


@pytest.mark.parametrize("name,fn,args", OPS_FNS, ids=[f[0] for f in OPS_FNS])
def test_ops_transform_and_dtypes(name, fn, args):
    check_transforms(fn, args)


def test_numpy_path_of_formulas_matches():
    """qnjax._formulas is written once against xp; the NumPy path (used by simulator
    adapters one state at a time) gives the same numbers as the JAX path."""
    from qnjax import _formulas as F

    rng = np.random.default_rng(7)
    a, b = rng.dirichlet(np.ones(4)), rng.dirichlet(np.ones(4))
    np.testing.assert_allclose(F.swap_bell(a, b, 0.1, 0.05, np), q.swap(a, b, 0.1, 0.05),
                               atol=1e-14)
    num = F.dejmps_numerators(a, b, np)
    p, lam = q.distill_dejmps(a, b)
    np.testing.assert_allclose(num.sum(), p, atol=1e-14)
    np.testing.assert_allclose(num / num.sum(), lam, atol=1e-14)
    p2, f2 = F.bbpssw_fidelity(a[0], b[0])
    p3, lam3 = q.distill_bbpssw(a, b)
    np.testing.assert_allclose([p2, f2], [p3, lam3[0]], atol=1e-14)
    np.testing.assert_allclose(F.t1t2_pauli(0.3, 1.0, 0.8, np), q.t1t2_pauli_probs(0.3, 1.0, 0.8),
                               atol=1e-14)
    # batched gate noise in the NumPy path too
    g = np.array([0.0, 0.5])
    np.testing.assert_allclose(F.swap_bell(np.stack([a, a]), np.stack([b, b]), g, 0.0, np),
                               q.swap(a, b, g), atol=1e-14)


def test_special_cases():
    phi = np.array([1.0, 0, 0, 0])
    rng = np.random.default_rng(8)
    lam = rng.dirichlet(np.ones(4))
    np.testing.assert_allclose(q.swap(phi, lam), lam, atol=1e-15)  # Φ+ is the identity
    np.testing.assert_allclose(q.swap(np.full(4, 0.25), lam), np.full(4, 0.25), atol=1e-15)
    for fn in (q.distill_dejmps, q.distill_bbpssw):
        p, out = fn(phi, phi)
        np.testing.assert_allclose(p, 1.0)
        np.testing.assert_allclose(out, phi, atol=1e-15)
    p, w = q.distill_bbpssw_werner(0.0, 0.0)  # maximally mixed in, maximally mixed out
    np.testing.assert_allclose([p, w], [0.5, 0.0], atol=1e-15)
