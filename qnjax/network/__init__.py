"""Network planning on fiber graphs: repeater sites, routes, protocols and cut-offs per demand.

Entry point: :func:`plan`. Modules: :mod:`.load` (graphs in), :mod:`.hardware`,
:mod:`.shapes` (tree shapes), :mod:`.links` (one chain's numbers, exact engine),
:mod:`.screen` (many designs at once), :mod:`.cutoffs` (cut-off grid and refinement),
:mod:`.chains` (their public names together), :mod:`.candidates` (the candidate table),
:mod:`.search` (repeater sets), :mod:`.result`, :mod:`.plot`.
"""

from .hardware import NetworkHardware, default_hardware, load_hardware
from .load import NetworkError, load_network
from .plan import parse_demands, plan
from .result import DemandPlan, NetworkPlan

__all__ = ["plan", "load_network", "load_hardware", "default_hardware", "NetworkHardware",
           "NetworkPlan", "DemandPlan", "NetworkError", "parse_demands"]
