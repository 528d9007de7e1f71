"""Benchmark of the minor-update job (`make bench`): events/s through the whole job next to a bare
Flink job that only reads and decodes the same topics, in one run, and their ratio; then the delay from
a window becoming final (watermark past window_end + attribution window) to its records being
committed, on a live stream.

Throughput: bounded runs over the same topics (impressions of 10 slots with logged features, clicks at
10% CTR, produced from the JVM), alternating bare / full, `--repeats` times each. Rates come from probes
in the jobs (first decoded record to last per-event result), so JVM and Python start-up are excluded.

    .venv/bin/python bench/bench_minor_update.py [--impressions 150000] [--repeats 3] [--bootstrap HOST:PORT]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from schemas import serde  # noqa: E402
from schemas.topics import TopicNames  # noqa: E402


def start_broker(state: Path) -> Any:
    from drnflow.stack import process
    from drnflow.stack.kafka import KafkaBroker, KafkaConfig

    broker = KafkaBroker(KafkaConfig(state_dir=state, port=process.free_port(),
                                     controller_port=process.free_port(), heap_mb=768))
    broker.start()
    return broker


def produce_bench_data(bootstrap: str, names: TopicNames, impressions: int, seed: int) -> int:
    """Impressions (10 slots, 16 features each) and clicks at 10% CTR, written by drnflow-jvm's BenchData."""
    from pyflink.java_gateway import get_gateway
    from pyflink.util.java_utils import add_jars_to_context_class_loader

    from operators.jars import flink_jars, jar_urls
    from operators.jvm_jar import jvm_jar

    add_jars_to_context_class_loader(jar_urls([*flink_jars(), jvm_jar()]))
    bench_data = get_gateway().jvm.drnflow.jvm.BenchData
    clicks: int = bench_data.produce(
        bootstrap, names.impressions, names.clicks, json.dumps(serde.schema_json("Impression")),
        json.dumps(serde.schema_json("Click")), impressions, 10, 16, 0.10, 1_700_000_000_000, 2_000, 1_000, seed)
    return clicks


def child(kind: str, cfg_json: str) -> None:
    """One bounded job in this (sub)process: `decode` (bare read + decode) or `full` (the whole job)."""
    from jobs.minor_update import build, build_decode_only, make_env
    from jobs.minor_update_config import MinorUpdateConfig
    from operators.model_weights_log import WeightsLog, read_weights_log

    cfg = MinorUpdateConfig(**json.loads(cfg_json))
    env = make_env(cfg)
    if kind == "decode":
        build_decode_only(env, cfg)
    else:
        weights: WeightsLog = read_weights_log(cfg.bootstrap, cfg.topics.model_weights)
        build(env, cfg, weights)
    env.execute(f"bench-{kind}")


def probe_rate(probe_dir: Path, sources: tuple[str, ...], ends: tuple[str, ...]) -> tuple[float, int, float]:
    """(events/s, events, seconds) from probe files: events decoded by `sources`, from the first decoded
    record to the last record seen by any of `ends`."""
    first, last, events = [], [], 0
    for name in sources:
        for f in probe_dir.glob(f"{name}-*.txt"):
            a, b, n = (int(x) for x in f.read_text().split())
            if n:
                first.append(a)
                last.append(b)
                events += n
    for name in ends:
        for f in probe_dir.glob(f"{name}-*.txt"):
            a, b, n = (int(x) for x in f.read_text().split())
            if n:
                last.append(b)
    seconds = (max(last) - min(first)) / 1e9
    return events / seconds, events, seconds


def run_child(kind: str, cfg: dict[str, Any]) -> tuple[float, int, float, float]:
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, __file__, "--child", kind, json.dumps(cfg)], cwd=ROOT,
                          capture_output=True, text=True)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"bench {kind} job failed:\n{proc.stderr[-4000:]}")
    ends = ("impressions", "clicks") if kind == "decode" else ("outcomes",)
    rate, events, seconds = probe_rate(Path(cfg["probe_dir"]), ("impressions", "clicks"), ends)
    return rate, events, seconds, wall


def throughput(bootstrap: str, impressions: int, repeats: int, work: Path) -> None:
    from drnflow.stack.kafka import create_topics

    names = TopicNames(f"bench{uuid.uuid4().hex[:6]}.")
    create_topics(bootstrap, names)
    t0 = time.monotonic()
    clicks = produce_bench_data(bootstrap, names, impressions, seed=1)
    print(f"produced {impressions} impressions (10 slots) + {clicks} clicks in {time.monotonic() - t0:.1f} s")
    rates: dict[str, list[float]] = {"decode": [], "full": []}
    for i in range(repeats):
        for kind in ("decode", "full"):
            probe = work / f"probe-{kind}-{i}"
            probe.mkdir()
            cfg = {"bootstrap": bootstrap, "topic_prefix": names.prefix, "bounded": True, "window": "60 s",
                   "attribution_window": "10 s", "checkpoint_interval": "5 s", "probe_dir": str(probe),
                   # State retention (default 24 h) would keep every request of this dense stream in state;
                   # it is a memory cost, measured apart from throughput.
                   "click_horizon": "1 min",
                   "checkpoint_dir": str(work / f"ckpt-{kind}-{i}"), "job_name": f"bench-{kind}-{i}"}
            rate, events, seconds, wall = run_child(kind, cfg)
            rates[kind].append(rate)
            print(f"  run {i + 1} {kind:6s}: {events} events in {seconds:6.2f} s = {rate:10,.0f} events/s "
                  f"(job wall time incl. start-up {wall:5.1f} s)")
    bare, full = statistics.median(rates["decode"]), statistics.median(rates["full"])
    print(f"median events/s: bare read+decode {bare:,.0f} | full minor-update job {full:,.0f} | "
          f"ratio {full / bare:.1%} (aim >= 80%)")


