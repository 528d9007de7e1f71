"""Operators: small classes with explicit state (rankers, interleavers, learners)."""

import drnflow  # noqa: F401  (sets one BLAS thread per process before numpy loads)
