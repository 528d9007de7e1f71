"""Benchmark of the minor-update job (`make bench`): events/s of the whole job next to what limits it, in
one run on the same topics, at parallelism 1 and 2: (a) a Flink job that only reads the raw bytes (the
ceiling), (b) read + Avro decode, (c) the full job, each as events/s and as a ratio to (a); and a plain
confluent-kafka consume of the same bytes. Then the delay from a window becoming final (watermark past
window_end + attribution window) to its records being committed, on a live stream.

Throughput: bounded runs over the same two-partition topics (impressions of 10 slots with logged features,
clicks at 10% CTR, produced from the JVM), the kinds alternating, `--repeats` times each; medians, with the
load average beside every run. Rates come from probes in the jobs (first record read to the last per-event
result), so JVM and Python start-up are excluded.

    .venv/bin/python bench/bench_minor_update.py [--impressions 150000] [--repeats 3] [--bootstrap HOST:PORT]
"""

from __future__ import annotations

import argparse
import json
import os
import re
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


KINDS = ("raw", "decode", "full")


def child(kind: str, cfg_json: str) -> None:
    """One bounded job in this (sub)process: `raw` (bytes only), `decode` (read + decode) or `full`."""
    from jobs.minor_update import build, build_decode_only, build_raw_bytes_only, make_env
    from jobs.minor_update_config import MinorUpdateConfig
    from operators.model_weights_log import WeightsLog, read_weights_log

    cfg = MinorUpdateConfig(**json.loads(cfg_json))
    env = make_env(cfg)
    if kind == "raw":
        build_raw_bytes_only(env, cfg)
    elif kind == "decode":
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


def run_child(kind: str, cfg: dict[str, Any], jvm_args: str = "") -> tuple[float, int, float, float]:
    t0 = time.monotonic()
    env = {**os.environ, "JVM_ARGS": jvm_args} if jvm_args else None  # PyFlink's gateway JVM takes JVM_ARGS
    proc = subprocess.run([sys.executable, __file__, "--child", kind, json.dumps(cfg)], cwd=ROOT,
                          capture_output=True, text=True, env=env)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"bench {kind} job failed:\n{proc.stderr[-4000:]}")
    ends = ("outcomes",) if kind == "full" else ("impressions", "clicks")
    rate, events, seconds = probe_rate(Path(cfg["probe_dir"]), ("impressions", "clicks"), ends)
    return rate, events, seconds, wall


