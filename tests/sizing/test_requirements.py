"""Hardware sensitivities and requirements (qnjax.sensitivity, qnjax.requirements).

Small chains only: a one-segment direct link (closed form) and a 100 km two-segment chain."""

import math
import tomllib

import numpy as np
import pytest

from qnjax.design import optimize
from qnjax.design.chain import hardware
from qnjax.design.gradient import evaluate
from qnjax.design.scenario import scenario_from_dict
from qnjax.physical import SPEED_OF_LIGHT_FIBER_KM_S
from qnjax.sizing import (TargetUnreachable, hardware_parameters, requirements, scenario_toml,
                                sensitivity)
from qnjax.sizing._design import design_of
from qnjax.sizing._params import hardware_from_theta, improve, scenario_with

DIRECT = {"name": "direct link", "distance_km": 50.0, "attenuation_db_per_km": 0.2,
          "heralding": {"scheme": "direct", "efficiency": 0.3, "source_fidelity": 1.0},
          "memory": {"t_coh_s": math.inf}, "search": {"segments": [1]}}


CHAIN = {"name": "two segments", "distance_km": 100.0, "attenuation_db_per_km": 0.2,
         "heralding": {"scheme": "double_click", "efficiency": 0.9, "visibility": 0.99, "prep_time_s": 1e-6},
         "memory": {"t_coh_s": 1.0},
         "repeater": {"swap_success": 1.0, "gate_depolarizing": 0.002, "measurement_error": 0.001},
         "search": {"segments": [2], "t_trunc": 512}}


@pytest.fixture(scope="module")
def chain():
    scen = scenario_from_dict(CHAIN)
    return scen, optimize(scen)


@pytest.fixture(scope="module")
def sens(chain):
    scen, res = chain
    return sensitivity(scen, result=res)


def _direct_rate(eff, L=50.0):
    """Independent closed form: one direct link delivers at its first success, a perfect
    source gives key fraction 1, so R = eff · 10^(−αL/10) / (2 L / c)."""
    return eff * 10 ** (-0.2 * L / 10) / (2 * L / SPEED_OF_LIGHT_FIBER_KM_S)


def test_hardware_from_theta_matches_scenario_hardware(chain):
    scen, res = chain
    params = hardware_parameters(scen)
    st = design_of(res).structure
    theta = np.array([improve(p.theta, 1.7, p.form) for p in params])
    a = hardware_from_theta(scen, st, params, theta)
    b = hardware(scenario_with(scen, params, theta), st)
    for k in b:
        np.testing.assert_allclose(np.asarray(a[k]), np.asarray(b[k]), rtol=1e-12, err_msg=k)


def test_scenario_toml_round_trip(chain):
    scen, _ = chain
    assert scenario_from_dict(tomllib.loads(scenario_toml(scen))) == scen


def test_elasticities_equal_finite_differences_of_the_optimized_rate(chain, sens):
    scen, res = chain
    assert math.isclose(sens.skr_bits_per_s, float(res.skr_bits_per_s), rel_tol=1e-10)
    params = hardware_parameters(scen)
    rows = {r["name"]: r for r in sens.rows}
    h = 1e-4
    for name in ("memory.t_coh_s", "heralding.prep_time_s"):
        i = [p.name for p in params].index(name)
        logs = []
        for s in (+1, -1):
            th = np.array([p.theta for p in params])
            th[i] *= math.exp(s * h)
            r = optimize(scenario_with(scen, params, th))
            assert design_of(r).cutoff == design_of(res).cutoff  # the design is locally stable
            logs.append(math.log(float(r.skr_bits_per_s)))
        fd = (logs[0] - logs[1]) / (2 * h)
        assert fd == pytest.approx(rows[name]["elasticity"], rel=1e-4, abs=1e-7), name


