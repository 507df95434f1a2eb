"""Counting how often JAX traces a function, through the public ``jax.monitoring`` events (a
trace is what a new signature costs before compilation; a warm call traces nothing)."""

from __future__ import annotations

import contextlib

import jax

TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"


@contextlib.contextmanager
def count_traces(fun_name: str):
    """Yields a one-element list holding the number of traces of functions named ``fun_name``
    (``__name__``) inside the block."""
    seen = [0]

    def listener(event, duration, **kw):
        if event == TRACE_EVENT and kw.get("fun_name") == fun_name:
            seen[0] += 1

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield seen
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
