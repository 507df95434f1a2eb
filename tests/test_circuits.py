"""Circuit-level operations on density-matrix tensors (qnjax.circuits).

The circuits are checked three ways: against the closed forms (noiseless and
noisy swap, noiseless distillation), against an explicit NumPy computation built
here from Kronecker products and Bell projectors (noisy distillation, swap of
non-Bell-diagonal states), and for physical validity (trace, positivity).
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import qnjax as q
from qnjax import circuits as C

SETTINGS = settings(max_examples=15, deadline=None, derandomize=True)

# ----------------------------------------------------------- NumPy reference kit
I2 = np.eye(2)
X = np.array([[0, 1], [1, 0]], complex)
Y = np.array([[0, -1j], [1j, 0]])
Z = np.diag([1.0, -1.0]).astype(complex)
PAULI = [I2.astype(complex), X, Y, Z]
KET = {b: np.eye(2)[b] for b in (0, 1)}
# Bell kets in our order (Φ+, Ψ+, Ψ−, Φ−), built from computational kets.
BELL = [
    (np.kron(KET[0], KET[0]) + np.kron(KET[1], KET[1])) / np.sqrt(2),
    (np.kron(KET[0], KET[1]) + np.kron(KET[1], KET[0])) / np.sqrt(2),
    (np.kron(KET[0], KET[1]) - np.kron(KET[1], KET[0])) / np.sqrt(2),
    (np.kron(KET[0], KET[0]) - np.kron(KET[1], KET[1])) / np.sqrt(2),
]
# (phase bit, parity bit) that a CNOT+H Bell measurement reports for each Bell state.
BITS = [(0, 0), (0, 1), (1, 1), (1, 0)]


def op_on(op, qubits, n):
    """Full 2**n matrix of `op` acting on `qubits` (any order) of n qubits."""
    k = len(qubits)
    full = np.zeros((2**n, 2**n), complex)
    for i in range(2**n):
        bi = [(i >> (n - 1 - j)) & 1 for j in range(n)]
        sub_in = int("".join(str(bi[qq]) for qq in qubits), 2)
        for sub_out in range(2**k):
            amp = op[sub_out, sub_in]
            if amp == 0:
                continue
            bo = list(bi)
            for j, qq in enumerate(qubits):
                bo[qq] = (sub_out >> (k - 1 - j)) & 1
            full[int("".join(map(str, bo)), 2), i] += amp
    return full


def ptrace(rho, keep, n):
    t = rho.reshape((2,) * (2 * n))
    letters = "abcdefghijklmnop"
    rows, cols = list(letters[:n]), list(letters[n:2 * n])
    for qq in range(n):
        if qq not in keep:
            cols[qq] = rows[qq]
    out = "".join(rows[k] for k in keep) + "".join(cols[k] for k in keep)
    r = np.einsum("".join(rows) + "".join(cols) + "->" + out, t)
    return r.reshape(2 ** len(keep), 2 ** len(keep))


def pauli_mix(rho, qubits, n):
    """Replace `qubits` by the maximally mixed state: average over all Paulis on them."""
    out = 0
    for ps in itertools.product(PAULI, repeat=len(qubits)):
        op = ps[0]
        for p_ in ps[1:]:
            op = np.kron(op, p_)
        u = op_on(op, qubits, n)
        out = out + u @ rho @ u.conj().T
    return out / 4 ** len(qubits)


def np_swap(rho_a, rho_b, g=0.0, e=0.0):
    """Swap via Bell projectors on B1 B2 of the 4-qubit (A, B1, B2, C) matrix."""
    rho = np.kron(rho_a, rho_b)
    rho = (1 - g) * rho + g * pauli_mix(rho, (1, 2), 4)
    out = np.zeros((4, 4), complex)
    for k in range(4):
        proj = op_on(np.outer(BELL[k], BELL[k].conj()), (1, 2), 4)
        post = ptrace(proj @ rho @ proj, (0, 3), 4)
        for f1, f2 in itertools.product((0, 1), repeat=2):
            w = (e if f1 else 1 - e) * (e if f2 else 1 - e)
            r1, r2 = BITS[k][0] ^ f1, BITS[k][1] ^ f2
            corr = np.kron(I2, np.linalg.matrix_power(Z, r1) @ np.linalg.matrix_power(X, r2))
            out += w * corr @ post @ corr.conj().T
    return out


CNOT = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], complex)


def rx_np(theta):
    return np.cos(theta / 2) * I2 - 1j * np.sin(theta / 2) * X


def np_distill(rho_a, rho_b, gdep=0.0, e=0.0, dejmps=True):
    """Bilocal CNOT distillation on (a.A, a.B, b.A, b.B) with noisy CNOTs and read-out."""
    rho = np.kron(rho_a, rho_b)
    if dejmps:
        u = np.kron(np.kron(rx_np(np.pi / 2), rx_np(-np.pi / 2)),
                    np.kron(rx_np(np.pi / 2), rx_np(-np.pi / 2)))
        rho = u @ rho @ u.conj().T
    for c, t in ((0, 2), (1, 3)):
        u = op_on(CNOT, (c, t), 4)
        rho = u @ rho @ u.conj().T
        rho = (1 - gdep) * rho + gdep * pauli_mix(rho, (c, t), 4)
    out = np.zeros((4, 4), complex)
    for m1, m2 in itertools.product((0, 1), repeat=2):
        proj = op_on(np.outer(np.kron(KET[m1], KET[m2]), np.kron(KET[m1], KET[m2])), (2, 3), 4)
        w = (1 - e) ** 2 + e**2 if m1 == m2 else 2 * e * (1 - e)  # reported bits agree
        out += w * ptrace(proj @ rho @ proj, (0, 1), 4)
    p = np.trace(out).real
    return p, out / p


def np_werner_twirl(rho):
    f = np.real(BELL[0].conj() @ rho @ BELL[0])
    lam = np.array([f] + [(1 - f) / 3] * 3)
    return sum(lam[k] * np.outer(BELL[k], BELL[k].conj()) for k in range(4))


def rand_bell(rng, n=None):
    return rng.dirichlet(np.ones(4) * 0.7, size=n)


def rand_dm(rng, n_qubits=2):
    d = 2**n_qubits
    a = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
    r = a @ a.conj().T
    return r / np.trace(r)


def bell_dm(lam):
    return sum(lam[k] * np.outer(BELL[k], BELL[k].conj()) for k in range(4))


# ------------------------------------------------------------------------ helpers

def test_tensor_product_pairs_matches_kron():
    rng = np.random.default_rng(0)
    r1, r2, r3 = rand_dm(rng), rand_dm(rng), rand_dm(rng)
    t = C.tensor_product_pairs(r1, r2, r3)
    assert t.shape == (2,) * 12
    np.testing.assert_allclose(C.tensor_to_dm(t, 6), np.kron(np.kron(r1, r2), r3), atol=1e-12)


def test_tensor_product_pairs_broadcasts_batches():
    rng = np.random.default_rng(1)
    a = np.stack([rand_dm(rng) for _ in range(3)])[:, None]  # (3, 1, 4, 4)
    b = np.stack([rand_dm(rng) for _ in range(2)])  # (2, 4, 4)
    t = C.tensor_product_pairs(a, b)
    assert t.shape == (3, 2) + (2,) * 8
    np.testing.assert_allclose(C.tensor_to_dm(t, 4)[2, 1], np.kron(a[2, 0], b[1]), atol=1e-12)


@pytest.mark.parametrize("qubits", [(0, 1), (1, 2), (3, 0), (2, 1)])
def test_apply_gate_matches_explicit_matrix(qubits):
    rng = np.random.default_rng(2)
    rho = rand_dm(rng, 4)
    u, _ = np.linalg.qr(rng.normal(size=(4, 4)) + 1j * rng.normal(size=(4, 4)))
    out = C.tensor_to_dm(C.apply_gate(C.dm_to_tensor(rho, 4), u, qubits, 4), 4)
    full = op_on(u, qubits, 4)
    np.testing.assert_allclose(out, full @ rho @ full.conj().T, atol=1e-12)
    out2 = C.apply_two_qubit_gate(C.dm_to_tensor(rho, 4), u, *qubits, 4)
    np.testing.assert_allclose(C.tensor_to_dm(out2, 4), out, atol=1e-12)


def test_single_qubit_gate_and_rx():
    rng = np.random.default_rng(3)
    rho = rand_dm(rng, 3)
    u = np.asarray(C.rx(0.7))
    np.testing.assert_allclose(u, rx_np(0.7), atol=1e-12)
    out = C.apply_single_qubit_gate(C.dm_to_tensor(rho, 3), u, 1, 3)
    full = op_on(u, (1,), 3)
    np.testing.assert_allclose(C.tensor_to_dm(out, 3), full @ rho @ full.conj().T, atol=1e-12)


def test_partial_trace_and_trace():
    rng = np.random.default_rng(4)
    rho = rand_dm(rng, 4)
    t = C.dm_to_tensor(rho, 4)
    for keep in [(0,), (2, 0), (1, 3), (0, 1, 2, 3)]:
        np.testing.assert_allclose(C.tensor_to_dm(C.partial_trace(t, keep, 4), len(keep)),
                                   ptrace(rho, keep, 4), atol=1e-12)
    np.testing.assert_allclose(C.trace(t, 4), 1.0, atol=1e-12)


def test_depolarize_qubits_is_pauli_average():
    rng = np.random.default_rng(5)
    rho = rand_dm(rng, 3)
    out = C.depolarize_qubits(C.dm_to_tensor(rho, 3), 0.3, (2, 0), 3)
    ref = 0.7 * rho + 0.3 * pauli_mix(rho, (2, 0), 3)
    np.testing.assert_allclose(C.tensor_to_dm(out, 3), ref, atol=1e-12)


def test_project_z_probabilities_sum_to_one():
    rng = np.random.default_rng(6)
    t = C.dm_to_tensor(rand_dm(rng, 3), 3)
    ps = [C.trace(C.project_z(t, (0, 2), (a, b), 3), 1) for a in (0, 1) for b in (0, 1)]
    np.testing.assert_allclose(sum(ps), 1.0, atol=1e-12)
    r = C.tensor_to_dm(C.project_z(t, (1,), (1,), 3), 2)
    proj = op_on(np.diag([0.0, 1.0]), (1,), 3)
    np.testing.assert_allclose(r, ptrace(proj @ C.tensor_to_dm(t, 3) @ proj, (0, 2), 3),
                               atol=1e-12)


def test_bad_tensor_shape_raises():
    with pytest.raises(ValueError, match="rho"):
        C.dm_to_tensor(np.eye(3), 2)
    with pytest.raises(ValueError, match="qubits"):
        C.apply_gate(C.dm_to_tensor(np.eye(4) / 4, 2), np.eye(4), (0, 0), 2)


def test_werner_twirl_dm():
    rng = np.random.default_rng(7)
    rho = rand_dm(rng)
    np.testing.assert_allclose(C.werner_twirl_dm(rho), np_werner_twirl(rho), atol=1e-12)


# ------------------------------------------------------------------------- swap

@pytest.mark.parametrize("g,e", [(0.0, 0.0), (0.2, 0.0), (0.0, 0.1), (0.15, 0.07), (1.0, 1.0)])
def test_swap_dm_equals_closed_form(g, e):
    rng = np.random.default_rng(10)
    a, b = rand_bell(rng, 6), rand_bell(rng, 6)
    out = C.swap_dm(q.bell_to_dm(a), q.bell_to_dm(b), g, e)
    lam = q.swap(a, b, g, e)
    np.testing.assert_allclose(out, q.bell_to_dm(lam), atol=1e-12)  # Bell-diagonal exactly


@pytest.mark.parametrize("g,e", [(0.0, 0.0), (0.25, 0.1)])
def test_swap_dm_general_states_match_bell_projector_reference(g, e):
    rng = np.random.default_rng(11)
    ra, rb = rand_dm(rng), rand_dm(rng)
    np.testing.assert_allclose(C.swap_dm(ra, rb, g, e), np_swap(ra, rb, g, e), atol=1e-12)


def test_swap_dm_measurement_error_is_pauli_channel_on_output():
    """Phase-bit flips give Z, parity-bit flips give X, both give Y (_formulas.bsm_error_pauli)."""
    rho = q.bell_to_dm(np.array([1.0, 0, 0, 0]))
    e = 0.1
    lam = q.dm_to_bell(C.swap_dm(rho, rho, 0.0, e))
    np.testing.assert_allclose(lam, [(1 - e) ** 2, e * (1 - e), e**2, e * (1 - e)], atol=1e-12)


def test_swap_dm_batched_parameters():
    rng = np.random.default_rng(12)
    a, b = rand_bell(rng), rand_bell(rng)
    g = np.array([0.0, 0.1, 0.5])
    out = C.swap_dm(q.bell_to_dm(a), q.bell_to_dm(b), g, 0.05)
    assert out.shape == (3, 4, 4)
    for i in range(3):
        np.testing.assert_allclose(out[i], q.bell_to_dm(q.swap(a, b, g[i], 0.05)), atol=1e-12)


# ---------------------------------------------------------------- distillation

def test_dejmps_dm_noiseless_equals_closed_form():
    rng = np.random.default_rng(20)
    a, b = rand_bell(rng, 8), rand_bell(rng, 8)
    p, rho = C.distill_dejmps_dm(q.bell_to_dm(a), q.bell_to_dm(b))
    p2, lam = q.distill_dejmps(a, b)
    np.testing.assert_allclose(p, p2, atol=1e-12)
    np.testing.assert_allclose(rho, q.bell_to_dm(lam), atol=1e-12)


def test_bbpssw_dm_noiseless_equals_closed_form():
    rng = np.random.default_rng(21)
    a, b = rand_bell(rng, 8), rand_bell(rng, 8)
    p, rho = C.distill_bbpssw_dm(q.bell_to_dm(a), q.bell_to_dm(b))
    p2, lam = q.distill_bbpssw(a, b)
    np.testing.assert_allclose(p, p2, atol=1e-12)
    np.testing.assert_allclose(rho, q.bell_to_dm(lam), atol=1e-12)


def test_dejmps_rotation_convention():
    """Rx(π/2) ⊗ Rx(−π/2) keeps Φ+ and Ψ+ and exchanges Ψ− and Φ− (DEJMPS 1996)."""
    u = np.kron(rx_np(np.pi / 2), rx_np(-np.pi / 2))
    for k, k2 in [(0, 0), (1, 1), (2, 3), (3, 2)]:
        np.testing.assert_allclose(abs(BELL[k2].conj() @ u @ BELL[k]), 1.0, atol=1e-12)


@pytest.mark.parametrize("gdep,e", [(0.05, 0.0), (0.0, 0.03), (0.1, 0.05)])
@pytest.mark.parametrize("dejmps", [True, False])
def test_noisy_distill_dm_matches_explicit(gdep, e, dejmps):
    rng = np.random.default_rng(22)
    ra, rb = rand_dm(rng), rand_dm(rng)
    if dejmps:
        p, rho = C.distill_dejmps_dm(ra, rb, gdep, e)
        p2, rho2 = np_distill(ra, rb, gdep, e, True)
    else:
        p, rho = C.distill_bbpssw_dm(ra, rb, gdep, e)
        p2, rho2 = np_distill(np_werner_twirl(ra), np_werner_twirl(rb), gdep, e, False)
        rho2 = np_werner_twirl(rho2)
    np.testing.assert_allclose(p, p2, atol=1e-12)
    np.testing.assert_allclose(rho, rho2, atol=1e-12)


def test_noise_lowers_distilled_fidelity():
    lam = np.array([0.9, 0.04, 0.03, 0.03])
    rho = q.bell_to_dm(lam)
    fs = [q.dm_fidelity(C.distill_dejmps_dm(rho, rho, g, 0.0)[1]) for g in (0.0, 0.05, 0.2)]
    assert fs[0] > fs[1] > fs[2]
    fs = [q.dm_fidelity(C.distill_bbpssw_dm(rho, rho, 0.0, e)[1]) for e in (0.0, 0.05, 0.2)]
    assert fs[0] > fs[1] > fs[2]


# -------------------------------------------------------------- properties

bell_st = st.lists(st.floats(0.01, 1.0), min_size=4, max_size=4).map(
    lambda v: np.asarray(v) / np.sum(v))
prob_st = st.floats(0.0, 1.0)


@SETTINGS
@given(bell_st, bell_st, prob_st, prob_st)
def test_circuit_outputs_are_states(a, b, g, e):
    ra, rb = q.bell_to_dm(a), q.bell_to_dm(b)
    outs = [C.swap_dm(ra, rb, g, e)]
    for fn in (C.distill_dejmps_dm, C.distill_bbpssw_dm):
        p, rho = fn(ra, rb, g, e)
        assert 0.0 <= float(p) <= 1.0 + 1e-12
        outs.append(rho)
    for rho in outs:
        assert bool(q.is_valid_dm(rho, atol=1e-9))


@SETTINGS
@given(bell_st, bell_st, prob_st, prob_st)
def test_swap_dm_commutes_like_closed_form(a, b, g, e):
    ab = C.swap_dm(q.bell_to_dm(a), q.bell_to_dm(b), g, e)
    ba = C.swap_dm(q.bell_to_dm(b), q.bell_to_dm(a), g, e)
    np.testing.assert_allclose(ab, ba, atol=1e-12)


# ------------------------------------------------------ dtypes and transforms

def _loss(fn):
    def f(*args):
        out = fn(*args)
        leaves = jax.tree_util.tree_leaves(out)
        return sum(jnp.sum(jnp.real(x)) + jnp.sum(jnp.imag(x)) if jnp.iscomplexobj(x)
                   else jnp.sum(x) for x in leaves)
    return f


def _swap_w(w, g, e):
    return C.swap_dm(q.werner_to_dm(w), q.bell_to_dm(jnp.stack([w * 0 + 0.7, w * 0 + 0.1,
                                                                  w * 0 + 0.1, w * 0 + 0.1], -1)),
                     g, e)


def _dej_w(w, g, e):
    lam = jnp.stack([0.5 + 0.4 * w, 0.2 - 0.2 * w, 0.1 - 0.1 * w, 0.2 - 0.1 * w], -1)
    return C.distill_dejmps_dm(q.bell_to_dm(lam), q.werner_to_dm(w), g, e)


def _bb_w(w, g, e):
    return C.distill_bbpssw_dm(q.werner_to_dm(w), q.werner_to_dm(w * 0.9), g, e)


CIRCUIT_FNS = [("swap_dm", _swap_w), ("distill_dejmps_dm", _dej_w),
               ("distill_bbpssw_dm", _bb_w)]


def _vmapped_value_and_grad(fn, argnums):
    """One compiled function giving vmap(fn) outputs and per-element gradients of the
    summed outputs (jit ∘ vmap ∘ value_and_grad: one forward and backward trace)."""
    def elem(*a):
        out = fn(*a)
        return _loss(lambda *_: out)(), out
    return jax.jit(jax.vmap(jax.value_and_grad(elem, argnums, has_aux=True)))


@pytest.mark.parametrize("name,fn", CIRCUIT_FNS)
def test_circuits_jit_vmap_grad(name, fn):
    """jit(vmap(f)) agrees with the un-transformed batched call; jit(vmap(grad)) is finite
    and, in float64, agrees with central finite differences; float32 in gives
    float32/complex64 out and gradients close to float64."""
    w64 = np.array([0.3, 0.8, 1.0])
    g64 = np.array([0.0, 0.1, 1.0])
    e64 = np.array([0.0, 0.05, 0.0])
    ref = fn(jnp.asarray(w64), jnp.asarray(g64), jnp.asarray(e64))  # un-transformed
    grad64 = None
    for dtype in (jnp.float64, jnp.float32):
        w, g, e = (jnp.asarray(x, dtype) for x in (w64, g64, e64))
        tol = dict(rtol=2e-5, atol=2e-6) if dtype == jnp.float32 else dict(rtol=1e-10, atol=1e-12)
        vg = _vmapped_value_and_grad(fn, (0, 1, 2))
        (_, out), grads = vg(w, g, e)
        for leaf in jax.tree_util.tree_leaves(out):
            assert leaf.dtype in ((jnp.float32, jnp.complex64) if dtype == jnp.float32
                                  else (jnp.float64, jnp.complex128))
        jax.tree_util.tree_map(lambda x, y: np.testing.assert_allclose(x, y, **tol), out, ref)
        for gr in grads:
            assert gr.dtype == dtype and np.all(np.isfinite(gr))
        if dtype == jnp.float64:
            h = 1e-6
            for k in range(3):  # interior point (index 1), compiled function, no validation
                args_p, args_m = [w, g, e], [w, g, e]
                args_p[k] = args_p[k].at[1].add(h)
                args_m[k] = args_m[k].at[1].add(-h)
                fd = (vg(*args_p)[0][0][1] - vg(*args_m)[0][0][1]) / (2 * h)
                np.testing.assert_allclose(grads[k][1], fd, rtol=1e-5, atol=1e-7)
            grad64 = grads
        else:
            for gr, g_ref in zip(grads, grad64):
                np.testing.assert_allclose(gr, g_ref, rtol=1e-3, atol=1e-4)


def _helpers_chain(w, g, th):
    """Every public circuit helper, composed, as functions of real parameters."""
    t = C.tensor_product_pairs(q.werner_to_dm(w), q.werner_to_dm(0.5 + 0 * w))
    t = C.apply_gate(t, C.rx(th), (2,), 4)
    t = C.apply_two_qubit_gate(t, np.kron(np.eye(2), np.diag([1, 1j])), 3, 0, 4)
    t = C.apply_single_qubit_gate(t, C.rx(2 * th), 1, 4)
    t = C.depolarize_qubits(t, g, (0, 3), 4)
    t = C.bit_flip(t, g / 2, 1, 4)
    red = C.partial_trace(t, (2, 0), 4)
    proj = C.project_z(t, (1, 3), (0, 1), 4)
    return (C.tensor_to_dm(red, 2), C.tensor_to_dm(proj, 2), C.trace(proj, 2),
            C.werner_twirl_dm(C.tensor_to_dm(red, 2)), C.dm_to_tensor(q.werner_to_dm(w), 2))


@pytest.mark.parametrize("name,fn", [("helpers", _helpers_chain)])
def test_helpers_jit_vmap_grad(name, fn):
    w64, g64, th64 = np.array([1.0, 0.5, -1 / 3]), np.array([0.0, 0.3, 1.0]), np.array(
        [0.0, 0.4, np.pi])
    # Each helper is checked eagerly against NumPy above; here the composed chain under
    # vmap must equal the broadcasting (batched) call, compiled once.
    ref = jax.jit(fn)(*(jnp.asarray(x) for x in (w64, g64, th64)))
    for dtype in (jnp.float64, jnp.float32):
        a = tuple(jnp.asarray(x, dtype) for x in (w64, g64, th64))
        tol = dict(rtol=2e-5, atol=2e-6) if dtype == jnp.float32 else dict(rtol=1e-12, atol=1e-13)
        (_, vm), g = _vmapped_value_and_grad(fn, (0, 1, 2))(*a)
        for leaf in jax.tree_util.tree_leaves(vm):
            assert leaf.dtype in ((jnp.float32, jnp.complex64) if dtype == jnp.float32
                                  else (jnp.float64, jnp.complex128))
        jax.tree_util.tree_map(lambda x, y: np.testing.assert_allclose(x, y, **tol), vm, ref)
        for gi in g:
            assert gi.dtype == dtype and np.all(np.isfinite(gi))


# ----------------------------------------------------------------------- errors

def test_circuit_boundary_errors_name_argument():
    good = q.werner_to_dm(0.5)
    with pytest.raises(ValueError, match="rho_a"):
        C.swap_dm(2 * good, good)
    with pytest.raises(ValueError, match="rho_b"):
        C.distill_dejmps_dm(good, np.ones((4, 4)))
    with pytest.raises(ValueError, match="gate_depolarizing"):
        C.swap_dm(good, good, gate_depolarizing=1.5)
    with pytest.raises(ValueError, match="measurement_error"):
        C.distill_bbpssw_dm(good, good, measurement_error=-0.1)
    with pytest.raises(ValueError, match="cnot_depolarizing"):
        C.distill_bbpssw_dm(good, good, cnot_depolarizing=2.0)
    with pytest.raises(ValueError, match="rho_a"):
        C.swap_dm(np.eye(2) / 2, good)


def test_circuit_names_are_public():
    names = ["dm_to_tensor", "tensor_to_dm", "tensor_product_pairs", "apply_gate",
             "apply_two_qubit_gate", "apply_single_qubit_gate", "partial_trace",
             "depolarize_qubits", "bit_flip", "project_z", "rx", "werner_twirl_dm", "swap_dm",
             "distill_bbpssw_dm", "distill_dejmps_dm"]
    for n in names:
        assert n in q.__all__ and getattr(q, n) is getattr(C, n)
