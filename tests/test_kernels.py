"""The engine's node kernels against direct NumPy sums: the blocked cumulative sum and the
memory window (decayed, windowed convolution), in float64 and float32, with derivatives."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from qnjax._engine.kernels import cumsum, window
from qnjax._engine.plan import make_plan


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [1, 31, 32, 33, 1000, 1025, 33 * 32 + 5])
def test_blocked_cumsum_matches_the_running_sum(n, dtype):
    """Error O(32 · log_32 N · eps) of Σ|x| (a running sum would have O(N eps))."""
    x = np.random.default_rng(n).standard_normal((3, n)) * np.exp(-np.arange(n) / 300.0)
    got = np.asarray(cumsum(jnp.asarray(x, dtype)))
    assert got.dtype == dtype
    want = np.cumsum(x.astype(dtype).astype(float), -1)
    assert np.all(np.abs(got - want) <= 200 * np.finfo(dtype).eps * np.sum(np.abs(x), -1, keepdims=True))


def direct_window(lam, tau, r, n):
    d = np.arange(n)
    k = np.clip(tau - d + 1, 0, 1) * np.exp(-r * d)
    return np.convolve(lam, k)[:n]


def _spec(plan, lam):
    return jnp.fft.rfft(jnp.asarray(lam), n=plan.fft_len, axis=-1)


@pytest.mark.parametrize("tau", [0.0, 0.25, 3.0, 3.5, 200.0, 299.0, 300.0, np.inf])
def test_window_is_the_causal_decayed_sum(tau):
    """``X_c(t) = Σ_d clip(τ − d + 1, 0, 1) e^(−r_c d) Λ_c(t − d)`` below ``n_int`` (given the
    spectrum of the array itself, the FFT length ``>= 2 n_int`` leaves no wrap-around);
    component 0 (the mass) never decays."""
    plan = make_plan(("swap",), None, False, 298)  # n_int = t_trunc + depth + 1 = 300
    n = plan.n_int
    lam = np.random.default_rng(7).random((2, 4, n)) * np.exp(-np.arange(n) / 50.0)
    rates = np.array([[5.0, 0.0, 1e-3, 0.2], [0.0, 1e-9, 2.0, 800.0]])  # rates[:, 0] is ignored
    got = np.asarray(window(plan, jnp.asarray(lam), _spec(plan, lam), jnp.full((2,), tau), jnp.asarray(rates)))
    for b in range(2):
        for c in range(4):
            want = direct_window(lam[b, c], tau, 0.0 if c == 0 else rates[b, c], n)
            np.testing.assert_allclose(got[b, c], want, rtol=0, atol=1e-14 * np.sum(lam[b, c]))


def test_window_derivatives():
    """Slopes in the cut-off (through its fractional part) and in the rate are those of the
    direct sum (checked numerically, forward and reverse mode, and exactly for the cut-off)."""
    plan = make_plan(("swap",), None, True, 61)
    lam = np.random.default_rng(3).random((1, 2, plan.n_int))
    spec = _spec(plan, lam)
    f = lambda tau, r: window(plan, jnp.asarray(lam), spec, tau, jnp.stack([jnp.zeros_like(r), r], -1))
    check_grads(f, (jnp.array([7.3]), jnp.array([0.05])), order=1, modes=["fwd", "rev"])
    g = jax.grad(lambda tau: jnp.sum(f(tau, jnp.array([0.05]))[:, 1]))(jnp.array([7.3]))
    d = np.arange(plan.n_int)
    dk = np.where(d == 8, 1.0, 0.0) * np.exp(-0.05 * d)  # only u(8) = τ − 7 moves with τ
    want = np.sum(np.convolve(lam[0, 1], dk)[: plan.n_int])
    np.testing.assert_allclose(float(g[0]), want, rtol=1e-12)


def _direct_inverse(h, n):
    """The recurrence ``g[m] = −Σ_{j=1..m} h[j] g[m − j]``, ``g[0] = 1``, in float64."""
    g = np.zeros(n)
    g[0] = 1.0
    for m in range(1, n):
        g[m] = -np.dot(h[1:m + 1], g[m - 1::-1][:m])
    return g


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [1, 63, 64, 65, 128, 129, 700, 1025])
def test_series_inverse_is_the_causal_renewal(n, dtype):
    """The renewal density ``1 / (1 − f(z))`` of an attempt density ``f`` whose mass reaches
    far beyond ``n`` (the truncation): every coefficient below ``n`` is the linear recurrence's,
    so no wrap-around of the cyclic products (whose length is ``fast_len(k2)``, below the
    ``k2 + k`` of a linear product) reaches a kept coefficient."""
    from qnjax import _truncation as TR

    t = np.arange(n)
    f = np.where(t >= 1, 0.9 * 0.02 * 0.98 ** np.maximum(t - 1, 0), 0.0)  # mean attempt 50 steps
    f = np.stack([f, np.roll(f, 3) * (t >= 4)])  # a delayed attempt
    h = np.concatenate([np.ones((2, 1)), -f[:, 1:]], axis=-1)
    got = np.asarray(jax.jit(lambda h: TR.series_inverse(h, n, TR.fast_len))(jnp.asarray(h, dtype)))
    assert got.dtype == dtype and got.shape == (2, n)
    for b in range(2):
        want = _direct_inverse(h[b], n)
        np.testing.assert_allclose(got[b], want, rtol=0, atol=50 * np.finfo(dtype).eps * np.max(np.abs(want)) * np.log2(n + 1))
