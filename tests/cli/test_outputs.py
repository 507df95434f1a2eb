"""Results a researcher can publish and reproduce: figures in every format (normal and
degenerate answers), tables that lose no number at any width, CSV that round-trips to the
JSON, provenance in every output (and an optimization re-run from it), progress on stderr,
float32 warned once."""

import json
import io
import re
import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from qnjax.cli import app
from qnjax.cli._outputs import cell
from qnjax.export import read_csv, to_columns, to_rows
from support.scenario_files import tiny_chain_toml

MAGIC = {".png": b"\x89PNG", ".pdf": b"%PDF", ".svg": b"<?xml"}
PROV_KEYS = ("qnjax", "jax", "jaxlib", "device", "dtype", "command", "created_utc")


def run(args, width=None):
    env = {"QNJAX_WIDTH": str(width)} if width else {}
    res = CliRunner().invoke(app, [str(a) for a in args], env=env)
    assert res.exit_code == 0, res.output
    return res


def json_of(res) -> dict:
    return json.loads([ln for ln in res.stdout.splitlines() if ln.startswith("{")][-1])


def no_nulls(obj, path="") -> list:
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in no_nulls(v, f"{path}.{k}")]
    if isinstance(obj, list):
        return [p for i, v in enumerate(obj) for p in no_nulls(v, f"{path}[{i}]")]
    return [path] if obj is None else []


@pytest.fixture(scope="module")
def scen(tmp_path_factory):
    """One-segment (no repeater) and two-segment tiny chains, searched over segments only."""
    d = tmp_path_factory.mktemp("scen")
    (d / "one.toml").write_text(tiny_chain_toml(1, 2, 4, 256))
    (d / "two.toml").write_text(tiny_chain_toml(2, 2, 4, 256).replace("distance_km = 60.0", "distance_km = 20.0"))
    (d / "both.toml").write_text(tiny_chain_toml(1, 2, 4, 256).replace("segments = [1]", "segments = [1, 2]"))
    return d


# ----------------------------------------------------------------------------- figures


def is_image(path) -> bool:
    return path.read_bytes().lstrip()[:5].startswith(MAGIC[path.suffix][:4])


def test_optimize_plots_normal_and_no_repeater(scen, tmp_path):
    """The command writes the figure; the same figure renders in every format."""
    from qnjax.cli.optimize import plot_physical
    from qnjax.design import load_scenario, optimize

    for name, n in (("one", 1), ("two", 2)):
        p = tmp_path / f"{name}.png"
        res = run(["optimize", scen / f"{name}.toml", "--seed", 1, "--plot", p, "--json"])
        assert is_image(p) and json_of(res)["segments"] == n
        problem = load_scenario(scen / f"{name}.toml")
        r = optimize(problem, seed=1)
        for ext in (".pdf", ".svg"):
            plot_physical(r, problem, tmp_path / f"{name}{ext}")
            assert is_image(tmp_path / f"{name}{ext}")


def test_no_repeater_answer_says_so(scen, tmp_path):
    """A one-segment answer: cut-off rows say why they are empty, the plot drops the empty
    history panel and the identical gain bars."""
    from qnjax.cli.optimize import plot_physical
    from qnjax.design import load_scenario, optimize

    res = run(["optimize", scen / "one.toml", "--seed", 1, "--plot", tmp_path / "o.png"], width=100)
    assert "no repeater" in res.stdout and "cut-offs [] steps" not in res.stdout
    lines = [ln for ln in res.stdout.splitlines() if "cut-offs" in ln or "gain over" in ln]
    assert lines and all("n/a" in ln for ln in lines)
    problem = load_scenario(scen / "one.toml")
    r = optimize(problem, seed=1)
    import matplotlib.pyplot as plt

    seen = {}
    real = plt.Figure.savefig

    def spy(fig, *a, **k):
        seen["axes"] = [ax.get_title() for ax in fig.axes]
        return real(fig, *a, **k)

    plt.Figure.savefig = spy
    try:
        plot_physical(r, problem, tmp_path / "p.svg")
    finally:
        plt.Figure.savefig = real
    assert len(seen["axes"]) == 2 and "no repeater" in seen["axes"][0]
    assert not any("history" in t for t in seen["axes"])


