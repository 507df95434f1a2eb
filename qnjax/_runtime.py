"""Multi-process start-up and device discovery for the scale-out runs (:mod:`qnjax.distributed`).

:func:`initialize` joins a multi-process JAX run (``jax.distributed``; arguments, ``QNJAX_*``
variables, or SLURM / Open MPI); :func:`make_mesh` lays every device of every process on the
1-D ``"designs"`` mesh; :func:`gather_bytes` is the byte-string all-gather of the grouped runs.
Launching: ``docs/scale-out.md``.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

import jax

AXIS = "designs"  # the mesh axis the design (or group) axis is laid over


def client_up() -> bool:
    """Whether this process has already joined a ``jax.distributed`` run."""
    is_initialized = getattr(jax.distributed, "is_initialized", None)
    if is_initialized is not None:
        return bool(is_initialized())
    try:  # JAX before is_initialized
        from jax._src import distributed as jax_distributed

        return jax_distributed.global_state.client is not None
    except Exception:  # pragma: no cover - private API moved
        return False


def _env_int(name: str) -> int:
    try:
        return int(os.environ[name])
    except ValueError:
        raise ValueError(f"{name} must be an integer; got {os.environ[name]!r}") from None


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, *, local_device_ids: Sequence[int] | None = None) -> bool:
    """Join a multi-process JAX run when one is configured; return whether one is active.

    Args:
        coordinator: ``host:port`` of process 0's coordinator service (default
            ``$QNJAX_COORDINATOR``).
        num_processes: processes in the run (default ``$QNJAX_NUM_PROCESSES``).
        process_id: this process's rank, ``0 .. num_processes − 1`` (default ``$QNJAX_PROCESS_ID``).
        local_device_ids: devices of this host that this process uses (default: JAX's choice;
            under SLURM with one GPU per task JAX picks the task's GPU).

    With none of these given, an ``srun`` job step of more than one task or an Open MPI run is
    detected and JAX reads the cluster's variables itself. Otherwise nothing happens (a single-process run). Call it before
    any other JAX work; calling it again is harmless.
    """
    if client_up():
        return True
    env = os.environ
    coordinator = coordinator or env.get("QNJAX_COORDINATOR") or None
    if num_processes is None and env.get("QNJAX_NUM_PROCESSES"):
        num_processes = _env_int("QNJAX_NUM_PROCESSES")
    if process_id is None and env.get("QNJAX_PROCESS_ID"):
        process_id = _env_int("QNJAX_PROCESS_ID")
    if num_processes is not None and num_processes < 1:
        raise ValueError(f"num_processes must be >= 1; got {num_processes}")
    if process_id is not None and num_processes is not None and not 0 <= process_id < num_processes:
        raise ValueError(f"process_id must lie in [0, {num_processes - 1}]; got {process_id}")
    explicit = coordinator is not None or (num_processes or 1) > 1
    # srun sets SLURM_STEP_NUM_TASKS for its job step (a plain batch script is one task)
    cluster = int(env.get("SLURM_STEP_NUM_TASKS", "1") or 1) > 1 or \
        int(env.get("OMPI_COMM_WORLD_SIZE", "1") or 1) > 1
    if not explicit and not cluster:
        return False
    if explicit and (coordinator is None or num_processes is None or process_id is None):
        raise ValueError("a multi-process run needs coordinator (host:port), num_processes and process_id "
                         f"(or QNJAX_COORDINATOR / QNJAX_NUM_PROCESSES / QNJAX_PROCESS_ID); got "
                         f"coordinator={coordinator!r}, num_processes={num_processes!r}, process_id={process_id!r}")
    try:
        if jax.config.jax_cpu_collectives_implementation in (None, "", "none"):
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
    except AttributeError:  # pragma: no cover - option renamed
        pass
    kw = dict(local_device_ids=local_device_ids) if local_device_ids is not None else {}
    if explicit:
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                                   process_id=process_id, **kw)
    else:
        jax.distributed.initialize(**kw)
    return True


def make_mesh(devices: Sequence[jax.Device] | None = None) -> jax.sharding.Mesh:
    """1-D mesh over ``devices`` (default: every device of every process), axis ``"designs"``."""
    devs = list(jax.devices() if devices is None else devices)
    return jax.sharding.Mesh(np.array(devs), (AXIS,))


def default_chunk_bytes(mesh: jax.sharding.Mesh) -> int:
    """Working-memory budget per device and step: 256 MiB on CPU, 4 GiB on accelerators."""
    plat = mesh.devices.flat[0].platform
    return 256 * 2**20 if plat == "cpu" else 4 * 2**30


def gather_bytes(payload: bytes) -> list[bytes]:
    """Every process's ``payload``, in process order (a collective: all processes call it)."""
    from jax.experimental import multihost_utils

    n = np.asarray(multihost_utils.process_allgather(np.array([len(payload)], np.int64))).reshape(-1)
    buf = np.zeros(int(n.max()) if n.size else 0, np.uint8)
    buf[: len(payload)] = np.frombuffer(payload, np.uint8)
    allb = np.asarray(multihost_utils.process_allgather(buf)).reshape(len(n), -1)
    return [allb[p, : n[p]].tobytes() for p in range(len(n))]
