"""Physical layer (qnjax.physical): fibre, heralding schemes, memories."""

import itertools
from math import factorial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import qnjax as q
from support.bell_reference import BELL
from support.transforms_check import check_transforms

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


# --------------------------------------------- photon-level model with dark counts
def _photon_level(nodes, out_map, eta, pd, phases=None):
    """Threshold detection of photons emitted by spin-photon sources, written out in Fock space.

    ``nodes[i]``: {spin: (amplitude, input mode or None)}; each photon reaches the detectors
    with probability ``eta`` (loss = a beam splitter to an environment mode that records the
    input mode, so lost photons leave no coherence); ``out_map[input mode]``: list of
    (detector mode, amplitude) of the linear optics; ``phases[i]``: extra optical phase of
    node ``i``'s photon. Every detector mode fires if it holds a photon or with dark-count
    probability ``pd``; distinct photon numbers are orthogonal, so patterns mix incoherently.
    Returns {frozenset(fired modes): unnormalised spin density matrix}."""
    n_out = 1 + max(m for outs in out_map.values() for m, _ in outs)
    dim = 2 ** len(nodes)
    phases = phases or [0.0] * len(nodes)
    amps = {}  # (env record, occupations) -> spin vector
    for spins in itertools.product(*[sorted(n) for n in nodes]):
        for fate in itertools.product((True, False), repeat=len(nodes)):
            w, terms, env = 1.0 + 0j, {(0,) * n_out: 1.0 + 0j}, []
            for i, (s, arrives) in enumerate(zip(spins, fate)):
                a, mode = nodes[i][s]
                w *= a
                if mode is None:
                    if not arrives:
                        w = 0.0
                    continue
                if not arrives:
                    w *= np.sqrt(1 - eta)
                    env.append((i, mode))
                    continue
                w *= np.sqrt(eta) * np.exp(1j * phases[i])
                new = {}
                for occ, x in terms.items():
                    for m, y in out_map[mode]:
                        o = list(occ)
                        o[m] += 1
                        new[tuple(o)] = new.get(tuple(o), 0) + x * y
                terms = new
            if w == 0:
                continue
            idx = int("".join(map(str, spins)), 2)
            for occ, x in terms.items():
                norm = np.sqrt(np.prod([factorial(k) for k in occ]))  # c†^n|0> = √(n!)|n>
                v = amps.setdefault((tuple(env), occ), np.zeros(dim, complex))
                v[idx] += w * x * norm
    rhos = {}
    for (_, occ), v in amps.items():
        for fired in itertools.product((0, 1), repeat=n_out):
            pr = np.prod([(1.0 if n else pd) if f else (0.0 if n else 1 - pd)
                          for n, f in zip(occ, fired)])
            if pr > 0:
                key = frozenset(k for k, f in enumerate(fired) if f)
                rhos[key] = rhos.get(key, 0) + pr * np.outer(v, v.conj())
    return rhos


X2 = np.kron(np.eye(2), [[0, 1], [1, 0]])
ZX2 = np.kron(np.eye(2), [[0, 1], [-1, 0]])  # Z·X on qubit 2: Ψ− -> Φ+ (up to sign)


def _bell_coeffs(rho):
    return np.array([(b @ rho @ b).real for b in BELL]) / np.trace(rho).real


def _gauss_average(f, sigma, n=40):
    """E[f(φ)] for φ ~ N(0, σ²), by Gauss–Hermite quadrature."""
    if sigma == 0:
        return f(0.0)
    x, w = np.polynomial.hermite_e.hermegauss(n)
    return sum(wi * f(sigma * xi) for xi, wi in zip(x, w)) / w.sum()


def photon_level_single_click(alpha, eta, pd, sigma=0.0):
    """(p_gen, Bell coefficients after the Ψ± -> Φ+ correction) of single-click heralding:
    detectors c = 0, d = 1; a† -> (c† + d†)/√2, b† -> (c† − d†)/√2; success = one click."""
    node = {0: (np.sqrt(1 - alpha), None), 1: (np.sqrt(alpha), "in")}
    r2 = 1 / np.sqrt(2)

    def herald(phi):
        out = {"a": [(0, r2), (1, r2)], "b": [(0, r2), (1, -r2)]}
        rh = _photon_level([{0: node[0], 1: (node[1][0], "a")}, {0: node[0], 1: (node[1][0], "b")}],
                           out, eta, pd, phases=[0.0, phi])
        zero = np.zeros((4, 4), complex)
        rc, rd = rh.get(frozenset({0}), zero), rh.get(frozenset({1}), zero)
        return X2 @ rc @ X2.T + ZX2 @ rd @ ZX2.T

    rho = _gauss_average(herald, sigma)
    return np.trace(rho).real, _bell_coeffs(rho)


