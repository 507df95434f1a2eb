"""The result of :func:`qnjax.sweep`: columns by key, typed rows by :meth:`SweepResult.rows`."""

from __future__ import annotations

from typing import Any, NamedTuple, Optional


class SweepRow(NamedTuple):
    """The optimized design at one distance of a sweep.

    Attributes:
        distance_km: end-to-end distance, km.
        segments: number of elementary links (``segments − 1`` repeaters).
        protocol: the swap/distill tree in text form (``S(L0,L1)``; ``L0``: one segment).
        rounds: purification rounds per level, bottom-up.
        skr_bits_per_s: exact clipped BB84 key rate, bits per second (0 where ``reason``).
        skr_per_channel_use: the same per clock step and optical mode.
        plob, tgw: repeaterless bounds at the same distance, bits per channel use.
        direct_per_channel_use: one segment over the whole distance, same hardware.
        no_repeater_per_channel_use: the same figure under its later name.
        positions_km: station positions ``0 .. distance``.
        cutoff: cut-offs in clock steps per internal node, post-order.
        coverage: ``Σ pmf`` of the reported design's delivery-time distribution.
        alpha: single-click bright-state population (``None`` for other schemes).
        modes: optical modes per round (``None`` without multiplexing).
        reason: ``None``, or why no design yields a key at this distance.
    """

    distance_km: float
    segments: int
    protocol: str
    rounds: Optional[list] = None
    skr_bits_per_s: float = 0.0
    skr_per_channel_use: float = 0.0
    plob: float = 0.0
    tgw: float = 0.0
    direct_per_channel_use: float = 0.0
    no_repeater_per_channel_use: Optional[float] = None
    positions_km: Optional[list] = None
    cutoff: Optional[list] = None
    coverage: Optional[float] = None
    alpha: Optional[float] = None
    modes: Optional[int] = None
    reason: Optional[str] = None


class SweepResult(dict):
    """What :func:`qnjax.sweep` returns: a dict of per-distance lists (``distance_km``,
    ``skr_bits_per_s``, ... one entry per distance; the keys :class:`SweepRow` documents),
    plus ``structures`` (every segment count tried, with its rate per distance), ``scheme``,
    ``notes`` and ``wall_s``. :meth:`rows` gives the same numbers as typed rows, one per
    distance. It stays a plain ``dict`` for ``json.dumps`` and existing code."""

    def rows(self) -> tuple[SweepRow, ...]:
        """One :class:`SweepRow` per distance, in distance order."""
        n = len(self["distance_km"])
        keys = [k for k in SweepRow._fields if isinstance(self.get(k), list) and len(self[k]) == n]
        return tuple(SweepRow(**{k: self[k][i] for k in keys}) for i in range(n))

    @property
    def wall_s(self) -> float:
        """Wall time of the sweep, seconds (compilation included)."""
        return float(self.get("wall_s", 0.0))


def as_sweep_result(data: Optional[dict[str, Any]]) -> Optional[SweepResult]:
    """``data`` as a :class:`SweepResult` (``None`` stays ``None``: not process 0)."""
    return None if data is None else SweepResult(data)


__all__ = ["SweepRow", "SweepResult"]
