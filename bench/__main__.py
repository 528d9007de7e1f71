"""`python -m bench [NAME ...]`: run every bench/bench_*.py (or the named ones), one after another.

Each benchmark prints its own medians and side-by-side ratios; this runner only sequences them so
they never compete for the two cores, and reports which failed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if argv:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in argv or s.stem in argv]
    failed = []
    for script in scripts:
        print(f"\n=== {script.stem} ===", flush=True)
        t0 = time.monotonic()
        rc = subprocess.run([sys.executable, str(script)], cwd=HERE.parent).returncode
        print(f"--- {script.stem}: exit {rc}, {time.monotonic() - t0:.0f} s", flush=True)
        if rc != 0:
            failed.append(script.stem)
    if failed:
        print(f"\nfailed benchmarks: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
