"""Exact figures of physical designs as one typed record (:class:`ChainFigures`), shared by the
optimizer's chain model (:func:`.chain.chain_eval`) and its padded trees
(:func:`.padded.chain_eval_padded`)."""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float


class ChainFigures(eqx.Module):
    """Exact figures of physical designs (a pytree; every field batched like the lengths).

    Rates are BB84 key rates of the mean delivered state (clipped at 0 except
    ``key_fraction_smooth``); ``mean_time`` in clock steps, ``clock_s`` in seconds.
    ``figs[name]`` reads a field too (for code written against the former dict)."""

    key_fraction_smooth: Float[Array, "*batch"]
    """Smooth (unclipped) BB84 key fraction, may be negative."""
    key_fraction: Float[Array, "*batch"]
    """``max(0, key_fraction_smooth)``."""
    mean_time: Float[Array, "*batch"]
    """Mean delivery time, clock steps."""
    mean_state: Float[Array, "*batch 4"]
    """Mean delivered Bell-diagonal state ``(I, X, Y, Z)``."""
    mean_fidelity: Float[Array, "*batch"]
    mean_werner: Float[Array, "*batch"]
    coverage: Float[Array, "*batch"]
    """Truncation coverage ``Σ pmf``."""
    clock_s: Float[Array, "*batch"]
    """The synchronous clock (longest attempt), seconds."""
    p_gen: Float[Array, "*batch n"]
    """Success probability per attempt of every segment (after multiplexing)."""
    secret_key_rate: Float[Array, "*batch"]
    """Bits per clock step."""
    skr_per_channel_use: Float[Array, "*batch"]
    """Bits per clock step and optical mode."""
    skr_bits_per_s: Float[Array, "*batch"]
    """Bits per second, every parallel chain (``memories``) counted."""

    def __getitem__(self, name: str):
        return getattr(self, name)

    def as_dict(self) -> dict:
        """The fields as a plain ``{name: array}`` dict."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def chain_figures(kfs, lam, T, cov, clock, p_gen, chains, modes) -> ChainFigures:
    """:class:`ChainFigures` from the engine's smooth key fraction ``kfs``, mean state ``lam``,
    mean time ``T`` (steps) and coverage, the clock (s), ``p_gen``, the parallel chains and
    the modes per round."""
    kf = jnp.maximum(kfs, 0)
    return ChainFigures(
        key_fraction_smooth=kfs, key_fraction=kf, mean_time=T, mean_state=lam,
        mean_fidelity=lam[..., 0], mean_werner=(4 * lam[..., 0] - 1) / 3, coverage=cov,
        clock_s=clock, p_gen=p_gen, secret_key_rate=kf / T,
        skr_per_channel_use=kf / (T * modes),
        skr_bits_per_s=chains * kf / (T * clock))


__all__ = ["ChainFigures", "chain_figures"]
