"""The optimizer speaks ``qnjax.Chain``: it accepts one (a level protocol) and every result
carries its winning design as a Chain that ``qnjax.delivery(chain=...)`` re-evaluates to the
reported figures."""

import math

import numpy as np
import pytest

import qnjax
from qnjax import Chain, StepProblem, delivery, optimize
from qnjax.design import scenario_from_dict

PROBLEM = dict(protocol="swap,swap", p_gen=0.05, p_swap=0.8, w0=0.97, t_coh=400.0, t_trunc=2048)

TWO_SEGMENTS = {"name": "two segments", "distance_km": 100.0, "attenuation_db_per_km": 0.2,
                "heralding": {"scheme": "double_click", "efficiency": 0.9, "visibility": 0.99, "prep_time_s": 1e-6},
                "memory": {"t_coh_s": 1.0},
                "repeater": {"swap_success": 0.9, "gate_depolarizing": 0.002, "measurement_error": 0.001},
                "search": {"segments": [2], "t_trunc": 512}}


@pytest.fixture(scope="module")
def step_result():
    return optimize(StepProblem(**PROBLEM))


def test_step_result_chain_reproduces_the_reported_rate(step_result):
    ch = step_result.chain
    assert isinstance(ch, Chain) and ch.protocol == ("swap", "swap")
    np.testing.assert_array_equal(np.asarray(ch.cutoff), np.asarray(step_result.design["cutoff"], float))
    r = delivery(chain=ch, t_trunc=PROBLEM["t_trunc"])
    assert float(step_result.secret_key_rate) > 0
    assert float(r.secret_key_rate) == pytest.approx(float(step_result.secret_key_rate), rel=1e-9)
    assert float(r.mean_time) == pytest.approx(float(step_result.mean_time), rel=1e-9)


def test_optimize_accepts_a_chain(step_result):
    kw = {k: v for k, v in PROBLEM.items() if k not in ("protocol", "t_trunc")}
    chain = Chain.levels(PROBLEM["protocol"], cutoff=[1.0, 2.0], **kw)  # its cut-offs are the unknowns
    res = optimize(StepProblem.from_chain(chain, t_trunc=PROBLEM["t_trunc"]))
    np.testing.assert_array_equal(np.asarray(res.design["cutoff"]), np.asarray(step_result.design["cutoff"]))
    assert float(res.secret_key_rate) == float(step_result.secret_key_rate)
    direct = optimize(Chain.levels(PROBLEM["protocol"], **kw))  # default t_trunc: same problem class
    assert isinstance(direct, qnjax.OptimizeResult) and direct.kind == "step"


@pytest.mark.parametrize("chain, words", [
    (lambda: Chain.levels("swap", p_gen=[0.1, 0.2]), "batch shape"),
    (lambda: Chain.levels("swap", p_gen=0.1, lam0=[0.9, 0.05, 0.03, 0.02]), "lam0"),
    (lambda: Chain.tree(qnjax.levels_to_tree("swap"), p_gen=[0.1, 0.1]), "tree"),
])
def test_from_chain_refuses_what_the_step_model_cannot_express(chain, words):
    with pytest.raises(ValueError, match=words):
        StepProblem.from_chain(chain())


def test_physical_result_chain_reproduces_the_reported_rate():
    scen = scenario_from_dict(TWO_SEGMENTS)
    res = optimize(scen)
    ch = res.chain
    assert isinstance(ch, Chain) and ch.n_segments == int(res.design["segments"]) == 2
    np.testing.assert_allclose(np.asarray(ch.p_gen), np.asarray(res.design["p_gen"]), rtol=1e-12)
    r = delivery(chain=ch, t_trunc=int(res.design["t_trunc"]))
    clock = float(res.design["clock_s"])
    memories = scen.multiplexing.memories
    assert float(res.skr_bits_per_s) > 0
    assert memories * float(r.secret_key_rate) / clock == pytest.approx(float(res.skr_bits_per_s), rel=1e-9)
    assert float(r.mean_fidelity) == pytest.approx(float(res.mean_fidelity), rel=1e-9)
    # the same chain through Chain.from_scenario directly
    again = Chain.from_scenario(scen, res)
    np.testing.assert_array_equal(np.asarray(again.cutoff), np.asarray(ch.cutoff))
    assert not math.isnan(float(r.coverage))


def test_one_segment_design_has_no_chain():
    """A one-segment design without purification has no node for the engines: ``chain`` is
    None and ``Chain.from_scenario`` says why."""
    scen = scenario_from_dict({"name": "direct", "distance_km": 20.0, "heralding": {"scheme": "direct"},
                               "memory": {"t_coh_s": 1.0}, "search": {"segments": [1]}})
    res = optimize(scen)
    assert res.chain is None and int(res.design["segments"]) == 1
    with pytest.raises(ValueError, match="one segment"):
        Chain.from_scenario(scen, res)
