"""Does online learning help? Seeds x worlds x rankers in the in-memory loop (the job's Ranker, credit,
DbgdLearner and major-update code, no Kafka), measured on the simulator's truth.

Every seed first serves a logging policy (popular, with a random order on an `epsilon` share of requests)
for BENCH_LEARNING_LOG impressions; DRN's offline start is the major update trained on that log from
scratch (models/major/offline_start.py). Then each arm serves the same next n requests (return visits off,
so the request stream does not depend on the arm):

- random, popular, oracle (the true grades of the moment): fixed policies;
- frozen: the offline start, interleaved with its explore network, weights never move (the control);
- major: the offline start plus a major update every MAJOR_EVERY of event time (retrain on the log since the
  last one, gate, rebase), no DBGD;
- dbgd: the offline start plus a DBGD minor update per window, no major update;
- drn: offline start + DBGD + major updates (DRN's timeline);
- drnp: as drn, every MAJOR published on probation (BENCH_LEARNING_PROBATION_WINDOWS windows against its base,
  also one the offline gate would refuse: `refused_on_probation`) and rolled back when it loses online; its
  explore round is the window (drn's is the ranker's default 30 min);
- mgd: as drn with MGD instead of DBGD: BENCH_LEARNING_EXPLORE_LISTS (default 4) explore networks multileaved
  per round, each credited against the current list, W moved to the mean of the winners;
- pdgd: as drn with PDGD instead of DBGD: the ranker shows a Plackett-Luce sample of Q/τ and the learner takes
  one PDGD step per window (models/pdgd_learner.py), major updates as drn;
- cold: DBGD alone from a seeded random network (what the loop did before the offline start).

Worlds: static, and news drift (models/simulator/drift.py). Metrics per arm: CTR per shown slot under the
position-based click model the users click by; the expected CTR the same lists would get under each cascade
click model; true nDCG@10 over the candidates; each for the whole run and its last 20%, mean over seeds
with a 95% t-interval; and per seed the gain of drn over frozen and over popular.

BENCH_LEARNING_IMPRESSIONS (default 20000), BENCH_LEARNING_SEEDS (default 5), BENCH_LEARNING_LOG (default
10000), BENCH_LEARNING_ARMS and BENCH_LEARNING_WORLDS (comma-separated, default all) size it. Writes
learning.json and learning.png to BENCH_LEARNING_OUT (default out/bench).
"""

from __future__ import annotations

import os

# The ranker's matrix products are small: multi-threaded BLAS only spins against the other core.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ARMS = ("random", "popular", "frozen", "major", "dbgd", "drn", "drnp", "mgd", "pdgd", "cold", "oracle")
#: The pdgd arm's Plackett-Luce temperature and step size (BENCH_LEARNING_PDGD_TEMPERATURE / _LR override):
#: from a sweep on news, seed 0, 10k impressions (τ 0.01; lr 0.01, 0.1, 1.0: last-20% CTR 0.1835, 0.1872, 0.1636).
PDGD_TEMPERATURE = float(os.environ.get("BENCH_LEARNING_PDGD_TEMPERATURE", "0.01"))
PDGD_LR = float(os.environ.get("BENCH_LEARNING_PDGD_LR", "0.1"))
#: The drnp arm's probation: a MAJOR is interleaved against its base for this many windows (one explore round
#: each) and rolled back when it wins less than half of the decided impressions.
PROBATION_WINDOWS = int(os.environ.get("BENCH_LEARNING_PROBATION_WINDOWS", "3"))
#: ... rolled back only when it loses with this one-sided confidence (Wilson bound); 0: on the point estimate.
PROBATION_CONFIDENCE = float(os.environ.get("BENCH_LEARNING_PROBATION_CONFIDENCE", "0.95"))
EXPLORE_LISTS = int(os.environ.get("BENCH_LEARNING_EXPLORE_LISTS", "4"))
WINDOW_MS = 10 * 60_000
MAJOR_EVERY_MS = 2 * 3_600_000
#: DBGD settings of the learning arms (bench/sweep_learning.py chose them; BENCH_LEARNING_ALPHA / _ETA /
#: _CONFIDENCE override, _CONFIDENCE=none turns the binomial acceptance test off).
ALPHA = float(os.environ.get("BENCH_LEARNING_ALPHA", "0.1"))
ETA = float(os.environ.get("BENCH_LEARNING_ETA", "0.5"))
_conf = os.environ.get("BENCH_LEARNING_CONFIDENCE", "none")
CONFIDENCE = None if _conf == "none" else float(_conf)
EPSILON = 0.3
CASCADES = ("perfect", "navigational", "informational")
T_975 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}


