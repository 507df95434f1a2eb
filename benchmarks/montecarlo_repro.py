"""Same seed, same numbers: Monte Carlo samples on CPU versus an accelerator (float64).

    python benchmarks/montecarlo_repro.py save ref.npz      # on the CPU
    python benchmarks/montecarlo_repro.py compare ref.npz  # on the GPU, with ref.npz copied over

Chunk sizes and lane counts are fixed explicitly (their defaults differ per backend, and
the samples depend on them). Expected: delivery-time samples identical, Werner samples equal
to the last bits of ``exp``.
"""

from __future__ import annotations

import sys

import numpy as np

import jax

jax.config.update("jax_enable_x64", True)

from qnjax.montecarlo import simulate_nested, simulate_swap_asap  # noqa: E402


def runs():
    a = simulate_nested("swap,distill,swap", p_gen=0.3, p_swap=0.7, w0=0.95, t_coh=50.0,
                        cutoff=[6, 10, 20], samples=20_000, seed=5, keep=20_000, chunk_size=4096)
    b = simulate_nested("distill,swap", p_gen=0.25, p_swap=0.8, lam0=np.array([0.9, 0.05, 0.03, 0.02]),
                        t_coh=40.0, cutoff=[8, 15], samples=20_000, seed=6, keep=20_000, chunk_size=4096)
    c = simulate_swap_asap(6, p_gen=[0.3, 0.5, 0.4, 0.6, 0.5], p_swap=0.85, w0=0.97, t_coh=30.0,
                           cutoff=5, samples=5_000, seed=7, keep=5_000, lanes=256)
    return {k: r for k, r in (("nested_werner", a), ("nested_bell", b), ("swap_asap", c))}


def main():
    mode, path = sys.argv[1], sys.argv[2]
    out = runs()
    if mode == "save":
        np.savez(path, **{f"{k}_times": np.asarray(r.times) for k, r in out.items()},
                 **{f"{k}_werner": np.asarray(r.werner) for k, r in out.items()})
        print({k: (float(r.mean_time), float(r.mean_werner)) for k, r in out.items()})
        return
    ref = np.load(path)
    ok = True
    for k, r in out.items():
        same = bool(np.array_equal(np.asarray(r.times), ref[f"{k}_times"]))
        dw = float(np.nanmax(np.abs(np.asarray(r.werner) - ref[f"{k}_werner"])))
        ok &= same and dw < 1e-12
        print(f"{k}: times identical {same}, max |Δw| {dw:.2e}")
    print("reproducible" if ok else "DIFFERENT")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
