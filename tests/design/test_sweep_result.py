"""``qnjax.sweep`` returns a ``SweepResult``: the dict of per-distance lists it always returned
(JSON as before), with the same numbers as typed rows."""

import json

import qnjax as q
from qnjax.export import to_rows


def test_sweep_returns_typed_rows_equal_to_its_columns():
    scen = q.PhysicalScenario(
        distance_km=100.0,
        heralding=q.Heralding(scheme="double_click", efficiency=0.8, visibility=0.98, prep_time_s=1e-6),
        repeater=q.Station(memory=q.Memory(t_coh_s=0.1), swap_success=1.0, gate_depolarizing=0.005,
                           measurement_error=0.002),
        search=q.Search(segments=(1, 2), starts=2, steps=10, t_trunc=1024))
    s = q.sweep(scen, [25.0, 150.0])
    assert isinstance(s, q.SweepResult) and isinstance(s, dict)
    rows = s.rows()
    assert len(rows) == 2 and all(isinstance(r, q.SweepRow) for r in rows)
    for i, r in enumerate(rows):
        for k in ("distance_km", "segments", "protocol", "skr_bits_per_s", "plob", "cutoff", "reason"):
            assert getattr(r, k) == s[k][i], k
    assert rows[1].skr_bits_per_s > 0 and rows[0].distance_km == 25.0
    assert json.loads(json.dumps(s))["distance_km"] == [25.0, 150.0]  # still a plain dict for JSON
    assert [t["skr_bits_per_s"] for t in to_rows(s)] == [r.skr_bits_per_s for r in rows]
    assert s.wall_s == s["wall_s"] > 0
