"""qnjax.Chain: one parameter model for the exact engine and Monte Carlo, one result type."""

import dataclasses
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qnjax
from qnjax.chain import Chain
from qnjax.exact import DeliveryResult, delivery, delivery_station_rates
from qnjax.montecarlo import MonteCarloResult, simulate_nested, simulate_swap_asap
from qnjax.protocol import Distill, Link, Swap

LEVELS = dict(p_gen=0.3, w0=0.95, p_swap=0.8, t_coh=120.0, cutoff=np.array([12.0, 30.5]))


def _tree():
    return Swap(Swap(Link(0), Link(1)), Distill(Link(2)))


def _close(a, b):
    for k, v in a._asdict().items():
        w = getattr(b, k)
        np.testing.assert_allclose(np.asarray(w), np.asarray(v), rtol=1e-12, atol=0, err_msg=k)


def test_levels_chain_equals_keywords():
    kw = delivery("swap,distill", **LEVELS, t_trunc=512, warn=False)
    ch = delivery(chain=Chain.levels("swap,distill", **LEVELS), t_trunc=512, warn=False)
    assert type(ch) is type(kw)
    _close(kw, ch)


def test_tree_chain_equals_keywords_bell_rates():
    tree = _tree()
    lam0 = np.array([[0.94, 0.02, 0.02, 0.02], [0.9, 0.05, 0.03, 0.02], [0.97, 0.01, 0.01, 0.01]])
    station = np.array([0.0, 0.01, 0.02, 0.01]) / 10
    station = np.stack([np.zeros(4), station, station, station], -1)
    kw = dict(p_gen=np.array([0.4, 0.25, 0.5]), lam0=lam0, p_swap=np.array([0.9, 0.7, 1.0]),
              rates=delivery_station_rates(tree, station), cutoff=np.array([8.0, 14.0, np.inf]),
              bsm_noise=qnjax.exact.bsm_noise_walsh(0.01, 0.005) * jnp.ones((3, 1)))
    a = delivery(tree, **kw, t_trunc=512, warn=False)
    b = delivery(chain=Chain.tree(tree, **kw), t_trunc=512, warn=False)
    _close(a, b)
    assert np.all(np.isfinite(np.asarray(a.mean_time)))


def test_simulate_nested_chain_same_numbers():
    kw = dict(LEVELS, cutoff=np.array([12.0, 30.0]))
    a = simulate_nested("swap,distill", **kw, samples=3000, seed=7)
    b = simulate_nested(chain=Chain.levels("swap,distill", **kw), samples=3000, seed=7)
    for k, v in a._asdict().items():
        np.testing.assert_array_equal(np.asarray(getattr(b, k)), np.asarray(v), err_msg=k)


def test_chain_and_keywords_are_exclusive():
    c = Chain.levels("swap", p_gen=0.5)
    with pytest.raises(TypeError, match="chain= alone"):
        delivery(chain=c, p_gen=0.4, t_trunc=64)
    with pytest.raises(TypeError, match="chain= alone"):
        simulate_nested("swap", chain=c, samples=10)


@pytest.mark.parametrize("kw, match", [
    (dict(p_gen=0.0), r"p_gen must lie in \(0.0, 1.0\]"),
    (dict(p_gen=1.5), r"p_gen must lie in \(0.0, 1.0\]"),
    (dict(p_gen=np.nan), r"p_gen must lie in \(0.0, 1.0\]"),
    (dict(p_gen=0.5, w0=np.nan), r"w0 must lie in \[-0.333"),
    (dict(p_gen=0.5, p_swap=0.0), r"p_swap must lie in \(0.0, 1.0\]"),
    (dict(p_gen=0.5, t_coh=0.0), r"t_coh must lie in \(0.0, inf\]"),
    (dict(p_gen=0.5, lam0=[0.5, 0.5, 0.5, 0.5]), "lam0 must sum to 1"),
    (dict(p_gen=0.5, w0=0.9, lam0=[1.0, 0, 0, 0]), "not both"),
    (dict(p_gen=0.5, cutoff=[1.0, 2.0, 3.0]), "cutoff must have a last axis of one entry per 2 levels"),
    (dict(p_gen=np.ones(3) * 0.5, w0=np.ones(4)), "do not broadcast"),
    (dict(p_gen=0.5, bsm_noise=[1.0, 0.9]), "bsm_noise must have a last axis of 4"),
])
def test_levels_chain_rejects_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        Chain.levels("swap,swap", **kw)