def plain_consume(bootstrap: str, names: TopicNames) -> tuple[float, int]:
    """(events/s, events) of a confluent-kafka consumer reading both topics' bytes, first record to last."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-plain-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False, "isolation.level": "read_committed",
                         "fetch.max.bytes": 64 * 1024 * 1024})
    try:
        parts = []
        for topic in (names.impressions, names.clicks):
            meta = consumer.list_topics(topic, timeout=30).topics[topic]
            parts += [TopicPartition(topic, p, 0) for p in meta.partitions]
        ends = {(tp.topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=30)[1] for tp in parts}
        consumer.assign(parts)
        want, n, first = sum(ends.values()), 0, None
        deadline = time.monotonic() + 300
        while n < want and time.monotonic() < deadline:
            for m in consumer.consume(num_messages=10_000, timeout=1.0):
                if m.error() is None:
                    first = time.perf_counter() if first is None else first
                    n += 1
        took = time.perf_counter() - (first or time.perf_counter())
        return (n / took if took > 0 else float("nan")), n
    finally:
        consumer.close()


def throughput(bootstrap: str, impressions: int, repeats: int, work: Path, parallelisms: tuple[int, ...]) -> None:
    from drnflow.stack.kafka import TopicSettings, create_topics

    names = TopicNames(f"bench{uuid.uuid4().hex[:6]}.")
    create_topics(bootstrap, names, TopicSettings(partitions=max(parallelisms)))
    t0 = time.monotonic()
    clicks = produce_bench_data(bootstrap, names, impressions, seed=1)
    print(f"produced {impressions} impressions (10 slots) + {clicks} clicks in {time.monotonic() - t0:.1f} s, "
          f"{max(parallelisms)} partitions per topic")
    rates: dict[tuple[str, int], list[float]] = {}
    plain: list[float] = []
    for i in range(repeats):
        rate, n = plain_consume(bootstrap, names)
        plain.append(rate)
        print(f"  run {i + 1} plain confluent-kafka consume: {n} events = {rate:10,.0f} events/s "
              f"(load {os.getloadavg()[0]:.1f})")
        for par in parallelisms:
            for kind in KINDS:
                probe = work / f"probe-{kind}-p{par}-{i}"
                probe.mkdir()
                cfg = {"bootstrap": bootstrap, "topic_prefix": names.prefix, "bounded": True, "window": "60 s",
                       "attribution_window": "10 s", "checkpoint_interval": "5 s", "probe_dir": str(probe),
                       # State retention (default 24 h) would keep every request of this dense stream in state;
                       # it is a memory cost, measured apart from throughput.
                       "click_horizon": "1 min", "parallelism": par,
                       "checkpoint_dir": str(work / f"ckpt-{kind}-p{par}-{i}"), "job_name": f"bench-{kind}-{i}"}
                rate, events, seconds, wall = run_child(kind, cfg)
                rates.setdefault((kind, par), []).append(rate)
                print(f"  run {i + 1} {kind:6s} p{par}: {events} events in {seconds:6.2f} s = {rate:10,.0f} events/s "
                      f"(job wall time incl. start-up {wall:5.1f} s; load {os.getloadavg()[0]:.1f})")
    print(f"\nmedians of {repeats} runs (events/s; ratio to the raw-bytes ceiling of the same parallelism):")
    print(f"  plain confluent-kafka consume (one Python process): {statistics.median(plain):12,.0f}")
    for par in parallelisms:
        ceiling = statistics.median(rates[("raw", par)])
        cells = "  ".join(f"{kind} {statistics.median(rates[(kind, par)]):10,.0f} "
                          f"({statistics.median(rates[(kind, par)]) / ceiling:6.1%})" for kind in KINDS)
        print(f"  parallelism {par}: {cells}")
    full = {par: statistics.median(rates[("full", par)]) for par in parallelisms}
    if len(full) > 1:
        print("  full job, parallelism " + " vs ".join(f"{p}: {r:,.0f}" for p, r in full.items())
              + f" (x{full[max(full)] / full[min(full)]:.2f})")


#: Where a sampled JVM stack is, by the first matching frame from the top (package or class prefixes).
PROFILE_CATEGORIES = (
    ("Kafka client (fetch, records)", ("org.apache.flink.kafka.shaded.org.apache.kafka.",)),
    ("Avro decode", ("org.apache.avro.",)),
    ("drnflow attribution (AttributeClicks)", ("drnflow.jvm.AttributeClicks",)),
    ("drnflow window counts (CountOutcomes, WindowCounts)", ("drnflow.jvm.CountOutcomes", "drnflow.jvm.WindowCounts")),
    ("drnflow decode glue / routing", ("drnflow.jvm.",)),
    ("Flink state backend", ("org.apache.flink.runtime.state.", "org.apache.flink.contrib.streaming.state.")),
    ("Flink serializers (POJO, Kryo, Row)", ("org.apache.flink.api.common.typeutils.",
                                            "org.apache.flink.api.java.typeutils.", "com.esotericsoftware.kryo.")),
    ("Flink network / record path", ("org.apache.flink.runtime.io.", "org.apache.flink.streaming.runtime.io.")),
    ("Python step (Beam, pemja)", ("org.apache.flink.python.", "org.apache.beam.", "pemja.")),
    ("JDK (collections, strings, NIO)", ("java.", "jdk.", "sun.")),
)


def profile(bootstrap: str, impressions: int, work: Path) -> None:
    """One full-job run (parallelism 1) under Java Flight Recorder; where the samples of the task threads fall,
    by category (inclusive: a sample counts for the first category any of its frames matches, top down) and
    by top frame."""
    from collections import Counter

    from drnflow.stack.kafka import create_topics

    names = TopicNames(f"prof{uuid.uuid4().hex[:6]}.")
    create_topics(bootstrap, names)
    produce_bench_data(bootstrap, names, impressions, seed=2)
    jfr = work / "full.jfr"
    cfg = {"bootstrap": bootstrap, "topic_prefix": names.prefix, "bounded": True, "window": "60 s",
           "attribution_window": "10 s", "checkpoint_interval": "5 s", "probe_dir": str(work / "probe-prof"),
           "click_horizon": "1 min", "checkpoint_dir": str(work / "ckpt-prof"), "job_name": "bench-profile"}
    (work / "probe-prof").mkdir()
    rate, events, _, _ = run_child("full", cfg, f"-XX:StartFlightRecording=filename={jfr},settings=profile,"
                                                      "dumponexit=true")
    out = subprocess.run(["jfr", "print", "--json", "--events", "jdk.ExecutionSample", str(jfr)],
                         capture_output=True, text=True, check=True).stdout
    samples = json.loads(out)["recording"]["events"]
    by_category: Counter[str] = Counter()
    by_top: Counter[str] = Counter()
    task_thread = re.compile(r"\(\d+/\d+\)")  # Flink names task threads "<operators> (i/n)#attempt"
    for e in samples:
        if not task_thread.search(str((e["values"].get("sampledThread") or {}).get("javaName", ""))):
            continue  # start-up, the JobManager, Kafka's own threads: not the per-event path
        frames = [f"{f['method']['type']['name']}.{f['method']['name']}".replace("/", ".")
                  for f in e["values"]["stackTrace"]["frames"]]
        if not frames:
            continue
        by_top[frames[0]] += 1
        by_category[next((name for f in frames for name, prefixes in PROFILE_CATEGORIES
                          if f.startswith(prefixes)), "other")] += 1
    total = sum(by_category.values()) or 1
    print(f"\nprofile of one full run (parallelism 1, {events} events at {rate:,.0f} events/s, JFR execution "
          f"samples of its task threads: {total}):")
    for name, n in by_category.most_common():
        print(f"  {n / total:6.1%}  {name}")
    print("  top frames:")
    for frame, n in by_top.most_common(12):
        print(f"  {n / total:6.1%}  {frame}")


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _job_jvm(pgid: int) -> int | None:
    """The pid of the job's JVM (PyFlink's gateway `java`, where the local cluster runs), by process group."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            comm = (proc / "comm").read_text().strip()
        except OSError:
            continue
        if comm == "java" and int(stat.rsplit(")", 1)[1].split()[2]) == pgid:
            return int(proc.name)
    return None


