"""What to improve, and by how much, to double the key rate of a 300 km backbone.

    python examples/hardware_requirements.py

Prints the three parameters the optimized key rate is most sensitive to, then the
least-cost hardware (cost Σ log k, da Silva et al. 2021) reaching twice the baseline rate.
The same from the command line:

    qnjax sensitivity examples/backbone_300_600km.toml
    qnjax requirements examples/backbone_300_600km.toml --target 11 --write-scenario required.toml
"""

from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import qnjax  # noqa: E402

scen = qnjax.load_scenario(Path(__file__).with_name("backbone_300_600km.toml"))
base = qnjax.optimize(scen)
sens = qnjax.sensitivity(scen, result=base)
print(f"baseline: {sens.skr_bits_per_s:.4g} bits/s")
for row in sens.rows[:3]:
    print(f"  a 1 % better {row['name']} gives {row['gain_per_percent']:+.3g} % key")

req = qnjax.requirements(scen, 2 * float(base.skr_bits_per_s))
print(f"to reach {req.target_bits_per_s:.4g} bits/s (cost {req.cost:.3g}):")
for name, k in req.improvement.items():
    if k > 1:
        print(f"  {name}: {req.baseline[name]:.4g} -> {req.required[name]:.4g} (k = {k:.3g})")
