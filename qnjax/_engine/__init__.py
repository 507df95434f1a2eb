"""Implementation of the exact delivery engine (public face: :mod:`qnjax.exact`)."""