def latency(bootstrap: str, seconds: float, work: Path) -> None:
    """Live stream (event time = now) into an unbounded job; delay from the moment the watermark can pass
    window_end + attribution window (wall clock window_end + attribution window + out-of-orderness) to the
    window's WinRate / MINOR ModelWeights record being visible to a read_committed consumer."""
    from kafka import TopicPartition

    from drnflow.stack.kafka import create_topics
    from operators import kafka_io

    window_ms, attribution_ms, ooo_ms = 2_000, 1_000, 200
    names = TopicNames(f"lat{uuid.uuid4().hex[:6]}.")
    create_topics(bootstrap, names)
    cmd = [sys.executable, "-m", "jobs.minor_update", "--bootstrap", bootstrap, "--topic-prefix", names.prefix,
           "--window", f"{window_ms} ms", "--attribution-window", f"{attribution_ms} ms",
           "--out-of-orderness", f"{ooo_ms} ms", "--idleness", "1 s", "--checkpoint-interval", "1 s",
           "--checkpoint-dir", str(work / "ckpt-latency"), "--job-name", "bench-latency", "--trigger-every", "none",
           "--trigger-every-minor", "1000000"]
    log = open(work / "latency-job.log", "w")  # noqa: SIM115 - closed below
    (work / "latency-flink-log").mkdir()
    env = {**os.environ, "FLINK_LOG_DIR": str(work / "latency-flink-log")}
    job = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    arrivals: dict[tuple[str, int], float] = {}
    served = {"version": 0}  # like the ranker: impressions carry the latest version on model-weights
    stop = threading.Event()

    def consume() -> None:
        consumer = kafka_io.consumer(bootstrap, "drnflow-bench-latency")
        tps = [TopicPartition(t, p) for t in (names.win_rates, names.model_weights)
               for p in sorted(consumer.partitions_for_topic(t) or [])]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        while not stop.is_set():
            for records in consumer.poll(timeout_ms=50).values():
                now = time.time()
                for r in records:
                    if r.topic == names.win_rates:
                        ws = serde.decode("WinRate", r.value)["window_start"]
                        arrivals.setdefault(("WinRate", ws), now)
                    else:
                        w = serde.decode("ModelWeights", r.value)
                        served["version"] = max(served["version"], w["version"])
                        if w["kind"] == "MINOR":
                            arrivals.setdefault(("ModelWeights", w["window_start"]), now)
        consumer.close()

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    producer = kafka_io.producer(bootstrap, "drnflow-bench-latency", acks=1, linger_ms=5)
    start = time.time()
    n = 0
    try:
        # Produce until the job has been committing output for `seconds` (its start-up takes a while).
        while not arrivals or time.time() - min(arrivals.values()) < seconds:
            if time.time() - start > seconds + 420:  # job start-up on a busy 2-core machine
                break
            now_ms = int(time.time() * 1000)
            for _ in range(5):  # ~250 impressions/s; every third one clicked on an EXPLORE item
                rid = f"l{n}"
                imp = {"request_id": rid, "user_id": "u", "event_time": now_ms, "model_id": "live",
                       "model_version": served["version"], "explore_seed": 5,
                       "slots": [{"item_id": f"{rid}/{k}", "position": k, "team": "EXPLORE" if k % 2 else "CURRENT",
                                  "features": [0.1] * 16, "explore_seed": None} for k in range(10)]}
                producer.send(names.impressions, key=rid.encode(), value=serde.encode("Impression", imp))
                if n % 3 == 0:
                    clk = {"request_id": rid, "item_id": f"{rid}/1", "event_time": now_ms + 1, "user_id": None}
                    producer.send(names.clicks, key=rid.encode(), value=serde.encode("Click", clk))
                n += 1
            time.sleep(0.02)
        producer.flush()
        time.sleep(3 * (window_ms + attribution_ms) / 1000 + 2)
    finally:
        producer.close()
        stop.set()
        os.killpg(job.pid, signal.SIGTERM)
        try:
            job.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(job.pid, signal.SIGKILL)
        log.close()
        reader.join(5)
    if not arrivals:
        print(f"latency: no output committed; see {work / 'latency-job.log'}")
        return
    first_output = min(arrivals.values())
    for kind in ("WinRate", "ModelWeights"):
        delays = []
        for (k, ws), at in arrivals.items():
            final_wall = (ws + window_ms + attribution_ms + ooo_ms) / 1000
            if k == kind and final_wall > first_output + 2:  # skip windows decided while catching up
                delays.append((at - final_wall) * 1000)
        if delays:
            print(f"latency {kind:12s}: median {statistics.median(delays):6.0f} ms, max {max(delays):6.0f} ms "
                  f"over {len(delays)} windows (window {window_ms} ms, attribution {attribution_ms} ms, "
                  f"out-of-orderness {ooo_ms} ms, checkpoint interval 1 s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", help="use this broker instead of starting a private one")
    parser.add_argument("--impressions", type=int, default=150_000)
    parser.add_argument("--repeats", type=int, default=3, help="0 skips the throughput part")
    parser.add_argument("--latency-seconds", type=float, default=30.0,
                        help="how long to measure once the live job commits output (0 skips the latency part)")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "CONFIG"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    work = Path(tempfile.mkdtemp(prefix="bench-minor-update-"))
    broker = None if args.bootstrap else start_broker(work / "state")
    bootstrap: str = args.bootstrap if broker is None else broker.config.bootstrap
    try:
        if args.repeats > 0:
            throughput(bootstrap, args.impressions, args.repeats, work)
        if args.latency_seconds > 0:
            latency(bootstrap, args.latency_seconds, work)
    finally:
        if broker is not None:
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