def photon_level_double_click(eta, pd):
    """Barrett–Kok: spin |0> emits in the early bin, |1> in the late bin; detector modes
    (early c, early d, late c, late d) = 0..3; success = exactly one click per bin; equal
    detectors herald Ψ+, different ones Ψ−."""
    r2 = 1 / np.sqrt(2)
    nodes = [{0: (r2, "a0"), 1: (r2, "a1")}, {0: (r2, "b0"), 1: (r2, "b1")}]
    out = {f"{n}{t}": [(2 * t, r2), (2 * t + 1, (r2 if n == "a" else -r2))]
           for n in "ab" for t in (0, 1)}
    rh = _photon_level(nodes, out, eta, pd)
    rho = np.zeros((4, 4), complex)
    for e, l in itertools.product((0, 1), repeat=2):
        r = rh.get(frozenset({e, 2 + l}), np.zeros((4, 4)))
        U = X2 if e == l else ZX2
        rho = rho + U @ r @ U.T
    return np.trace(rho).real, _bell_coeffs(rho)


def photon_level_direct(eta, pd, lam_src):
    """Memory qubit with its photon in the dual-rail modes (h, v), source state with Bell
    coefficients ``lam_src`` (a Pauli on the memory), two threshold detectors after a Z or
    X measurement basis; a double click gets a random bit. Returns (p, e_Z, e_X)."""
    r2 = 1 / np.sqrt(2)
    paulis = [np.eye(2), np.array([[0, 1], [1, 0]]), np.array([[0, 1], [-1, 0]]), np.diag([1, -1])]
    out = {"Z": {"h": [(0, 1.0)], "v": [(1, 1.0)]},
           "X": {"h": [(0, r2), (1, r2)], "v": [(0, r2), (1, -r2)]}}
    proj = {"Z": np.eye(2), "X": np.array([[1, 1], [1, -1]]) * r2}  # rows: memory outcome 0, 1
    res = {}
    for basis in "ZX":
        p = err = 0.0
        for lam_k, P in zip(lam_src, paulis):
            # memory ⊗ photon: Σ_s |s>_mem a_s† with a_0 = h, a_1 = v; the Pauli acts on the memory
            rh = _photon_level([{0: (r2, "h"), 1: (r2, "v")}], out[basis], eta, pd)
            for fired, rho in rh.items():
                if not fired:
                    continue
                rho = P @ rho @ P.conj().T
                bits = {0: [(0, 1.0)], 1: [(1, 1.0)]}
                outcome = bits[0] if fired == {0} else bits[1] if fired == {1} else [(0, .5), (1, .5)]
                for b, wb in outcome:
                    tot = np.trace(rho).real
                    p += lam_k * wb * tot
                    wrong = proj[basis][1 - b]
                    err += lam_k * wb * (wrong @ rho @ wrong.conj()).real
        res[basis] = (p, err / p)
    return res["Z"][0], res["Z"][1], res["X"][1]


@pytest.mark.parametrize("alpha,eta,pd,sigma", [(0.3, 0.4, 0.0, 0.0), (0.1, 0.02, 1e-3, 0.0),
                                                (0.05, 1e-3, 1e-3, 0.3), (0.5, 0.9, 0.05, 0.7),
                                                (0.2, 0.0, 1e-2, 0.0)])
def test_single_click_dark_counts_and_phase_match_photon_level(alpha, eta, pd, sigma):
    p_ref, lam_ref = photon_level_single_click(alpha, eta, pd, sigma)
    m = q.single_click(0.0, alpha, efficiency=eta, dark_count_prob=pd, phase_noise_rad=sigma)
    np.testing.assert_allclose(m.p_gen, p_ref, rtol=1e-12)
    np.testing.assert_allclose(m.lam0, lam_ref, atol=1e-12)
    # detector efficiency is one more loss before the detectors
    m2 = q.single_click(0.0, alpha, efficiency=1.0, detector_efficiency=eta, dark_count_prob=pd,
                        phase_noise_rad=sigma)
    np.testing.assert_allclose(m2.p_gen, p_ref, rtol=1e-12)


@pytest.mark.parametrize("eta,pd", [(0.5, 0.0), (0.3, 1e-3), (0.01, 1e-4), (0.9, 0.05), (0.0, 0.01)])
def test_double_click_dark_counts_match_photon_level(eta, pd):
    p_ref, lam_ref = photon_level_double_click(eta, pd)
    m = q.double_click(0.0, efficiency=eta, dark_count_prob=pd)
    np.testing.assert_allclose(m.p_gen, p_ref, rtol=1e-12)
    np.testing.assert_allclose(m.lam0, lam_ref, atol=1e-12)


@pytest.mark.parametrize("eta,pd,f", [(0.5, 0.0, 1.0), (0.2, 1e-3, 0.9), (1e-3, 1e-3, 0.97),
                                      (0.0, 0.02, 0.9)])
def test_direct_dark_counts_match_photon_level(eta, pd, f):
    lam_src = [f, (1 - f) / 3, (1 - f) / 3, (1 - f) / 3]
    p_ref, ez, ex = photon_level_direct(eta, pd, lam_src)
    m = q.direct_transmission(0.0, efficiency=eta, source_fidelity=f, dark_count_prob=pd)
    lam = np.asarray(m.lam0)
    np.testing.assert_allclose(m.p_gen, p_ref, rtol=1e-12)
    np.testing.assert_allclose([lam[1] + lam[2], lam[2] + lam[3]], [ez, ex], atol=1e-12)


