"""How fast `drnflow loadgen` writes, next to a plain librdkafka produce of the same bytes, and whether it holds
a set rate. On a private broker on free ports: `drnflow simulate` logs --impressions once; then, median of
--repeats runs each, on fresh topics, (a) and (b) taking turns: (a) a plain confluent-kafka produce loop over
the logged records, --laps + 1 times (no callbacks, no rewriting): the writer's ceiling; (b) loadgen writing
--laps + 1 laps (lap 0 as logged, then request id and event time rewritten in the bytes); (c) loadgen held
to --rate for --seconds: the rate it achieved and how far it fell behind. Prints the load average beside
each (a shared two-core machine).

The job it feeds reads about 40k events/s on one slot (bench_minor_update.py): the generator is meant to
stay well ahead of it.

Run: PYTHONPATH=. .venv/bin/python bench/bench_loadgen.py [--impressions 20000 --laps 4 --rate 50000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from machine import loadavg  # bench/machine.py: the scripts run with bench/ on sys.path

ROOT = Path(__file__).resolve().parent.parent


def _prefix(tag: str) -> str:
    return f"{tag}{uuid.uuid4().hex[:8]}."


def plain_produce(bootstrap: str, traffic: object, times: int) -> float:
    """Events/s of a bare Producer.produce loop over the logged records, `times` over, flush included."""
    from drnflow.stack.kafka import create_topics
    from operators.kafka_io.clients import confluent_producer
    from operators.sim_producer import PRODUCER_SETTINGS
    from schemas.topics import TopicNames

    names = TopicNames(_prefix("plain"))
    create_topics(bootstrap, names)
    topic = {"impression": names.impressions, "click": names.clicks}
    producer = confluent_producer(bootstrap, "bench-plain", **PRODUCER_SETTINGS)
    records = traffic.records * times  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    for i, (kind, key, value, t, _) in enumerate(records):
        while True:
            try:
                producer.produce(topic[kind], value, key, timestamp=t)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 1000 == 0:
            producer.poll(0)
    producer.flush(60)
    return len(records) / (time.perf_counter() - t0)


def run_loadgen(bootstrap: str, src: str, traffic: object, laps: int | None, rate: float | None = None,
                duration_s: float | None = None) -> object:
    from drnflow.tools.loadgen import LoadgenConfig, loadgen

    cfg = LoadgenConfig(bootstrap=bootstrap, from_prefix=src, to_prefix=_prefix("lg"), rate=rate,
                        laps=laps, duration_s=duration_s, client="confluent", with_weights=False, progress=False)
    return loadgen(cfg, traffic)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--impressions", type=int, default=20_000, help="impressions simulate logs once")
    ap.add_argument("--laps", type=int, default=4, help="laps of (c), the rewritten ones")
    ap.add_argument("--rate", type=float, default=50_000, help="events/s of (d)")
    ap.add_argument("--seconds", type=float, default=8.0, help="length of (d)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--bootstrap", default=None, help="use this broker instead of starting a private one")
    args = ap.parse_args(argv)

    from drnflow.demo.private_broker import start_private_broker
    from drnflow.stack.kafka import create_topics
    from drnflow.tools.loadgen import read_traffic
    from operators.kafka_io import RecordRange
    from schemas.topics import TopicNames

    broker = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        broker = start_private_broker("bench-loadgen")
        bootstrap = broker.config.bootstrap
    try:
        src = TopicNames(_prefix("src"))
        create_topics(bootstrap, src)
        subprocess.run([sys.executable, "-m", "drnflow", "simulate", "--bootstrap", bootstrap, "--prefix", src.prefix,
                        "--impressions", str(args.impressions), "--no-progress", "--policy", "random"],
                       cwd=ROOT, check=True, capture_output=True)
        traffic = read_traffic(bootstrap, src.prefix, RecordRange(), "confluent")
        n = len(traffic.records)
        print(f"{args.impressions} simulated impressions = {n} events a lap; median of {args.repeats} runs; "
              f"load average {loadavg()}")
        print(f"{'writer':<44} {'events/s':>10} {'x plain':>8}   load")

        plain_produce(bootstrap, traffic, 1)  # the broker's first topics and batches, untimed
        plain_rates, loadgen_rates = [], []
        for _ in range(args.repeats):
            plain_rates.append(plain_produce(bootstrap, traffic, args.laps + 1))
            done = run_loadgen(bootstrap, src.prefix, traffic, args.laps + 1)
            loadgen_rates.append(done.rate)  # type: ignore[attr-defined]
        plain, lg = statistics.median(plain_rates), statistics.median(loadgen_rates)
        label = f"(a) plain confluent produce, {args.laps + 1} x the lap"
        print(f"{label:<44} {plain:>10,.0f} {1.0:>8.2f}   {loadavg()}", flush=True)
        label = f"(b) loadgen, {args.laps + 1} laps (rewritten from 1)"
        print(f"{label:<44} {lg:>10,.0f} {lg / plain:>8.2f}   {loadavg()}", flush=True)
        held = [run_loadgen(bootstrap, src.prefix, traffic, None, rate=args.rate, duration_s=args.seconds)
                for _ in range(args.repeats)]
        achieved = statistics.median(r.rate for r in held)  # type: ignore[attr-defined]
        behind = max(r.behind_s for r in held)  # type: ignore[attr-defined]
        label = f"(c) loadgen --rate {args.rate:,.0f} for {args.seconds:g} s"
        print(f"{label:<44} {achieved:>10,.0f} {achieved / plain:>8.2f}   {loadavg()}"
              f"   (at most {behind:.2f} s behind the schedule)", flush=True)
    finally:
        if broker is not None:
            broker.stop()
    return 0


if __name__ == "__main__":
    t0 = time.monotonic()
    rc = main()
    print(f"({time.monotonic() - t0:.0f} s)")
    sys.exit(rc)
