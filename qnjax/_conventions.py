"""Conventions shared by every qnjax module: Bell order, the Walsh matrix, dtype helpers.

Bell-diagonal coefficients ``(..., 4)`` are ordered ``(I, X, Y, Z) = (Φ+, Ψ+, Ψ−, Φ−)``: the
Pauli ``P`` applied to one qubit of ``|Φ+>`` gives the state at index ``P``. Indexing the
Klein four-group Z2 × Z2 as ``I = (0, 0)``, ``X = (1, 0)``, ``Y = (1, 1)``, ``Z = (0, 1)``, its
characters form the symmetric Walsh–Hadamard matrix ``H[k, g] = (−1)^(k·g)`` with
``H @ H = 4 · 1`` (Dür & Briegel, Rep. Prog. Phys. 70, 1381 (2007), §4; Klein-group Fourier
transform of Bell-diagonal states).

This module imports NumPy only at import time; the JAX helpers import ``jax.numpy`` when
called, so the NumPy-only simulator adapters (``qnjax.interop``) can use the constants.
"""

from __future__ import annotations

import numpy as np

#: Names of the Bell-diagonal coordinates, in qnjax's order.
BELL_ORDER: tuple[str, str, str, str] = ("Phi+", "Psi+", "Psi-", "Phi-")

#: Walsh–Hadamard matrix of Z2 × Z2 in the order (I, X, Y, Z); symmetric, ``H @ H = 4 I``.
WALSH_NP = np.array(
    [[1, 1, 1, 1],
     [1, -1, -1, 1],
     [1, -1, 1, -1],
     [1, 1, -1, -1]],
    dtype=np.float64,
)
WALSH_NP.setflags(write=False)

#: Group table: ``KLEIN[i, j]`` is the index of ``P_i P_j`` (up to a phase).
KLEIN = np.array([[0, 1, 2, 3], [1, 0, 3, 2], [2, 3, 0, 1], [3, 2, 1, 0]])
KLEIN.setflags(write=False)


def walsh_matrix(dtype):
    """:data:`WALSH_NP` as a JAX constant of ``dtype`` (built per trace, never at import)."""
    import jax.numpy as jnp

    return jnp.asarray(WALSH_NP, dtype)


def as_float(x):
    """``x`` as a JAX array of a floating dtype; integers and booleans become JAX's default
    float (float32, or float64 under ``jax_enable_x64``); floats keep their dtype."""
    import jax.numpy as jnp

    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


def complex_of(dtype):
    """The complex dtype matching a real or complex ``dtype``: complex128 for float64 /
    complex128, complex64 otherwise."""
    import jax.numpy as jnp

    return jnp.complex128 if jnp.dtype(dtype) in (jnp.float64, jnp.complex128) else jnp.complex64


def real_of(dtype):
    """The real dtype matching a complex or real ``dtype``: float64 for complex128 / float64,
    float32 otherwise."""
    import jax.numpy as jnp

    return jnp.float64 if jnp.dtype(dtype) in (jnp.complex128, jnp.float64) else jnp.float32
