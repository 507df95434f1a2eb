"""Regressions of the CLI fuzz findings: the input scenario is never overwritten, usage errors
are one line, absurd sizes are refused or clamped at once, errors name their real cause."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support.cli import run_cli
from support.scenario_files import tiny_chain_toml
from typer.testing import CliRunner

from qnjax.cli import app

ROOT = Path(__file__).resolve().parents[2]
METRO = ROOT / "examples" / "metro_link.toml"
NETWORK = ROOT / "examples" / "networks" / "tiny_network.toml"
runner = CliRunner()


_run = run_cli


def _one_line_error(res, err, *needles):
    assert res.exit_code == 2, res.output
    assert "Traceback" not in err and "╭" not in err
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("qnjax: sweeping")]  # progress
    assert len(lines) == 1 and lines[0].startswith("qnjax: error: "), err
    for n in needles:
        assert n in lines[0], err


def _no_work(monkeypatch, *targets):
    def boom(*a, **k):
        raise AssertionError("computed before the check")

    for mod, name in targets:
        monkeypatch.setattr(mod, name, boom)


# ----------------------------------------------------------------------------- F1


def test_requirements_never_overwrites_the_input_scenario(tmp_path, monkeypatch):
    import qnjax.sizing

    _no_work(monkeypatch, (qnjax.sizing, "requirements_curve"))
    victim = tmp_path / "victim.toml"
    shutil.copy(METRO, victim)
    before = victim.read_bytes()
    for target in (victim, tmp_path / "." / "victim.toml"):
        res, err = _run(["requirements", victim, "--json", "--target", "100", "--write-scenario", target])
        _one_line_error(res, err, "--write-scenario", "input scenario")
        assert victim.read_bytes() == before


def test_requirements_never_overwrites_a_scenario_qnjax_did_not_write(tmp_path, monkeypatch):
    import qnjax.sizing

    _no_work(monkeypatch, (qnjax.sizing, "requirements_curve"))
    src, other = tmp_path / "in.toml", tmp_path / "other.toml"
    shutil.copy(METRO, src)
    shutil.copy(METRO, other)
    before = other.read_bytes()
    res, err = _run(["requirements", src, "--json", "--target", "100", "--write-scenario", other])
    _one_line_error(res, err, "--write-scenario", "not written by qnjax")
    assert other.read_bytes() == before


def test_requirements_may_replace_its_own_output(tmp_path):
    from qnjax.cli.requirements import _check_write_scenario
    from qnjax.design import load_scenario
    from qnjax.sizing import write_scenario

    src, own = tmp_path / "in.toml", tmp_path / "required.toml"
    shutil.copy(METRO, src)
    write_scenario(load_scenario(src), own, header="hardware required for 100 bits/s (qnjax requirements)")
    _check_write_scenario(own, src)  # accepted: no exit
    _check_write_scenario(tmp_path / "new.toml", src)


# ----------------------------------------------------------------------------- F6


@pytest.mark.parametrize("args,needle", [
    (["evaluate", "--json", "--p-gen", "abc"], "--p-gen"),
    (["evaluate", "--json", "--p-gen", ""], "--p-gen"),
    (["simulate", "--p-gen", "0.5", "--samples", "1e6"], "--samples"),
    (["simulate", "--policy", "swap-asap", "--p-gen", "0.5", "--nodes", "abc"], "--nodes"),
    (["simulate", "--policy", "bogus", "--p-gen", "0.5"], "--policy"),
    (["simulate"], "--p-gen"),
    (["evaluate", "--bogus"], "--bogus"),
    (["bogus"], "bogus"),
    (["--bogus"], "--bogus"),
])
def test_usage_errors_are_one_line(args, needle):
    res, err = _run(args)
    _one_line_error(res, err, needle)


def test_help_is_unchanged():
    res = runner.invoke(app, ["evaluate", "--help"])
    assert res.exit_code == 0
    assert "Usage" in res.stdout and "--p-gen" in res.stdout
    res = runner.invoke(app, [])
    assert "Usage" in res.output and "evaluate" in res.output


# ----------------------------------------------------------------------------- F4


def test_plan_max_repeaters_is_clamped_to_the_network(monkeypatch):
    import qnjax.network
    from qnjax.network import candidates

    seen = {}

    def fake(G, demands, hw, **kw):  # the candidate table plan() builds: the limit it uses
        seen.update(kw)
        raise qnjax.network.NetworkError("stop here")

    monkeypatch.setattr(candidates, "build_table", fake)
    res, err = _run(["plan", NETWORK, "--pairs", "Delft:Groningen", "--budget", "2", "--max-repeaters", "1000000"])
    assert res.exit_code == 2 and err.strip().splitlines()[-1] == "qnjax: error: stop here", err
    assert seen["max_repeaters"] == 3  # five nodes: at most three inside a chain


def test_evaluate_refuses_absurd_level_counts():
    res, err = _run(["evaluate", "--protocol", ",".join(["swap"] * 65), "--json"])
    _one_line_error(res, err, "--protocol", "65 levels")


# ----------------------------------------------------------------------------- F5


def test_optimize_lossless_fibre_reports_an_infinite_bound(tmp_path):
    scen = tmp_path / "lossless.toml"
    scen.write_text(tiny_chain_toml(1, starts=1, steps=2, t_trunc=256).replace(
        "attenuation_db_per_km = 0.2", "attenuation_db_per_km = 0"))
    res, err = _run(["optimize", scen, "--json", "--seed", "1"])
    assert res.exit_code == 0, err
    out = json.loads([ln for ln in res.stdout.splitlines() if ln.startswith("{")][-1])
    assert out["plob_per_channel_use"] == "inf" and out["tgw_per_channel_use"] == "inf"
    assert out["skr_bits_per_s"] > 0


def _rows(path: Path, **fields):
    row = {"scenario": "tiny chain", "fingerprint": "0", "settings": {}, "segments": 1, "skr_bits_per_s": 1.0}
    path.write_text("".join(json.dumps({**row, "distance_km": d, **fields.get(str(d), {})}) + "\n"
                            for d in (40.0, 80.0)))
    return path.read_bytes()


@pytest.mark.parametrize("bad", ["-1.0", "NaN"])
def test_sweep_resume_names_a_corrupt_results_row(tmp_path, bad, monkeypatch):
    import qnjax.design

    _no_work(monkeypatch, (qnjax.design, "sweep"))
    scen = tmp_path / "tiny.toml"
    scen.write_text(tiny_chain_toml(1, starts=1, steps=2, t_trunc=256))
    out = tmp_path / "r.jsonl"
    before = _rows(out, **{"80.0": {"skr_bits_per_s": float(bad)}})
    res, err = _run(["sweep", scen, "--distances", "40,80", "--group", "1", "--json", "--out", out])
    _one_line_error(res, err, "--out", "r.jsonl", "line 2", "distance_km=80.0", "skr_bits_per_s")
    assert "t_trunc" not in err
    assert out.read_bytes() == before


def test_sweep_mismatch_is_worded_for_the_cli(tmp_path):
    scen = tmp_path / "tiny.toml"
    scen.write_text(tiny_chain_toml(1, starts=1, steps=2, t_trunc=256))
    out = tmp_path / "r.jsonl"
    before = _rows(out)
    res, err = _run(["sweep", scen, "--distances", "40,80", "--group", "1", "--json", "--out", out])
    _one_line_error(res, err, "--out", "use a new --out file")
    assert "resume=False" not in err
    assert out.read_bytes() == before


# ----------------------------------------------------------------------------- F7


def test_sweep_out_needs_an_existing_folder(tmp_path):
    scen = tmp_path / "tiny.toml"
    scen.write_text(tiny_chain_toml(1, starts=1, steps=2, t_trunc=256))
    res, err = _run(["sweep", scen, "--distances", "40", "--json", "--out", tmp_path / "nodir" / "x.jsonl"])
    _one_line_error(res, err, "--out", "does not exist")
    assert not (tmp_path / "nodir").exists()


@pytest.mark.parametrize("cmd", [["evaluate", "--protocol", "swap"],
                                 ["optimize", "--protocol", "swap", "--p-gen", "0.5"]])
def test_one_file_for_two_outputs_is_refused_before_work(tmp_path, cmd):
    same = tmp_path / "same.png"
    res, err = _run(cmd + ["--plot", same, "--csv", tmp_path / "." / "same.png"])
    _one_line_error(res, err, "--csv", "--plot")
    assert not same.exists()


def test_huge_scenario_integer_is_written_compactly(tmp_path):
    scen = tmp_path / "big.toml"
    scen.write_text("distance_km = 100\n[memory]\nt_coh_s = 1\n[search]\nstarts = 1e308\n")
    res, err = _run(["optimize", scen, "--json"])
    _one_line_error(res, err, "search.starts", "1e+308")
    assert len(err) < 200


def test_plan_on_a_directory_says_so(tmp_path):
    res, err = _run(["plan", tmp_path, "--pairs", "A:B"])
    _one_line_error(res, err, "is a directory")
