"""CLI fuzz: malformed lists, huge / tiny / non-finite numbers, wrong types, foreign output
files, directories, binary and empty files, for every command.

Each input must end in one of two ways: a clean error (exit 2, a message naming the option,
no traceback, every file left byte-identical) or exit 0 with strict JSON whose figures are
finite and physical. Engine-heavy inputs are few and tiny (t_trunc 64, 64 samples); the
rest are refused before anything is compiled.

``python tests/cli/test_cli_fuzz.py`` prints the counts recorded in ``docs/robustness.md``.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.scenario_files import tiny_chain_toml

FLOATS = ["nan", "-nan", "inf", "-inf", "-0", "1e308", "-1e308", "1e-320", "-1", "1e400", "abc", "", "0x1p-3",
          "1,2"]
INTS = ["-1", "0", str(2**70), str(2**31), str(2**32), "1e3", "1.5", "nan", "inf", "", "abc", "-0", str(-2**70)]
LISTS = ["1,,2", ",", "", " ", "1,", ",1", "nan", "nan,1", "a,b", "1;2", "swap,,swap", "swap,", ",swap", "swap swap",
         "-1", "1e400"]
SIZES = ["0", "-1GiB", "abc", "nan", "inf", "", "1e400", "1", "12XB"]

TINY = tiny_chain_toml(1, starts=1, steps=2, t_trunc=256)

# files placed in the fuzz folder before every case; refused commands must leave them as they are
FILES = {
    "tiny.toml": TINY.encode(),
    "notes.md": b"# lab notes\n\nkeep this\n",
    "foo.json": b'{"foo": 1}',
    "foo_nl.json": b'{"foo": 1}\n',
    "binary.bin": bytes(range(256)) * 4,
    "fake.png": b"not an image at all\n",
    "empty.jsonl": b"",
    "other_run.jsonl": b'{"scenario": "another", "fingerprint": "0000", "settings": {}, "distance_km": 40.0}\n',
    "corrupt_middle.jsonl": b'{"scenario": "tiny chain", "distance_km": 40.0}\nnot json\n'
                            b'{"scenario": "tiny chain", "distance_km": 80.0}\n',
    "nonutf8.toml": b'name = "x"\ndistance_km = 1\xff\n',
    "bad.toml": b"name = \n",
    "wrongtype.toml": b'distance_km = "abc"\n[memory]\nt_coh_s = 1\n',
    "unknown.toml": b"distance_km = 100\nfoo = 1\n[memory]\nt_coh_s = 1\n",
    "nan.toml": b"distance_km = nan\n[memory]\nt_coh_s = 1\n",
    "huge.toml": b"distance_km = 1e308\n[memory]\nt_coh_s = 1\n",
    "negative.toml": b"distance_km = 100\n[memory]\nt_coh_s = -1\n",
    "table_type.toml": b"distance_km = 100\nheralding = 5\n[memory]\nt_coh_s = 1\n",
    "seed.toml": b"distance_km = 100\n[memory]\nt_coh_s = 1\n[search]\nseed = 99999999999999999999\n",
    "bool.toml": b"distance_km = 100\n[memory]\nt_coh_s = 1\n[search]\nstarts = true\n",
    "empty.toml": b"",
}
DIRS = ("adir", "adir.png", "adir.toml", "adir.jsonl")


@dataclass
class Case:
    args: list
    option: str  # the option (or file) an error must name
    must_fail: bool = False  # known invalid: exit 0 is a failure too
    tag: str = ""
    extra: dict = field(default_factory=dict)


def _cases() -> list[Case]:
    out: list[Case] = []
    ev = ["evaluate", "--protocol", "swap", "--t-trunc", "64", "--json"]
    for opt in ("--p-gen", "--p-swap", "--w0", "--t-coh"):
        out += [Case(ev + [opt, v], opt) for v in FLOATS]
    out += [Case(ev + ["--cutoff", v], "--cutoff") for v in LISTS]
    out += [Case(["evaluate", "--t-trunc", "64", "--json", "--protocol", v], "--protocol") for v in LISTS]
    out += [Case(["evaluate", "--protocol", "swap", "--json", "--t-trunc", v], "--t-trunc") for v in
            INTS + ["1000000000", "auto,", "AUTO "]]
    out += [Case(ev + ["--max-memory", v], "--max-memory", must_fail=True) for v in SIZES if v not in ("1",)]
    out += [Case(ev + ["--max-memory", "1"], "--t-trunc", must_fail=True)]
    out += [Case(["evaluate", "--protocol", ",".join(["swap"] * 25), "--t-trunc", v, "--json"], "--t-trunc",
                 tag="issue") for v in ("64", "auto")]
    out += [Case(["evaluate", "--protocol", "swap,swap", "--p-gen", "1e-4", "--w0", "0.9", "--t-coh", "100",
                  "--cutoff", "5,5", "--t-trunc", "256", "--json"], "--t-trunc", must_fail=True, tag="issue")]

    mc = ["simulate", "--protocol", "swap", "--p-gen", "0.5", "--samples", "64", "--json"]
    for opt in ("--p-gen", "--p-swap", "--w0", "--t-coh"):
        out += [Case(mc + [opt, v], opt) for v in FLOATS]
    out += [Case(mc + ["--cutoff", v], "--cutoff") for v in LISTS]
    for opt in ("--samples", "--seed"):
        out += [Case(mc + [opt, v], opt) for v in INTS if v not in ("0", "-0") or opt == "--samples"]
    out += [Case(["simulate", "--p-gen", "0.5", "--samples", "64", "--json", "--protocol", v], "--protocol")
            for v in LISTS]
    out += [Case(["simulate", "--p-gen", "0.5", "--samples", "64", "--json", "--protocol", ",".join(["swap"] * 12)],
                 "--protocol", must_fail=True)]
    sa = ["simulate", "--policy", "swap-asap", "--p-gen", "0.5", "--samples", "64", "--json"]
    out += [Case(sa + ["--nodes", v], "--nodes") for v in INTS + ["1", "1000000"]]
    out += [Case(["simulate", "--policy", "swap-asap", "--nodes", "1000000", "--p-gen", "0.5"], "--nodes",
                 must_fail=True, tag="issue")]
    out += [Case(["simulate", "--policy", "bogus", "--p-gen", "0.5"], "--policy", must_fail=True)]

    st = ["optimize", "--protocol", "swap", "--p-gen", "0.5", "--t-trunc", "256", "--starts", "1", "--steps", "1",
          "--json"]
    for opt in ("--p-gen", "--p-swap", "--w0", "--t-coh"):
        out += [Case(st + [opt, v], opt) for v in FLOATS if v not in ("-0",)]
    for opt in ("--t-trunc", "--max-distill", "--seed", "--starts", "--steps"):
        out += [Case(st + [opt, v], opt, must_fail=opt != "--seed") for v in INTS if v not in ("0", "-0")]
    out += [Case(["optimize", "--p-gen", "0.5", "--json", "--protocol", v], "--protocol", must_fail=True)
            for v in LISTS if v not in ("-1", "1e400", "nan")]
    out += [Case(["optimize", "--starts", "1000000000", "--json"], "--starts", must_fail=True, tag="issue")]
    for name in FILES:
        if name.endswith(".toml") and name != "tiny.toml":
            out += [Case(["optimize", f"@{name}", "--json"], name, must_fail=True)]
    out += [Case(["optimize", "@adir.toml", "--json"], "adir.toml", must_fail=True),
            Case(["optimize", "@missing.toml", "--json"], "missing.toml", must_fail=True)]
    for target in ("adir", "adir.png", "notes.md", "fake.png", "binary.bin", "nofolder/x.png"):
        out += [Case(st + ["--plot", f"@{target}"], "--plot", must_fail=True)]
        out += [Case(ev + ["--plot", f"@{target}"], "--plot", must_fail=True)]

    sw = ["sweep", "@tiny.toml", "--distances", "40", "--group", "1", "--json"]
    bad_d = LISTS + ["1:1e9:1", "1:1e308:1e-308", "10:5:1", "1:2", "1:2:0", "1:2:-1", "nan:1:1", "1:inf:1", "0",
                     "-5", "1e400", "inf", "1::1", "40,80,nan", "1e-320", "1e308", "20000", "1e-300:1e-299:1e-301"]
    out += [Case(["sweep", "@tiny.toml", "--json", "--distances", v], "--distances", must_fail=True)
            for v in bad_d]
    for opt in ("--seed", "--starts", "--steps", "--group", "--num-processes"):
        out += [Case(sw + [opt, v], opt, must_fail=opt != "--seed") for v in INTS
                if v not in ("0", "-0") or opt != "--seed"]
    out += [Case(sw + ["--max-memory", v], "--max-memory", must_fail=True) for v in SIZES if v != "1"]
    out += [Case(sw + ["--max-memory", "1"], "--max-memory", must_fail=True)]
    out += [Case(sw + ["--coordinator", v, "--num-processes", "2", "--process-id", "0"], "--coordinator",
                 must_fail=True) for v in ("abc", "host:", ":123", "host:99999", "host:-1", "")]
    out += [Case(sw + ["--num-processes", "2", "--process-id", v], "--process-id", must_fail=True)
            for v in ("2", "-1", str(2**70))]
    for target in ("adir", "adir.jsonl", "notes.md", "foo.json", "foo_nl.json", "binary.bin", "other_run.jsonl",
                   "corrupt_middle.jsonl", "tiny.toml"):
        out += [Case(sw + ["--out", f"@{target}"], "--out", must_fail=True)]
    for target in ("adir", "adir.png", "notes.md", "fake.png", "binary.bin", "nofolder/x.png"):
        out += [Case(sw + ["--plot", f"@{target}"], "--plot", must_fail=True)]
    for name in FILES:
        if name.endswith(".toml") and name != "tiny.toml":
            out += [Case(["sweep", f"@{name}", "--distances", "40", "--json"], name, must_fail=True)]
    out += [Case(["sweep", "@adir", "--json"], "adir", must_fail=True)]
    out += [Case(["bogus"], "bogus", must_fail=True), Case(["evaluate", "--bogus"], "--bogus", must_fail=True)]
    # one full sweep into an empty results file (accepted: the rows must be strict JSON)
    out += [Case(sw + ["--out", "@empty.jsonl", "--seed", "1"], "--out", tag="valid")]
    return out


CASES = _cases()

# ----------------------------------------------------------------------------- judging


def _strict_json(text: str):
    def bad(name):
        raise ValueError(f"non-JSON literal {name}")

    return json.loads(text, parse_constant=bad)


_RANGES = [(re.compile(r"fidelity"), 0.0, 1.0), (re.compile(r"werner"), -1 / 3, 1.0),
           (re.compile(r"^(coverage|p_gen|p_swap)$"), 0.0, 1.0), (re.compile(r"^key_fraction"), -math.inf, 1.0),
           (re.compile(r"secret_key_rate|^skr|^plob|^tgw|^direct|mean_time|stderr"), 0.0, math.inf)]


def _unphysical(obj, key="") -> str | None:
    """The first figure that is not finite or outside its physical range (independent of the CLI)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            bad = _unphysical(v, str(k))
            if bad:
                return bad
        return None
    if isinstance(obj, list):
        return next((b for b in (_unphysical(v, key) for v in obj) if b), None)
    figure = any(rx.search(key) for rx, _, _ in _RANGES)
    if figure and (obj is None or isinstance(obj, str) and obj.lower() in ("nan", "inf", "-inf")):
        return f"{key}={obj!r}"  # NaN / infinity smuggled into JSON as null or a string
    if isinstance(obj, bool) or not isinstance(obj, (int, float)):
        return None
    if not math.isfinite(obj):
        return f"{key}={obj}"
    for rx, lo, hi in _RANGES:
        if rx.search(key) and not (lo - 1e-9 <= obj <= hi + 1e-9):
            return f"{key}={obj}"
    return None


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def _prepare(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for name, data in FILES.items():
        (root / name).write_bytes(data)
    for d in DIRS:
        (root / d).mkdir()


def run_case(case: Case, root: Path) -> tuple[str, str]:
    """Run one case in a fresh fuzz folder; return ``(verdict, detail)`` with verdict one of
    ``clean_error``, ``accepted``, ``traceback``, ``wrong_answer`` (garbage printed, a file
    changed, an error not naming the option, a known-bad input accepted)."""
    from typer.testing import CliRunner

    from qnjax.cli import app

    _prepare(root)
    args = [str(root / a[1:]) if isinstance(a, str) and a.startswith("@") else a for a in case.args]
    before = _snapshot(root)
    res = CliRunner().invoke(app, args, catch_exceptions=True)
    after = _snapshot(root)
    try:
        err = res.stderr
    except ValueError:  # stderr mixed into output
        err = res.output
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        return "traceback", f"{type(res.exception).__name__}: {res.exception}"
    if "Traceback" in res.output or "Traceback" in err:
        return "traceback", err[-500:]
    if res.exit_code == 0:
        if case.must_fail:
            return "wrong_answer", "known-bad input accepted: " + res.stdout[-300:]
        lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
        if "--json" in args:
            try:
                data = _strict_json(lines[-1])
            except (IndexError, ValueError) as exc:
                return "wrong_answer", f"stdout is not strict JSON ({exc}): {res.stdout[-300:]}"
            bad = _unphysical(data)
            if bad:
                return "wrong_answer", f"unphysical figure printed: {bad}"
        for name, data in before.items():  # an accepted command may only append to its own --out
            if after.get(name) != data and not (name == "empty.jsonl" and "--out" in args):
                return "wrong_answer", f"{name} changed"
        if "--out" in args:
            for ln in (root / "empty.jsonl").read_text().splitlines():
                try:
                    _unphysical(_strict_json(ln))
                except ValueError as exc:
                    return "wrong_answer", f"results row is not strict JSON: {exc}"
        return "accepted", ""
    if res.exit_code != 2:
        return "wrong_answer", f"exit {res.exit_code}: {err[-300:]}"
    if after != before:
        changed = [k for k in set(before) | set(after) if before.get(k) != after.get(k)]
        return "wrong_answer", f"refused, but changed {changed}"
    flat = re.sub(r"[\s│╭╮╰╯─]+", " ", err)
    if "the result is not trustworthy" in flat and re.search(r"--[a-z]|search\.", flat.split("trustworthy")[1]):
        return "clean_error", "refused result"
    if case.option not in flat and case.option.replace("--", "") not in flat:
        return "wrong_answer", f"error does not name {case.option}: {err.strip()[:300]}"
    if err.startswith("qnjax: error:") and len(err.strip().splitlines()) != 1:
        return "wrong_answer", f"error is not one line: {err[:300]}"
    return "clean_error", ""


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    import jax

    yield tmp_path_factory.mktemp("fuzz") / "case"
    jax.config.update("jax_enable_x64", True)  # the CLI sets precision per call; leave the session's


@pytest.mark.parametrize("case", CASES, ids=[" ".join(c.args[:1] + c.args[-2:])[:60] for c in CASES])
def test_cli_fuzz(case, root):
    verdict, detail = run_case(case, root)
    assert verdict in ("clean_error", "accepted"), f"{verdict}: {detail}"


def counts(verbose: bool = False) -> dict:
    """Run every case once; the counts of each verdict (``docs/robustness.md``)."""
    import tempfile
    import time

    import jax

    jax.config.update("jax_enable_x64", True)
    tally = {"inputs tried": 0, "clean errors": 0, "of which: result refused as unphysical": 0,
             "accepted (strict JSON, physical)": 0, "tracebacks": 0, "silent wrong answers": 0}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        for case in CASES:
            t1 = time.perf_counter()
            verdict, detail = run_case(case, Path(d) / "case")
            if verbose:
                print(f"... {time.perf_counter() - t1:6.2f} s {verdict} {' '.join(case.args)}", flush=True)
            tally["inputs tried"] += 1
            key = {"clean_error": "clean errors", "accepted": "accepted (strict JSON, physical)",
                   "traceback": "tracebacks", "wrong_answer": "silent wrong answers"}[verdict]
            tally[key] += 1
            tally["of which: result refused as unphysical"] += detail == "refused result"
            if verdict not in ("clean_error", "accepted"):
                print(f"{verdict}: {case.args}: {detail}")
    tally["wall_s"] = round(time.perf_counter() - t0, 1)
    return tally


if __name__ == "__main__":
    import sys

    for k, v in counts(verbose="-v" in sys.argv).items():
        print(f"{k}: {v}")
