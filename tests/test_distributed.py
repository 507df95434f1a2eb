"""Sharded design sweeps (qnjax.distributed): several CPU devices in one process, two
processes forming one distributed run, and an interrupted sweep that resumes.

The test process has already initialised JAX with one CPU device, so multi-device and
multi-process runs go through subprocesses (tests/support/sweep_worker.py).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import qnjax
from qnjax._results_file import decode_row
from qnjax.distributed import ResultsWriter, design_grid, run_in_groups, sweep_designs

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "support", "sweep_worker.py")
from support import sweep_worker as W  # noqa: E402
from support.scenario_files import tiny_chain_toml  # noqa: E402

OUTS = ("coverage", "mean_time", "mean_werner", "mean_fidelity", "mean_state", "key_fraction",
        "secret_key_rate", "success_probability")


@pytest.fixture(scope="module")
def reference():
    """The unsharded call on the whole grid."""
    r = qnjax.delivery("swap,swap,swap", **W.designs(), **W.FIXED, t_trunc=W.T_TRUNC, warn=False)
    return {k: np.asarray(getattr(r, k)) for k in OUTS}


def _same(res, ref, idx=None):
    """Equal to the unsharded call: bitwise in practice; XLA may fuse an element-wise tail
    differently for another block size, so allow a few ulp."""
    for k in OUTS:
        want = ref[k] if idx is None else ref[k][idx]
        np.testing.assert_allclose(res[k], want, rtol=1e-13, atol=1e-16, err_msg=k)


def _env(devices=1, **extra):
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.path.dirname(HERE) + os.pathsep + env.get("PYTHONPATH", "")
    for k in ("QNJAX_COORDINATOR", "QNJAX_NUM_PROCESSES", "QNJAX_PROCESS_ID"):
        env.pop(k, None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _run(args, env, timeout=150):
    p = subprocess.run([sys.executable, WORKER, *args], env=env, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stderr[-3000:]
    return p.stdout


def _load(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _rows(path):
    with open(path) as fh:
        return [decode_row(json.loads(line)) for line in fh]


# ------------------------------------------------------------------------- in process


def test_design_grid_order_and_shapes():
    g = design_grid(p_gen=[0.1, 0.2], t_coh=[10.0, 20.0, 30.0], cutoff=[[1, 2], [3, 4]])
    assert g["p_gen"].shape == (12,) and g["cutoff"].shape == (12, 2)
    assert g["p_gen"].tolist() == [0.1] * 6 + [0.2] * 6  # first axis slowest
    assert g["t_coh"][:2].tolist() == [10.0, 10.0] and g["cutoff"][1].tolist() == [3, 4]
    with pytest.raises(ValueError, match="p_gen"):
        design_grid(p_gen=[])


def test_single_device_matches_unsharded(reference, tmp_path):
    res = sweep_designs("swap,swap,swap", W.designs(), fixed=W.FIXED, t_trunc=W.T_TRUNC,
                        per_device=7, out=tmp_path / "a.jsonl")
    assert res["index"].tolist() == list(range(30))
    _same(res, reference)
    rows = _rows(tmp_path / "a.jsonl")
    assert [r["index"] for r in rows] == list(range(30))
    assert rows[3]["protocol"] == "swap,swap,swap" and rows[3]["t_trunc"] == W.T_TRUNC
    assert rows[3]["p_gen"] == float(W.designs()["p_gen"][3]) and rows[3]["w0"] == 0.97
    assert rows[29]["cutoff"] == [float("inf")] * 3  # written as null, kept under "nonfinite"
    raw = json.loads((tmp_path / "a.jsonl").read_text().splitlines()[29])
    assert raw["cutoff"] == [None] * 3 and raw["nonfinite"]["cutoff"] == ["inf"] * 3
    # JSON round-trips exactly (design 15: designs 0-9, p_gen 0.1, are under-truncated at
    # t_trunc 512 and NaN by the engine's coverage rule)
    assert rows[15]["mean_time"] == float(res["mean_time"][15])


def test_resume_after_limit_and_torn_line(reference, tmp_path):
    full, part = tmp_path / "full.jsonl", tmp_path / "part.jsonl"
    kw = dict(fixed=W.FIXED, t_trunc=W.T_TRUNC, per_device=4)
    sweep_designs("swap,swap,swap", W.designs(), out=full, **kw)
    r1 = sweep_designs("swap,swap,swap", W.designs(), out=part, limit=11, **kw)
    assert r1["index"].tolist() == list(range(11))
    with open(part, "a") as fh:  # a write cut off by a kill
        fh.write('{"index": 11, "protocol": "swap,sw')
    r2 = sweep_designs("swap,swap,swap", W.designs(), out=part, **kw)
    assert r2["index"].tolist() == list(range(30))
    _same(r2, reference)
    assert part.read_bytes() == full.read_bytes()
    # a file from another sweep is refused, not mixed in
    with pytest.raises(ValueError, match="p_swap"):
        sweep_designs("swap,swap,swap", W.designs(), out=part, fixed=dict(W.FIXED, p_swap=0.6),
                      t_trunc=W.T_TRUNC)
    # resume=False starts afresh
    r3 = sweep_designs("swap,swap,swap", W.designs(), out=part, resume=False, limit=3, **kw)
    assert len(_rows(part)) == 3 and r3["index"].tolist() == [0, 1, 2]


def test_input_errors():
    g = W.designs()
    with pytest.raises(ValueError, match="unknown delivery parameter 'p_gem'"):
        sweep_designs("swap", {"p_gem": [0.1]}, fixed={"w0": 0.9})
    with pytest.raises(ValueError, match="leading design axis"):
        sweep_designs("swap", {"p_gen": [0.1, 0.2], "t_coh": [1.0, 2.0, 3.0]}, fixed={"w0": 0.9})
    with pytest.raises(ValueError, match="p_gen"):
        sweep_designs("swap", {"p_gen": [0.1, 1.5]}, fixed={"w0": 0.9})
    with pytest.raises(ValueError, match="cutoff"):
        sweep_designs("swap,swap,swap", {"p_gen": g["p_gen"], "cutoff": g["cutoff"][:, :2]}, fixed={"w0": 0.9})
    with pytest.raises(ValueError, match="t_trunc"):
        sweep_designs("swap", {"p_gen": [0.1]}, fixed={"w0": 0.9}, t_trunc="auto")


def test_initialize_arguments(monkeypatch):
    from qnjax.distributed import initialize

    for k in ("QNJAX_COORDINATOR", "QNJAX_NUM_PROCESSES", "QNJAX_PROCESS_ID", "SLURM_STEP_NUM_TASKS",
              "OMPI_COMM_WORLD_SIZE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("SLURM_NTASKS", "4")  # an allocation, not an srun step: no multi-process run
    assert initialize() is False
    with pytest.raises(ValueError, match="process_id"):
        initialize("localhost:1", 2)
    with pytest.raises(ValueError, match=r"process_id must lie in \[0, 1\]"):
        initialize("localhost:1", 2, 5)
    monkeypatch.setenv("QNJAX_NUM_PROCESSES", "0")
    with pytest.raises(ValueError, match="num_processes"):
        initialize()


def test_writer_cuts_only_a_torn_tail(tmp_path):
    p = tmp_path / "w.jsonl"
    with ResultsWriter(p, resume=False) as w:
        w.write([{"index": 0, "x": 1.5}, {"index": 1, "x": float("inf")}])
    good = p.read_bytes()
    p.write_bytes(good + b'{"index": 2, "x": 0.')  # a write cut off by a kill
    w = ResultsWriter(p)
    assert sorted(w.rows) == [0, 1] and w.rows[1]["x"] == float("inf")
    w.close()
    assert p.read_bytes() == good


def test_rows_are_strict_json_and_round_trip_non_finite_values(tmp_path):
    p = tmp_path / "w.jsonl"
    row = {"index": 0, "mean_time": float("inf"), "mean_state": [0.5, float("nan"), 0.5, 0.0], "x": 1.0}
    with ResultsWriter(p) as w:
        w.write([row])

    def strict(name):
        raise ValueError(name)

    line = json.loads(p.read_text(), parse_constant=strict)
    assert line["mean_time"] is None and line["nonfinite"]["mean_time"] == "inf"
    back = ResultsWriter(p).rows[0]
    assert back["mean_time"] == float("inf") and np.isnan(back["mean_state"][1]) and "nonfinite" not in back
    assert back["x"] == 1.0


@pytest.mark.parametrize("content,needle", [
    (b"# my notes\nkeep me\n", "not a qnjax results file"),
    (b"# my notes, no newline", "not a qnjax results file"),
    (b'{"foo": 1}\n', "no 'index' field"),
    (b'{"foo": 1}', "not a qnjax results file"),
    (b"\x89PNG\r\n\x1a\n\0\0\0", "binary"),
    (b"\xff\xfe\n", "UTF-8"),
    (b'{"index": 0, "x": 1}\nnot json\n{"index": 2, "x": 3}\n', "line 2 is corrupt"),
    (b'{"index": 0, "x": 1}\n{"index": 1, "x"\n', "line 2 is corrupt"),
])
@pytest.mark.parametrize("resume", [True, False])
def test_writer_refuses_foreign_or_corrupt_files(tmp_path, content, needle, resume):
    p = tmp_path / "notes.md"
    p.write_bytes(content)
    with pytest.raises(ValueError, match=needle):
        ResultsWriter(p, resume=resume)
    assert p.read_bytes() == content


def test_writer_refuses_a_directory_and_other_runs(tmp_path):
    with pytest.raises(ValueError, match="is a directory"):
        ResultsWriter(tmp_path)
    p = tmp_path / "r.jsonl"
    with ResultsWriter(p, key="d", head={"run": "a"}) as w:
        w.write([{"run": "a", "d": 1.0}])
    before = p.read_bytes()
    with pytest.raises(ValueError, match="run='a', this run has 'b'"):
        ResultsWriter(p, key="d", head={"run": "b"})
    p.write_bytes(before + b'{"ru')  # torn, and refused: the head is checked before the cut
    with pytest.raises(ValueError, match="run"):
        ResultsWriter(p, key="d", head={"run": "b"})
    assert p.read_bytes() == before + b'{"ru'
    with ResultsWriter(p, key="d", head={"run": "a"}) as w:
        assert list(w.rows) == [1.0]
    assert p.read_bytes() == before


def test_sweep_designs_refuses_foreign_out_before_any_work(tmp_path):
    p = tmp_path / "notes.md"
    p.write_text("results of last week\n")
    with pytest.raises(ValueError, match="not a qnjax results file"):
        sweep_designs("swap", {"p_gen": [0.1, 0.2]}, fixed={"w0": 0.9}, t_trunc=64, out=p)
    assert p.read_text() == "results of last week\n"


# ------------------------------------------------------------------------- subprocesses


def test_four_devices_one_process(reference, tmp_path):
    out, npz = tmp_path / "s.jsonl", tmp_path / "r.npz"
    text = _run(["--out", str(out), "--result", str(npz), "--per-device", "3", "--expect-devices", "4"],
                _env(devices=4))
    assert "done 0 1 4 30" in text
    res = _load(npz)
    assert res["index"].tolist() == list(range(30))
    _same(res, reference)
    assert [r["index"] for r in _rows(out)] == list(range(30))


def _free_port():
    s = socket.socket()
    s.bind(("localhost", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_two_processes_one_run(reference, tmp_path):
    out, npz = tmp_path / "s.jsonl", tmp_path / "r.npz"
    coord = f"localhost:{_free_port()}"
    procs = []
    for pid in (0, 1):
        env = _env(devices=2, QNJAX_COORDINATOR=coord, QNJAX_NUM_PROCESSES=2, QNJAX_PROCESS_ID=pid)
        args = ["--per-device", "2", "--expect-devices", "4", "--limit", "23"]
        if pid == 0:
            args += ["--out", str(out), "--result", str(npz)]
        procs.append(subprocess.Popen([sys.executable, WORKER, *args], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outs = []
    for p in procs:
        try:
            so, se = p.communicate(timeout=150)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        assert p.returncode == 0, se[-3000:]
        outs.append(so)
    assert "done 0 2 4 23" in outs[0] and "done 1 2 4 None" in outs[1]
    res = _load(npz)
    assert res["index"].tolist() == list(range(23))
    _same(res, reference, slice(0, 23))
    assert [r["index"] for r in _rows(out)] == list(range(23))


def test_killed_sweep_resumes(reference, tmp_path):
    """SIGKILL a sweep after its first rows; the restart completes the file, which then equals
    an uninterrupted run's."""
    full, part, npz = tmp_path / "full.jsonl", tmp_path / "part.jsonl", tmp_path / "r.npz"
    sweep_designs("swap,swap,swap", W.designs(), fixed=W.FIXED, t_trunc=W.T_TRUNC, out=full, per_device=2)
    env = _env(devices=1)
    p = subprocess.Popen([sys.executable, WORKER, "--out", str(part), "--per-device", "2"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while time.time() - t0 < 120 and p.poll() is None:
        if part.exists() and part.read_bytes().count(b"\n") >= 4:
            break
        time.sleep(0.02)
    if p.poll() is None:
        p.send_signal(signal.SIGKILL)
    p.wait()
    n_before = part.read_bytes().count(b"\n")
    assert n_before >= 4
    _run(["--out", str(part), "--result", str(npz), "--per-device", "2"], env)
    res = _load(npz)
    assert res["index"].tolist() == list(range(30))
    _same(res, reference)
    assert part.read_bytes() == full.read_bytes()


# ------------------------------------------------------------------------- grouped runs (optimizer sweeps)


def test_run_in_groups_resumes_whole_groups(tmp_path):
    out = tmp_path / "g.jsonl"
    calls = []

    def compute(g):
        calls.append(list(g))
        return W.toy_rows(g)

    full = run_in_groups(W.ITEMS, compute, key="d", group=3, head={"run": "toy"})
    assert [r["d"] for r in full] == W.ITEMS and full[4]["group_sum"] == sum(W.ITEMS[3:6])
    calls.clear()
    part = run_in_groups(W.ITEMS[:7], compute, key="d", group=3, out=out, head={"run": "toy"})
    assert len(part) == 7
    # restart over all items: groups 0 and 1 are complete in the file, group 2 (items 6..8) is
    # not, so it is recomputed whole (its rows depend on the group)
    calls.clear()
    rows = run_in_groups(W.ITEMS, compute, key="d", group=3, out=out, head={"run": "toy"})
    assert calls == [W.ITEMS[6:9], W.ITEMS[9:]]
    assert [r["d"] for r in rows] == W.ITEMS
    assert rows == full or all(a[k] == b[k] for a, b in zip(rows, full) for k in ("d", "sq"))
    with pytest.raises(ValueError, match="run"):
        run_in_groups(W.ITEMS, compute, key="d", group=3, out=out, head={"run": "other"})


def test_run_in_groups_local_devices(tmp_path):
    """Four CPU devices in one process: one group per device at a time, rows in group order."""
    out = tmp_path / "g.jsonl"
    text = _run(["--groups", "--out", str(out), "--expect-devices", "4"], _env(devices=4))
    assert "done 0 11" in text
    rows = _rows(out)
    assert [r["d"] for r in rows] == W.ITEMS
    assert {r["dev"] for r in rows} == {0, 1, 2, 3}


def test_run_in_groups_two_processes(tmp_path):
    out = tmp_path / "g.jsonl"
    coord = f"localhost:{_free_port()}"
    procs = []
    for pid in (0, 1):
        env = _env(devices=1, QNJAX_COORDINATOR=coord, QNJAX_NUM_PROCESSES=2, QNJAX_PROCESS_ID=pid)
        procs.append(subprocess.Popen([sys.executable, WORKER, "--groups", "--out", str(out)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (so, se) in zip(procs, outs):
        assert p.returncode == 0, se[-3000:]
    assert "done 0 11" in outs[0][0] and "done 1 None" in outs[1][0]
    rows = _rows(out)
    assert sorted(r["d"] for r in rows) == W.ITEMS
    assert {r["by"] for r in rows} == {0, 1}  # both processes computed groups
    assert [r["d"] for r in rows] == W.ITEMS  # written in group order
    for r in rows:
        g = int(W.ITEMS.index(r["d"]) // 3)
        assert r["group_sum"] == sum(W.ITEMS[3 * g:3 * g + 3]) and r["run"] == "toy"


# ------------------------------------------------------------------------- qnjax sweep --out / multi-host

TINY = tiny_chain_toml(2, starts=2, steps=10, t_trunc=512)


def _cli(args):
    """``qnjax ARGS`` in this process (compiled optimizer code is reused between calls)."""
    from typer.testing import CliRunner

    from qnjax.cli import app

    return CliRunner().invoke(app, args)


def test_cli_sweep_out_resumes(tmp_path):
    scen = tmp_path / "tiny.toml"
    scen.write_text(TINY)
    out = tmp_path / "sweep.jsonl"
    base = ["sweep", str(scen), "--json", "--seed", "1", "--out", str(out), "--group", "1"]
    r = _cli(base + ["--distances", "40,80"])
    assert r.exit_code == 0, r.output
    first = json.loads(r.stdout)
    assert [r["distance_km"] for r in _rows(out)] == [40.0, 80.0]
    # an interrupted sweep of 40,60,80 that had done 40 and 80: only 60 is computed now
    r = _cli(base + ["--distances", "40,60,80"])
    assert r.exit_code == 0, r.output
    full = json.loads(r.stdout)
    assert [r["distance_km"] for r in _rows(out)] == [40.0, 80.0, 60.0]
    assert full["distance_km"] == [40.0, 60.0, 80.0]
    assert full["skr_bits_per_s"][0] == first["skr_bits_per_s"][0]
    assert full["skr_bits_per_s"][2] == first["skr_bits_per_s"][1]
    for k in ("segments", "protocol", "skr_per_channel_use", "plob", "tgw", "direct_per_channel_use",
              "positions_km", "cutoff", "coverage", "structures", "wall_s"):
        assert k in full
    # the same file with other settings is refused (exit 2, naming the differing settings)
    r = _cli(["sweep", str(scen), "--json", "--seed", "2", "--out", str(out), "--group", "1", "--distances", "40"])
    assert r.exit_code == 2 and "seed" in r.output


def test_cli_sweep_two_processes(tmp_path):
    scen = tmp_path / "tiny.toml"
    scen.write_text(TINY)
    out = tmp_path / "sweep.jsonl"
    coord = f"localhost:{_free_port()}"
    procs = []
    for pid in (0, 1):
        args = ["-m", "qnjax", "sweep", str(scen), "--json", "--distances", "40,80", "--group", "1", "--out",
                str(out), "--coordinator", coord, "--num-processes", "2", "--process-id", str(pid)]
        procs.append(subprocess.Popen([sys.executable, *args], env=_env(devices=1), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    res = [p.communicate(timeout=300) for p in procs]
    for p, (so, se) in zip(procs, res):
        assert p.returncode == 0, se[-3000:]
    js = lambda text: [line for line in text.splitlines() if line.startswith("{")]  # gloo logs on stdout
    data = json.loads(js(res[0][0])[-1])
    assert data["distance_km"] == [40.0, 80.0] and js(res[1][0]) == []
    assert sorted(r["distance_km"] for r in _rows(out)) == [40.0, 80.0]
