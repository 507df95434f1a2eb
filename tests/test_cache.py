"""The persistent compilation cache's size bound (qnjax.cache): pruning, settings, CLI errors."""

import os

import jax
import pytest
from typer.testing import CliRunner

from qnjax.cache import DEFAULT_MAX_BYTES, default_max_bytes, enable_compilation_cache, prune
from qnjax.cli import app


def _files(d, sizes):
    for i, n in enumerate(sizes):  # file i last used at time 1000 + i
        f = d / f"entry{i}-cache"
        f.write_bytes(b"x" * n)
        os.utime(f, (1000 + i, 1000 + i))


def test_prune_removes_least_recently_used_files_first(tmp_path):
    _files(tmp_path, [100, 200, 300, 400])
    assert prune(tmp_path, 10_000) == 0 and len(list(tmp_path.iterdir())) == 4
    assert prune(tmp_path, 750) == 300  # the two oldest (100 + 200) go; 700 bytes stay
    assert sorted(f.name for f in tmp_path.iterdir()) == ["entry2-cache", "entry3-cache"]
    (tmp_path / "sub").mkdir()  # folders are not JAX's entries: left alone
    assert prune(tmp_path, 0) == 700 and [f.name for f in tmp_path.iterdir()] == ["sub"]


def test_max_bytes_setting(monkeypatch):
    monkeypatch.delenv("QNJAX_CACHE_MAX_BYTES", raising=False)
    assert default_max_bytes() == DEFAULT_MAX_BYTES == 2**30
    monkeypatch.setenv("QNJAX_CACHE_MAX_BYTES", " 5000 ")
    assert default_max_bytes() == 5000
    for bad in ("abc", "-1", "1e9", "1.5"):
        monkeypatch.setenv("QNJAX_CACHE_MAX_BYTES", bad)
        with pytest.raises(ValueError, match="QNJAX_CACHE_MAX_BYTES must be a whole number"):
            default_max_bytes()
    with pytest.raises(ValueError, match="max_bytes must be >= 0"):
        enable_compilation_cache(max_bytes=-5)


def test_enable_prunes_the_directory(tmp_path):
    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
             "jax_persistent_cache_min_entry_size_bytes")
    before = {k: getattr(jax.config, k) for k in names}
    _files(tmp_path, [100, 200, 300])
    try:
        assert enable_compilation_cache(tmp_path, max_bytes=350) == tmp_path
        assert sorted(f.name for f in tmp_path.iterdir()) == ["entry2-cache"]
    finally:
        for k, v in before.items():
            jax.config.update(k, v)


def test_cli_refuses_a_bad_size_bound_in_one_line():
    res = CliRunner().invoke(app, ["optimize", "--protocol", "swap", "--p-gen", "0.5", "--t-trunc", "64"],
                             env={"QNJAX_CACHE_MAX_BYTES": "lots"})
    assert res.exit_code == 2
    assert res.output.strip() == "qnjax: error: QNJAX_CACHE_MAX_BYTES must be a whole number of bytes >= 0; got 'lots'"
