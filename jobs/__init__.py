"""Flink jobs: each a pure builder plus a thin __main__."""

import drnflow  # noqa: F401  (sets one BLAS thread per process before numpy loads)