def live_heap(pid: int) -> tuple[int, dict[str, tuple[int, int]]]:
    """(bytes, {class: (instances, bytes)}) of the live objects on a JVM's heap: `jcmd GC.class_histogram` runs
    a full GC first, so only what is reachable counts."""
    out = subprocess.run(["jcmd", str(pid), "GC.class_histogram"], capture_output=True, text=True, check=True,
                         timeout=300).stdout
    classes: dict[str, tuple[int, int]] = {}
    total = 0
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "Total":
            total = int(parts[2])
        elif len(parts) >= 4 and parts[0].endswith(":"):
            classes[parts[3]] = (int(parts[1]), int(parts[2]))
    return total, classes


def state_size(bootstrap: str, impressions: int, work: Path) -> None:
    """Heap and checkpoint bytes per request the attribution state holds within the click horizon: an unbounded
    job (heap state, full checkpoints) starts on empty topics; once it runs, its JVM's live heap is read (a full
    GC, `jcmd GC.class_histogram`), then `impressions` requests spread over less than the 24 h horizon are
    produced. Once its checkpoints stop growing it holds all of them, nearly all past their outcome (the compact
    form: event time and packed item ids; the last attribution window's are not yet), a checkpoint's size is
    that state's serialized size, and the live heap minus the first reading is what holding them costs."""
    from drnflow.stack.kafka import create_topics

    names = TopicNames(f"state{uuid.uuid4().hex[:6]}.")
    create_topics(bootstrap, names)
    ckpt = work / "ckpt-state"
    job_name = "bench-state"
    cmd = [sys.executable, "-m", "jobs.minor_update", "--bootstrap", bootstrap, "--prefix", names.prefix,
           "--window", "60 s", "--attribution-window", "10 s", "--click-horizon", "24 h", "--idleness", "1 s",
           "--checkpoint-interval", "3 s", "--checkpoint-dir", str(ckpt), "--job-name", job_name,
           "--trigger-every", "none", "--trigger-every-minor", "1000000"]
    log = open(work / "state-job.log", "w")  # noqa: SIM115 - closed below
    job = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    def complete() -> list[Path]:
        return sorted((d for d in ckpt.rglob("chk-*") if (d / "_metadata").exists()),
                      key=lambda d: int(d.name.split("-")[1]))

    # The state has taken in every request once full checkpoints stop growing: three in a row within 1%
    # (Flink keeps only the newest one: sizes are noted as the checkpoints appear), each well above the empty
    # job's.
    sizes: dict[str, int] = {}
    newest, size, empty_size = None, 0, 0
    heap0: tuple[int, dict[str, tuple[int, int]]] | None = None
    heap1: tuple[int, dict[str, tuple[int, int]]] | None = None
    try:
        deadline = time.monotonic() + 420
        while time.monotonic() < deadline and job.poll() is None and not complete():
            time.sleep(0.5)  # the job is running once its first checkpoint is complete
        pid = _job_jvm(job.pid)
        if complete() and pid is not None:
            time.sleep(3)
            heap0 = live_heap(pid)
            for d in complete():
                sizes[d.name] = empty_size = max(empty_size, _dir_bytes(d))
            produce_bench_data(bootstrap, names, impressions, seed=3)
            deadline = time.monotonic() + 600
        while heap0 is not None and time.monotonic() < deadline and job.poll() is None:
            for d in complete():
                if d.name not in sizes:
                    sizes[d.name] = _dir_bytes(d)
            last = list(sizes.values())[-3:]
            if (len(last) == 3 and min(last) > 10 * empty_size + 1_000_000
                    and (max(last) - min(last)) <= 0.01 * last[-1]):
                newest, size = complete()[-1], last[-1]
                assert pid is not None
                heap1 = live_heap(pid)
                break
            time.sleep(0.5)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGTERM)
            try:
                job.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(job.pid, signal.SIGKILL)
        log.close()
    if newest is None or heap0 is None or heap1 is None:
        print(f"state size: no stable checkpoint; see {work / 'state-job.log'}")
        return
    per_request = size / impressions
    heap_per_request = (heap1[0] - heap0[0]) / impressions
    print(f"state size: {impressions} requests (10 slots, item ids like 'item12345') within the click horizon "
          f"(load {os.getloadavg()[0]:.1f}):\n"
          f"  heap: {(heap1[0] - heap0[0]) / 1e6:.1f} MB of live objects more than the empty job's = "
          f"{heap_per_request:.0f} bytes per request\n"
          f"  checkpoint {newest.name}: {size / 1e6:.1f} MB = {per_request:.0f} bytes per request")
    grown = sorted(((b1 - heap0[1].get(k, (0, 0))[1], n1 - heap0[1].get(k, (0, 0))[0], k)
                    for k, (n1, b1) in heap1[1].items()), reverse=True)
    print("  largest heap growth by class (bytes per request, instances per request):")
    for b, n, k in grown[:10]:
        print(f"    {b / impressions:7.1f}  {n / impressions:6.2f}  {k}")
    print(f"  a 24 h horizon at R requests/s holds 86,400·R requests: at 1,000/s {heap_per_request * 86.4e6 / 1e9:.0f} "
          f"GB of heap ({per_request * 86.4e6 / 1e9:.0f} GB per full checkpoint); a TaskManager's heap bounds R "
          f"(e.g. 1 GB of heap for state: {1e9 / heap_per_request / 86_400:.1f} requests/s over 24 h); shorten "
          "--click-horizon, or scale out (the state is keyed by request_id)")


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
    parser.add_argument("--parallelism", type=int, nargs="+", default=[1, 2], help="job parallelisms to run")
    parser.add_argument("--state-requests", type=int, default=100_000,
                        help="requests for the attribution state-size measurement (0 skips it)")
    parser.add_argument("--profile", action="store_true",
                        help="also one full run under Java Flight Recorder: where the JVM's time goes")
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
            throughput(bootstrap, args.impressions, args.repeats, work, tuple(args.parallelism))
        if args.profile:
            profile(bootstrap, args.impressions, work)
        if args.state_requests > 0:
            state_size(bootstrap, args.state_requests, work)
        if args.latency_seconds > 0:
            latency(bootstrap, args.latency_seconds, work)
    finally:
        if broker is not None:
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
