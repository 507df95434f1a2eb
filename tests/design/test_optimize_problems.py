"""Problem classes and scenario files: validation fails before any compilation, naming the field."""

import math

import pytest

from qnjax.design import (PhysicalScenario, Search, StepProblem, default_scenario, load_scenario,
                            scenario_from_dict)
from qnjax.design._common import integer_neighbourhood, lengths_stick, stick_from_lengths
from qnjax.design.chain import build_tree, enumerate_structures
from qnjax.design.step import distill_placements
from qnjax.protocol import format_tree

BASE = {"distance_km": 100.0, "memory": {"t_coh_s": 1.0}}


def scen(**over):
    d = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    if "distance" in over:
        d.pop("distance_km")
    d.update(over)
    return scenario_from_dict(d)


def test_examples_load():
    for name in ("metro_link", "backbone_300_600km", "poor_memory_chain"):
        s = load_scenario(f"examples/{name}.toml")
        assert isinstance(s, PhysicalScenario)
    s = load_scenario("examples/poor_memory_chain.toml")
    assert s.station(1, 3).memory.t_coh_s == pytest.approx(0.02)
    assert s.station(2, 3).memory.t_coh_s == 1.0
    assert default_scenario().distance_km > 0


def test_units_in_strings():
    s = scen(distance="150 km", heralding={"prep_time": "2 us"}, memory={"t_coh": "50 ms"})
    assert s.distance_km == 150 and s.heralding.prep_time_s == pytest.approx(2e-6)
    assert s.repeater.memory.t_coh_s == pytest.approx(0.05)
    with pytest.raises(ValueError, match="given twice"):
        scenario_from_dict({"distance": "1 km", "distance_km": 1.0, "memory": {"t_coh_s": 1.0}})


@pytest.mark.parametrize("over, field", [
    ({"distance": 300}, "distance: missing unit"),
    ({"distance_m": 300}, "distance_m: unknown key"),
    ({"speed": 1}, "speed: unknown key"),
    ({"heralding": {"scheme": "triple_click"}}, "heralding.scheme"),
    ({"heralding": {"efficiency": 1.5}}, "heralding.efficiency"),
    ({"heralding": {"efficency": 0.5}}, "heralding.efficency: unknown key"),
    ({"memory": {"t_coh": 1.0}}, "memory.t_coh: missing unit"),
    ({"memory": {"t_coh": "1 parsec"}}, "memory.t_coh: unknown unit"),
    ({"memory": {"t1_s": 1.0}}, "memory: needs t_coh_s"),
    ({"memory": {"t1_s": 1.0, "t2_s": 3.0}}, "memory.t2_s"),
    ({"repeater": {"swap_success": 0.0}}, "repeater.swap_success"),
    ({"search": {"segments": [2, 4], "min_segment_km": 30.0}}, "search.min_segment_km"),
    ({"search": {"segments": [2], "max_segment_km": 30.0}}, "search.max_segment_km"),
    ({"search": {"segments": [0]}}, "search.segments"),
    ({"search": {"stepz": 3}}, "search.stepz: unknown key"),
    ({"station": [{"index": 5, "swap_success": 0.5}], "search": {"segments": [2]}}, "station"),
    ({"station": [{"swap_success": 0.5}]}, "station[0].index"),
    ({"station": [{"index": 1, "memory": {"t_coh_s": -1.0}}], "search": {"segments": [2]}},
     "station[0].memory.t_coh_s"),
])
def test_scenario_errors_name_the_field(over, field):
    with pytest.raises((ValueError, TypeError)) as e:
        scen(**over)
    assert field in str(e.value)


def test_missing_distance_and_memory():
    with pytest.raises(ValueError, match="distance_km"):
        scenario_from_dict({"memory": {"t_coh_s": 1.0}})
    with pytest.raises(ValueError, match="memory"):
        scenario_from_dict({"distance_km": 10.0})


def test_load_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_scenario(tmp_path / "nope.toml")
    p = tmp_path / "bad.toml"
    p.write_text("distance_km = [")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_scenario(p)


def test_step_problem_validation():
    p = StepProblem("swap,distill", p_gen=0.1)
    assert p.protocol == ("swap", "distill") and p.t_coh == math.inf
    for kw, name in [({"p_gen": 0.0}, "p_gen"), ({"p_gen": 0.1, "w0": 2.0}, "w0"),
                     ({"p_gen": 0.1, "t_coh": -1.0}, "t_coh"), ({"p_gen": 0.1, "t_trunc": 3}, "t_trunc"),
                     ({"p_gen": 0.1, "max_distill": 9}, "max_distill")]:
        with pytest.raises((ValueError, TypeError), match=name):
            StepProblem("swap", **kw)
    with pytest.raises(ValueError, match="protocol"):
        StepProblem("swap,teleport", p_gen=0.1)
    with pytest.raises(ValueError, match="search.max_segment_km"):
        Search(min_segment_km=10.0, max_segment_km=5.0)


def test_distill_placements_and_structures():
    pl = distill_placements(("swap", "swap"), 1)
    assert pl[0] == ("swap", "swap") and len(pl) == 4
    assert ("swap", "distill", "swap") in pl
    assert len(distill_placements(("swap",), 2)) == 1 + 2 + 3
    assert format_tree(build_tree(3, (1, 0, 0))) == "S(S(D(L0),D(L1)),D(L2))"
    s = scen(search={"segments": [1, 2], "max_rounds_per_level": 1, "max_rounds_total": 1})
    labels = [(st.n, st.rounds) for st in enumerate_structures(s)]
    assert labels == [(1, (0,)), (1, (1,)), (2, (0, 0)), (2, (0, 1)), (2, (1, 0))]


def test_reparametrizations():
    import jax.numpy as jnp
    import numpy as np

    L = np.array([20.0, 50.0, 30.0])
    z = stick_from_lengths(L, 100.0, 10.0, 60.0)
    back = np.asarray(lengths_stick(jnp.asarray(z), 100.0, 10.0, 60.0))
    np.testing.assert_allclose(back, L, rtol=1e-6)
    out = np.asarray(lengths_stick(jnp.asarray([9.0, -9.0, 0.0]), 100.0, 10.0, 60.0))
    assert out.sum() == pytest.approx(100) and out.min() >= 10 - 1e-9 and out.max() <= 60 + 1e-9
    nb = integer_neighbourhood([3.4, 0.2], 100, radius=1)
    assert {tuple(r) for r in nb} >= {(3.0, 0.0), (4.0, 1.0), (2.0, 0.0), (5.0, 2.0)}
