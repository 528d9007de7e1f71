"""The foundation demo: Avro impressions and clicks -> PyFlink window counts -> Kafka, on a real broker."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from drnflow.demo.private_broker import demo_broker
from operators import kafka_io
from schemas import serde
from schemas.topics import TopicNames

MINUTE = 60_000


def run_smoke_demo(state: Path, impressions: int = 600, seed: int = 7) -> int:
    import numpy as np

    names = TopicNames("demo.")
    rng = np.random.default_rng(seed)
    start = 1_700_000_040_000
    with demo_broker(state, names) as bootstrap:
        producer = kafka_io.producer(bootstrap, "drnflow-smoke-demo", linger_ms=5)
        n_clicks = 0
        for i in range(impressions):
            t = start + int(i * 5 * MINUTE / impressions)  # five minutes of event time
            rid = f"demo-{i}"
            slots = [{"item_id": f"item-{j}", "position": p, "team": "CURRENT" if p % 2 == 0 else "EXPLORE"}
                     for p, j in enumerate(rng.choice(100, size=10, replace=False))]
            producer.send(names.impressions, serde.encode("Impression", {
                "request_id": rid, "user_id": f"user-{rng.integers(50)}", "event_time": t, "model_id": "drn",
                "model_version": 1, "explore_seed": seed, "slots": slots}), key=rid.encode(), timestamp_ms=t)
            if rng.random() < 0.3:
                ct = t + int(rng.integers(1_000, 60_000))
                producer.send(names.clicks, serde.encode("Click", {
                    "request_id": rid, "item_id": slots[int(rng.integers(10))]["item_id"], "event_time": ct}),
                    key=rid.encode(), timestamp_ms=ct)
                n_clicks += 1
        producer.flush()
        producer.close()
        print(f"[demo] wrote {impressions} Avro impressions and {n_clicks} clicks with kafka-python", flush=True)
        print("[demo] running the PyFlink job jobs/window_count.py (bounded, 60 s windows) ...", flush=True)
        t0 = time.monotonic()
        job = subprocess.run([sys.executable, "-m", "jobs.window_count", "--bootstrap", bootstrap,
                              "--prefix", names.prefix, "--window", "60s", "--bounded"],
                             capture_output=True, text=True)
        if job.returncode != 0:
            print(job.stderr[-3000:], file=sys.stderr)
            print("[demo] the Flink job failed", file=sys.stderr)
            return 1
        print(f"[demo] job finished in {time.monotonic() - t0:.1f} s; reading its output topic", flush=True)
        consumer = kafka_io.consumer(bootstrap, "drnflow-smoke-demo", f"{names.prefix}window-counts",
                                     auto_offset_reset="earliest", consumer_timeout_ms=5000)
        rows = sorted((r["window_start"], r["topic"], r["records"]) for r in (json.loads(m.value) for m in consumer))
        consumer.close()
        print(f"\n{'window start (UTC)':<22}{'topic':<20}{'records':>8}")
        for window_start, topic, records in rows:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(window_start / 1000))
            print(f"{stamp:<22}{topic:<20}{records:>8}")
        total_imp = sum(r for _, t, r in rows if t == names.impressions)
        total_clk = sum(r for _, t, r in rows if t == names.clicks)
        print(f"\n[demo] counted {total_imp}/{impressions} impressions and {total_clk}/{n_clicks} clicks")
        ok = total_imp == impressions and total_clk == n_clicks
        return 0 if ok else 1
