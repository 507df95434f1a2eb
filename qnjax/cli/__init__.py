"""Command-line interface: ``qnjax --help``."""

from __future__ import annotations

from ._app import app

# Each module registers its command(s) on ``app`` when imported.
from . import evaluate  # noqa: F401,E402
from . import simulate  # noqa: F401,E402
from . import optimize, sweep  # noqa: F401,E402


def main() -> None:
    app()


__all__ = ["app", "main"]