def test_fixed_design_elasticity_of_prep_time(chain, sens):
    """Cut-offs fixed in seconds: an independent evaluation with the cut-offs rescaled to the new clock."""
    scen, res = chain
    sens = {r["name"]: r for r in sens.rows}
    params = hardware_parameters(scen)
    d = design_of(res)
    i = [p.name for p in params].index("heralding.prep_time_s")
    h = 1e-4
    logs = []
    for s in (+1, -1):
        th = np.array([p.theta for p in params])
        th[i] *= math.exp(s * h)
        sc = scenario_with(scen, params, th)
        hw = hardware(sc, d.structure)
        f0 = evaluate(d.structure, "double_click", hw, np.array([d.lengths_km]), np.zeros((1, d.structure.n_nodes)), d.t_trunc)
        tau = np.asarray(d.cutoff_s) / f0["clock_s"][0]
        f = evaluate(d.structure, "double_click", hw, np.array([d.lengths_km]), tau[None], d.t_trunc)
        logs.append(math.log(f["skr_bits_per_s"][0]))
    fd = (logs[0] - logs[1]) / (2 * h)
    assert fd == pytest.approx(sens["heralding.prep_time_s"]["elasticity_fixed_design"], rel=1e-4)


def test_direct_link_required_efficiency_closed_form():
    scen = scenario_from_dict(DIRECT)
    target = 0.5 * _direct_rate(1.0)
    r = requirements(scen, target, parameters=["heralding.efficiency"])
    assert r.required["heralding.efficiency"] == pytest.approx(target / _direct_rate(1.0), rel=1e-5)
    assert r.improvement["heralding.efficiency"] == pytest.approx(math.log(0.3) / math.log(0.5), rel=1e-5)
    assert r.cost == pytest.approx(math.log(r.improvement["heralding.efficiency"]), rel=1e-9)
    assert r.skr_bits_per_s >= 0.995 * target


def test_requirements_reach_target_and_are_minimal(chain):
    scen, res = chain
    target = 1.2 * float(res.skr_bits_per_s)
    names = ["heralding.efficiency", "repeater.gate_depolarizing", "memory.t_coh_s"]
    r = requirements(scen, target, parameters=names)
    j = r.to_json()
    assert set(j) >= {"target_bits_per_s", "skr_bits_per_s", "cost", "baseline", "required", "improvement",
                      "design", "wall_s"}
    # the written scenario, re-optimized, reaches the target
    again = scenario_from_dict(tomllib.loads(scenario_toml(r.scenario)))
    assert float(optimize(again).skr_bits_per_s) >= 0.995 * target
    # lowering any improved parameter by 1 % no longer reaches it
    params = [p for p in hardware_parameters(scen) if p.name in names]
    th_req = np.array([improve(p.theta, r.improvement[p.name], p.form) for p in params])
    improved = [i for i, p in enumerate(params) if r.improvement[p.name] > 1 + 1e-9]
    assert improved
    for i in improved:
        th = th_req.copy()
        th[i] *= 0.99
        assert float(optimize(scenario_with(scen, params, th)).skr_bits_per_s) < target, params[i].name


def test_bad_input(chain):
    scen, res = chain
    with pytest.raises(ValueError, match="target_bits_per_s"):
        requirements(scen, -1.0)
    with pytest.raises(ValueError, match="unknown 'heralding.colour'"):
        requirements(scen, 1.0, parameters=["heralding.colour"])
    with pytest.raises(TargetUnreachable, match="heralding.efficiency"):
        requirements(scenario_from_dict(DIRECT), 2 * _direct_rate(1.0), parameters=["heralding.efficiency"])


# ----------------------------------------------------------------------------- CLI


def _cli(args):
    from typer.testing import CliRunner

    from qnjax.cli import app

    return CliRunner().invoke(app, args)


def _direct_file(tmp_path):
    p = tmp_path / "direct.toml"
    p.write_text(scenario_toml(scenario_from_dict(DIRECT)))
    return p


def test_cli_requirements_writes_a_scenario_optimize_reaches(tmp_path):
    import json

    p = _direct_file(tmp_path)
    out = tmp_path / "required.toml"
    target = 0.5 * _direct_rate(1.0)
    r = _cli(["requirements", str(p), "--target", str(target), "--parameters", "heralding.efficiency",
              "--json", "--write-scenario", str(out), "--plot", str(tmp_path / "curve.png"), "--curve-points", "3"])
    assert r.exit_code == 0, r.output
    j = json.loads(r.stdout)
    assert {"target_bits_per_s", "skr_bits_per_s", "cost", "baseline", "required", "improvement", "design",
            "wall_s"} <= set(j)
    assert j["design"]["segments"] == 1 and "cutoff_s" in j["design"] and "positions_km" in j["design"]
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"
    r2 = _cli(["optimize", str(out), "--json"])
    assert r2.exit_code == 0, r2.output
    assert json.loads(r2.stdout)["skr_bits_per_s"] >= 0.995 * target


