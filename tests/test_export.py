"""CSV export with provenance: exact round trips, refusals that leave files untouched."""

import json
import math

import pytest
from hypothesis import given, settings, strategies as st

from qnjax import export
from qnjax._provenance import provenance, scenario_hash

ROWS = [
    {"distance_km": 50.0, "segments": 2, "skr_bits_per_s": 1.2345678901234567e-3,
     "protocol": "swap,distill", "cutoff_s": [0.001, 0.25], "ok": True, "reason": None},
    {"distance_km": 75.5, "segments": 1, "skr_bits_per_s": 0.0, "protocol": "link",
     "cutoff_s": [], "ok": False, "reason": "no key"},
]


def test_round_trip_and_provenance(tmp_path):
    prov = provenance(seed=3, settings={"starts": 4, "steps": 60}, scenario={"b": 1, "a": [1, 2]},
                      argv=["/some/where/bin/qnjax", "sweep", "x.toml"])
    p = export.write_csv(tmp_path / "rows.csv", ROWS, prov)
    rows, back = export.read_csv(p)
    assert rows == ROWS
    assert back == json.loads(json.dumps(prov))
    assert back["command"] == "qnjax sweep x.toml"
    assert back["scenario_sha256"] == scenario_hash({"a": [1, 2], "b": 1})
    for key in ("qnjax", "jax", "jaxlib", "python", "created_utc", "seed", "settings"):
        assert back[key] is not None
    assert [f.name for f in tmp_path.iterdir()] == ["rows.csv"]  # no temporary left behind


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=5))
def test_floats_round_trip_exactly(tmp_path_factory, xs):
    p = tmp_path_factory.mktemp("csv") / "f.csv"
    rows = [{"x": x} for x in xs]
    back, _ = export.read_csv(export.write_csv(p, rows))
    assert [r["x"] for r in back] == [float(x) if isinstance(x, float) else x for x in xs]


def test_overwrites_own_file_only(tmp_path):
    p = tmp_path / "rows.csv"
    export.write_csv(p, ROWS[:1])
    export.write_csv(p, ROWS)  # a qnjax CSV file may be replaced
    assert len(export.read_csv(p)[0]) == 2
    for content in (b"my notes\n", b"\x00\xff\xfe binary", b""):
        foreign = tmp_path / "notes.csv"
        foreign.write_bytes(content)
        with pytest.raises(ValueError, match="not a qnjax CSV file"):
            export.write_csv(foreign, ROWS)
        assert foreign.read_bytes() == content


def test_refusals(tmp_path):
    with pytest.raises(ValueError, match="is a directory"):
        export.write_csv(tmp_path, ROWS)
    with pytest.raises(ValueError, match="does not exist"):
        export.write_csv(tmp_path / "missing" / "rows.csv", ROWS)
    with pytest.raises(ValueError, match="non-finite"):
        export.write_csv(tmp_path / "nan.csv", [{"x": math.nan}])
    assert not (tmp_path / "nan.csv").exists()
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a qnjax CSV file"):
        export.read_csv(tmp_path / "bad.csv")


def test_scenario_hash_ignores_key_order():
    assert scenario_hash({"a": 1, "b": {"c": 2, "d": 3}}) == scenario_hash({"b": {"d": 3, "c": 2}, "a": 1})
    assert scenario_hash({"a": 1}) != scenario_hash({"a": 2})
