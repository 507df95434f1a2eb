"""Subprocess body for tests/test_distributed.py: one sweep_designs run, results to .npz.

Run with XLA_FLAGS / QNJAX_* set by the test; prints one line ``done <rows>`` on success.
"""

import argparse
import os
import sys

import numpy as np


def designs():
    """The test grid: 3 p_gen x 2 t_coh x 5 cut-off vectors = 30 designs, three swap levels."""
    from qnjax.distributed import design_grid

    cut = [[4, 8, 16], [10, 20, 40], [20, 40, 80], [7.5, 30.25, 61.0], [np.inf] * 3]
    return design_grid(p_gen=[0.1, 0.3, 0.6], t_coh=[60.0, 400.0], cutoff=cut)


FIXED = dict(p_swap=0.5, w0=0.97)
ITEMS = [0.5 * i for i in range(11)]


def toy_rows(group):
    """Rows of one group; each depends on its group (like an optimizer run over distances)."""
    import jax

    import jax.numpy as jnp

    dev = jnp.zeros(1).devices().pop().id  # the device this group ran on
    return [{"d": x, "sq": x * x, "group_sum": sum(group), "by": jax.process_index(), "dev": dev} for x in group]
T_TRUNC = 512


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None)
    ap.add_argument("--result", default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--per-device", type=int, default=None)
    ap.add_argument("--expect-devices", type=int, default=None)
    ap.add_argument("--groups", action="store_true", help="run_in_groups over toy items instead")
    a = ap.parse_args()

    from qnjax.distributed import initialize, sweep_designs

    initialize()  # QNJAX_* from the environment, or nothing
    import jax

    jax.config.update("jax_enable_x64", True)
    if a.expect_devices is not None and len(jax.devices()) != a.expect_devices:
        print(f"expected {a.expect_devices} devices, got {jax.devices()}", file=sys.stderr)
        sys.exit(3)
    if a.groups:
        from qnjax.distributed import run_in_groups

        rows = run_in_groups(ITEMS, toy_rows, key="d", group=3, out=a.out, head={"run": "toy"},
                             devices=jax.local_devices())
        print(f"done {jax.process_index()} {None if rows is None else len(rows)}", flush=True)
        return
    res = sweep_designs("swap,swap,swap", designs(), fixed=FIXED, t_trunc=T_TRUNC, out=a.out,
                        limit=a.limit, per_device=a.per_device)
    if res is not None and a.result:
        np.savez(a.result, **res)
    print(f"done {jax.process_index()} {jax.process_count()} {len(jax.devices())} "
          f"{None if res is None else len(res['index'])}", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    main()
