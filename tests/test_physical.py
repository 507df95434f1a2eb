"""Physical layer (qnjax.physical): fibre, heralding schemes, memories."""

import itertools
from math import factorial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import qnjax as q
from transforms_check import check_transforms

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)
C_FIBER = 2.0e5


def test_fiber_transmissivity_values():
    np.testing.assert_allclose(q.fiber_transmissivity(100.0), 0.01, rtol=1e-12)
    np.testing.assert_allclose(q.fiber_transmissivity(0.0), 1.0)
    np.testing.assert_allclose(q.fiber_transmissivity(40.0, 0.25), 0.1, rtol=1e-12)
    np.testing.assert_allclose(q.fiber_transmissivity(np.array([10.0, 50.0])),
                               10 ** (-0.2 * np.array([10.0, 50.0]) / 10))
    assert q.SPEED_OF_LIGHT_FIBER_KM_S == C_FIBER


def test_direct_transmission():
    m = q.direct_transmission(50.0, efficiency=0.8, source_fidelity=0.95, prep_time_s=1e-6)
    np.testing.assert_allclose(m.p_gen, 0.8 * 0.1, rtol=1e-12)
    np.testing.assert_allclose(m.duration_s, 1e-6 + 2 * 50.0 / C_FIBER)
    np.testing.assert_allclose(m.lam0, [0.95, 0.05 / 3, 0.05 / 3, 0.05 / 3])
    assert isinstance(m, q.LinkModel)


def test_double_click_p_is_eta_h_squared_over_two():
    L = np.array([0.0, 20.0, 100.0])
    m = q.double_click(L, efficiency=0.7, visibility=0.9)
    eta_h = 0.7 * 10 ** (-0.2 * (L / 2) / 10)
    np.testing.assert_allclose(m.p_gen, eta_h**2 / 2, rtol=1e-12)
    np.testing.assert_allclose(m.duration_s, L / C_FIBER)
    np.testing.assert_allclose(m.lam0, np.tile([0.95, 0, 0, 0.05], (3, 1)), atol=1e-15)


def test_single_click_formula():
    L, a, eff, v = 30.0, 0.1, 0.6, 0.96
    m = q.single_click(L, a, efficiency=eff, visibility=v)
    eh = eff * 10 ** (-0.2 * (L / 2) / 10)
    good, bad = 2 * a * (1 - a) * eh, a**2 * eh * (2 - eh)
    np.testing.assert_allclose(m.p_gen, good + bad, rtol=1e-12)
    np.testing.assert_allclose(m.p_gen, 2 * a * eh * (1 - a * eh / 2), rtol=1e-12)
    frac = bad / (good + bad)
    np.testing.assert_allclose(m.lam0, [(1 - frac) * (1 + v) / 2, frac / 2, frac / 2,
                                        (1 - frac) * (1 - v) / 2], rtol=1e-12)
    np.testing.assert_allclose(m.duration_s, L / C_FIBER)


def _expand(terms, coefs):
    """Multiply a polynomial in (c†, d†) {(n_c, n_d): amplitude} by a linear form."""
    out = {}
    for (nc, nd), x in terms.items():
        for (dc, dd), y in coefs:
            out[(nc + dc, nd + dd)] = out.get((nc + dc, nd + dd), 0) + x * y
    return out


def fock_single_click(alpha, eta):
    """Explicit Fock-space model of single-click heralding: spin-photon states
    √(1−α)|0,0> + √α|1,1> at both nodes, loss as a beam splitter to an environment
    (transmission η), a 50:50 beam splitter a† -> (c† + d†)/√2, b† -> (c† − d†)/√2,
    and non-number-resolving detectors (success: exactly one detector fires).
    Returns (p_click, fidelity of the heralded spins to Ψ+, weight of |11>)."""
    amp = {0: np.sqrt(1 - alpha), 1: np.sqrt(alpha)}
    rho_c = np.zeros((4, 4), complex)  # unnormalised spin state given "c fires, d does not"
    for lost_a, lost_b in itertools.product((0, 1), repeat=2):  # environment records
        vec = {}  # (s1, s2, n_c, n_d) -> amplitude
        for s1, s2 in itertools.product((0, 1), repeat=2):
            if (lost_a and not s1) or (lost_b and not s2):
                continue
            w = amp[s1] * amp[s2]
            w *= np.sqrt(1 - eta) if lost_a else (np.sqrt(eta) if s1 else 1.0)
            w *= np.sqrt(1 - eta) if lost_b else (np.sqrt(eta) if s2 else 1.0)
            terms = {(0, 0): 1.0}
            if s1 and not lost_a:
                terms = _expand(terms, [((1, 0), 1 / np.sqrt(2)), ((0, 1), 1 / np.sqrt(2))])
            if s2 and not lost_b:
                terms = _expand(terms, [((1, 0), 1 / np.sqrt(2)), ((0, 1), -1 / np.sqrt(2))])
            for (nc, nd), x in terms.items():
                key = (s1, s2, nc, nd)  # c†^n |0> = √(n!) |n>
                vec[key] = vec.get(key, 0) + w * x * np.sqrt(factorial(nc) * factorial(nd))
        for nc in (1, 2):  # distinct photon numbers in c: an incoherent mixture
            psi = np.zeros(4, complex)
            for (s1, s2, c, d), x in vec.items():
                if c == nc and d == 0:
                    psi[2 * s1 + s2] += x
            rho_c += np.outer(psi, psi.conj())
    p = 2 * np.trace(rho_c).real  # "d fires only" is the mirror image (heralds Ψ−)
    rho = rho_c / np.trace(rho_c)
    psi_plus = np.array([0, 1, 1, 0]) / np.sqrt(2)
    return p, (psi_plus @ rho @ psi_plus).real, rho[3, 3].real


