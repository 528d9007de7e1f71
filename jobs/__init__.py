"""Flink jobs: each a pure builder plus a thin __main__."""

import schemas.process_defaults  # noqa: F401  (one BLAS thread per process before numpy loads)
