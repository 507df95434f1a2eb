"""``qnjax sweep --out``: a resumed results file is checked by the library's own resume check
(qnjax.design.api.check_sweep_out, then again by the resume itself); the CLI only words the
message for ``--out``, keeping the file and the line."""

from __future__ import annotations

import json

import pytest
from support.cli import edit_row, forbid_sweep_work, run_cli
from support.scenario_files import tiny_chain_toml

import qnjax.design
import qnjax.design.api as api

TINY = tiny_chain_toml(1, starts=1, steps=2, t_trunc=256)
LOSSLESS = TINY.replace("attenuation_db_per_km = 0.2", "attenuation_db_per_km = 0")


_run = run_cli


def _error_line(res, err) -> str:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in err
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("qnjax: sweeping")]
    assert len(lines) == 1 and lines[0].startswith("qnjax: error: --out: "), err
    return lines[0]


def _sweep(scen, out, *extra):
    return _run(["sweep", scen, "--distances", "40,80", "--group", "1", "--json", "--out", out, *extra])


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Results files written by a real CLI sweep, lossy and lossless fibre (the defaults of the
    scenario, group 1)."""
    d = tmp_path_factory.mktemp("cli_resume")
    out = {}
    for name, text in (("tiny", TINY), ("lossless", LOSSLESS)):
        (d / f"{name}.toml").write_text(text)
        res, err = _sweep(d / f"{name}.toml", d / f"{name}.jsonl")
        assert res.exit_code == 0, err
        out[name] = (d / f"{name}.toml", (d / f"{name}.jsonl").read_bytes(), json.loads(res.stdout))
    return out


@pytest.fixture
def no_work(monkeypatch):
    forbid_sweep_work(monkeypatch)


edit = edit_row


@pytest.mark.parametrize("fields,what", [(dict(skr_bits_per_s=float("nan")), "skr_bits_per_s is nan"),
                                         (dict(coverage=2.0), "coverage = 2 lies outside"),
                                         (dict(plob=float("inf")), "plob is inf")])
@pytest.mark.parametrize("preflight", [True, False])
def test_an_edited_row_names_file_and_line(written, tmp_path, no_work, monkeypatch, fields, what, preflight):
    """The same message whether the CLI's early check or the library's resume refuses."""
    if not preflight:  # the library's resume alone (qnjax.sweep) must refuse the file
        monkeypatch.setattr(api, "check_sweep_out", lambda *a, **k: None)
    scen, data, _ = written["tiny"]
    out = tmp_path / "r.jsonl"
    before = edit(data, 2, **fields)
    out.write_bytes(before)
    line = _error_line(*_sweep(scen, out))
    assert line.startswith(f"qnjax: error: --out: {str(out)!r} line 2 (distance_km=80.0): {what}"), line
    assert line.endswith("; the results file was edited or is corrupt; repair or remove that line, or use a "
                         "new --out file")
    assert "resume=False" not in line and "t_trunc" not in line
    assert out.read_bytes() == before


def test_the_check_runs_before_the_sweep_is_called(written, tmp_path, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("sweep called before the --out check")

    monkeypatch.setattr(qnjax.design, "sweep", boom)
    scen, data, _ = written["tiny"]
    out = tmp_path / "r.jsonl"
    out.write_bytes(edit(data, 1, skr_per_channel_use=-1.0))
    line = _error_line(*_sweep(scen, out))
    assert "line 1 (distance_km=40.0): skr_per_channel_use = -1 lies outside" in line


def test_a_lossless_file_resumes_with_infinite_bounds(written, tmp_path, no_work):
    scen, data, first = written["lossless"]
    assert first["plob"] == first["tgw"] == ["inf", "inf"]
    out = tmp_path / "r.jsonl"
    out.write_bytes(data)
    res, err = _sweep(scen, out)
    assert res.exit_code == 0, err
    again = json.loads(res.stdout)
    assert again["plob"] == ["inf", "inf"] and again["skr_bits_per_s"] == first["skr_bits_per_s"]
    assert out.read_bytes() == data


def test_a_lossless_file_is_another_run_for_a_lossy_scenario(written, tmp_path, no_work):
    scen, _, _ = written["tiny"]
    _, data0, _ = written["lossless"]
    out = tmp_path / "r.jsonl"
    out.write_bytes(data0)
    line = _error_line(*_sweep(scen, out))
    assert "line 1" in line and "fingerprint" in line and line.endswith("use a new --out file")
    assert out.read_bytes() == data0