def interval(xs: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% t-interval across seeds."""
    m = statistics.fmean(xs)
    if len(xs) < 2:
        return m, float("nan")
    return m, T_975.get(len(xs) - 1, 1.96) * statistics.stdev(xs) / len(xs) ** 0.5


def sim_config(seed: int, drift: str, total: int) -> Any:
    from models.simulator import ArrivalConfig, SimulatorConfig
    from models.simulator.drift import DriftConfig

    return SimulatorConfig(seed=seed, click_model="pbm", return_visits=False,
                           arrivals=ArrivalConfig(mode="poisson", rate_per_s=1.0),
                           # items keep being published for the whole run (log + n arrivals at 1/s)
                           drift=DriftConfig(kind=drift, seed=seed, publish_span_h=max(total / 3600.0, 1.0)))


def logging_policy(seed: int) -> Any:
    from models.simulator.policies import ExploringPolicy, PopularPolicy

    return ExploringPolicy(PopularPolicy("logging"), EPSILON, model_id="drn", seed=seed)


def offline_start(world: Any, seed: int, drift: str, n_log: int, total: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The MAJOR v1 trained on the logging policy's first n_log impressions, and its report."""
    from models.major.ddqn import DdqnConfig
    from models.major.offline_start import log_range, train_offline_start
    from models.major.update import MajorUpdateConfig
    from models.perturbation import ExploreParams
    from models.simulator import Simulator

    sim = Simulator(world, logging_policy(seed), sim_config(seed, drift, total))
    cfg = MajorUpdateConfig(ddqn=DdqnConfig(seed=seed, device="cpu"), run_baselines=False)
    record, outcome = train_offline_start(log_range("drn", sim.run(n_log)), cfg, created_at=0,
                                          explore=ExploreParams(ALPHA))
    return record, outcome.report


def truth_judge(world: Any, sim: Any, sample: int = 300) -> Any:
    """Scores a major update's candidate and base on the simulator's truth: each ranks the candidates of the
    update's last `sample` requests greedily, and the score is the expected PBM clicks per slot of its top k
    under the true grades of that moment. The gate agrees with the truth when it publishes exactly the
    candidates that score at least as well as their base."""
    from models.major.offline_eval import network_scorer
    from models.simulator.click_models import click_model

    pbm = click_model("pbm")

    def judge(candidate: Any, base: Any, steps: list[Any]) -> dict[str, float]:
        scorers = {"candidate": network_scorer(candidate), "base": network_scorer(base)}
        scores = {"candidate": 0.0, "base": 0.0}
        slots = 0
        for step in steps[-sample:]:
            t = int(step.impression["event_time"])
            cands = np.asarray(step.candidates, dtype=np.int64)
            age = None if sim.drift is None else sim.drift.age_fraction(cands, t)
            _, actions = world.features(step.user, cands, event_time=t, item_age=age)
            state = np.asarray(step.impression["state_features"], dtype=np.float32)
            grades = world.grades[step.user, cands]
            if sim.drift is not None:
                grades = sim.drift.grades(grades, cands, t)
            k = len(step.impression["slots"])
            slots += k
            for name, scorer in scorers.items():
                q = scorer(state[None], actions[None], np.ones((1, len(cands)), dtype=bool))[0]
                top = np.lexsort((np.arange(len(q)), -q))[:k]
                scores[name] += float(pbm.click_probabilities(np.asarray(grades)[top]).sum())
        return {name: v / max(slots, 1) for name, v in scores.items()}

    return judge


def kept(update: dict[str, Any]) -> bool:
    """Whether a major update's candidate ended up serving: published, and not rolled back by probation."""
    return update["version"] is not None and not update.get("probation", {}).get("rolled_back", False)


def gate_agreement(judged: list[dict[str, Any]]) -> str:
    """How often the update's final decision (gate, then probation) agrees with the truth: a candidate is kept
    exactly when it scores at least as well as its base on the simulator's truth."""
    better = [u["truth"]["candidate"] >= u["truth"]["base"] for u in judged]
    agree = sum(1 for u, b in zip(judged, better, strict=True) if kept(u) == b)
    published = sum(1 for u in judged if u["version"] is not None)
    overruled = sum(1 for u in judged if (u.get("gate") or {}).get("overruled_by_probation"))
    rolled_back = sum(1 for u in judged if u.get("probation", {}).get("rolled_back"))
    return (f"major-update decisions vs the truth: agree on {agree} of {len(judged)} updates; published "
            f"{published} ({overruled} the offline gate refused, on probation), rolled back {rolled_back}, "
            f"kept {sum(1 for u in judged if kept(u))}, truly not worse {sum(better)}")


def run_arm(world: Any, arm: str, seed: int, drift: str, n: int, n_log: int, start: dict[str, Any]) -> dict[str, Any]:
    from drnflow.demo.inmemory import MajorUpdates, make_learner, make_pdgd, make_ranker, run_loop
    from models.initial_model import initial_drn_record
    from models.major.ddqn import DdqnConfig
    from models.major.update import MajorUpdateConfig
    from models.pdgd_learner import PdgdConfig
    from models.perturbation import ExploreParams
    from models.probation import ProbationParams
    from models.simulator import Simulator
    from models.simulator.click_models import CASCADE_MODELS
    from models.simulator.evaluate import ndcg
    from models.simulator.policies import OraclePolicy, PopularPolicy, RandomPolicy

    sim = Simulator(world, logging_policy(seed), sim_config(seed, drift, n_log + n))
    for _ in sim.run(n_log):  # the logging period: every arm meets the same requests after it
        pass
    rows: list[list[float]] = []  # per step: clicks, slots, expected clicks per cascade, nDCG@10

    def keep(step: Any) -> None:
        grades = np.array([t.grade for t in step.truth], dtype=np.int64)
        cands = np.asarray(step.candidates, dtype=np.int64)
        ideal = world.grades[step.user, cands]
        if sim.drift is not None:
            ideal = sim.drift.grades(ideal, cands, int(step.impression["event_time"]))
        ideal = np.sort(np.asarray(ideal, dtype=np.int64))[::-1][: grades.size]
        rows.append([len(step.clicks), grades.size,
                     *(float(CASCADE_MODELS[c].click_probabilities(grades).sum()) for c in CASCADES),
                     ndcg(grades, ideal)])

    minors = majors_published = 0
    updates: list[dict[str, Any]] = []
    if arm in ("frozen", "major", "dbgd", "drn", "drnp", "mgd", "pdgd", "cold"):
        major = (initial_drn_record("drn", world.state_dim, world.action_dim, seed, created_at=0,
                                    explore=ExploreParams(ALPHA)) if arm == "cold" else start)
        ranker = make_ranker("drn", major, alpha=ALPHA, seed=seed, n_explore=EXPLORE_LISTS if arm == "mgd" else 1,
                             round_ms=WINDOW_MS if arm == "drnp" else None)
        learner: Any = (make_learner("drn", major, ALPHA, ETA, WINDOW_MS, WINDOW_MS, confidence=CONFIDENCE)
                        if arm in ("dbgd", "drn", "drnp", "mgd", "cold") else None)
        if arm == "pdgd":
            ranker, learner = make_pdgd("drn", major, PdgdConfig(PDGD_LR, PDGD_TEMPERATURE), seed)
        probation = ProbationParams(PROBATION_WINDOWS, 0.5, PROBATION_CONFIDENCE) if arm == "drnp" else None
        majors = (MajorUpdates("drn", MAJOR_EVERY_MS, MajorUpdateConfig(
            ddqn=DdqnConfig(seed=seed, steps=500, device="cpu"), run_baselines=False, probation=probation,
            refused_on_probation=probation is not None),
            ExploreParams(ALPHA), judge=truth_judge(world, sim))
            if arm in ("major", "drn", "drnp", "mgd", "pdgd") else None)
        sim.policy = ranker
        stats = run_loop(sim, ranker, learner, n, WINDOW_MS, on_step=keep, majors=majors)
        minors = sum(1 for w in stats.windows if w["accepted"])
        majors_published = 0 if majors is None else sum(1 for o in majors.outcomes if o["version"] is not None)
        updates = [] if majors is None else majors.outcomes
    else:
        users = {u: i for i, u in enumerate(world.ml.user_ids)}
        fixed: dict[str, Any] = {"random": lambda: RandomPolicy("x", seed=seed), "popular": lambda: PopularPolicy("x"),
                                 "oracle": lambda: OraclePolicy(world.grades, users, world.item_index, "x",
                                                                drift=sim.drift)}
        sim.policy = fixed[arm]()
        for step in sim.run(n):
            keep(step)
    m = np.array(rows, dtype=np.float64)
    tail = slice(int(0.8 * n), n)

    def metrics(part: np.ndarray) -> dict[str, float]:
        out = {"ctr": part[:, 0].sum() / part[:, 1].sum()}
        out.update({f"ctr_{c}": part[:, 2 + i].sum() / part[:, 1].sum() for i, c in enumerate(CASCADES)})
        out["ndcg10"] = float(part[:, 2 + len(CASCADES)].mean())
        return out

    return {"whole": metrics(m), "last20": metrics(m[tail]), "minors": minors, "majors": majors_published,
            "updates": updates, "curve": _smooth(m[:, 0], m[:, 1])}


def _smooth(clicks: np.ndarray, slots: np.ndarray, points: int = 50) -> list[float]:
    parts = np.array_split(np.arange(len(clicks)), points)
    return [float(clicks[p].sum() / max(slots[p].sum(), 1.0)) for p in parts]


def main() -> None:
    import torch

    from drnflow import datasets

    torch.set_num_threads(1)
    n = int(os.environ.get("BENCH_LEARNING_IMPRESSIONS", "20000"))
    n_log = int(os.environ.get("BENCH_LEARNING_LOG", "10000"))
    seeds = list(range(int(os.environ.get("BENCH_LEARNING_SEEDS", "5"))))
    arms = [a for a in os.environ.get("BENCH_LEARNING_ARMS", ",".join(ARMS)).split(",") if a]
    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        sys.exit(f"BENCH_LEARNING_ARMS: unknown arm(s) {', '.join(unknown)}; known: {', '.join(ARMS)}")
    world = datasets.world()
    print(f"learning bench: {len(seeds)} seeds x {len(arms)} arms x 2 worlds; {n_log} logged impressions "
          f"(popular, {EPSILON:.0%} random) for the offline start, then {n} impressions per arm; PBM clicks, "
          f"window {WINDOW_MS // 60_000} min, major update every {MAJOR_EVERY_MS // 3_600_000} h, alpha {ALPHA}, "
          f"eta {ETA}, acceptance confidence {CONFIDENCE}; load average {os.getloadavg()[0]:.2f}", flush=True)
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    starts: dict[str, list[dict[str, Any]]] = {}
    worlds = [w for w in os.environ.get("BENCH_LEARNING_WORLDS", "none,news").split(",") if w]
    for drift in worlds:
        results[drift] = {arm: [] for arm in arms}
        starts[drift] = []
        for seed in seeds:
            t0 = time.monotonic()
            start, report = offline_start(world, seed, drift, n_log, n_log + n)
            starts[drift].append({"offline": report.get("offline"), "training": report.get("training")})
            print(f"  world {drift:<4} seed {seed} offline start trained on {report['input']['impressions_used']} "
                  f"impressions ({time.monotonic() - t0:.0f} s)", flush=True)
            for arm in arms:
                t0 = time.monotonic()
                r = run_arm(world, arm, seed, drift, n, n_log, start)
                results[drift][arm].append(r)
                print(f"  world {drift:<4} seed {seed} {arm:<8} CTR {r['whole']['ctr']:.4f} last20% "
                      f"{r['last20']['ctr']:.4f} nDCG@10 {r['last20']['ndcg10']:.4f} minors {r['minors']:>3} "
                      f"majors {r['majors']} ({time.monotonic() - t0:.0f} s)", flush=True)
    print()
    for drift, by_arm in results.items():
        print(f"world {'static' if drift == 'none' else 'news drift'}: mean over {len(seeds)} seeds ± 95% interval")
        cols = ["ctr", *(f"ctr_{c}" for c in CASCADES), "ndcg10"]
        for part in ("whole", "last20"):
            print(f"  {'whole run' if part == 'whole' else 'last 20%'}: {'arm':<8}" + "".join(f"{c:>22}" for c in cols))
            for arm in arms:
                cells = [interval([r[part][c] for r in by_arm[arm]]) for c in cols]
                print(f"  {'':<10}{arm:<8}" + "".join(f"{m:>13.4f} ± {h:<6.4f}" for m, h in cells))
        for arm, other in (("drn", "frozen"), ("drn", "popular"), ("drnp", "drn"), ("drnp", "frozen"),
                           ("drnp", "popular"), ("dbgd", "frozen"), ("major", "frozen"), ("mgd", "drn"),
                           ("mgd", "frozen"), ("pdgd", "drn"), ("pdgd", "frozen"), ("cold", "frozen")):
            if arm in by_arm and other in by_arm:
                gains = [d["last20"]["ctr"] - f["last20"]["ctr"]
                         for d, f in zip(by_arm[arm], by_arm[other], strict=True)]
                g, gh = interval(gains)
                wins = sum(1 for x in gains if x > 0)
                print(f"  {arm} - {other}, CTR last 20%: {g:+.4f} ± {gh:.4f}; {arm} better on {wins} of "
                      f"{len(gains)} seeds ({', '.join(f'{x:+.4f}' for x in gains)})")
        for arm, runs in by_arm.items():
            judged = [u for r in runs for u in r["updates"] if "truth" in u]
            if judged:
                print(f"  {arm}: {gate_agreement(judged)}")
        print()
    out = Path(os.environ.get("BENCH_LEARNING_OUT", "out/bench"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "learning.json").write_text(json.dumps({"impressions": n, "log_impressions": n_log, "seeds": seeds,
                                                   "results": results, "offline_starts": starts}, default=float))
    _plot(results, out / "learning.png")
    print(f"wrote {out / 'learning.json'} and {out / 'learning.png'}")


def _plot(results: dict[str, dict[str, list[dict[str, Any]]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4), sharey=True, squeeze=False)
    for ax, (drift, by_arm) in zip(axes[0], results.items(), strict=True):
        for arm, runs in by_arm.items():
            curves = np.array([r["curve"] for r in runs])
            x = np.linspace(0, 100, curves.shape[1])
            ax.plot(x, curves.mean(axis=0), label=arm)
        ax.set_title("static world" if drift == "none" else "news drift")
        ax.set_xlabel("% of the run (after the logging period)")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("CTR per shown slot (mean over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