def test_tree_chain_rejects_bad_shapes():
    with pytest.raises(ValueError, match="p_gen must have a trailing axis of one entry per segment"):
        Chain.tree(_tree(), p_gen=np.full(4, 0.5))
    with pytest.raises(ValueError, match="p_swap must have a trailing axis of one entry per internal node"):
        Chain.tree(_tree(), p_gen=0.5, p_swap=np.ones(2))
    with pytest.raises(TypeError, match="Chain.tree takes"):
        Chain.tree("swap", p_gen=0.5)
    with pytest.raises(TypeError, match="Chain.levels takes"):
        Chain.levels(_tree(), p_gen=0.5)


def test_chain_is_a_pytree_jit_vmap():
    B = 3
    ch = Chain.levels("swap,swap", p_gen=jnp.array([0.2, 0.3, 0.5]), w0=jnp.full(B, 0.97),
                      p_swap=jnp.full(B, 0.9), t_coh=jnp.full(B, 80.0),
                      cutoff=jnp.array([[5.0, 9.0], [8.0, 20.0], [3.0, 6.0]]))
    assert ch.batch_shape == (B,)
    ref = delivery(chain=ch, t_trunc=256, warn=False)

    @jax.jit
    def skr(c):
        return delivery(chain=c, t_trunc=256, warn=False).secret_key_rate

    np.testing.assert_allclose(skr(ch), ref.secret_key_rate, rtol=1e-12)
    one = jax.vmap(lambda c: delivery(chain=c, t_trunc=256, warn=False).mean_time)(ch)
    np.testing.assert_allclose(one, ref.mean_time, rtol=1e-12)
    leaves = jax.tree.leaves(ch)
    assert all(isinstance(x, jax.Array) for x in leaves)
    g = jax.grad(lambda c: delivery(chain=c, t_trunc=256, warn=False).mean_time.sum())(ch)
    assert isinstance(g, Chain) and np.all(np.asarray(g.p_gen) < 0)


def test_one_result_type_and_field_names():
    ex = delivery("swap", p_gen=0.5, w0=0.95, t_trunc=128, warn=False)
    mc = simulate_nested("swap", p_gen=0.5, w0=0.95, samples=500, seed=1)
    sa = simulate_swap_asap(3, p_gen=0.5, w0=0.95, samples=500, seed=1)
    for r in (mc, sa):
        assert isinstance(r, DeliveryResult) and isinstance(r, qnjax.DeliveryResult)
        assert isinstance(r, MonteCarloResult)
    names = [f.name for f in dataclasses.fields(ex)]
    assert names == [f.name for f in dataclasses.fields(mc)] == [f.name for f in dataclasses.fields(sa)]
    common = ("mean_time", "mean_werner", "mean_fidelity", "mean_state", "key_fraction", "secret_key_rate")
    for r in (ex, mc, sa):
        assert all(getattr(r, k) is not None for k in common)
    assert ex.mean_time_stderr is None and ex.samples is None and ex.times is None
    assert mc.pmf is None and mc.coverage is None and mc.status is None and mc.reason is None
    assert mc.mean_time_stderr is not None and mc.histogram(bins=5)[0].sum() > 0
    np.testing.assert_allclose(mc.mean_time, ex.mean_time, rtol=0.1)


def test_neither_w0_nor_lam0_means_perfect_links_in_both_engines():
    a = delivery("swap", p_gen=0.5, t_trunc=128, warn=False)
    b = delivery("swap", p_gen=0.5, w0=1.0, t_trunc=128, warn=False)
    _close(a, b)
    assert Chain.levels("swap", p_gen=0.5).w0 == 1.0
    with pytest.raises(ValueError, match="not both"):
        delivery("swap", p_gen=0.5, w0=1.0, lam0=[1.0, 0, 0, 0], t_trunc=64)


def test_swap_asap_memory_rates_is_deprecated_alias_of_rates():
    lam0 = [0.95, 0.02, 0.02, 0.01]
    r = np.array([0.0, 0.01, 0.01, 0.02])
    new = simulate_swap_asap(3, p_gen=0.5, lam0=lam0, rates=r, samples=500, seed=2)
    with pytest.warns(DeprecationWarning, match="memory_rates= is deprecated"):
        old = simulate_swap_asap(3, p_gen=0.5, lam0=lam0, memory_rates=r, samples=500, seed=2)
    np.testing.assert_array_equal(np.asarray(old.mean_fidelity), np.asarray(new.mean_fidelity))
    # Werner mode takes rates too (per-qubit, as t_coh's 1 / (2 t_coh))
    w = simulate_swap_asap(3, p_gen=0.5, w0=0.95, rates=1 / 80.0, samples=500, seed=2)
    t = simulate_swap_asap(3, p_gen=0.5, w0=0.95, t_coh=40.0, samples=500, seed=2)
    np.testing.assert_allclose(np.asarray(w.mean_werner), np.asarray(t.mean_werner), rtol=1e-12)


