"""Simulated traffic per second: `drnflow simulate` to Kafka (impressions/s and clicks/s, on a private broker
on free ports), the in-memory simulator alone, and the simulator with the Avro encode (everything simulate
does but Kafka). Median of --repeats runs; prints the load average (a shared two-core machine).

Targets (issue 15): simulate -> Kafka >= 20k impressions/s on one core.

Run: PYTHONPATH=. .venv/bin/python bench/bench_simulate.py [--impressions 5000 --repeats 3 --profile]
--profile prints a cProfile top-15 (by own time) of one in-process simulate -> Kafka run.
--code DIR times another checkout's simulator and `drnflow simulate` (e.g. an unpacked `git archive main`)
against the same broker, for a before/after table (set DRNFLOW_CACHE to this checkout's .cache so that it
finds the MovieLens data and the fitted MF instead of fitting them again).
"""

from __future__ import annotations

import os

# one core, set before numpy loads its thread pools
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

from machine import loadavg  # noqa: E402  (bench/machine.py: the scripts run with bench/ on sys.path)

ROOT = Path(__file__).resolve().parent.parent
TARGET_KAFKA = 20_000
SIM_FLAGS = ["--policy", "random", "--seed", "0", "--click-model", "navigational"]


_IN_MEMORY = """
import statistics, sys, time
from drnflow import datasets
from models.simulator import Simulator, SimulatorConfig
from models.simulator.policies import RandomPolicy
from models.simulator.stream import event_time_order
from schemas import serde
try:  # the checkout's own Impression encoder (fastavro's, before schemas/fast_encode.py)
    from schemas.fast_encode import encode_impression
except ImportError:
    def encode_impression(r):
        return serde.encode("Impression", r, check=False)
try:  # and its Click encoder (fastavro's, before encode_click)
    from schemas.fast_encode import encode_click
except ImportError:
    def encode_click(r):
        return serde.encode("Click", r, check=False)
n, repeats = int(sys.argv[1]), int(sys.argv[2])
world = datasets.world()
def sim():
    return Simulator(world, RandomPolicy("random", seed=0), SimulatorConfig(seed=0))
def alone(m):
    for _ in sim().run(m):
        pass
def encoded(m):
    for kind, r in event_time_order(sim().run(m)):
        encode_impression(r) if kind == "impression" else encode_click(r)
alone(200)
for name, fn in (("alone", alone), ("encoded", encoded)):
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(n)
        rates.append(n / (time.perf_counter() - t0))
    print(name, statistics.median(rates))
"""


def in_memory(code: Path, n: int, repeats: int) -> dict[str, float]:
    """{alone, encoded}: median impressions/s of the simulator of checkout `code`, in a fresh process."""
    out = subprocess.run([sys.executable, "-c", _IN_MEMORY, str(n), str(repeats)], cwd=code, check=True,
                         env={**os.environ, "PYTHONPATH": str(code)}, capture_output=True, text=True).stdout
    return {line.split()[0]: float(line.split()[1]) for line in out.splitlines() if line.strip()}


_SUMMARY = re.compile(r"simulate: (\d+) impressions, (\d+) clicks .* in ([\d.]+) s")


def simulate_kafka(code: Path, bootstrap: str, n: int, repeats: int) -> tuple[float, float]:
    """Median (impressions/s, clicks/s) of `drnflow simulate` of checkout `code` (its own timing: from the
    first record to the last one acknowledged, the world's loading left out), fresh topics per run."""
    from drnflow.stack.kafka import create_topics
    from schemas.topics import TopicNames

    imp, clk = [], []
    for _ in range(repeats):
        names = TopicNames(prefix=f"bench{uuid.uuid4().hex[:8]}.")
        create_topics(bootstrap, names)
        out = subprocess.run(
            [sys.executable, "-m", "drnflow", "simulate", "--bootstrap", bootstrap, "--prefix", names.prefix,
             "--impressions", str(n), "--no-progress", *SIM_FLAGS],
            cwd=code, env={**os.environ, "PYTHONPATH": str(code)}, capture_output=True, text=True, check=True,
        ).stdout
        m = _SUMMARY.search(out)
        if m is None:
            raise RuntimeError(f"no summary line in simulate's output: {out[-500:]}")
        took = float(m.group(3))
        imp.append(int(m.group(1)) / took)
        clk.append(int(m.group(2)) / took)
    return statistics.median(imp), statistics.median(clk)


def profile(bootstrap: str, n: int) -> None:
    """cProfile top-15 of one in-process simulate -> Kafka run (this checkout)."""
    import cProfile
    import pstats

    from drnflow import datasets
    from drnflow.stack.kafka import create_topics
    from models.simulator import Simulator, SimulatorConfig
    from models.simulator.policies import RandomPolicy
    from operators.sim_producer import EventWriter, produce_steps
    from schemas.topics import TopicNames

    names = TopicNames(prefix=f"prof{uuid.uuid4().hex[:8]}.")
    create_topics(bootstrap, names)
    world = datasets.world()
    sim = Simulator(world, RandomPolicy("random", seed=0), SimulatorConfig(seed=0))
    writer = EventWriter(bootstrap, names)
    prof = cProfile.Profile()
    prof.enable()
    produce_steps(sim.run(n), writer)
    prof.disable()
    writer.close()
    print(f"\ncProfile of simulate -> Kafka, {n} impressions (top 15 by own time):")
    pstats.Stats(prof).sort_stats("tottime").print_stats(15)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--impressions", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="print a cProfile top-15 of simulate -> Kafka")
    ap.add_argument("--code", type=Path, action="append", default=[],
                    help="also time this checkout (repeatable), e.g. an unpacked `git archive main`")
    ap.add_argument("--bootstrap", default=None, help="use this broker instead of starting a private one")
    args = ap.parse_args(argv)

    from drnflow.demo.private_broker import start_private_broker

    checkouts = [*[c.resolve() for c in args.code], ROOT]
    broker = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        try:
            broker = start_private_broker("bench-sim")
            bootstrap = broker.config.bootstrap
        except Exception as e:  # no Java, no jars: the in-memory numbers still mean something
            print(f"no private Kafka broker ({type(e).__name__}: {e}); timing the in-memory simulator only")
            broker = None
    try:
        print(f"policy random, navigational clicks, 100 candidates, k=10; median of {args.repeats} runs of "
              f"{args.impressions} impressions; load average {loadavg()}")
        print(f"{'checkout':<28} {'in-memory sim':>14} {'sim+encode':>11} {'simulate->Kafka':>16} {'clicks/s':>9}"
              f"   load")
        for code in checkouts:
            mem = in_memory(code, args.impressions, args.repeats)
            imp, clk = (simulate_kafka(code, bootstrap, args.impressions, args.repeats) if bootstrap
                        else (float("nan"), float("nan")))
            label = "this checkout" if code == ROOT else str(code)[-28:]
            print(f"{label:<28} {mem['alone']:>10.0f}/s {mem['encoded']:>9.0f}/s {imp:>12.0f} imp/s {clk:>9.0f}"
                  f"   {loadavg()}", flush=True)
        if bootstrap:
            verdict = "met" if imp >= TARGET_KAFKA else "BELOW target"
            print(f"simulate -> Kafka: {imp:.0f} impressions/s, target >= {TARGET_KAFKA}: {verdict}")
        if args.profile and bootstrap:
            profile(bootstrap, args.impressions)
    finally:
        if broker is not None:
            broker.stop()
    return 0


if __name__ == "__main__":
    t0 = time.monotonic()
    rc = main()
    print(f"({time.monotonic() - t0:.0f} s)")
    sys.exit(rc)