def test_cli_sensitivity_json_and_plot(tmp_path):
    import json

    p = _direct_file(tmp_path)
    r = _cli(["sensitivity", str(p), "--json", "--plot", str(tmp_path / "s.png")])
    assert r.exit_code == 0, r.output
    rows = {x["name"]: x for x in json.loads(r.stdout)["parameters"]}
    # R ∝ efficiency · 10^(−att·L/10): elasticities 1 and −att·L·ln(10)/10 (independent closed form)
    assert rows["heralding.efficiency"]["elasticity"] == pytest.approx(1.0, rel=1e-9)
    assert rows["attenuation_db_per_km"]["elasticity"] == pytest.approx(-0.2 * 50 * math.log(10) / 10, rel=1e-9)
    assert (tmp_path / "s.png").exists()


@pytest.mark.parametrize("args, words", [
    (["--target", "-1"], "--target"),
    (["--target", "1", "--parameters", "heralding.colour"], "unknown 'heralding.colour'"),
    (["--target", "1e9"], "bound that limits most"),
    (["--target", "1", "--bound", "heralding.efficiency=0.5"], "--bound"),
    (["--target", "1", "--cost", "money"], "--cost"),
])
def test_cli_requirements_bad_input_exits_2(tmp_path, args, words):
    r = _cli(["requirements", str(_direct_file(tmp_path)), *args])
    assert r.exit_code == 2
    assert words in r.output


def test_cli_refuses_a_foreign_write_scenario_file_before_any_work(tmp_path, monkeypatch):
    """A --write-scenario path that is not a scenario is refused before the search starts,
    and the file keeps its bytes."""
    import qnjax.sizing as sizing

    foreign = tmp_path / "notes.toml"
    foreign.write_bytes(b"title = 'my notes'\n[x]\ny = 1\n")

    def boom(*a, **k):  # the search must not start
        raise AssertionError("requirements ran before the output path was checked")

    monkeypatch.setattr(sizing, "requirements_curve", boom)
    r = _cli(["requirements", str(_direct_file(tmp_path)), "--target", "1", "--write-scenario", str(foreign)])
    assert r.exit_code == 2
    assert "--write-scenario" in r.output and "not a scenario file" in r.output
    assert foreign.read_bytes() == b"title = 'my notes'\n[x]\ny = 1\n"


def test_public_names_are_the_functions():
    import qnjax
    import qnjax.sizing

    assert qnjax.requirements is qnjax.sizing.requirements  # a plain function, not a module
    assert qnjax.sensitivity is sensitivity and qnjax.TargetUnreachable is TargetUnreachable


def test_least_cost_equalizes_marginal_gains_on_a_direct_link():
    """R ∝ eff · 10^(−att·L/10); with k = e^y the marginal gains are ∂log R/∂y_eff = −log(eff)
    and ∂log R/∂y_att = att·L·ln(10)/10 at the required values: equal at the least Σ log k
    (KKT), within the continuation's 5 % band."""
    scen = scenario_from_dict(DIRECT)
    r = requirements(scen, 1000.0, parameters=["heralding.efficiency", "attenuation_db_per_km"])
    eff, att = r.required["heralding.efficiency"], r.required["attenuation_db_per_km"]
    assert r.improvement["heralding.efficiency"] > 1 and r.improvement["attenuation_db_per_km"] > 1
    assert -math.log(eff) == pytest.approx(att * 50 * math.log(10) / 10, rel=0.08)
    assert _direct_rate(eff) * 10 ** (-(att - 0.2) * 50 / 10) == pytest.approx(1000.0, rel=1e-5)