def test_monte_carlo_p_gen_range_names_the_engine_limit():
    with pytest.raises(ValueError, match=r"p_gen must lie in \(0.0, 1.0\]"):
        simulate_nested("swap", p_gen=0.0, samples=10)
    with pytest.raises(ValueError, match="for Monte Carlo"):
        simulate_nested("swap", p_gen=1e-9, samples=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Chain.levels("swap", p_gen=1e-9)  # a valid chain; only Monte Carlo cannot run it


def test_swap_asap_takes_a_chain_and_maps_its_hardware():
    """A swap tree's hardware under the swap-asap policy equals the keyword form: p_swap of a
    swap node lands on the station it joins; one t_coh and one cut-off per design."""
    from qnjax.protocol import Link, Swap

    tree = Swap(Swap(Link(0), Link(1)), Swap(Link(2), Link(3)))  # post-order: (0|1), (2|3), (01|23)
    chain = Chain.tree(tree, p_gen=[0.5, 0.4, 0.6, 0.5], w0=[0.99, 0.98, 0.97, 0.99],
                       p_swap=[0.9, 0.8, 0.7], t_coh=[50.0, 50.0, 50.0], cutoff=[6.0, 6.0, 6.0])
    kw = dict(samples=4000, seed=3, keep=0)
    a = qnjax.simulate_swap_asap(chain=chain, **kw)
    b = qnjax.simulate_swap_asap(5, p_gen=[0.5, 0.4, 0.6, 0.5], w0=[0.99, 0.98, 0.97, 0.99],
                                 p_swap=[1.0, 0.9, 0.7, 0.8, 1.0], t_coh=50.0, cutoff=6.0, **kw)
    for f in ("mean_time", "mean_werner", "secret_key_rate"):
        assert float(getattr(a, f)) == float(getattr(b, f)), f
    levels = Chain.levels("swap,swap", p_gen=0.3, p_swap=0.9, w0=0.98, t_coh=80.0, cutoff=[5, 5])
    c = qnjax.simulate_swap_asap(chain=levels, **kw)
    d = qnjax.simulate_swap_asap(5, p_gen=0.3, p_swap=0.9, w0=0.98, t_coh=80.0, cutoff=5, **kw)
    assert float(c.mean_time) == float(d.mean_time)


@pytest.mark.parametrize("chain, words", [
    (lambda: Chain.levels("swap,distill", p_gen=0.3), "distillation"),
    (lambda: Chain.levels("swap,swap", p_gen=0.3, cutoff=[5, 9]), "one cutoff per design"),
    (lambda: Chain.levels("swap", p_gen=0.3, bsm_noise=[1.0, 0.99, 0.99, 0.99]), "BSM noise"),
    (lambda: Chain.tree(qnjax.levels_to_tree("swap,swap"), p_gen=[0.3] * 4, t_coh=[10.0, 20.0, 30.0]),
     "one t_coh per design"),
])
def test_swap_asap_refuses_what_the_policy_cannot_express(chain, words):
    with pytest.raises(ValueError, match=words):
        qnjax.simulate_swap_asap(chain=chain(), samples=100)


def test_swap_asap_chain_alone():
    ch = Chain.levels("swap", p_gen=0.3)
    with pytest.raises(TypeError, match="chain= alone"):
        qnjax.simulate_swap_asap(chain=ch, p_gen=0.2, samples=100)
    with pytest.raises(TypeError, match="chain= alone"):
        qnjax.simulate_swap_asap(4, chain=ch, samples=100)


@pytest.mark.parametrize("make, err, words", [
    (lambda: Chain.levels("swap", p_gen="abc"), TypeError, "p_gen must be numeric"),
    (lambda: Chain.levels("swap", p_gen=[0.1, [0.2]]), ValueError, "rectangular"),
    (lambda: Chain.levels(3, p_gen=0.1), TypeError, "protocol must be a level list"),
    (lambda: delivery(3, p_gen=0.1), TypeError, "protocol must be a level list"),
])
def test_malformed_input_is_a_named_error(make, err, words):
    with pytest.raises(err, match=words):
        make()
