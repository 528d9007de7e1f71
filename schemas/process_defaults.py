"""Process-wide defaults that must be set before numpy is first imported.

Serving multiplies small matrices (100 candidates x a few hundred weights). Multi-threaded OpenBLAS
spins on such sizes, and on a busy 2-core machine one 100x48 @ 48x128 product went from 84 us to
4 ms (47x). One BLAS thread per process is the default here; set the variables to override.
It lives in the bottom layer so that every package can import it without importing upward.
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
