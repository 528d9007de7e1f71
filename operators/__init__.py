"""Operators: small classes with explicit state (rankers, interleavers, learners)."""

import schemas.process_defaults  # noqa: F401  (one BLAS thread per process before numpy loads)
