"""`qnjax evaluate`: the issue's command line, JSON keys, table output and exit codes."""

import json

import pytest
from typer.testing import CliRunner

from qnjax.cli import app

runner = CliRunner()


def test_evaluate_json_issue_example():
    res = runner.invoke(app, ["evaluate", "--protocol", "swap,swap,swap", "--p-gen", "0.1", "--p-swap", "0.5",
                              "--w0", "0.98", "--t-coh", "400", "--cutoff", "17,32,56", "--t-trunc", "6000",
                              "--json"])
    assert res.exit_code == 0, res.output
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("{")][0]
    out = json.loads(line)
    for key in ("mean_time", "mean_werner", "mean_fidelity", "coverage", "key_fraction", "secret_key_rate"):
        assert key in out
    assert out["dtype"] == "float64"
    assert out["t_trunc"] == 6000
    assert out["secret_key_rate"] == pytest.approx(out["key_fraction"] / out["mean_time"])


def test_evaluate_table_and_distill(tmp_path):
    png = tmp_path / "pmf.png"
    res = runner.invoke(app, ["evaluate", "--protocol", "swap,distill", "--p-gen", "0.3", "--w0", "0.99",
                              "--t-coh", "1000", "--t-trunc", "1024", "--plot", str(png)])
    assert res.exit_code == 0, res.output
    assert "secret key rate" in res.stdout
    assert png.stat().st_size > 1000


@pytest.mark.parametrize("args,needle", [
    (["--protocol", "swap,purify"], "--protocol"),
    (["--cutoff", "1,2"], "--cutoff"),
    (["--cutoff=-1,2,3"], "cutoff"),
    (["--p-gen", "0"], "--p-gen"),
    (["--p-swap", "1.5"], "--p-swap"),
    (["--t-trunc", "many"], "--t-trunc"),
])
def test_evaluate_bad_input_exits_2(args, needle):
    res = runner.invoke(app, ["evaluate", "--t-trunc", "64", *args])
    assert res.exit_code == 2
    assert needle in res.output
    assert len([ln for ln in res.output.splitlines() if ln.strip()]) == 1
