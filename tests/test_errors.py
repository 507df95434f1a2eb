"""Errors at the API boundary, and what happens to bad input inside ``jit``.

Concrete (non-traced) bad input raises ``ValueError`` (or ``TypeError`` for a
non-numeric dtype) with a message that names the argument, shows the bad value and
the allowed range. Under ``jit``/``vmap``/``grad`` the arguments are tracers, the
value checks are skipped (no host round-trip, no recompilation), and bad values
propagate as out-of-range numbers or NaN instead of raising: validate once outside
the transformed function when that matters. Shape checks (last-axis size,
broadcastable batch shapes) use static shapes and so also fire under ``jit``.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qnjax as q

GOOD = np.array([0.7, 0.1, 0.1, 0.1])
RHO = np.asarray(q.werner_to_dm(0.5))


def raises(exc, *fragments):
    """pytest.raises whose message must contain every fragment (in order)."""
    return pytest.raises(exc, match=".*".join(re.escape(f) for f in fragments))


# ------------------------------------------------------------- probabilities

@pytest.mark.parametrize("call,name", [
    (lambda v: q.depolarize(GOOD, v), "p"),
    (lambda v: q.depolarize_qubit(GOOD, v), "p"),
    (lambda v: q.dephase(GOOD, v), "p"),
    (lambda v: q.depolarize_dm(RHO, v, 0), "p"),
    (lambda v: q.swap(GOOD, GOOD, gate_depolarizing=v), "gate_depolarizing"),
    (lambda v: q.swap(GOOD, GOOD, measurement_error=v), "measurement_error"),
    (lambda v: q.swap_werner(0.5, 0.5, v), "gate_depolarizing"),
    (lambda v: q.binary_entropy(v), "p"),
    (lambda v: q.plob_bound(v), "eta"),
    (lambda v: q.tgw_bound(v), "eta"),
    (lambda v: q.single_click(10.0, v), "alpha"),
    (lambda v: q.single_click(10.0, 0.1, efficiency=v), "efficiency"),
    (lambda v: q.double_click(10.0, visibility=v), "visibility"),
    (lambda v: q.direct_transmission(10.0, source_fidelity=v), "source_fidelity"),
    (lambda v: q.fidelity_to_werner(v), "f"),
    (lambda v: q.swap_dm(RHO, RHO, v), "gate_depolarizing"),
    (lambda v: q.distill_dejmps_dm(RHO, RHO, v), "cnot_depolarizing"),
    (lambda v: q.distill_bbpssw_dm(RHO, RHO, 0.0, v), "measurement_error"),
])
@pytest.mark.parametrize("bad", [-0.1, 1.5, np.nan])
def test_probability_out_of_range(call, name, bad):
    with raises(ValueError, f"{name} must lie in [0.0, 1.0]", "got"):
        call(bad)


def test_message_shows_value_and_count():
    with raises(ValueError, "p must lie in [0.0, 1.0]; got 1.5 (and 1 more)"):
        q.depolarize(GOOD, np.array([0.2, 1.5, 2.0]))


def test_werner_parameter_range():
    for fn in (q.werner_to_bell, q.werner_fidelity, q.werner_to_dm):
        with raises(ValueError, "w must lie in [-0.333", "1.0]; got 1.2"):
            fn(1.2)
    with raises(ValueError, "wa must lie in"):
        q.distill_bbpssw_werner(-0.5, 0.5)
    with raises(ValueError, "wb must lie in"):
        q.swap_werner(0.5, 1.01)


# ------------------------------------------------------------ Bell vectors

BELL_FNS = [
    ("lam", lambda v: q.fidelity(v)), ("lam", lambda v: q.bell_to_werner(v)),
    ("lam", lambda v: q.twirl_to_werner(v)), ("lam", lambda v: q.bell_to_dm(v)),
    ("lam", lambda v: q.qber(v)), ("lam", lambda v: q.key_fraction_bb84(v)),
    ("lam", lambda v: q.key_fraction_six_state_smooth(v)),
    ("lam", lambda v: q.depolarize(v, 0.1)), ("lam", lambda v: q.memory_decohere(v, 1, 1, 1)),
    ("p", lambda v: q.pauli_channel(GOOD, v)), ("p", lambda v: q.pauli_channel_dm(RHO, v, 0)),
    ("a", lambda v: q.swap(v, GOOD)), ("b", lambda v: q.swap(GOOD, v)),
    ("a", lambda v: q.distill_dejmps(v, GOOD)), ("b", lambda v: q.distill_bbpssw(GOOD, v)),
]


@pytest.mark.parametrize("name,call", BELL_FNS)
def test_bell_vector_checks(name, call):
    with raises(ValueError, f"{name} must be non-negative", "-0.1"):
        call(np.array([0.9, 0.2, -0.1, 0.0]))
    with raises(ValueError, f"{name} must sum to 1", "got sum 0.8"):
        call(np.array([0.5, 0.1, 0.1, 0.1]))
    with raises(ValueError, f"{name} must have a last axis of size 4", "(3,)"):
        call(np.array([0.5, 0.25, 0.25]))
    with raises(ValueError, f"{name} must sum to 1"):
        call(np.array([[0.7, 0.1, 0.1, 0.1], [0.7, 0.1, 0.1, 0.2]]))  # one bad batch row


# --------------------------------------------------------- density matrices

@pytest.mark.parametrize("call", [
    lambda r: q.dm_to_bell(r), lambda r: q.dm_fidelity(r),
    lambda r: q.memory_decohere_dm(r, 0.1, 1.0, 1.0), lambda r: q.depolarize_dm(r, 0.1, 1),
    lambda r: q.swap_dm(r, RHO), lambda r: q.distill_dejmps_dm(r, RHO),
])
def test_density_matrix_checks(call):
    with raises(ValueError, "unit trace", "4.0"):
        call(np.eye(4))
    with raises(ValueError, "Hermitian"):
        call(np.eye(4) / 4 + np.triu(np.ones((4, 4)), 1) * 0.1)
    with raises(ValueError, "positive semidefinite"):
        call(np.diag([1.5, -0.5, 0.0, 0.0]))
    with raises(ValueError, "trailing shape (4, 4)", "(2, 2)"):
        call(np.eye(2) / 2)


# ------------------------------------------------- lengths, times, rates

@pytest.mark.parametrize("call,name,rng", [
    (lambda v: q.fiber_transmissivity(v), "length_km", "[0.0, inf]"),
    (lambda v: q.fiber_transmissivity(10.0, v), "attenuation_db_per_km", "[0.0, inf]"),
    (lambda v: q.direct_transmission(v), "length_km", "[0.0, inf]"),
    (lambda v: q.double_click(v), "length_km", "[0.0, inf]"),
    (lambda v: q.single_click(v, 0.1), "length_km", "[0.0, inf]"),
    (lambda v: q.double_click(10.0, prep_time_s=v), "prep_time_s", "[0.0, inf]"),
    (lambda v: q.werner_decay(0.9, v, 1.0), "t", "[0.0, inf]"),
    (lambda v: q.werner_decay(0.9, 1.0, v), "t_coh", "(0.0, inf]"),
    (lambda v: q.memory_decohere(GOOD, v, 1.0, 1.0), "t", "[0.0, inf]"),
    (lambda v: q.t1t2_pauli_probs(1.0, v, 1.0), "t1", "(0.0, inf]"),
    (lambda v: q.t1t2_kraus(1.0, 1.0, v), "t2", "(0.0, inf]"),
    (lambda v: q.memory_walsh_rates(v, 1.0), "t1", "(0.0, inf]"),
    (lambda v: q.decay_per_step(v, 1.0), "t_coh_s", "(0.0, inf]"),
    (lambda v: q.decay_per_step(1.0, v), "step_s", "[0.0, inf]"),
    (lambda v: q.t_coh_steps(1.0, v), "step_s", "(0.0, inf]"),
    (lambda v: q.memory_rates_per_step(1.0, 1.0, v), "step_s", "[0.0, inf]"),
])
def test_negative_lengths_and_times(call, name, rng):
    with raises(ValueError, f"{name} must lie in {rng}; got -1.0"):
        call(-1.0)


def test_t2_at_most_twice_t1():
    for call in (lambda: q.t1t2_pauli_probs(1.0, 1.0, 2.5), lambda: q.t1t2_kraus(1.0, 1.0, 3.0),
                 lambda: q.memory_decohere(GOOD, 1.0, 1.0, 3.0),
                 lambda: q.memory_decohere_dm(RHO, 1.0, 1.0, 3.0),
                 lambda: q.memory_walsh_rates(1.0, 3.0)):
        with raises(ValueError, "t2 must satisfy t2 <= 2 * t1", "got t2="):
            call()
    with raises(ValueError, "t2_s must satisfy t2_s <= 2 * t1_s"):
        q.memory_rates_per_step(1.0, 3.0, 0.1)
    q.t1t2_pauli_probs(1.0, np.inf, 1.0)  # pure dephasing memory (T1 = inf) is allowed


# ------------------------------------------------------ types, shapes, qubits

def test_non_numeric_input_is_type_error():
    with raises(TypeError, "w must be numeric"):
        q.werner_to_bell(np.array(["a"]))
    with raises(TypeError, "length_km must be numeric"):
        q.fiber_transmissivity(np.array(["ten"]))


def test_mismatched_batch_shapes_name_the_arguments():
    a, b = np.tile(GOOD, (3, 1)), np.tile(GOOD, (2, 1))
    with raises(ValueError, "a and b", "(3, 4)", "(2, 4)"):
        q.swap(a, b)
    with raises(ValueError, "a and b"):
        q.distill_dejmps(a, b)
    with raises(ValueError, "lam and p"):
        q.pauli_channel(a, b)
    with raises(ValueError, "wa and wb"):
        q.swap_werner(np.full(3, 0.5), np.full(2, 0.5))
    with raises(ValueError, "rho_a and rho_b"):
        q.swap_dm(np.tile(RHO, (3, 1, 1)), np.tile(RHO, (2, 1, 1)))
    # static shapes: the check also fires under jit
    with raises(ValueError, "a and b"):
        jax.jit(q.swap)(a, b)


def test_bad_qubit_indices():
    with raises(ValueError, "qubit must be 0 or 1; got 2"):
        q.depolarize_dm(RHO, 0.1, 2)
    with raises(ValueError, "qubits must be 1 or 2; got 3"):
        q.memory_decohere(GOOD, 1.0, 1.0, 1.0, qubits=3)
    with raises(ValueError, "qubits must be 0 or 1"):
        q.memory_decohere_dm(RHO, 1.0, 1.0, 1.0, qubits=(0, 2))


# -------------------------------------------------------- behaviour inside jit

def test_no_error_inside_jit_bad_values_propagate():
    """Documented behaviour: traced arguments are not value-checked."""
    bad_lam = jnp.array([1.2, -0.1, -0.05, -0.05])
    assert float(jax.jit(q.fidelity)(bad_lam)) == pytest.approx(1.2)
    out = jax.jit(q.depolarize)(jnp.asarray(GOOD), 3.0)  # p outside [0, 1]
    assert float(out.min()) < 0  # out-of-range numbers, no exception
    assert np.isnan(float(jax.jit(q.plob_bound)(1.5)))  # log of a negative number
    assert float(jax.jit(q.fiber_transmissivity)(-10.0)) > 1.0
    assert np.isfinite(float(jax.jit(q.werner_decay)(0.9, -1.0, 1.0)))
    # the same call outside jit raises
    with pytest.raises(ValueError):
        q.depolarize(GOOD, 1.5)


def test_no_error_under_vmap_and_grad():
    lams = jnp.array([[0.7, 0.1, 0.1, 0.1], [0.9, 0.2, 0.0, 0.0]])  # second row sums to 1.1
    np.testing.assert_allclose(jax.vmap(q.fidelity)(lams), [0.7, 0.9])
    g = jax.grad(lambda p: q.fidelity(q.depolarize(GOOD, p)))(1.5)
    np.testing.assert_allclose(g, 0.25 - 0.7)


def test_checkify_style_guard_is_possible_outside():
    """Recommended pattern: validate once with the concrete batch, then jit."""
    lam = np.tile(GOOD, (4, 1))
    assert bool(np.all(q.is_valid_bell(lam)))
    jax.jit(q.key_fraction_bb84)(lam)
