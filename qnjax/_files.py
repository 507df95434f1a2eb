"""Writing output files safely: checks before any work, atomic replacement.

Every file qnjax writes (results, CSV tables, figures) is written to a temporary file in the same
folder and moved into place with ``os.replace``, so a reader never sees half a file and a failed
write leaves the old one as it was.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def check_target(path: Path, option: str) -> None:
    """Refuse a directory or a path whose folder does not exist (``ValueError`` naming ``option``)."""
    if path.is_dir():
        raise ValueError(f"{option}: {str(path)!r} is a directory; give a file name")
    if not path.parent.exists():
        raise ValueError(f"{option}: the folder of {str(path)!r} does not exist")


def replace_bytes(path, data: bytes) -> None:
    """Replace ``path`` by ``data`` atomically (temporary file in the same folder, ``os.replace``),
    keeping the permissions of a file it replaces."""
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=str(p.parent))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if p.exists():
            os.chmod(tmp, p.stat().st_mode & 0o7777)
        else:  # a new file gets the usual permissions (mkstemp makes it private)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, p)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
