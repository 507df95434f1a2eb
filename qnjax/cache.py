"""JAX's persistent compilation cache for qnjax: compiled programs kept on disk across processes.

qnjax never enables it on import (global JAX configuration is the user's); the CLI enables it
for its own commands, and a script or notebook does the same with one call::

    import qnjax.cache
    qnjax.cache.enable_compilation_cache()   # before the first computation

The directory is ``QNJAX_CACHE_DIR`` if set (set but empty: disabled), else the per-user
``$XDG_CACHE_HOME/qnjax/jax`` (``~/.cache/qnjax/jax``). Entries are keyed on the program, the
JAX/XLA version and the device, so a stale entry is never used. Each time the cache is
enabled, the directory is pruned to ``max_bytes`` (default 1 GiB; ``QNJAX_CACHE_MAX_BYTES``
overrides it), least recently used files first; a process then adds the programs it compiles.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "QNJAX_CACHE_DIR"
MAX_ENV = "QNJAX_CACHE_MAX_BYTES"
DEFAULT_MAX_BYTES = 2**30


def default_cache_dir() -> Path | None:
    """``QNJAX_CACHE_DIR`` (``None`` when set but empty), else the per-user cache directory."""
    env = os.environ.get(ENV)
    if env is not None:
        return Path(env).expanduser() if env.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "qnjax" / "jax"


def default_max_bytes() -> int:
    """``QNJAX_CACHE_MAX_BYTES`` if set (a whole number of bytes, ``>= 0``), else 1 GiB."""
    env = os.environ.get(MAX_ENV, "").strip()
    if not env:
        return DEFAULT_MAX_BYTES
    try:
        n = int(env)
    except ValueError:
        n = -1
    if n < 0:
        raise ValueError(f"{MAX_ENV} must be a whole number of bytes >= 0; got {env!r}")
    return n


def prune(path, max_bytes: int) -> int:
    """Delete the least recently used files (last access or modification) of the cache directory
    ``path`` until its files take at most ``max_bytes``; returns the bytes freed. A deleted
    program is compiled again when next needed; files that vanish meanwhile (another process
    pruning) are skipped."""
    files = []
    for f in Path(path).iterdir():
        try:
            st = f.stat()
        except OSError:
            continue
        if f.is_file():
            files.append((max(st.st_atime, st.st_mtime), st.st_size, f))
    total = sum(size for _, size, _ in files)
    freed = 0
    for _, size, f in sorted(files, key=lambda x: x[0]):
        if total - freed <= max_bytes:
            break
        try:
            f.unlink()
        except OSError:
            continue
        freed += size
    return freed


def enable_compilation_cache(path=None, min_compile_time_s: float = 0.0,
                             max_bytes: int | None = None) -> Path | None:
    """Keep compiled XLA programs in ``path`` (default :func:`default_cache_dir`) so a later
    process with the same shapes loads them instead of compiling (seconds per program on a
    CPU). Programs that compiled in under ``min_compile_time_s`` seconds are not stored; the
    default 0 stores every program: the default ``qnjax optimize`` compiles 84 small programs
    of about 35 ms each, 2.9 s per process when they are not cached, against 0.4 s to load them.
    The directory is first pruned to ``max_bytes`` (default :func:`default_max_bytes`), least
    recently used files first. Returns the directory, or ``None`` when disabled or the directory
    cannot be created. Call it before the first computation: JAX fixes its cache when it first
    compiles."""
    import jax

    limit = default_max_bytes() if max_bytes is None else int(max_bytes)
    if limit < 0:
        raise ValueError(f"max_bytes must be >= 0; got {max_bytes!r}")
    d = Path(path).expanduser() if path is not None else default_cache_dir()
    if d is None:
        return None
    try:
        d.mkdir(parents=True, exist_ok=True)
        prune(d, limit)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(d))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_time_s))
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return d


__all__ = ["enable_compilation_cache", "default_cache_dir", "default_max_bytes", "prune"]
