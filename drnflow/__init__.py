"""drnflow: streaming online learning (DRN + DBGD, GE re-ranking) on Kafka and Flink."""

import schemas.process_defaults  # noqa: F401  (one BLAS thread per process before numpy loads)

__version__ = "0.1.0"
