"""Deprecated import paths that name the same objects as their new homes.

``qnjax.optimize`` was the optimizer package; it is now :mod:`qnjax.design`, and
``qnjax.optimize`` is the function :func:`qnjax.design.optimize`. The old paths keep working
with a :class:`DeprecationWarning`, without importing anything until an attribute is read and
without second copies of any module:

* ``sys.modules["qnjax.optimize"]`` is an :class:`AliasModule` whose attributes are those of
  ``qnjax.design`` (``from qnjax.optimize import StepProblem``). Because the alias is already
  in ``sys.modules``, ``import qnjax.optimize`` never binds it as the attribute
  ``qnjax.optimize``, which stays the function.
* :class:`AliasFinder` on ``sys.meta_path`` answers ``import qnjax.optimize.X`` with the
  module object ``qnjax.design.X`` itself; the import system then sets ``X`` on the alias,
  which also sets it on the function, so ``qnjax.optimize.chain.Structure`` keeps working.

No JAX import happens here: ``import qnjax`` stays cheap.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings

ALIASES: dict[str, tuple[str, str]] = {"qnjax.optimize": ("qnjax.design", "optimize")}
"""Old package path -> (new package path, name of the function the old path now means)."""


def _warn(old: str, new: str) -> None:
    warnings.warn(f"{old} is deprecated; use {new}", DeprecationWarning, stacklevel=3)


def _target(old: str) -> str | None:
    """New path of an old dotted module path (``None`` if it is not under an alias)."""
    for prefix, (new, _) in ALIASES.items():
        if old == prefix or old.startswith(prefix + "."):
            return new + old[len(prefix):]
    return None


class AliasModule(types.ModuleType):
    """Stand-in for a renamed package: attribute reads go to the new package (imported on
    first read) with a :class:`DeprecationWarning`; attributes the import system sets
    (submodules) are also set on the function that now owns the old name."""

    def __init__(self, old: str, new: str, func: str):
        super().__init__(old, f"Deprecated alias of {new}.")
        self.__path__ = []  # a package: submodule imports go to AliasFinder
        self.__spec__ = importlib.machinery.ModuleSpec(old, None, is_package=True)
        object.__setattr__(self, "_alias_of", (new, func))

    def __getattr__(self, name: str):
        new, _ = self._alias_of
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        pkg = importlib.import_module(new)
        _warn(f"{self.__name__}.{name}", f"{new}.{name}")
        try:
            return getattr(pkg, name)
        except AttributeError:
            try:
                return importlib.import_module(f"{new}.{name}")
            except ModuleNotFoundError:
                raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}") from None

    def __setattr__(self, name: str, value):
        super().__setattr__(name, value)
        if isinstance(value, types.ModuleType) and not name.startswith("_"):
            new, func = self._alias_of
            setattr(getattr(importlib.import_module(new), func), name, value)


class _SameModuleLoader(importlib.abc.Loader):
    """Loads an old path as the already imported module of the new path (no copy)."""

    def __init__(self, module: types.ModuleType):
        self.module = module
        self.spec = module.__spec__

    def create_module(self, spec):
        return self.module

    def exec_module(self, module):
        module.__spec__ = self.spec  # the import system set the alias spec; keep the real one


class AliasFinder(importlib.abc.MetaPathFinder):
    """``import qnjax.optimize.X`` -> the module ``qnjax.design.X`` (same object)."""

    def find_spec(self, fullname, path=None, target=None):
        new = _target(fullname)
        if new is None or fullname in ALIASES:
            return None
        _warn(fullname, new)
        module = importlib.import_module(new)
        return importlib.machinery.ModuleSpec(fullname, _SameModuleLoader(module),
                                              is_package=hasattr(module, "__path__"))


def attach_legacy(func, package: str, names) -> None:
    """Give ``func`` (the function that took over the package's old name) the package's public
    ``names`` and its imported submodules as attributes, so attribute paths through the old name
    (``qnjax.optimize.NoFeasibleDesign``, ``qnjax.optimize.chain.Structure``) keep working.
    Deprecated: plain attribute reads on a function cannot warn."""
    pkg = sys.modules[package]
    for name in names:
        setattr(func, name, getattr(pkg, name))
    for mod, obj in list(sys.modules.items()):
        head, _, child = mod.rpartition(".")
        if head == package and obj is not None:
            setattr(func, child, obj)


def install() -> None:
    """Register the alias modules and the finder (idempotent)."""
    for old, (new, func) in ALIASES.items():
        if old not in sys.modules:
            sys.modules[old] = AliasModule(old, new, func)
    if not any(isinstance(f, AliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, AliasFinder())
