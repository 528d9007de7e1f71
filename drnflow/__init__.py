"""drnflow: streaming online learning (DRN + DBGD, GE re-ranking) on Kafka and Flink."""

import os

__version__ = "0.1.0"

# Serving multiplies small matrices (100 candidates x a few hundred weights). Multi-threaded OpenBLAS
# spins on such sizes, and on a busy 2-core machine one 100x48 @ 48x128 product went from 84 us to
# 4 ms (47x). One BLAS thread per process is the default here; set the variables to override.
# This must run before numpy is first imported, which is why it lives in the package's __init__.
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