def test_no_key_plots(tmp_path):
    """No key anywhere: evaluate, the step-model optimizer and a sweep still draw, and say so."""
    from qnjax.cli.optimize import plot_step
    from qnjax.cli.sweep import plot_sweep
    from qnjax.design import StepProblem, optimize

    e = tmp_path / "e.pdf"
    res = run(["evaluate", "--protocol", "swap", "--p-gen", 0.3, "--w0", 0.5, "--t-trunc", 256, "--plot", e,
               "--json"])
    assert json_of(res)["key_fraction"] == 0 and is_image(e)
    s = tmp_path / "s.svg"
    res = run(["optimize", "--protocol", "swap", "--p-gen", 0.5, "--w0", 0.5, "--t-trunc", 128, "--steps", 4,
               "--starts", 2, "--plot", s, "--json"])
    assert json_of(res)["secret_key_rate"] == 0 and is_image(s)
    r = optimize(StepProblem("swap", p_gen=0.5, w0=0.5, t_trunc=128), n_steps=4, n_starts=2)
    data = {"distance_km": [100.0, 200.0], "segments": [1, 1], "skr_per_channel_use": [0.0, 0.0],
            "plob": [0.01, 1e-4], "tgw": [0.02, 2e-4], "direct_per_channel_use": [0.0, 0.0], "scheme": "direct"}
    for ext in (".png", ".pdf", ".svg"):
        plot_step(r, tmp_path / f"step{ext}")
        plot_sweep(data, "no key", tmp_path / f"w{ext}")
        assert is_image(tmp_path / f"step{ext}") and is_image(tmp_path / f"w{ext}")


# ----------------------------------------------------------------------------- tables


@pytest.fixture(scope="module")
def sweep_run(scen, tmp_path_factory):
    d = tmp_path_factory.mktemp("sweep")
    res = run(["sweep", scen / "both.toml", "--distances", "20,60,150", "--seed", 1, "--json", "--csv",
               d / "s.csv"])
    return json_of(res), d / "s.csv"


@pytest.mark.parametrize("width", [60, 80, 160])
def test_sweep_table_loses_no_number(scen, sweep_run, width):
    data, _ = sweep_run
    res = run(["sweep", scen / "both.toml", "--distances", "20,60,150", "--seed", 1, "--plot",
               scen / f"t{width}.png"], width=width)
    out = res.stdout
    # every line fits but the one naming the plot's path, which is printed whole however long
    saved = f"plot saved to {scen / f't{width}.png'}"
    assert saved in out.splitlines()
    assert "…" not in out and max(len(ln) for ln in out.splitlines() if ln != saved) <= width
    assert "tiny chain, 20" not in out.splitlines()[0]  # the title names the sweep, not the scenario
    assert "20–150 km" in out
    for i in range(3):
        for v in (data["skr_bits_per_s"][i], data["skr_per_channel_use"][i], data["plob"][i],
                  data["direct_per_channel_use"][i]):
            assert re.search(r"(^|[\s│])" + re.escape(cell(v)) + r"([\s│]|$)", out, re.M), (cell(v), out)


@pytest.mark.parametrize("width", [60, 80, 160])
def test_key_value_tables_lose_no_number(width):
    res = run(["evaluate", "--protocol", "swap,swap", "--p-gen", 0.3, "--t-trunc", 512, "--json"])
    j = json_of(res)
    out = run(["evaluate", "--protocol", "swap,swap", "--p-gen", 0.3, "--t-trunc", 512], width=width).stdout
    assert "…" not in out and max(len(ln) for ln in out.splitlines()) <= width
    for v in (cell(j["mean_time"]), cell(j["secret_key_rate"], digits=4), cell(j["key_fraction"]),
              f"{j['mean_fidelity']:.6g}"):
        assert v in out


