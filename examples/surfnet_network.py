"""Plan repeaters for four demands on SURFnet (Topology Zoo) and save a map of the plan.

    pip install 'qnjax[networks,plot]'
    python examples/surfnet_network.py

The same from the command line:

    qnjax plan topozoo/Surfnet --pairs Groningen:Maastricht,Vlissingen:Utrecht,Heerlen:Leiden,Alkmaar:Venlo \
        --budget 4 --plot surfnet_plan.png
"""

import jax

jax.config.update("jax_enable_x64", True)

import qnjax  # noqa: E402
from qnjax.network import load_network  # noqa: E402
from qnjax.network.plot import plot_plan  # noqa: E402

PAIRS = "Groningen:Maastricht,Vlissingen:Utrecht,Heerlen:Leiden,Alkmaar:Venlo"

res = qnjax.plan("topozoo/Surfnet", PAIRS, budget=4)
print(f"repeater sites: {', '.join(res.repeaters)} ({res.method}, optimal={res.optimal}, {res.wall_s:.0f} s)")
for d in res.demands:
    km = " + ".join(f"{s:.0f}" for s in d.segments_km)
    print(f"{d.pair[0]:>11} – {d.pair[1]:<11} {km:>24} km  {d.protocol:<22} "
          f"{d.skr_bits_per_s:8.3g} bits/s (PLOB {d.plob_bits_per_s:.3g})")
plot_plan(res, load_network("topozoo/Surfnet"), "surfnet_plan.png")
