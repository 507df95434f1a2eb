"""One candidate chain of a network plan: unequal segments, a tree shape, cut-offs.

The pieces live in one module each; this module gathers their public names (the names
``qnjax.network.chains`` always offered):

* :mod:`qnjax.network.shapes`: tree shapes over ``n`` segments and the protocol text format;
* :mod:`qnjax.network.links`: hardware to link figures and station arrays, the exact key rate
  of a batch of chains, the screening truncation lengths, the rate upper bound and the figure
  a plan reports (``t_trunc="auto"``);
* :mod:`qnjax.network.screen`: many designs at once through the padded programs;
* :mod:`qnjax.network.cutoffs`: the screening cut-offs and their gradient refinement.
"""

from __future__ import annotations

from .cutoffs import cutoff_grid, refine_cutoffs, refine_designs
from .links import (BUCKETS, COVERAGE_TARGET, MAX_MEAN_STEPS, engine_inputs, exact_rate, hw_params, link_model,
                    link_numpy, mean_steps_estimate, rate_bits_per_s, rate_upper_bound, station_arrays, too_slow)
from .screen import CHUNK, PAD_MAX_DEPTH, evaluate_batch, evaluate_designs, padded_ok
from .shapes import check_tree, parse_tree, swap_shapes, tree_shapes, with_link_distill

__all__ = ["tree_shapes", "parse_tree", "evaluate_batch", "refine_cutoffs", "exact_rate",
           "rate_upper_bound", "cutoff_grid", "station_arrays", "engine_inputs", "link_model"]
