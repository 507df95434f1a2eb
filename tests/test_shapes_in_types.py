"""The jaxtyping annotations of the leaf modules resolve (no typo hides behind postponed
evaluation), are annotations only (no runtime type-check hook), and leave jit/vmap/grad as
they were."""

from __future__ import annotations

import importlib
import inspect
import typing

import jax
import jax.numpy as jnp
import numpy as np
import pytest

MODULES = ("states", "channels", "ops", "keyrate", "physical", "circuits", "export", "distributed")


@pytest.mark.parametrize("name", MODULES)
def test_public_functions_carry_resolvable_annotations(name):
    mod = importlib.import_module(f"qnjax.{name}")
    names = getattr(mod, "__all__", None) or [n for n, f in vars(mod).items() if not n.startswith("_")
                                               and getattr(f, "__module__", None) == mod.__name__]
    public = [getattr(mod, n) for n in names if inspect.isfunction(getattr(mod, n))]
    assert public
    for f in public:
        hints = typing.get_type_hints(f)
        assert "return" in hints, f"{name}.{f.__name__} has no return annotation"
        assert not hasattr(f, "__wrapped__") or f.__wrapped__ is None, f"{f.__name__} is wrapped by a checker"


def test_annotations_do_not_change_transforms():
    import qnjax

    lam = jnp.array([[0.85, 0.05, 0.05, 0.05], [0.7, 0.1, 0.1, 0.1]])
    f = lambda x: qnjax.key_fraction_bb84_smooth(qnjax.swap(x, x, 0.01)).sum()  # noqa: E731
    np.testing.assert_allclose(jax.jit(f)(lam), f(lam), rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(qnjax.walsh)(lam), qnjax.walsh(lam), rtol=1e-6)
    g = jax.grad(f)(lam)
    assert g.shape == lam.shape and bool(jnp.all(jnp.isfinite(g)))