def test_station_overrides_are_parameters_of_their_own():
    from qnjax.design.chain import Structure, build_tree

    d = dict(CHAIN, memory={"t1_s": 2.0, "t2_s": 1.0},
             station=[{"index": 1, "swap_success": 0.8, "memory": {"t_coh_s": 0.1}}],
             search={"segments": [2, 3], "t_trunc": 512})
    scen = scenario_from_dict(d)
    names = [p.name for p in hardware_parameters(scen)]
    assert {"station[0].swap_success", "station[0].memory.t_coh_s", "memory.t1_s", "memory.t2_s"} <= set(names)
    params = hardware_parameters(scen)
    for n in (2, 3):
        st = Structure(n, (0,) * 3, build_tree(n, (0,) * 3))
        theta = np.array([improve(p.theta, 1.3, p.form) for p in params])
        a = hardware_from_theta(scen, st, params, theta)
        b = hardware(scenario_with(scen, params, theta), st)
        for k in ("rates", "p_swap", "bsm"):
            np.testing.assert_allclose(np.asarray(a[k]), np.asarray(b[k]), rtol=1e-12, err_msg=k)
    # T2 may not pass 2 T1: the bounds keep it (2 * 2 s / 1 s = factor 4 above T1's own factor)
    from qnjax.sizing._solve import _bounds, _project, _t2_pairs

    ymax = _bounds(params, None, 100.0)
    pairs = _t2_pairs(scen, params)
    y = _project(ymax, ymax, pairs)
    i1, i2 = names.index("memory.t1_s"), names.index("memory.t2_s")
    assert math.exp(y[i2]) * 1.0 <= 2 * math.exp(y[i1]) * 2.0 * (1 + 1e-12)


def test_fibre_stays_fixed_unless_named_and_cli_writes_provenance_and_csv(tmp_path):
    import json

    from qnjax.export import read_csv
    from qnjax.sizing._params import requirement_names

    scen = scenario_from_dict(DIRECT)
    assert "attenuation_db_per_km" in [p.name for p in hardware_parameters(scen)]
    assert "attenuation_db_per_km" not in requirement_names(scen)
    target = 0.5 * _direct_rate(1.0)
    r = requirements(scen, target)  # default parameters: the fibre is not among them
    assert r.improvement.get("attenuation_db_per_km", 1.0) == 1.0
    assert r.skr_bits_per_s >= 0.995 * target
    p, csv = _direct_file(tmp_path), tmp_path / "req.csv"
    out = _cli(["requirements", str(p), "--target", str(target), "--parameters", "heralding.efficiency",
                "--json", "--csv", str(csv)])
    assert out.exit_code == 0, out.output
    j = json.loads(out.stdout)
    prov = j["provenance"]
    assert prov["scenario"]["distance_km"] == DIRECT["distance_km"] and prov["settings"]["cost"] == "log-improvement"
    rows, meta = read_csv(csv)
    assert [row["parameter"] for row in rows] == list(j["baseline"])
    assert rows[0]["required"] == pytest.approx(j["required"][rows[0]["parameter"]], rel=1e-12)


def test_write_scenario_replaces_only_files_qnjax_wrote(tmp_path):
    """The library never overwrites a user's own scenario (only a file whose first line is the
    mark qnjax writes, or the header ``qnjax requirements`` wrote before the mark existed)."""
    from qnjax.design.scenario import load_scenario
    from qnjax.sizing import write_scenario
    from qnjax.sizing._toml import MARK

    mine = tmp_path / "mine.toml"
    mine.write_text('# my notes\ndistance_km = 50.0\n[memory]\nt_coh = "1 s"\n')
    before = mine.read_bytes()
    scen = load_scenario(mine)
    with pytest.raises(ValueError, match="exists and was not written by qnjax; not overwritten"):
        write_scenario(scen, mine)
    assert mine.read_bytes() == before
    out = write_scenario(scen, tmp_path / "out.toml", header="first")
    assert out.read_text().splitlines()[:2] == [MARK, "# first"]
    write_scenario(scen, out, header="second")  # its own file: replaced
    assert out.read_text().splitlines()[1] == "# second" and load_scenario(out) == scen
    legacy = tmp_path / "legacy.toml"
    legacy.write_text(out.read_text().replace(MARK + "\n# second", "# hardware required for 5 bits/s (qnjax requirements)"))
    write_scenario(scen, legacy)  # written by qnjax requirements before the mark: replaced
    assert legacy.read_text().startswith(MARK)
