"""The ``qnjax`` Typer application; commands register themselves in sibling modules."""

from __future__ import annotations

import contextlib

import typer
from typer.core import TyperGroup

# click's exception classes, wherever this typer version keeps click (vendored or not)
_CLICK = {c.__name__: c for c in typer.BadParameter.__mro__}
_USAGE = _CLICK["UsageError"]
_CLICK_ERROR = _CLICK["ClickException"]


@contextlib.contextmanager
def _one_line_errors(ctx=None):
    """A usage or parse error (bad number, unknown option, missing option, no such command)
    becomes one line ``qnjax: error: ...`` on stderr and exit 2, like every other error; a
    bare ``qnjax`` still prints the help."""
    try:
        yield
    except _CLICK_ERROR as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            raise
        msg = " ".join(exc.format_message().split()).rstrip(".")
        c = getattr(exc, "ctx", None) or ctx
        if isinstance(exc, _USAGE) and c is not None:
            msg += f" (see '{c.command_path} --help')"
        fail(msg)


class _Group(TyperGroup):
    """The app's group: usage errors as one line (:func:`_one_line_errors`); help unchanged."""

    def make_context(self, info_name, args, parent=None, **extra):
        with _one_line_errors():
            return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx):
        with _one_line_errors(ctx):
            return super().invoke(ctx)


app = typer.Typer(
    cls=_Group,
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


def compilation_cache() -> None:
    """Enable the persistent compilation cache for this command (:mod:`qnjax.cache`); a bad
    ``QNJAX_CACHE_MAX_BYTES`` exits 2 with one line."""
    from ..cache import enable_compilation_cache

    try:
        enable_compilation_cache()
    except ValueError as exc:
        fail(str(exc))


def parse_floats(text: str, name: str) -> list[float]:
    """Comma-separated numbers; ``inf`` / ``none`` mean no limit. Errors exit 2 naming ``name``:
    an empty item (``1,,2``), a value that is not a number, ``nan``."""
    import math

    if not text.strip():
        fail(f"{name}: no values given")
    out = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            fail(f"{name}: empty item in {text!r}; give comma-separated values without gaps")
        try:
            v = math.inf if item.lower() in ("inf", "none") else float(item)
        except ValueError:
            fail(f"{name}: not a number: {item!r}")
        if math.isnan(v):
            fail(f"{name}: not a number: {item!r}")
        out.append(v)
    return out


def echo_warnings(caught) -> None:
    """Forward recorded warnings to stderr as one line each."""
    for w in caught:
        typer.echo(f"qnjax: warning: {w.message}", err=True)
