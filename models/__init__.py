"""Models: the DRN Q-network, perturbations, simulators, GE re-ranking."""

import drnflow  # noqa: F401  (sets one BLAS thread per process before numpy loads)
