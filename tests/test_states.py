"""State representations and conversions (qnjax.states).

Explicit references are built here from computational-basis kets with NumPy.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import qnjax as q
from support.transforms_check import check_transforms

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)

from support.bell_reference import BELL, KET0, KET1  # noqa: F401
PAULI = [np.eye(2), np.array([[0, 1], [1, 0]]), np.array([[0, -1j], [1j, 0]]),
         np.diag([1.0, -1.0])]

bell_st = st.lists(st.floats(0.0, 1.0), min_size=4, max_size=4).filter(
    lambda v: sum(v) > 1e-3).map(lambda v: np.asarray(v) / np.sum(v))
w_st = st.floats(-1 / 3, 1.0)


def np_bell_dm(lam):
    return sum(lam[k] * np.outer(BELL[k], BELL[k].conj()) for k in range(4))


def rand_dm(rng):
    a = rng.normal(size=(4, 4)) + 1j * rng.normal(size=(4, 4))
    r = a @ a.conj().T
    return r / np.trace(r)


# ------------------------------------------------------------------ conventions

def test_bell_order_is_pauli_on_one_qubit_of_phi_plus():
    """(I, X, Y, Z) applied to qubit 1 of |Φ+> give Φ+, Ψ+, Ψ−, Φ− (up to phase)."""
    for k, p in enumerate(PAULI):
        v = np.kron(np.eye(2), p) @ BELL[0]
        assert abs(abs(np.vdot(BELL[k], v)) - 1) < 1e-12
    np.testing.assert_allclose(np.asarray(q.bell_basis(jnp.complex128)), BELL.T, atol=1e-12)


def test_werner_bell_roundtrip_and_values():
    w = np.array([-1 / 3, 0.0, 0.5, 1.0])
    lam = q.werner_to_bell(w)
    np.testing.assert_allclose(lam[:, 0], (1 + 3 * w) / 4)
    np.testing.assert_allclose(lam[:, 1:], np.repeat(((1 - w) / 4)[:, None], 3, 1))
    np.testing.assert_allclose(q.bell_to_werner(lam), w, atol=1e-15)
    np.testing.assert_allclose(q.werner_fidelity(w), (1 + 3 * w) / 4)
    np.testing.assert_allclose(q.fidelity_to_werner(q.werner_fidelity(w)), w, atol=1e-15)
    np.testing.assert_allclose(q.fidelity(lam), (1 + 3 * w) / 4)


def test_werner_to_dm_explicit():
    """Werner state = w |Φ+><Φ+| + (1 − w) 1/4 (Werner, PRA 40, 4277 (1989))."""
    for w in (-1 / 3, 0.2, 1.0):
        ref = w * np.outer(BELL[0], BELL[0]) + (1 - w) * np.eye(4) / 4
        np.testing.assert_allclose(q.werner_to_dm(w), ref, atol=1e-12)


def test_walsh_roundtrip_and_werner_coordinates():
    rng = np.random.default_rng(0)
    lam = rng.dirichlet(np.ones(4), size=5)
    np.testing.assert_allclose(q.unwalsh(q.walsh(lam)), lam, atol=1e-14)
    w = np.array([0.1, 0.7])
    np.testing.assert_allclose(q.walsh(q.werner_to_bell(w)),
                               np.stack([np.ones(2), w, w, w], -1), atol=1e-14)
    # character table squared: H H = 4 1
    np.testing.assert_allclose(q.walsh(q.walsh(lam)) / 4, lam, atol=1e-14)


def test_bell_to_dm_explicit_and_inverse():
    rng = np.random.default_rng(1)
    lam = rng.dirichlet(np.ones(4), size=4)
    rho = q.bell_to_dm(lam)
    for i in range(4):
        np.testing.assert_allclose(rho[i], np_bell_dm(lam[i]), atol=1e-12)
    np.testing.assert_allclose(q.dm_to_bell(rho), lam, atol=1e-12)


def test_dm_to_bell_is_bell_basis_diagonal_and_twirl():
    """dm_to_bell = diagonal in the Bell basis = average over the twirl {P ⊗ P*}."""
    rng = np.random.default_rng(2)
    rho = rand_dm(rng)
    diag = np.real([BELL[k].conj() @ rho @ BELL[k] for k in range(4)])
    np.testing.assert_allclose(q.dm_to_bell(rho), diag, atol=1e-12)
    tw = sum(np.kron(p, p.conj()) @ rho @ np.kron(p, p.conj()).conj().T for p in PAULI) / 4
    np.testing.assert_allclose(tw, np_bell_dm(diag), atol=1e-12)
    np.testing.assert_allclose(q.dm_fidelity(rho), diag[0], atol=1e-12)


def test_twirl_to_werner_explicit():
    """Isotropic twirl: average of (U ⊗ U*) ρ (U ⊗ U*)† over Haar U, estimated exactly via
    the Werner form F |Φ+><Φ+| + (1 − F)(1 − |Φ+><Φ+|)/3 (Horodecki, PRA 59, 4206 (1999))."""
    rng = np.random.default_rng(3)
    lam = rng.dirichlet(np.ones(4))
    out = q.twirl_to_werner(lam)
    np.testing.assert_allclose(out, [lam[0]] + [(1 - lam[0]) / 3] * 3, atol=1e-15)
    # Monte Carlo over Haar unitaries agrees to sampling error
    acc = np.zeros((4, 4), complex)
    rho = np_bell_dm(lam)
    n = 4000
    for _ in range(n):
        z = rng.normal(size=(2, 2)) + 1j * rng.normal(size=(2, 2))
        u, r = np.linalg.qr(z)
        u = u * (np.diag(r) / abs(np.diag(r)))
        uu = np.kron(u, u.conj())
        acc += uu @ rho @ uu.conj().T
    np.testing.assert_allclose(np.real(np.diag(BELL @ (acc / n) @ BELL.T)), out, atol=0.03)


def test_validity_predicates():
    assert bool(q.is_valid_bell(np.array([0.5, 0.5, 0, 0])))
    assert not bool(q.is_valid_bell(np.array([0.6, 0.5, 0, 0])))
    assert not bool(q.is_valid_bell(np.array([1.1, -0.1, 0, 0])))
    assert bool(q.is_valid_dm(q.werner_to_dm(0.3)))
    assert not bool(q.is_valid_dm(np.diag([1.5, -0.5, 0, 0])))
    assert not bool(q.is_valid_dm(np.eye(4) / 2))
    np.testing.assert_array_equal(
        q.is_valid_bell(np.array([[1.0, 0, 0, 0], [2.0, -1, 0, 0]])), [True, False])


# ------------------------------------------------------------------- properties

@SETTINGS
@given(bell_st)
def test_bell_to_dm_is_a_state(lam):
    rho = np.asarray(q.bell_to_dm(lam))
    assert abs(np.trace(rho) - 1) < 1e-12
    assert np.linalg.eigvalsh(rho).min() > -1e-12
    np.testing.assert_allclose(q.dm_to_bell(rho), lam, atol=1e-12)
    tw = np.asarray(q.twirl_to_werner(lam))
    assert abs(tw.sum() - 1) < 1e-12 and tw.min() >= -1e-15


@SETTINGS
@given(w_st)
def test_werner_roundtrips(w):
    np.testing.assert_allclose(q.bell_to_werner(q.werner_to_bell(w)), w, atol=1e-12)
    np.testing.assert_allclose(q.dm_fidelity(q.werner_to_dm(w)), (1 + 3 * w) / 4, atol=1e-12)


# ----------------------------------------------------------- jit / vmap / grad

LAM3 = np.array([[0.7, 0.1, 0.1, 0.1], [1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])
W3 = np.array([-1 / 3, 0.4, 1.0])
F3 = np.array([0.0, 0.6, 1.0])
STATE_FNS = [
    ("walsh", q.walsh, (LAM3,), True),
    ("unwalsh", q.unwalsh, (LAM3,), True),
    ("werner_to_bell", q.werner_to_bell, (W3,), True),
    ("bell_to_werner", q.bell_to_werner, (LAM3,), True),
    ("fidelity", q.fidelity, (LAM3,), True),
    ("werner_fidelity", q.werner_fidelity, (W3,), True),
    ("fidelity_to_werner", q.fidelity_to_werner, (F3,), True),
    ("twirl_to_werner", q.twirl_to_werner, (LAM3,), True),
    ("bell_to_dm", q.bell_to_dm, (LAM3,), True),
    ("werner_to_dm", q.werner_to_dm, (W3,), True),
    ("dm_to_bell", lambda lam: q.dm_to_bell(q.bell_to_dm(lam)), (LAM3,), True),
    ("dm_fidelity", lambda w: q.dm_fidelity(q.werner_to_dm(w)), (W3,), True),
    ("is_valid_bell", q.is_valid_bell, (LAM3,), False),
    ("is_valid_dm", lambda lam: q.is_valid_dm(q.bell_to_dm(lam)), (LAM3,), False),
]


@pytest.mark.parametrize("name,fn,args,grad", STATE_FNS, ids=[f[0] for f in STATE_FNS])
def test_state_functions_transform_and_dtypes(name, fn, args, grad):
    check_transforms(fn, args, grad)


def test_finite_gradients_at_boundaries():
    def f(w):
        return jnp.stack([jnp.sum(q.werner_to_bell(w) ** 2), q.dm_fidelity(q.werner_to_dm(w)),
                          q.bell_to_werner(q.twirl_to_werner(q.werner_to_bell(w)))])
    jac = jax.jit(jax.vmap(jax.jacobian(f)))(jnp.array([1.0, -1 / 3]))
    assert np.all(np.isfinite(jac))
    np.testing.assert_allclose(jac[:, 1], 0.75)
    np.testing.assert_allclose(jac[:, 2], 1.0)


def test_float32_in_float32_out_with_python_scalars():
    lam = jnp.asarray([0.7, 0.1, 0.1, 0.1], jnp.float32)
    assert q.bell_to_dm(lam).dtype == jnp.complex64
    assert q.dm_to_bell(q.bell_to_dm(lam)).dtype == jnp.float32
    assert q.werner_to_bell(jnp.float32(0.5)).dtype == jnp.float32


def test_walsh_coordinates_are_pauli_correlations():
    """walsh(lam) = (1, <ZZ>, −<YY>, <XX>) of the Bell-diagonal state."""
    rng = np.random.default_rng(9)
    lam = rng.dirichlet(np.ones(4))
    rho = np_bell_dm(lam)
    corr = [np.real(np.trace(rho @ np.kron(a, b))) for a, b in
            [(PAULI[0], PAULI[0]), (PAULI[3], PAULI[3]), (PAULI[2], PAULI[2]),
             (PAULI[1], PAULI[1])]]
    np.testing.assert_allclose(q.walsh(lam), [corr[0], corr[1], -corr[2], corr[3]], atol=1e-12)


def test_check_bell_rejects_nan_and_figures_propagate_it():
    from qnjax._validate import check_bell

    bad = np.array([np.nan, 0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match=r"lam0 must not contain NaN; got \[nan, 0.1, 0.1, 0.1\]"):
        check_bell(bad, "lam0")
    with pytest.raises(ValueError, match="lam must not contain NaN"):
        q.bell_to_dm(bad)
    check_bell(bad, "lam", allow_nan=True)
    for fn in (q.fidelity, q.bell_to_werner, lambda x: q.twirl_to_werner(x)[..., 0]):
        assert np.isnan(float(fn(bad)))
    assert not bool(q.is_valid_bell(bad))
