"""Another checkout's `drnflow simulate` (e.g. an unpacked `git archive main`) against this one's, the same flags,
on one private broker, topics of 3 partitions: every (partition, offset, key, value, timestamp, timestamp type)
of impressions and clicks, and the --truth-out CSV, must be the same bytes (issue 15 item 3).

Run: PYTHONPATH=. .venv/bin/python bench/compare_simulate.py OLD_CHECKOUT [--impressions N]
The old checkout reads DRNFLOW_CACHE (default this checkout's .cache): the MovieLens data and the fitted MF.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

FLAGS = [
    [],
    ["--policy", "popular", "--explore", "0.2", "--drift", "news", "--click-model", "pbm", "--seed", "5"],
    ["--policy", "oracle", "--drift", "news", "--click-model", "perfect", "--arrivals", "poisson", "--seed", "2"],
    ["--policy", "random", "--click-model", "informational", "--k", "7", "--candidates", "40", "--seed", "11"],
    ["--policy", "drn", "--publish-initial", "--seed", "3"],
    ["--policy", "drn", "--publish-initial", "--learner", "pdgd", "--seed", "3"],
]


def run_simulate(code: Path, bootstrap: str, state: Path, n: int, flags: list[str]) -> tuple[Any, bytes, str]:
    """(records per topic, truth CSV bytes, simulate's summary line) of checkout `code` on fresh topics."""
    from drnflow.stack.kafka import TopicSettings, create_topics
    from schemas.topics import TopicNames
    from tests.integration.minor_update_data import read_committed

    names = TopicNames(prefix=f"c{uuid.uuid4().hex[:8]}.")
    create_topics(bootstrap, names, TopicSettings(partitions=3))
    truth = state / f"truth-{names.prefix}csv"
    env = {**os.environ, "PYTHONPATH": str(code), "OPENBLAS_NUM_THREADS": "1",
           "DRNFLOW_CACHE": os.environ.get("DRNFLOW_CACHE", str(ROOT / ".cache"))}
    r = subprocess.run([sys.executable, "-m", "drnflow", "simulate", "--bootstrap", bootstrap, "--prefix",
                        names.prefix, "--impressions", str(n), "--no-progress", "--truth-out", str(truth), *flags],
                       cwd=code, env=env, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise RuntimeError(f"{code}: simulate {' '.join(flags)} exited {r.returncode}: {r.stderr[-1500:]}")
    records = {t: [(m.partition, m.offset, m.key, m.value, m.timestamp, m.timestamp_type)
                   for m in read_committed(bootstrap, getattr(names, t))] for t in ("impressions", "clicks")}
    return records, truth.read_bytes(), r.stdout.strip().splitlines()[-1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old", type=Path, help="the other checkout")
    ap.add_argument("--impressions", type=int, default=3000)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from drnflow.stack import process
    from drnflow.stack.kafka import KafkaBroker, KafkaConfig

    state = Path(tempfile.mkdtemp(prefix="drnflow-compare-simulate-"))
    broker = KafkaBroker(KafkaConfig(state_dir=state, port=process.free_port(), controller_port=process.free_port()))
    broker.start()
    different = 0
    try:
        for flags in FLAGS:
            old = run_simulate(args.old.resolve(), broker.config.bootstrap, state, args.impressions, flags)
            new = run_simulate(ROOT, broker.config.bootstrap, state, args.impressions, flags)
            same = old[:2] == new[:2]
            different += not same
            records, truth, _ = new
            digest = hashlib.sha256(repr(records).encode() + truth).hexdigest()[:16]
            partitions = sorted({p for p, *_ in records["impressions"]})
            print(f"{'SAME' if same else 'DIFFERENT'} {' '.join(flags) or '(defaults)'}: "
                  f"{len(records['impressions'])} impressions, {len(records['clicks'])} clicks, partitions "
                  f"{partitions}, truth {len(truth)} B, sha256 {digest}\n   old: {old[2]}\n   new: {new[2]}",
                  flush=True)
    finally:
        broker.stop()
    print("all identical" if not different else f"{different} of {len(FLAGS)} DIFFERENT")
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