@pytest.mark.parametrize("alpha,eta", [(0.3, 0.4), (0.1, 0.9), (0.5, 0.05), (1.0, 0.5)])
def test_single_click_matches_explicit_fock_computation(alpha, eta):
    p_ref, f_ref, a_ref = fock_single_click(alpha, eta)
    m = q.single_click(0.0, alpha, efficiency=eta)  # eta_h = efficiency at L = 0
    np.testing.assert_allclose(m.p_gen, p_ref, rtol=1e-12)
    np.testing.assert_allclose(m.lam0[0], f_ref, atol=1e-12)  # Psi+ corrected to Phi+
    np.testing.assert_allclose(m.lam0[1] + m.lam0[2], a_ref, atol=1e-12)


def test_single_click_trade_off_monotone_in_alpha():
    alpha = np.linspace(0.0, 1.0, 41)
    m = q.single_click(25.0, alpha, efficiency=0.5, visibility=0.95)
    p, f = np.asarray(m.p_gen), np.asarray(m.lam0[:, 0])
    assert np.all(np.diff(p) > 0)
    assert np.all(np.diff(f) < 0)
    np.testing.assert_allclose(p[0], 0.0)
    np.testing.assert_allclose(m.lam0[0], [0.975, 0, 0, 0.025], atol=1e-15)  # α = 0: finite
    assert np.all(np.isfinite(m.lam0))
    # far-field limit: F -> (1 − α)(1 + V)/2, p -> 2 α η_h
    far = q.single_click(1000.0, 0.2, visibility=1.0)
    np.testing.assert_allclose(far.lam0[0], 0.8, rtol=1e-6)


@SETTINGS
@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 500.0))
def test_link_states_valid(alpha, v, L):
    for m in (q.single_click(L, alpha, visibility=v), q.double_click(L, visibility=v),
              q.direct_transmission(L, source_fidelity=v)):
        lam = np.asarray(m.lam0)
        assert abs(lam.sum() - 1) < 1e-12 and lam.min() >= -1e-15
        assert 0.0 <= float(m.p_gen) <= 1.0


def test_memory_helpers():
    np.testing.assert_allclose(q.decay_per_step(2.0, 0.5), np.exp(-0.25))
    np.testing.assert_allclose(q.decay_per_step(np.inf, 0.5), 1.0)
    np.testing.assert_allclose(q.t_coh_steps(1.0, 1e-3), 1000.0)
    np.testing.assert_allclose(q.memory_rates_per_step(2.0, 1.0, 0.1),
                               0.1 * np.asarray(q.memory_walsh_rates(2.0, 1.0)))
    # Werner decay over n steps = decay_per_step ** n
    np.testing.assert_allclose(q.werner_decay(0.9, 5 * 0.1, 2.0),
                               0.9 * q.decay_per_step(2.0, 0.1) ** 5, rtol=1e-12)


def test_differentiable_in_length():
    def f(L):
        out = []
        for m in (q.direct_transmission(L), q.double_click(L, visibility=0.9),
                  q.single_click(L, 0.1, visibility=0.9)):
            out += [m.p_gen, m.duration_s, m.lam0[0]]
        return jnp.stack(out + [q.fiber_transmissivity(L)])
    jac = jax.jit(jax.vmap(jax.jacobian(f)))(jnp.array([0.0, 10.0, 100.0]))
    assert np.all(np.isfinite(jac))
    assert np.all(jac[:, [0, 3, 6, 9]] < 0)  # p_gen decreases with length
    # single-click alpha and efficiency gradients at the boundaries
    g = jax.jit(jax.grad(lambda a, e: jnp.sum(q.single_click(50.0, a, efficiency=e).lam0 ** 2)
                         + q.single_click(50.0, a, efficiency=e).p_gen, argnums=(0, 1)))
    for a, e in [(0.0, 1.0), (1.0, 1.0), (0.3, 0.0)]:
        assert all(np.isfinite(x) for x in g(a, e))


# ----------------------------------------------------------- jit / vmap / grad

L3 = np.array([0.0, 10.0, 100.0])
A3 = np.array([0.0, 0.2, 1.0])
E3 = np.array([1.0, 0.5, 0.1])
V3 = np.array([1.0, 0.9, 0.5])
S3 = np.array([1e-3, 0.1, 2.0])
PHYS_FNS = [
    ("fiber_transmissivity", q.fiber_transmissivity, (L3, E3 * 0.2)),
    ("direct_transmission", q.direct_transmission, (L3, E3 * 0.2, E3, V3, S3)),
    ("double_click", q.double_click, (L3, E3 * 0.2, E3, V3, S3)),
    ("single_click", q.single_click, (L3, A3 * 0.5, E3 * 0.2, E3, V3, S3)),
    ("decay_per_step", q.decay_per_step, (S3 * 3, S3)),
    ("t_coh_steps", q.t_coh_steps, (S3 * 3, S3)),
    ("memory_rates_per_step", q.memory_rates_per_step, (S3 * 3, S3, S3)),
]


@pytest.mark.parametrize("name,fn,args", PHYS_FNS, ids=[f[0] for f in PHYS_FNS])
def test_physical_transform_and_dtypes(name, fn, args):
    check_transforms(fn, args)
