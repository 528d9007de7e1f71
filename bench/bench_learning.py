"""Does online learning help? Seeds x worlds x rankers in the in-memory loop (the job's Ranker, credit and
DbgdLearner code, no Kafka), measured on the simulator's truth.

Arms: random, popular, frozen (the initial DRN network, interleaved with its explore network, weights
never move: the demo's control), dbgd (the same start plus a DBGD minor update per window), oracle (the
true grades of the moment). Worlds: static, and news drift (models/simulator/drift.py). Return visits
are off, so every arm of a seed meets the same requests. CTR is clicks per shown slot under the
position-based click model; the table gives the mean over seeds with a 95% t-interval, for the whole
run and its last 20%, and the dbgd - frozen gain per seed. The DRN start here is the seeded random
network: the offline-trained start of issue 13 is not built yet, so this measures DBGD alone.

BENCH_LEARNING_IMPRESSIONS (default 20000) and BENCH_LEARNING_SEEDS (default 5) size it. Writes
out/bench/learning.json and learning.png.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ARMS = ("random", "popular", "frozen", "dbgd", "oracle")
WINDOW_MS = 10 * 60_000
ALPHA, ETA = 0.1, 0.5
T_975 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}


def interval(xs: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% t-interval across seeds."""
    m = statistics.fmean(xs)
    if len(xs) < 2:
        return m, float("nan")
    return m, T_975.get(len(xs) - 1, 1.96) * statistics.stdev(xs) / len(xs) ** 0.5


def run_arm(world: Any, arm: str, seed: int, drift: str, n: int) -> dict[str, Any]:
    from drnflow.demo.inmemory import make_learner, make_ranker, run_loop
    from models.initial_model import initial_drn_record
    from models.simulator import ArrivalConfig, Simulator, SimulatorConfig
    from models.simulator.drift import DriftConfig
    from models.simulator.policies import OraclePolicy, PopularPolicy, RandomPolicy

    cfg = SimulatorConfig(seed=seed, click_model="pbm", return_visits=False,
                          arrivals=ArrivalConfig(mode="poisson", rate_per_s=1.0),
                          # items keep being published for the whole run (n arrivals at 1/s)
                          drift=DriftConfig(kind=drift, seed=seed, publish_span_h=max(n / 3600.0, 1.0)))
    curve: list[tuple[int, int]] = []  # (clicks, shown slots) per step

    def keep(step: Any) -> None:
        curve.append((len(step.clicks), len(step.impression["slots"])))

    if arm in ("frozen", "dbgd"):
        major = initial_drn_record("drn", world.state_dim, world.action_dim, seed, created_at=0)
        ranker = make_ranker("drn", major, alpha=ALPHA, seed=seed)
        learner = make_learner("drn", major, ALPHA, ETA, WINDOW_MS, WINDOW_MS) if arm == "dbgd" else None
        sim = Simulator(world, ranker, cfg)
        stats = run_loop(sim, ranker, learner, n, WINDOW_MS, on_step=keep)
        minors = sum(1 for w in stats.windows if w["accepted"])
    else:
        users = {u: i for i, u in enumerate(world.ml.user_ids)}
        policy: Any = {"random": lambda: RandomPolicy("x", seed=seed), "popular": lambda: PopularPolicy("x"),
                       "oracle": lambda: OraclePolicy(world.grades, users, world.item_index, "x")}[arm]()
        sim = Simulator(world, policy, cfg)
        if arm == "oracle":
            policy.drift = sim.drift
        for step in sim.run(n):
            keep(step)
        minors = 0
    clicks = np.array([c for c, _ in curve], dtype=np.float64)
    slots = np.array([s for _, s in curve], dtype=np.float64)
    tail = slice(int(0.8 * n), n)
    return {"ctr": clicks.sum() / slots.sum(), "ctr_last20": clicks[tail].sum() / slots[tail].sum(),
            "minors": minors, "curve": [float(x) for x in _smooth(clicks, slots)]}


def _smooth(clicks: np.ndarray, slots: np.ndarray, points: int = 50) -> list[float]:
    parts = np.array_split(np.arange(len(clicks)), points)
    return [clicks[p].sum() / max(slots[p].sum(), 1.0) for p in parts]


def main() -> None:
    import torch

    from drnflow import datasets

    torch.set_num_threads(1)
    n = int(os.environ.get("BENCH_LEARNING_IMPRESSIONS", "20000"))
    seeds = list(range(int(os.environ.get("BENCH_LEARNING_SEEDS", "5"))))
    world = datasets.world()
    print(f"learning bench: {len(seeds)} seeds x {len(ARMS)} arms x 2 worlds, {n} impressions each, PBM clicks, "
          f"window {WINDOW_MS // 60_000} min, alpha {ALPHA}, eta {ETA}; load average {os.getloadavg()[0]:.2f}")
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for drift in ("none", "news"):
        results[drift] = {arm: [] for arm in ARMS}
        for seed in seeds:
            for arm in ARMS:
                t0 = time.monotonic()
                r = run_arm(world, arm, seed, drift, n)
                results[drift][arm].append(r)
                print(f"  world {drift:<4} seed {seed} {arm:<8} CTR {r['ctr']:.4f} last20% {r['ctr_last20']:.4f} "
                      f"minors {r['minors']:>3} ({time.monotonic() - t0:.0f} s)", flush=True)
    print()
    for drift, arms in results.items():
        print(f"world {'static' if drift == 'none' else 'news drift'}: mean over {len(seeds)} seeds, 95% interval")
        print(f"  {'arm':<8} {'CTR whole run':>22} {'CTR last 20%':>22}")
        for arm in ARMS:
            w, h = interval([r["ctr"] for r in arms[arm]])
            lw, lh = interval([r["ctr_last20"] for r in arms[arm]])
            print(f"  {arm:<8} {w:>12.4f} ± {h:<7.4f} {lw:>12.4f} ± {lh:<7.4f}")
        gains = [d["ctr_last20"] - f["ctr_last20"] for d, f in zip(arms["dbgd"], arms["frozen"], strict=True)]
        g, gh = interval(gains)
        wins = sum(1 for x in gains if x > 0)
        print(f"  dbgd - frozen, last 20%: {g:+.4f} ± {gh:.4f}; dbgd better on {wins} of {len(gains)} seeds")
        print()
    out = Path("out/bench")
    out.mkdir(parents=True, exist_ok=True)
    (out / "learning.json").write_text(json.dumps({"impressions": n, "seeds": seeds, "results": results}))
    _plot(results, out / "learning.png")
    print(f"wrote {out / 'learning.json'} and {out / 'learning.png'}")


def _plot(results: dict[str, dict[str, list[dict[str, Any]]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    for ax, (drift, arms) in zip(axes, results.items(), strict=True):
        for arm in ARMS:
            curves = np.array([r["curve"] for r in arms[arm]])
            x = np.linspace(0, 100, curves.shape[1])
            ax.plot(x, curves.mean(axis=0), label=arm)
        ax.set_title("static world" if drift == "none" else "news drift")
        ax.set_xlabel("% of the run")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("CTR per shown slot (mean over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
