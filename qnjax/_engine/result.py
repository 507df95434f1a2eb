"""The one result type of every delivery engine (exact and Monte Carlo)."""

from __future__ import annotations

import dataclasses
from typing import Optional

import equinox as eqx
import numpy as np
from jaxtyping import Array, Float, Int

from .. import _truncation as TR

# Fields each engine fills; the others are None.
EXACT_FIELDS = ("pmf", "state_t", "coverage", "mean_time", "mean_werner", "mean_state", "mean_fidelity",
                "key_fraction", "key_fraction_smooth", "secret_key_rate", "secret_key_rate_smooth",
                "success_probability", "attempt_coverage", "status")
MONTE_CARLO_FIELDS = ("mean_time", "mean_time_stderr", "mean_werner", "mean_werner_stderr", "mean_fidelity",
                      "mean_fidelity_stderr", "mean_state", "key_fraction", "secret_key_rate", "samples",
                      "undelivered", "trajectories", "times", "werner")


class DeliveryResult(eqx.Module):
    """Outputs of :func:`qnjax.delivery`, :func:`qnjax.simulate_nested` and
    :func:`qnjax.simulate_swap_asap`; every field has the design batch shape in front.

    Times are in steps (slots) of one elementary-link attempt. A field an engine does not
    produce is ``None``: the exact engine leaves the Monte Carlo fields (``*_stderr``,
    ``samples``, ``undelivered``, ``trajectories``, ``times``, ``werner``) ``None``; Monte
    Carlo leaves ``pmf``, ``state_t``, ``coverage``, ``*_smooth``, ``success_probability``,
    ``attempt_coverage`` and ``status`` ``None``.

    Attributes:
        pmf: ``(..., N)`` probability that the root link is delivered at step ``t``.
        state_t: expected delivered state given ``T = t``: Werner parameter
            ``(..., N)`` in Werner mode, Bell-diagonal ``(..., N, 4)`` otherwise
            (zero where ``pmf`` is zero).
        coverage: ``Σ pmf`` (probability of delivery before ``t_trunc``).
        mean_time: mean delivery time in steps.
        mean_werner: Werner parameter of the mean delivered state, in ``[−1/3, 1]``.
        mean_state: Bell-diagonal ``(..., 4)`` mean delivered state.
        mean_fidelity: fidelity of the mean delivered state.
        key_fraction: asymptotic BB84 secret fraction (log base 2, bits per pair) of the
            mean state, clipped at 0.
        key_fraction_smooth: the same, unclipped (for optimisation; exact engine only).
        secret_key_rate: ``key_fraction / mean_time`` in bits per step.
        secret_key_rate_smooth: ``key_fraction_smooth / mean_time``.
        success_probability: probability that one attempt of the root node succeeds.
        attempt_coverage: the smallest truncation coverage among the root's sub-protocols
            (elementary links and non-root nodes); the attempt decomposition behind the
            means needs it ``>= 1 − 1e-4``.
        status: ``int32`` bit mask per design, ``0`` when every field is a number:
            ``1`` truncation too short for the attempt decomposition, ``2`` a parameter
            NaN or out of range (under ``jit``), ``4`` a mean outside its physical range
            beyond rounding. Every float field of a flagged design is NaN;
            :attr:`reason` says why in words.
        mean_time_stderr, mean_werner_stderr, mean_fidelity_stderr: Monte Carlo standard
            errors of the means.
        samples: delivered trajectories per design; ``undelivered``: trajectories stopped
            at the slot cap ``max_time`` (never mixed into the means); ``trajectories =
            samples + undelivered``.
        times, werner: ``(..., keep)`` the first ``keep`` delivered samples per design
            (``-1`` / NaN padding where fewer were kept).
        policy: ``""`` for the exact engine, ``"nested"`` or ``"swap_asap"`` for Monte Carlo.
    """

    pmf: Optional[Float[Array, "*batch t"]] = None
    state_t: Optional[Float[Array, "*batch t *state"]] = None
    coverage: Optional[Float[Array, "*batch"]] = None
    mean_time: Optional[Float[Array, "*batch"]] = None
    mean_werner: Optional[Float[Array, "*batch"]] = None
    mean_state: Optional[Float[Array, "*batch 4"]] = None
    mean_fidelity: Optional[Float[Array, "*batch"]] = None
    key_fraction: Optional[Float[Array, "*batch"]] = None
    key_fraction_smooth: Optional[Float[Array, "*batch"]] = None
    secret_key_rate: Optional[Float[Array, "*batch"]] = None
    secret_key_rate_smooth: Optional[Float[Array, "*batch"]] = None
    success_probability: Optional[Float[Array, "*batch"]] = None
    attempt_coverage: Optional[Float[Array, "*batch"]] = None
    status: Optional[Int[Array, "*batch"]] = None
    mean_time_stderr: Optional[Float[Array, "*batch"]] = None
    mean_werner_stderr: Optional[Float[Array, "*batch"]] = None
    mean_fidelity_stderr: Optional[Float[Array, "*batch"]] = None
    samples: Optional[Int[Array, "*batch"]] = None
    undelivered: Optional[Int[Array, "*batch"]] = None
    trajectories: Optional[Int[Array, "*batch"]] = None
    times: Optional[Int[Array, "*batch keep"]] = None
    werner: Optional[Float[Array, "*batch keep"]] = None
    policy: str = eqx.field(static=True, default="")

    @property
    def dtype(self) -> str:
        """The floating dtype the result was computed in (``"float32"`` or ``"float64"``)."""
        return str(self.mean_time.dtype)

    @property
    def _fields(self) -> tuple:
        """Names of the fields this result holds (not ``None``), in order."""
        return tuple(f.name for f in dataclasses.fields(self)
                     if f.name != "policy" and getattr(self, f.name) is not None)

    def _asdict(self) -> dict:
        """The fields this result holds (not ``None``) as a dict, in field order."""
        return {k: getattr(self, k) for k in self._fields}

    def _replace(self, **changes) -> "DeliveryResult":
        """A copy with some fields replaced (as ``NamedTuple._replace``)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """The result as a dict of plain NumPy arrays (host copies), with ``dtype`` and
        ``reason``; :func:`qnjax.export.to_rows` turns it into table rows."""
        out = {k: np.asarray(v) for k, v in self._asdict().items()}
        out["dtype"] = self.dtype
        out["reason"] = self.reason
        return out

    @property
    def reason(self) -> str | None:
        """Why some designs have NaN fields, in words (host-side), or ``None`` if none has
        (always ``None`` for Monte Carlo, which has no ``status``)."""
        if self.status is None:
            return None
        return TR.reason(self.status, self.attempt_coverage, int(self.pmf.shape[-1]))

    def histogram(self, bins=50, range=None):
        """Histogram of the kept delivery-time samples (Monte Carlo): ``(counts, edges)``
        (NumPy; only for an unbatched result)."""
        if self.times is None:
            raise ValueError("histogram() needs delivery-time samples (a Monte Carlo result); "
                             "the exact engine returns the pmf instead")
        t = np.asarray(self.times)
        if t.ndim != 1:
            raise ValueError("histogram() needs an unbatched result; index a design first")
        return np.histogram(t[t >= 0], bins=bins, range=range)
