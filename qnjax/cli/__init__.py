"""Command-line interface: ``qnjax --help``."""

from __future__ import annotations

import typer

from ._app import app

# Each module registers its command(s) on ``app`` when imported.
from . import evaluate  # noqa: F401,E402
from . import simulate  # noqa: F401,E402
from . import optimize, sweep  # noqa: F401,E402
from . import plan  # noqa: F401,E402
from . import requirements  # noqa: F401,E402


def _version_line() -> str:
    from importlib import metadata

    from .. import __version__

    def v(dist):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    return f"qnjax {__version__} (jax {v('jax')}, jaxlib {v('jaxlib')})"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(_version_line())
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", "-V", is_eager=True, callback=_print_version,
                                       help="Print the qnjax, JAX and jaxlib versions and exit.")) -> None:
    """Quantum repeater chains as batched, differentiable JAX arrays."""


def main() -> None:
    app()


__all__ = ["app", "main"]
