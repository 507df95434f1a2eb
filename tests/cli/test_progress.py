"""Progress lines: on stderr-like streams only, with elapsed and remaining time."""

import io

from qnjax._progress import Progress, format_seconds


def test_format_seconds():
    assert format_seconds(4.2) == "4 s"
    assert format_seconds(185) == "3 min 05 s"
    assert format_seconds(3720) == "1 h 02 min"


def test_plain_lines_per_stage_and_rate_limited():
    out = io.StringIO()
    with Progress(True, "optimizing 1 seg", 4, stream=out, interval=3600) as p:
        p.advance()            # rate-limited: no line
        p.advance(description="optimizing 2 seg")  # a new stage: one line
        p.advance(2)
    lines = out.getvalue().splitlines()
    assert lines[0] == "qnjax: optimizing 1 seg: 0/4 (0 s elapsed)"
    assert lines[1].startswith("qnjax: optimizing 2 seg: 2/4 (") and "left)" in lines[1]
    assert lines[2].startswith("qnjax: optimizing 2 seg: 4/4 (")  # the closing line
    assert len(lines) == 3


def test_update_from_callback_and_disabled():
    out = io.StringIO()
    p = Progress(True, "simulate", 10, stream=out, interval=0)
    p.update(5, total=20)
    p.close()
    assert "5/20" in out.getvalue()
    quiet = io.StringIO()
    with Progress(False, "x", 3, stream=quiet) as p:
        p.advance(3)
    assert quiet.getvalue() == ""


def test_terminal_bar_is_transient():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    with Progress(True, "sweep", 3, stream=out) as p:
        p.advance(3)
    assert "qnjax:" not in out.getvalue()  # the bar, not plain lines
