"""Monte Carlo step-counter range and slot-cap censoring: times beyond the counters are computed
exactly or refused, never wrapped; cut-offs and caps beyond int32 are never wrapped either."""

from __future__ import annotations

import time

import jax
import numpy as np
import pytest

from qnjax.montecarlo import nested as nested_mod
from qnjax.montecarlo import simulate_nested, simulate_swap_asap
from qnjax.montecarlo._estimate import levels_estimate, swap_asap_censored_bound

Z = 4.0  # agreement within 4 standard errors


@pytest.fixture
def int32_steps():
    """JAX without x64: the engines count steps in int32 (restored afterwards)."""
    jax.config.update("jax_enable_x64", False)
    yield
    jax.config.update("jax_enable_x64", True)


def test_cutoff0_mean_beyond_int32_is_exact():
    """Fuzzing issue: cut-off 0 at p_gen 2e-5 has mean 1/p_gen² = 2.5e9 steps > 2**31; int32
    counters wrapped it to ~5e8. With cut-off 0 both links must arrive in the same step:
    E[min] / P(same step) = (1 / (p (2 − p))) / (p / (2 − p)) = 1 / p² exactly."""
    p = 2e-5
    r = simulate_nested("swap", p_gen=p, cutoff=[0], samples=200, seed=5)
    assert int(r.undelivered) == 0 and int(r.samples) == 200
    assert abs(float(r.mean_time) - 1 / p**2) < Z * float(r.mean_time_stderr)
    assert np.all(np.asarray(r.times) > 0)
    assert levels_estimate(["swap"], p, 1.0, [0.0])[0] == pytest.approx(1 / p**2, rel=1e-9)


def test_mean_beyond_counter_range_is_refused_up_front():
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"mean delivery time is about 1e\+12 steps.*int64 step counters"):
        simulate_nested("swap", p_gen=1e-6, cutoff=[0], samples=1000)
    assert time.perf_counter() - t0 < 5


def test_int32_counters_refuse_or_detect_overflow(int32_steps, monkeypatch):
    import jax.numpy as jnp

    with pytest.raises(ValueError, match=r"int32 step counters.*jax_enable_x64"):
        simulate_nested("swap", p_gen=2e-4, cutoff=[0], samples=100, dtype=jnp.float32)
    # past the estimate (forced low here), a time beyond 2**30 raises instead of wrapping
    monkeypatch.setattr(nested_mod, "nested_estimate", lambda *a: (np.ones(1), np.ones(1), np.ones(1)))
    with pytest.raises(ValueError, match=r"exceeded 1\.07e\+09 steps.*int32 step counters"):
        simulate_nested("swap", p_gen=3e-5, cutoff=[0], samples=100, dtype=jnp.float32)


def test_int32_counters_small_p_gen_no_cutoff(int32_steps):
    """p_gen 1e-6: a chunk's running time would pass 2**31 at the default chunk size; the chunk
    shrinks instead, and the mean is E[max of two geometrics] = (3 − 2p) / (p (2 − p))."""
    import jax.numpy as jnp

    p = 1e-6
    r = simulate_nested("swap", p_gen=p, samples=2_000, seed=2, dtype=jnp.float32)
    exact = (3 - 2 * p) / (p * (2 - p))
    assert abs(float(r.mean_time) - exact) < Z * float(r.mean_time_stderr)


def test_swap_asap_cutoff_and_cap_beyond_int32_are_not_wrapped():
    kw = dict(p_gen=0.5, samples=300, seed=1, keep=300)
    a = simulate_swap_asap(3, **kw)
    b = simulate_swap_asap(3, cutoff=1e12, **kw)  # as int32 this wrapped to a negative cut-off
    np.testing.assert_array_equal(np.asarray(a.times), np.asarray(b.times))
    assert int(b.undelivered) == 0
    for cap in (2**31, 2**32 + 5):
        with pytest.raises(ValueError, match=r"max_time must be a number of slots in \[1, 2\*\*30\]"):
            simulate_swap_asap(3, max_time=cap, **kw)


def test_swap_asap_censored_bound_is_a_lower_bound():
    assert swap_asap_censored_bound([1e-6, 1e-6], 100_000) == pytest.approx(1 - (1 - np.exp(-0.1)) ** 2, rel=1e-5)
    p, cap, n = 0.05, 20, 4_000
    low = float(swap_asap_censored_bound([p, p], cap))
    r = simulate_swap_asap(3, p_gen=p, samples=n, seed=3, max_time=cap, keep=0)
    frac = int(r.undelivered) / n
    assert frac >= low - Z * np.sqrt(low * (1 - low) / n)
