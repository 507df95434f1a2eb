"""A resumed results file is checked by the library itself: a row whose figures are not
finite or not physical (the file was edited or is corrupt) is refused with a ``ValueError``
naming the file and the line, before the file is touched and before any computation; a
lossless fibre's +inf PLOB / TGW is a real bound and resumes. A missing folder is refused,
not created."""

from __future__ import annotations

import json

import pytest
from support.cli import edit_row, forbid_sweep_work
from support.scenario_files import tiny_chain_toml

import qnjax
from qnjax._results_file import ResultsWriter, first_unphysical
from qnjax.design import load_scenario
from qnjax.distributed import sweep_designs

TINY = tiny_chain_toml(1, starts=1, steps=2, t_trunc=256)
LOSSLESS = TINY.replace("attenuation_db_per_km = 0.2", "attenuation_db_per_km = 0")
DS = [40.0, 80.0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One real small sweep per fibre (group 1), written by the library: the files to edit."""
    d = tmp_path_factory.mktemp("resume")
    (d / "tiny.toml").write_text(TINY)
    (d / "lossless.toml").write_text(LOSSLESS)
    lossy, lossless = load_scenario(d / "tiny.toml"), load_scenario(d / "lossless.toml")
    ref = qnjax.sweep(lossy, DS, out=d / "lossy.jsonl", group=1)
    ref0 = qnjax.sweep(lossless, DS, out=d / "lossless.jsonl", group=1)
    return dict(lossy=lossy, lossless=lossless, data=(d / "lossy.jsonl").read_bytes(),
                data0=(d / "lossless.jsonl").read_bytes(), ref=dict(ref), ref0=dict(ref0))


@pytest.fixture
def no_work(monkeypatch):
    forbid_sweep_work(monkeypatch)


edit = edit_row


def test_a_clean_file_resumes_without_work(files, tmp_path, no_work):
    p = tmp_path / "r.jsonl"
    p.write_bytes(files["data"])
    got = qnjax.sweep(files["lossy"], DS, out=p, group=1)
    assert got["skr_bits_per_s"] == files["ref"]["skr_bits_per_s"]
    assert p.read_bytes() == files["data"]


BAD = [
    (2, dict(skr_bits_per_s=float("nan")), "skr_bits_per_s is nan"),
    (2, dict(skr_bits_per_s=-1.0), "skr_bits_per_s = -1 lies outside its physical range"),
    (1, dict(skr_per_channel_use=-0.5), "skr_per_channel_use = -0.5 lies outside"),
    (2, dict(coverage=1.5), "coverage = 1.5 lies outside its physical range [0, 1]"),
    (2, dict(mean_fidelity=1.2), "mean_fidelity = 1.2 lies outside its physical range [0, 1]"),
    (2, dict(plob=float("inf")), "plob is inf"),  # a lossy fibre has a finite bound
    (1, dict(tgw=float("-inf")), "tgw is -inf"),
    (2, dict(direct_per_channel_use=None), "direct_per_channel_use is nan"),  # a bare null
    (2, dict(positions_km=[0.0, float("nan")]), "positions_km[1] is nan"),
    (1, dict(wall_s=-3.0), "wall_s = -3 lies outside"),
]


@pytest.mark.parametrize("line,fields,what", BAD)
def test_an_edited_row_is_refused_naming_the_line(files, tmp_path, no_work, line, fields, what):
    p = tmp_path / "r.jsonl"
    before = edit(files["data"], line, **fields) + b'{"scenario": "tiny ch'  # and a torn tail
    p.write_bytes(before)
    with pytest.raises(ValueError) as exc:
        qnjax.sweep(files["lossy"], DS, out=p, group=1)
    msg = str(exc.value)
    assert msg.startswith(f"out: {str(p)!r} line {line} (distance_km={DS[line - 1]!r}): {what}"), msg
    assert msg.endswith("the results file was edited or is corrupt; repair or remove that line, or use a "
                        "new file")
    assert "\n" not in msg
    assert p.read_bytes() == before  # nothing cut, nothing appended


def test_a_corrupt_row_the_sweep_would_not_reuse_is_refused_too(files, tmp_path, no_work):
    p = tmp_path / "r.jsonl"
    p.write_bytes(edit(files["data"], 2, skr_bits_per_s=float("nan")))
    with pytest.raises(ValueError, match="line 2 .*skr_bits_per_s is nan"):
        qnjax.sweep(files["lossy"], [40.0, 60.0], out=p, group=1)  # 80 km is not swept now


def test_resume_false_replaces_a_corrupt_file(files, tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_bytes(edit(files["data"], 2, skr_bits_per_s=float("nan")))
    got = qnjax.sweep(files["lossy"], [40.0], out=p, group=1, resume=False)
    assert got["skr_bits_per_s"] == files["ref"]["skr_bits_per_s"][:1]
    assert [json.loads(x)["distance_km"] for x in p.read_text().splitlines()] == [40.0]


def test_a_lossless_fibre_resumes_its_infinite_bounds(files, tmp_path, no_work):
    assert b'"nonfinite": {"plob": "inf", "tgw": "inf"}' in files["data0"]
    p = tmp_path / "r.jsonl"
    p.write_bytes(files["data0"])
    got = qnjax.sweep(files["lossless"], DS, out=p, group=1)
    assert got["plob"] == got["tgw"] == [float("inf")] * 2
    assert got["skr_bits_per_s"] == files["ref0"]["skr_bits_per_s"]
    assert p.read_bytes() == files["data0"]
    # still refused when another figure of such a row is edited
    p.write_bytes(edit(files["data0"], 1, coverage=-0.1))
    with pytest.raises(ValueError, match="line 1 .*coverage = -0.1"):
        qnjax.sweep(files["lossless"], DS, out=p, group=1)


def test_a_lossless_file_given_to_a_lossy_scenario_is_another_run(files, tmp_path, no_work):
    """Its +inf bounds are not blamed on corruption: the rows are of another scenario."""
    p = tmp_path / "r.jsonl"
    p.write_bytes(files["data0"])
    with pytest.raises(ValueError, match="line 1 .*fingerprint=.*use a new file or resume=False"):
        qnjax.sweep(files["lossy"], DS, out=p, group=1)
    assert p.read_bytes() == files["data0"]


def test_a_corrupt_row_is_named_even_in_a_file_of_another_run(files, tmp_path, no_work):
    p = tmp_path / "r.jsonl"
    p.write_bytes(edit(files["data"], 2, skr_bits_per_s=float("nan")))
    with pytest.raises(ValueError, match="line 2 .*skr_bits_per_s is nan.*edited or is corrupt"):
        qnjax.sweep(files["lossy"], DS, out=p, group=1, seed=7)  # other settings


def test_the_writer_checks_figures_only_when_asked(tmp_path):
    """Design sweeps write NaN figures on purpose (under-truncated designs): the check is the
    caller's choice (``unphysical=``); without it such rows resume as before."""
    p = tmp_path / "w.jsonl"
    with ResultsWriter(p, resume=False) as w:
        w.write([{"index": 0, "mean_fidelity": 0.9}, {"index": 1, "mean_fidelity": 1.2},
                 {"index": 2, "mean_time": float("nan")}])
    before = p.read_bytes()
    with ResultsWriter(p) as w:
        assert sorted(w.rows) == [0, 1, 2]
    with pytest.raises(ValueError, match=r"line 2 \(index=1\): mean_fidelity = 1.2 lies outside"):
        ResultsWriter(p, unphysical=first_unphysical)
    assert p.read_bytes() == before


def test_a_missing_folder_is_refused_not_created(files, tmp_path, no_work):
    missing = tmp_path / "nodir" / "deeper"
    for call in (lambda p: qnjax.sweep(files["lossy"], DS, out=p, group=1),
                 lambda p: ResultsWriter(p),
                 lambda p: sweep_designs("swap", {"p_gen": [0.1, 0.2]}, fixed={"w0": 0.9}, t_trunc=64, out=p)):
        with pytest.raises(ValueError) as exc:
            call(missing / "r.jsonl")
        assert str(exc.value) == f"out: folder {str(missing)!r} does not exist; create it first"
        assert not (tmp_path / "nodir").exists()


def test_a_bare_file_name_writes_in_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with ResultsWriter("x.jsonl") as w:
        w.write([{"index": 0, "x": 1.0}])
    assert (tmp_path / "x.jsonl").read_text() == '{"index": 0, "x": 1.0}\n'