# ----------------------------------------------------------------------------- CSV and provenance


def test_sweep_csv_round_trips_to_json(sweep_run):
    data, path = sweep_run
    rows, prov = read_csv(path)
    assert len(rows) == 3
    for i, row in enumerate(rows):
        for k, v in row.items():
            assert v == data[k][i], k
    assert prov["settings"] == data["provenance"]["settings"]
    assert prov["scenario_sha256"] == data["provenance"]["scenario_sha256"]
    for k in PROV_KEYS + ("seed", "scenario"):
        assert data["provenance"][k] is not None, k
    assert not no_nulls(data["provenance"]["settings"])


@pytest.mark.parametrize("cmd", [
    ["evaluate", "--protocol", "swap", "--p-gen", "0.3", "--cutoff", "20", "--t-trunc", "256"],
    ["simulate", "--protocol", "swap", "--p-gen", "0.3", "--samples", "500", "--seed", "3"],
    ["optimize", "--protocol", "swap", "--p-gen", "0.1", "--t-trunc", "128", "--steps", "4", "--starts", "2"],
])
def test_csv_round_trips_to_json(tmp_path, cmd):
    res = run([*cmd, "--json", "--csv", tmp_path / "r.csv"])
    j = json_of(res)
    prov = j.pop("provenance")
    (row,), prov_csv = read_csv(tmp_path / "r.csv")
    j.pop("plot", None)
    assert row == j
    assert prov_csv == prov
    for k in PROV_KEYS:
        assert prov[k], k
    assert prov["dtype"] == "float64"


def test_csv_refuses_foreign_file_before_work(tmp_path):
    p = tmp_path / "mine.csv"
    p.write_text("a,b\n1,2\n")
    res = CliRunner().invoke(app, ["evaluate", "--t-trunc", "64", "--csv", str(p)])
    assert res.exit_code == 2 and "--csv" in res.output and len(res.output.strip().splitlines()) == 1
    assert p.read_text() == "a,b\n1,2\n"


def test_rerun_optimization_from_provenance(scen):
    """The provenance block of an optimization's JSON is enough to get the same design."""
    from qnjax.design import optimize, scenario_from_dict

    j = json_of(run(["optimize", scen / "two.toml", "--seed", 5, "--steps", 3, "--json"]))
    prov = j["provenance"]
    assert not no_nulls(prov["settings"]) and prov["seed"] == 5
    s = prov["settings"]
    again = optimize(scenario_from_dict(prov["scenario"]), seed=prov["seed"], n_starts=s["n_starts"],
                     n_steps=s["n_steps"], learning_rate=s["learning_rate"]).to_json()
    for k in ("segments", "positions_km", "cutoff", "rounds", "skr_bits_per_s"):
        assert again[k] == j[k], k
    from qnjax import scenario_hash

    assert scenario_hash(prov["scenario"]) == prov["scenario_sha256"]


def test_sweep_out_rows_record_settings_used(scen, tmp_path):
    out = tmp_path / "rows.jsonl"
    run(["sweep", scen / "one.toml", "--distances", "30,60", "--out", out, "--json", "--group", 2])
    for ln in out.read_text().splitlines():
        row = json.loads(ln)
        assert not no_nulls(row["settings"]), row["settings"]
        assert row["settings"]["seed"] == 0 and row["settings"]["n_starts"] == 2 and row["settings"]["n_steps"] == 4


def test_scenario_to_dict_round_trips():
    from qnjax.design import scenario_from_dict
    from qnjax.design.scenario import default_scenario, scenario_to_dict

    s = default_scenario()
    d = json.loads(json.dumps(scenario_to_dict(s), allow_nan=False))
    assert scenario_from_dict(d) == s
    rich = dict(d, station=[{"index": -1, "memory": {"t1_s": 2.0, "t2_s": 1.0}, "swap_success": 0.5}])
    rich["search"] = dict(d["search"], segments=[2, 4], max_segment="200 km")
    s2 = scenario_from_dict(rich)
    assert scenario_from_dict(json.loads(json.dumps(scenario_to_dict(s2), allow_nan=False))) == s2


