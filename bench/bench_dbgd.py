"""Time DbgdLearner.on_window (one DBGD decision + MINOR publish) per window, by model size and
accepted seeds, plus snapshot/restore. Run: `.venv/bin/python bench/bench_dbgd.py [--repeats N]`."""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from models.dbgd import DbgdConfig, DbgdLearner
from models.weights import ParamSpec, make_model_weights_record

WIN = 30 * 60_000


def _learner(params: int, seed: int = 0) -> DbgdLearner:
    w = np.random.default_rng(seed).normal(size=params).astype(np.float32)
    lrn = DbgdLearner("bench", DbgdConfig())
    lrn.rebase(make_model_weights_record("bench", 1, None, "MAJOR", w, [ParamSpec("w", (params,))], 0, []))
    return lrn


def _rows(version: int, window: int, seeds: int) -> list[dict[str, int | str]]:
    return [
        {
            "model_id": "bench",
            "window_start": window * WIN,
            "window_end": (window + 1) * WIN,
            "model_version": version,
            "explore_seed": 1000 * window + s,
            "impressions": 100,
            "explore_wins": 30,
            "current_wins": 20,
            "ties": 10,
            "no_clicks": 40,
        }
        for s in range(seeds)
    ]


def time_on_window(params: int, seeds: int, repeats: int) -> float:
    """Median seconds of one on_window call whose `seeds` rows are all accepted."""
    lrn = _learner(params)
    lrn.on_window(_rows(1, 0, seeds))  # warm-up
    times = []
    for k in range(1, repeats + 1):
        assert lrn.version is not None
        rows = _rows(lrn.version, k, seeds)
        t0 = time.perf_counter()
        res = lrn.on_window(rows)
        times.append(time.perf_counter() - t0)
        assert res.weights is not None
    return statistics.median(times)


def time_snapshot(params: int, repeats: int) -> tuple[float, float, int]:
    lrn = _learner(params)
    for k in range(3):
        assert lrn.version is not None
        lrn.on_window(_rows(lrn.version, k, 1))
    snaps, restores = [], []
    data = b""
    for _ in range(repeats):
        t0 = time.perf_counter()
        data = lrn.snapshot()
        snaps.append(time.perf_counter() - t0)
        other = DbgdLearner("bench")
        t0 = time.perf_counter()
        other.restore(data)
        restores.append(time.perf_counter() - t0)
    return statistics.median(snaps), statistics.median(restores), len(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    print(f"DbgdLearner.on_window, median of {args.repeats} windows (all rows accepted, multiplicative ΔW)")
    print(f"{'params':>8} {'seeds':>6} {'ms/window':>10} {'ms/seed':>9} {'vs 1 seed':>10}")
    for params in (10_000, 100_000):
        one = None
        for seeds in (1, 4, 16):
            t = time_on_window(params, seeds, args.repeats)
            one = one if one is not None else t
            print(f"{params:>8} {seeds:>6} {t * 1e3:>10.3f} {t * 1e3 / seeds:>9.3f} {t / one:>9.2f}x")
    print("snapshot/restore (history of 3 versions)")
    for params in (10_000, 100_000):
        snap, rest, size = time_snapshot(params, args.repeats)
        print(
            f"{params:>8} params: snapshot {snap * 1e3:.3f} ms, restore {rest * 1e3:.3f} ms, "
            f"{size / 1e6:.2f} MB"
        )


if __name__ == "__main__":
    main()
