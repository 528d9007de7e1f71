"""Models: the DRN Q-network, perturbations, simulators, GE re-ranking."""

import schemas.process_defaults  # noqa: F401  (one BLAS thread per process before numpy loads)
