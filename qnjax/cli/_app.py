"""The ``qnjax`` Typer application; commands register themselves in sibling modules."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="qnjax",
    help=(
        "Quantum repeater chains as batched, differentiable JAX arrays.\n\n"
        "Every command prints a table (or one JSON object with --json) and computes in "
        "float64 unless --float32 is given."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def set_precision(float32: bool) -> None:
    """The CLI computes in float64 unless ``--float32``; the library never flips this itself."""
    import jax

    jax.config.update("jax_enable_x64", not float32)


def fail(message: str) -> "typer.Exit":
    """Print a one-line error on stderr and exit with status 2."""
    typer.echo(f"qnjax: error: {message}", err=True)
    raise typer.Exit(code=2)