def test_dark_count_cliff_single_click_key_rate_vanishes_at_finite_distance():
    """Without dark counts the single-click key rate per attempt falls as √η forever; with
    10 Hz over 1 ns (p_d = 1e-8) it is exactly zero beyond a finite distance."""
    L = np.linspace(100.0, 1500.0, 141)
    pd = float(q.dark_count_probability(10.0, 1e-9))
    np.testing.assert_allclose(pd, 1e-8, rtol=1e-7)
    rate = lambda m: np.asarray(m.p_gen * np.maximum(q.key_fraction_bb84(m.lam0), 0))
    ideal = rate(q.single_click(L, 0.05, efficiency=0.8, visibility=0.98))
    noisy = rate(q.single_click(L, 0.05, efficiency=0.8, visibility=0.98, dark_count_prob=pd))
    assert np.all(ideal > 0)
    assert noisy[0] > 0 and noisy[-1] == 0
    cliff = L[np.argmax(noisy == 0)]
    assert np.all(noisy[L >= cliff] == 0) and 300 < cliff < 1500
    # the collapse sets in where α η_h is a few p_d
    eh = 0.8 * 10 ** (-0.2 * cliff / 20)
    assert 1 < 0.05 * eh / pd < 100
    # double-click and direct transmission hit the same wall
    for m in (q.double_click(L, efficiency=0.8, visibility=0.98, dark_count_prob=pd),
              q.direct_transmission(L, efficiency=0.8, dark_count_prob=pd)):
        r = rate(m)
        assert r[0] > 0 and r[-1] == 0


def test_dark_counts_reduce_to_the_noiseless_model():
    L = np.array([0.0, 30.0, 300.0])
    for fn, kw in ((q.single_click, dict(alpha=0.2, phase_noise_rad=0.0)), (q.double_click, {}),
                   (q.direct_transmission, {})):
        a, b = fn(L, **kw), fn(L, dark_count_prob=0.0, **kw)
        np.testing.assert_allclose(a.p_gen, b.p_gen, rtol=1e-14)
        np.testing.assert_allclose(a.lam0, b.lam0, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(q.phase_coherence(0.3), np.exp(-0.045))
    # phase noise dephases like a visibility factor
    np.testing.assert_allclose(q.single_click(40.0, 0.1, phase_noise_rad=0.4).lam0,
                               q.single_click(40.0, 0.1, visibility=np.exp(-0.08)).lam0, rtol=1e-12)


def test_multiplex_probability():
    p = np.array([0.0, 1e-12, 0.01, 0.5, 1.0])
    np.testing.assert_allclose(q.multiplex(p, 1), p, rtol=1e-12)
    np.testing.assert_allclose(q.multiplex(p[2:], 10), 1 - (1 - p[2:]) ** 10, rtol=1e-12)
    # no cancellation at small p (the naive 1 − (1 − p)^m is off by 2e-5 here)
    np.testing.assert_allclose(q.multiplex(1e-12, 10), 10e-12 - 45e-24, rtol=1e-12)
    assert np.all(np.diff(np.asarray(q.multiplex(0.01, np.arange(1, 20)))) > 0)
    with pytest.raises(ValueError, match="modes"):
        q.multiplex(0.1, 0.5)


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
@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 500.0), st.floats(0.0, 0.5))
def test_link_states_valid(alpha, v, L, pd):
    for m in (q.single_click(L, alpha, visibility=v, dark_count_prob=pd, phase_noise_rad=pd),
              q.double_click(L, visibility=v, dark_count_prob=pd),
              q.direct_transmission(L, source_fidelity=v, dark_count_prob=pd)):
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
    ("direct_transmission_dark", q.direct_transmission, (L3, E3 * 0.2, E3, V3, S3, E3 * 1e-3, E3)),
    ("double_click_dark", q.double_click, (L3, E3 * 0.2, E3, V3, S3, E3 * 1e-3, E3)),
    ("single_click_dark", q.single_click, (L3, A3 * 0.5, E3 * 0.2, E3, V3, S3, E3 * 1e-3, E3, S3)),
    ("dark_count_probability", q.dark_count_probability, (S3 * 100, S3 * 1e-3)),
    ("phase_coherence", q.phase_coherence, (S3,)),
    ("multiplex", q.multiplex, (np.array([0.0, 0.01, 0.5]), np.array([1.0, 3.0, 100.0]))),
    ("decay_per_step", q.decay_per_step, (S3 * 3, S3)),
    ("t_coh_steps", q.t_coh_steps, (S3 * 3, S3)),
    ("memory_rates_per_step", q.memory_rates_per_step, (S3 * 3, S3, S3)),
]


@pytest.mark.parametrize("name,fn,args", PHYS_FNS, ids=[f[0] for f in PHYS_FNS])
def test_physical_transform_and_dtypes(name, fn, args):
    check_transforms(fn, args)
