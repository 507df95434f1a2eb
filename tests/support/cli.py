"""Running the CLI in-process in tests, and editing a results file's rows as qnjax writes them."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from qnjax._results_file import decode_row, encode_row
from qnjax.cli import app


def stderr_of(res) -> str:
    """The error stream of a ``CliRunner`` result (its whole output where the runner mixed them)."""
    try:
        return res.stderr
    except ValueError:  # stderr mixed into output
        return res.output


def run_cli(args):
    """``(result, stderr)`` of ``qnjax ARGS`` (each argument as text; an exception propagates)."""
    res = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return res, stderr_of(res)


def edit_row(data: bytes, line: int, **fields) -> bytes:
    """Results-file bytes ``data`` with fields of row ``line`` (1-based) replaced, encoded as the
    writer does (a non-finite value is ``null`` with its text under ``"nonfinite"``)."""
    lines = data.decode().splitlines(keepends=True)
    row = decode_row(json.loads(lines[line - 1]))
    row.update(fields)
    lines[line - 1] = encode_row(row) + "\n"
    return "".join(lines).encode()


def forbid_sweep_work(monkeypatch) -> None:
    """Any distance-sweep optimization from here on fails the test (a refusal must come first)."""
    import qnjax.design.api as api

    def boom(*a, **k):
        raise AssertionError("computed before the results file was checked")

    monkeypatch.setattr(api, "_sweep_batch", boom)
