"""The DBGD sweep behind the learning defaults (issue 13 item 5): bench_learning's frozen and dbgd arms on the
static world from the offline start, for each (alpha, eta, acceptance confidence), on SWEEP_SEEDS seeds of
SWEEP_IMPRESSIONS impressions (SWEEP_PART=i/n runs every n-th setting from the i-th, to split it across
cores). Prints one table row per setting: dbgd - frozen in last-20% CTR (mean, 95%
interval, seeds better) and the MINORs accepted. Not part of `make bench` (about 15 minutes per seed);
`python bench/sweep_learning.py` runs it, and docs/learning-sweep.md keeps the table it printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SETTINGS = [(0.03, 0.5, "none"), (0.1, 0.5, "none"), (0.3, 1.0, "none"), (0.03, 0.5, "0.95"), (0.1, 0.5, "0.95"),
            (0.3, 1.0, "0.95"), (0.1, 1.0, "0.95")]


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_learning import interval

    seeds = os.environ.get("SWEEP_SEEDS", "2")
    n = os.environ.get("SWEEP_IMPRESSIONS", "10000")
    print("| alpha | eta | confidence | dbgd - frozen, last-20% CTR | seeds better | MINORs per run |")
    print("|---|---|---|---|---|---|")
    part, parts = (int(x) for x in os.environ.get("SWEEP_PART", "0/1").split("/"))
    for alpha, eta, conf in SETTINGS[part::parts]:
        with tempfile.TemporaryDirectory() as out:
            env = {**os.environ, "BENCH_LEARNING_ALPHA": str(alpha), "BENCH_LEARNING_ETA": str(eta),
                   "BENCH_LEARNING_CONFIDENCE": conf, "BENCH_LEARNING_ARMS": "frozen,dbgd",
                   "BENCH_LEARNING_WORLDS": "none", "BENCH_LEARNING_SEEDS": seeds,
                   "BENCH_LEARNING_IMPRESSIONS": n, "BENCH_LEARNING_OUT": out}
            subprocess.run([sys.executable, str(Path(__file__).with_name("bench_learning.py"))], env=env,
                           check=True, stdout=subprocess.DEVNULL)
            res = json.loads((Path(out) / "learning.json").read_text())["results"]["none"]
        gains = [d["last20"]["ctr"] - f["last20"]["ctr"] for d, f in zip(res["dbgd"], res["frozen"], strict=True)]
        g, h = interval(gains)
        minors = sum(r["minors"] for r in res["dbgd"]) / len(res["dbgd"])
        print(f"| {alpha} | {eta} | {conf} | {g:+.4f} ± {h:.4f} | {sum(x > 0 for x in gains)} of {len(gains)} "
              f"| {minors:.0f} |", flush=True)


if __name__ == "__main__":
    main()