# ----------------------------------------------------------------------------- progress, precision, library


def test_progress_on_stderr_json_alone_on_stdout():
    res = run(["evaluate", "--protocol", "swap", "--p-gen", "0.3", "--json"])
    assert len(res.stdout.strip().splitlines()) == 1
    json.loads(res.stdout)
    assert "automatic truncation" in res.stderr and "elapsed" in res.stderr


def test_float32_warned_once_and_recorded():
    import jax

    from qnjax import delivery, exact

    was = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", False)
    exact._WARNED.discard("float32")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(3):
                r = delivery("swap", p_gen=0.02, w0=0.98, t_trunc=512)
        assert r.dtype == "float32" and to_rows(r)[0]["dtype"] == "float32"
        f32 = [w for w in caught if "float32" in str(w.message)]
        assert len(f32) == 1 and len(str(f32[0].message)) < 160 and "jax_enable_x64" in str(f32[0].message)
        assert len(caught) == 1  # the coverage warning is not repeated for the same cause
    finally:
        jax.config.update("jax_enable_x64", was)


def test_results_as_rows_and_columns():
    from qnjax import delivery

    r = delivery("swap", p_gen=np.array([0.2, 0.3, 0.5]), w0=0.98, t_trunc=256)
    cols = to_columns(r)
    assert cols["mean_time"].shape == (3,) and cols["dtype"] == r.dtype
    rows = to_rows(r)
    assert [x["index"] for x in rows] == [0, 1, 2] and "pmf" not in rows[0]
    assert rows[1]["mean_time"] == pytest.approx(float(r.mean_time[1]))
    sweep = {"distance_km": [1.0, 2.0], "segments": [1, 2], "protocol": ["L0", "S(L0,L1)"], "notes": []}
    assert to_rows(sweep) == [{"distance_km": 1.0, "segments": 1, "protocol": "L0"},
                              {"distance_km": 2.0, "segments": 2, "protocol": "S(L0,L1)"}]


def test_sweep_resumes_a_file_written_with_null_settings(scen, tmp_path):
    """Rows written before settings were stored as used (null = the scenario's default) resume."""
    out = tmp_path / "old.jsonl"
    run(["sweep", scen / "one.toml", "--distances", "30", "--out", out, "--json", "--group", 1])
    row = json.loads(out.read_text())
    row["settings"] = {"seed": None, "n_starts": None, "n_steps": None, "learning_rate": None, "group": 1}
    out.write_text(json.dumps(row) + "\n")
    data = json_of(run(["sweep", scen / "one.toml", "--distances", "30,60", "--out", out, "--json",
                        "--group", 1]))
    assert data["distance_km"] == [30.0, 60.0]
    rows = [json.loads(ln) for ln in out.read_text().splitlines()]
    assert [r["settings"] for r in rows] == [row["settings"]] * 2


@pytest.mark.parametrize("width", [60, 80, 160])
def test_long_protocol_folds_without_squeezing_the_row_labels(width):
    """A protocol tree has no spaces; it folds inside its column instead of narrowing the label
    column until its header breaks mid-word (was 'seg / men / ts' at 80 columns)."""
    from rich.console import Console

    from qnjax.cli._outputs import print_table

    con = Console(width=width, record=True, file=io.StringIO())
    tree = "S(S(S(L0,S(L1,L2)),S(S(L3,L4),L5)),S(S(S(L6,L7),L8),S(S(L9,L10),S(L11,L12))))"
    print_table("t", ["segments", "bits/s", "protocol / reason"],
                [["13", "13.1", tree], ["1", "n/a (not computed)", "pruned: bound below the best design"]],
                keep=1, text_cols=(2,), con=con)
    out = con.export_text()
    assert max(len(ln) for ln in out.splitlines()) <= width and "…" not in out
    assert out.count("segments") == out.count("┏")  # the label header whole in every part
    assert "13.1" in out and tree in re.sub(r"[\s│┃]", "", out)  # folded, not cut
