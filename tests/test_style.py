"""The house style: engineering notation, figures in every format, safe saving."""

import math

import pytest

from qnjax import _style


@pytest.mark.parametrize("x, unit, text", [
    (0.0029, "bits/s", "2.90e-3 bits/s"), (29.6, "", "29.6"), (12345, "", "12.3e3"),
    (999.7, "", "1.00e3"), (0.0, "km", "0 km"), (-4.2e-7, "", "-420e-9"), (1.0, "", "1.00"),
    (math.nan, "", "n/a"), (None, "bits/s", "n/a"), ("x", "", "n/a"), (math.inf, "s", "inf s"),
])
def test_eng(x, unit, text):
    assert _style.eng(x, unit) == text


@pytest.mark.parametrize("ext, magic", [(".png", b"\x89PNG"), (".pdf", b"%PDF"), (".svg", b"<?xml")])
def test_save_each_format_and_overwrite_own(tmp_path, ext, magic):
    for _ in range(2):  # the second save replaces the first (an image of the same format)
        fig, (ax,) = _style.figure()
        ax.plot([0, 1], [1, 0], label="a")
        _style.caption(fig, ["midpoint double-click, 300 km", ""])
        p = _style.save(fig, tmp_path / f"f{ext}")
        assert p.read_bytes().lstrip().startswith(magic)
    assert sorted(f.name for f in tmp_path.iterdir()) == [f"f{ext}"]


def test_save_refuses(tmp_path):
    fig, _ = _style.figure()
    notes = tmp_path / "notes.png"
    notes.write_bytes(b"my notes")
    for bad, msg in [(tmp_path / "f.txt", "no known image extension"), (notes, "not a PNG image"),
                     (tmp_path / "nope" / "f.png", "does not exist")]:
        with pytest.raises(ValueError, match=msg):
            _style.save(fig, bad)
    d = tmp_path / "d.png"
    d.mkdir()
    with pytest.raises(ValueError, match="is a directory"):
        _style.check_path(d)
    assert notes.read_bytes() == b"my notes"
