"""The closed DRN loop behind `make demo`: simulator + ranker -> Kafka -> minor-update Flink job -> weights.

Simulated MovieLens users meet the DRN ranker (which follows `model-weights`), the ranker interleaves the
current and explore lists, users click by a click model, the real minor-update job (PyFlink + JVM
operators) attributes clicks, computes windowed win-rates and publishes MINOR versions, which the ranker
picks up. A live table shows each window; at the end the final model is compared with the initial model
and a frozen-model control on the same simulated users, and a PNG plot is written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from drnflow.demo.private_broker import demo_broker
from schemas import serde
from schemas.durations import format_duration_ms, parse_duration_ms
from schemas.topics import TopicNames


@dataclass(frozen=True)
class LoopDemoConfig:
    out_dir: Path
    seed: int = 7
    duration_s: float = 180.0
    window: str = "60 s"
    attribution_window: str = "10 min"
    #: bench_learning's settings: the sweep (docs/learning-sweep.md) found larger steps widen the harm
    alpha: float = 0.1
    eta: float = 0.5
    click_model: str = "pbm"
    model_id: str = "drn"
    eval_requests: int = 1000
    #: DRN's offline start: a logging policy (popular, `log_epsilon` of requests in a random order) serves this
    #: many simulated requests, the major update trains the initial network on that log, and the online loop
    #: starts from it. 0 starts from a seeded random network instead.
    log_impressions: int = 10_000
    log_epsilon: float = 0.3
    #: The live chain: the job triggers a major update every this much event time ("none": off), which
    #: `drnflow major-update --follow` runs (retrain on the log since the last one, gate, publish a MAJOR
    #: the job and the ranker rebase on), with this many DDQN steps.
    major_every: str = "15 min"
    major_steps: int = 500
    #: The simulated world: "news" changes (models/simulator/drift.py), "none" is static. The logging period,
    #: the online run and the final evaluation follow one another in that one world's time.
    drift: str = "news"
    #: dbgd: one explore network per round, team draft; mgd: `explore_lists` of them, team-draft multileaving,
    #: credit per list and the mean of the winners (the job's rule for several explore seeds); pdgd: the ranker
    #: samples Plackett–Luce lists at `temperature`, the job takes one PDGD step of `learning_rate` per window.
    learner: str = "dbgd"
    explore_lists: int = 4
    #: bench_learning's pdgd arm's settings (a sweep on news: docs/learning-results.md).
    temperature: float = 0.01
    learning_rate: float = 0.1
    #: Back-pressure: the simulator stays at most this many windows ahead of the last final window.
    windows_ahead: int = 4

    def __post_init__(self) -> None:
        if self.duration_s <= 0:
            raise ValueError(f"duration_s must be > 0, got {self.duration_s}")
        if parse_duration_ms(self.window) <= 0 or parse_duration_ms(self.attribution_window) <= 0:
            raise ValueError("window and attribution_window must be > 0")
        if self.eval_requests < 10:
            raise ValueError(f"eval_requests must be >= 10, got {self.eval_requests}")
        if self.windows_ahead < 1:
            raise ValueError(f"windows_ahead must be >= 1, got {self.windows_ahead}")
        if self.log_impressions != 0 and self.log_impressions < 100:
            raise ValueError(f"log_impressions must be 0 (no offline start) or >= 100, got {self.log_impressions}")
        if self.major_every != "none" and parse_duration_ms(self.major_every) <= 0:
            raise ValueError(f"major_every must be a duration > 0 or 'none', got {self.major_every!r}")
        if self.major_steps < 1:
            raise ValueError(f"major_steps must be >= 1, got {self.major_steps}")
        if not 0.0 <= self.log_epsilon <= 1.0:
            raise ValueError(f"log_epsilon must be in [0, 1], got {self.log_epsilon}")
        if self.drift not in ("none", "news"):
            raise ValueError(f"drift must be 'none' or 'news', got {self.drift!r}")
        if self.learner not in ("dbgd", "mgd", "pdgd"):
            raise ValueError(f"learner must be 'dbgd', 'mgd' or 'pdgd', got {self.learner!r}")
        if not (self.temperature > 0 and self.learning_rate > 0):
            raise ValueError(f"temperature and learning_rate must be > 0, got {self.temperature}, "
                             f"{self.learning_rate}")
        if self.explore_lists < 1:
            raise ValueError(f"explore_lists must be >= 1, got {self.explore_lists}")

    @property
    def n_explore(self) -> int:
        return self.explore_lists if self.learner == "mgd" else 1

    @property
    def window_ms(self) -> int:
        return parse_duration_ms(self.window)

    def ranker(self, major: dict[str, Any]) -> Any:
        """The online policy serving `major`: the DBGD/MGD ranker, or PDGD's Plackett–Luce sampler."""
        from drnflow.demo.inmemory import make_pdgd_ranker, make_ranker

        if self.learner == "pdgd":
            return make_pdgd_ranker(self.model_id, major, self.temperature, self.seed)
        return make_ranker(self.model_id, major, self.alpha, self.seed, self.n_explore)

    @property
    def attribution_ms(self) -> int:
        return parse_duration_ms(self.attribution_window)


class OutputWatcher:
    """Follows win-rates and model-weights (read_committed) in a thread; prints one line per final window."""

    def __init__(self, bootstrap: str, names: TopicNames, sim_windows: dict[int, list[int]], slots: int) -> None:
        from operators import kafka_io

        self.consumer = kafka_io.consumer(
            bootstrap, "drnflow-demo-watcher", names.win_rates, names.model_weights, names.dead_letters,
            auto_offset_reset="earliest", consumer_timeout_ms=200,
        )
        self.names = names
        self.sim_windows = sim_windows
        self.slots = slots
        self.rows: dict[int, list[dict[str, Any]]] = defaultdict(list)
        self.versions: list[dict[str, Any]] = []
        self.latest_weights: dict[str, Any] | None = None
        self.dead_letters: dict[str, int] = defaultdict(int)
        self.last_final_end: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-watcher", daemon=True)
        self._printed_header = False
        self._unprinted: set[int] = set()

    def start(self) -> OutputWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.consumer.close()
        for window in sorted(self._unprinted):
            self._print_window(window)
        self._unprinted.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            batch = self.consumer.poll(timeout_ms=200)
            for tp, messages in batch.items():
                for m in messages:
                    self._handle(tp.topic, m.value)

    def _handle(self, topic: str, value: bytes) -> None:
        if topic == self.names.win_rates:
            row = serde.decode("WinRate", value)
            start = int(row["window_start"])
            # A window's rows (one per version and seed) arrive together; print a window once a later
            # one shows up, so each window is one line.
            for done in sorted(w for w in self._unprinted if w < start):
                self._print_window(done)
                self._unprinted.discard(done)
            self.rows[start].append(row)
            self._unprinted.add(start)
            self.last_final_end = max(self.last_final_end or 0, int(row["window_end"]))
        elif topic == self.names.model_weights:
            rec = serde.decode("ModelWeights", value)
            self.versions.append({k: rec[k] for k in ("version", "parent_version", "kind", "window_start",
                                                      "window_end", "explore_seeds")})
            self.latest_weights = rec
        else:
            self.dead_letters[serde.decode("DeadLetter", value)["reason"]] += 1

    def _print_window(self, window_start: int) -> None:
        if not self._printed_header:
            print("\nOne line per final window. impr: impressions decided; explore / current: impressions whose "
                  "clicks favoured the explore or the current list (ties: both alike, no click: none); win-rate "
                  "= explore / (explore + current); decisions: the learner's per (version, seed) row, A = ACCEPT "
                  "(a MINOR version is published), R = REJECT, S = STALE; versions: the versions served in the "
                  f"window; CTR: simulated clicks per shown slot ({self.slots} slots per impression).")
            print(f"\n{'window (UTC)':<13}{'impr':>6}{'explore':>8}{'current':>8}{'ties':>6}{'no click':>9}"
                  f"{'win-rate':>9}  {'decisions':<12}{'versions':>10}{'CTR':>8}", flush=True)
            self._printed_header = True
        rows = self.rows[window_start]
        imps = sum(r["impressions"] for r in rows)
        ew = sum(r["explore_wins"] for r in rows)
        cw = sum(r["current_wins"] for r in rows)
        ties = sum(r["ties"] for r in rows)
        nc = sum(r["no_clicks"] for r in rows)
        # PDGD's rows have no explore list (win_rate null): its "current" column is the impressions with a click.
        rate = f"{ew / (ew + cw):.3f}" if ew + cw and any(r["win_rate"] is not None for r in rows) else "-"
        tally = {d: sum(1 for r in rows if r["decision"] == d) for d in ("ACCEPT", "REJECT", "STALE")}
        decisions = " ".join(f"{d[0]}{n}" for d, n in tally.items() if n)
        sim = self.sim_windows.get(window_start, [0, 0])
        ctr = f"{per_slot_ctr(sim[1], sim[0], self.slots):.4f}" if sim[0] else "-"
        served = sorted({int(r["model_version"]) for r in rows})
        versions = f"v{served[0]}" if len(served) == 1 else f"v{served[0]}-{served[-1]}"
        stamp = time.strftime("%m-%d %H:%M", time.gmtime(window_start / 1000))
        print(f"{stamp:<13}{imps:>6}{ew:>8}{cw:>8}{ties:>6}{nc:>9}{rate:>9}  {decisions:<12}{versions:>10}{ctr:>8}",
              flush=True)


def per_slot_ctr(clicks: int, impressions: int, slots: int) -> float:
    """Clicks per shown slot: what a better ranking raises under the position-based click model."""
    return clicks / (slots * impressions) if impressions else 0.0


def _start_job(cfg: LoopDemoConfig, bootstrap: str, names: TopicNames, log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "jobs.minor_update", "--bootstrap", bootstrap, "--prefix", names.prefix,
           "--window", format_duration_ms(cfg.window_ms), "--attribution-window",
           format_duration_ms(cfg.attribution_ms), "--alpha", str(cfg.alpha), "--eta", str(cfg.eta),
           "--seed", str(cfg.seed), "--checkpoint-interval", "2 s", "--job-name", "drnflow-demo",
           "--trigger-every", cfg.major_every, "--learner", cfg.learner, "--learning-rate", str(cfg.learning_rate)]
    return _spawn(cmd, log)


def _start_major_updates(cfg: LoopDemoConfig, bootstrap: str, names: TopicNames) -> subprocess.Popen[bytes]:
    """`drnflow major-update --follow` on the job's triggers (the live chain's major updates)."""
    cmd = [sys.executable, "-m", "drnflow", "major-update", "--follow", "--bootstrap", bootstrap, "--prefix",
           names.prefix, "--steps", str(cfg.major_steps), "--no-baselines", "--device", "cpu", "--no-progress",
           "--seed", str(cfg.seed), "--group-id", "drnflow-demo-major", "--runs-dir", str(cfg.out_dir / "major-runs")]
    return _spawn(cmd, cfg.out_dir / "major-update.log")


def _spawn(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "wb")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    out.close()
    return proc


def _stop_job(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def run_loop_demo(cfg: LoopDemoConfig, state: Path) -> int:
    from drnflow import datasets
    from drnflow.demo.inmemory import GreedyPolicy, make_ranker, run_loop
    from models.initial_model import initial_drn_record
    from models.perturbation import ExploreParams
    from models.simulator import ArrivalConfig, Simulator, SimulatorConfig, WorldConfig
    from models.simulator.arrivals import DEFAULT_START_MS
    from models.simulator.drift import DriftConfig
    from models.simulator.evaluate import evaluate_policy, paired_difference
    from operators import kafka_io
    from operators.sim_producer import EventWriter, produce_steps
    from operators.weights_follower import WeightsFollower

    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    names = TopicNames("demo.")
    print("[demo] loading MovieLens-100K users and items (from the recbole wheel) ...", flush=True)
    world = datasets.world(WorldConfig(seed=cfg.seed))
    drift = DriftConfig(kind=cfg.drift, seed=cfg.seed, start_ms=DEFAULT_START_MS)
    online_start = DEFAULT_START_MS
    if cfg.log_impressions:
        major, log_end = _offline_start(cfg, world, drift)
        online_start = log_end + 1  # the online run follows the logging period in the world's time
    else:
        major = initial_drn_record(cfg.model_id, world.state_dim, world.action_dim, cfg.seed, created_at=0,
                                   explore=ExploreParams(cfg.alpha))
    sim_cfg = SimulatorConfig(seed=cfg.seed, click_model=cfg.click_model, drift=drift,
                              arrivals=ArrivalConfig(start_ms=online_start))

    with demo_broker(state, names) as bootstrap:
        writer = EventWriter(bootstrap, names, "drnflow-demo")
        publisher = kafka_io.producer(bootstrap, "drnflow-demo-publish", linger_ms=0)
        publisher.send(names.model_weights, serde.encode("ModelWeights", major), key=cfg.model_id.encode())
        publisher.flush()
        publisher.close()
        how = "trained offline on the logging policy's log" if cfg.log_impressions else f"random, seed {cfg.seed}"
        print(f"[demo] published the initial model {cfg.model_id!r} v1 (MAJOR, {how}) to {names.model_weights}",
              flush=True)
        job_log = cfg.out_dir / "minor-update.log"
        job = _start_job(cfg, bootstrap, names, job_log)
        how_learns = (f"PDGD, temperature {cfg.temperature}, learning rate {cfg.learning_rate}" if cfg.learner == "pdgd"
                      else f"{cfg.learner.upper()}, alpha {cfg.alpha}, eta {cfg.eta}")
        print(f"[demo] started the minor-update Flink job (pid {job.pid}, log {job_log}); window {cfg.window}, "
              f"attribution window {cfg.attribution_window}, {how_learns}", flush=True)
        majors = None
        if cfg.major_every != "none":
            majors = _start_major_updates(cfg, bootstrap, names)
            print(f"[demo] started major-update --follow (pid {majors.pid}, log {cfg.out_dir / 'major-update.log'}): "
                  f"the job triggers it every {cfg.major_every} of event time", flush=True)
        sim_windows: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        watcher = OutputWatcher(bootstrap, names, sim_windows, sim_cfg.k).start()
        ranker = cfg.ranker(major)
        follower = WeightsFollower.for_kafka(bootstrap, ranker.apply_weights, topic=names.model_weights,
                                             model_ids=[cfg.model_id]).start()
        sim = Simulator(world, ranker, sim_cfg)
        counts = writer.counts
        try:
            t_end = time.monotonic() + cfg.duration_s
            print(f"[demo] simulating users for {cfg.duration_s:.0f} s of wall time "
                  f"(click model {cfg.click_model}) ...", flush=True)

            def steps() -> Any:
                while time.monotonic() < t_end and job.poll() is None:
                    yield sim.step()

            start_event: int | None = None
            last_event = online_start
            request_window: dict[str, int] = {}

            def book(kind: str, record: dict[str, Any]) -> None:
                nonlocal start_event, last_event
                t = int(record["event_time"])
                if kind == "impression":
                    start_event = t if start_event is None else start_event
                    last_event = max(last_event, t)
                    _wait_for_learner(cfg, job, watcher, t, start_event, t_end)
                    window = t - t % cfg.window_ms
                    request_window[str(record["request_id"])] = window
                    sim_windows[window][0] += 1
                else:
                    # CTR is booked on the window of the impression the click belongs to.
                    sim_windows[request_window[str(record["request_id"])]][1] += 1

            produce_steps(steps(), writer, book)
            if job.poll() is not None:
                print(f"[demo] the Flink job exited early (code {job.returncode}); see {job_log}", file=sys.stderr)
                return 1
            print(f"[demo] produced {counts['impression']} impressions and {counts['click']} clicks; "
                  "waiting for the last final windows ...", flush=True)
            time.sleep(8)
        finally:
            follower.stop()
            if majors is not None:
                _stop_job(majors)
            _stop_job(job)
            watcher.stop()
            writer.close()
            print("[demo] stopped the Flink job", flush=True)

    final = watcher.latest_weights or major
    print("[demo] evaluating the initial, final and frozen models on the same simulated users ...", flush=True)
    initial_ranker = make_ranker(cfg.model_id, major, cfg.alpha, cfg.seed)
    final_ranker = make_ranker(cfg.model_id, major, cfg.alpha, cfg.seed)
    final_ranker.apply_weights(final)
    # In a drifting world the models are compared on requests of the world as it is at the end of the run.
    at_end = None if sim.drift is None else ArrivalConfig(start_ms=last_event)

    def offline(policy: Any) -> Any:
        return evaluate_policy(policy, world, cfg.eval_requests, cfg.seed + 1000, click_model_name=cfg.click_model,
                               arrivals=at_end, drift=sim.drift)

    from models.simulator.policies import PopularPolicy, RandomPolicy

    e_init, e_final = offline(GreedyPolicy(initial_ranker)), offline(GreedyPolicy(final_ranker))
    e_popular = offline(PopularPolicy(cfg.model_id))
    e_random = offline(RandomPolicy(cfg.model_id, seed=cfg.seed))
    frozen_ranker = cfg.ranker(major)  # the same policy, never learning
    frozen = run_loop(Simulator(world, frozen_ranker, sim_cfg), frozen_ranker, None, counts["impression"],
                      cfg.window_ms)
    live_ctr = per_slot_ctr(counts["click"], counts["impression"], sim_cfg.k)
    accepted = [v for v in watcher.versions if v["kind"] == "MINOR"]
    major_versions = [v for v in watcher.versions if v["kind"] == "MAJOR" and v["version"] != major["version"]]
    summary = {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
        "impressions": counts["impression"], "clicks": counts["click"],
        "windows_final": len(watcher.rows), "minor_updates": len(accepted), "major_updates": len(major_versions),
        "final_version": final["version"], "lineage": [(v["version"], v["parent_version"], v["kind"])
                                                       for v in watcher.versions],
        "dead_letters": dict(watcher.dead_letters),
        "online_ctr_learning": live_ctr, "online_ctr_frozen_control": frozen.ctr,
        "offline_initial": {"ctr": e_init.ctr, "ndcg": e_init.ndcg},
        "offline_final": {"ctr": e_final.ctr, "ndcg": e_final.ndcg},
        "offline_popular": {"ctr": e_popular.ctr, "ndcg": e_popular.ndcg},
        "offline_random": {"ctr": e_random.ctr, "ndcg": e_random.ndcg},
    }
    plot = cfg.out_dir / "demo.png"
    _plot(plot, watcher, sim_windows, frozen.windows, cfg.learner)
    print("\n=== drnflow demo summary ===")
    world_kind = "news drift (items published, aging, expiring; genre popularity walking)" if sim.drift else "static"
    online_s = (last_event - online_start) / 1000
    print(f"world: {world_kind}, {online_s / 3600:.1f} h of online event time after the logging period")
    print(f"impressions {counts['impression']}, clicks {counts['click']}, final windows {len(watcher.rows)}, "
          f"accepted minor updates {len(accepted)}, major updates published {len(major_versions)}, final version "
          f"v{final['version']}")
    print(f"online CTR while learning   {live_ctr:.4f}   vs frozen-model control {frozen.ctr:.4f} "
          f"({_pct(live_ctr, frozen.ctr)})")
    print(f"offline CTR, final model    {e_final.ctr:.4f}   vs initial model {e_init.ctr:.4f} "
          f"({_pct(e_final.ctr, e_init.ctr)}); nDCG@10 {e_final.ndcg:.4f} vs {e_init.ndcg:.4f} "
          f"on {cfg.eval_requests} simulated requests, click model {cfg.click_model}")
    print(f"the same requests ranked by popularity: CTR {e_popular.ctr:.4f}, nDCG@10 {e_popular.ndcg:.4f}; at random: "
          f"CTR {e_random.ctr:.4f}, nDCG@10 {e_random.ndcg:.4f}"
          + ("" if not cfg.log_impressions else " (the initial model is the offline start)"))
    diff, half = paired_difference(e_final, e_init)
    tail = max(1, len(frozen.windows) // 5)
    live_tail = _windows_ctr(sorted(sim_windows.items())[-tail:], sim_cfg.k)
    frozen_tail = _windows_ctr([(w["window_start"], [w["impressions"], w["clicks"]]) for w in frozen.windows[-tail:]],
                               sim_cfg.k)
    helped = diff - half > 0 and live_tail > frozen_tail
    print(f"final - initial model offline, per-request CTR: {diff:+.4f} ± {half:.4f} (95%, paired over the "
          f"{cfg.eval_requests} requests); last 20% of the run online: learning {live_tail:.4f} vs frozen "
          f"{frozen_tail:.4f}")
    print("learning helped: " + ("yes: the final model is better offline and the learning run ended above the "
                                 "frozen control" if helped else
                                 "no: " + ("the final model is not shown better than the initial one offline"
                                           if diff - half <= 0 else "the learning run did not end above the "
                                           "frozen control")))
    summary["learning_helped"] = helped
    summary["offline_final_minus_initial"] = {"mean": diff, "half_width_95": half}
    summary["online_last20"] = {"learning": live_tail, "frozen": frozen_tail}
    (cfg.out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    if watcher.dead_letters:
        print(f"dead letters: {dict(watcher.dead_letters)}")
    print(f"plot {plot}\nsummary {cfg.out_dir / 'summary.json'}")
    return 0 if watcher.rows else 1


def _offline_start(cfg: LoopDemoConfig, world: Any, drift: Any) -> tuple[dict[str, Any], int]:
    """MAJOR v1 trained by the major update on a logging policy's log (models/major/offline_start.py), and the
    log's last event time. The log is simulated in process, on other users' requests than the online run's
    (seed + 500), in the same world (`drift`) just before the online run."""
    from models.major.ddqn import DdqnConfig
    from models.major.offline_start import log_range, train_offline_start
    from models.major.update import MajorUpdateConfig
    from models.perturbation import ExploreParams
    from models.simulator import Simulator, SimulatorConfig
    from models.simulator.policies import ExploringPolicy, PopularPolicy

    t0 = time.monotonic()
    print(f"[demo] offline start: a logging policy (popularity, {cfg.log_epsilon:.0%} of requests in a random order) "
          f"serves {cfg.log_impressions} simulated requests; the major update trains the initial DRN on that log "
          "...", flush=True)
    logger = ExploringPolicy(PopularPolicy(), cfg.log_epsilon, model_id=cfg.model_id, seed=cfg.seed)
    sim = Simulator(world, logger, SimulatorConfig(seed=cfg.seed + 500, click_model=cfg.click_model,
                                                   return_visits=False, drift=drift))
    data = log_range(cfg.model_id, sim.run(cfg.log_impressions))
    major, outcome = train_offline_start(
        data, MajorUpdateConfig(ddqn=DdqnConfig(seed=cfg.seed, device="cpu"), run_baselines=False), created_at=0,
        explore=ExploreParams(cfg.alpha))
    tr = outcome.report["training"]
    print(f"[demo] offline start: {len(data.impressions)} impressions, {len(data.clicks)} clicks logged; "
          f"{tr['steps']} DDQN steps in {tr['seconds']:.0f} s ({time.monotonic() - t0:.0f} s in all)", flush=True)
    return major, max(int(i["event_time"]) for i in data.impressions)


def _wait_for_learner(cfg: LoopDemoConfig, job: subprocess.Popen[bytes], watcher: OutputWatcher,
                      event_time: int, start_event: int, t_end: float) -> None:
    """Back-pressure: keep the simulator within `windows_ahead` windows (plus the attribution window) of the
    last final window, so the weights it is served are recent enough to be learned from."""
    lead = cfg.attribution_ms + cfg.windows_ahead * cfg.window_ms
    while job.poll() is None and time.monotonic() < t_end:
        if event_time <= (watcher.last_final_end or start_event) + lead:
            return
        time.sleep(0.05)


def _windows_ctr(windows: list[tuple[int, list[int]]], slots: int) -> float:
    """Clicks per shown slot over (window_start, [impressions, clicks]) pairs."""
    imps = sum(c[0] for _, c in windows)
    return per_slot_ctr(sum(c[1] for _, c in windows), imps, slots)


def _pct(a: float, b: float) -> str:
    return f"{(a / b - 1) * 100:+.1f}%" if b else "n/a"


def _plot(path: Path, watcher: OutputWatcher, sim_windows: dict[int, list[int]],
          frozen_windows: list[dict[str, Any]], learner: str = "dbgd") -> None:
    """Per window: the learner's decision (for PDGD, which has no explore list: the share of impressions with
    a click), the model version, and the live CTR against the frozen control's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    starts = sorted(watcher.rows)
    t0 = min([*starts, *sim_windows]) if (starts or sim_windows) else 0
    minutes = [(s - t0) / 60_000 for s in starts]
    rates, colors = [], []
    for s in starts:
        rows = watcher.rows[s]
        ew = sum(r["explore_wins"] for r in rows)
        cw = sum(r["current_wins"] for r in rows)
        n = sum(r["impressions"] for r in rows)
        if learner == "pdgd":
            rates.append(cw / n if n else float("nan"))
        else:
            rates.append(ew / (ew + cw) if ew + cw else float("nan"))
        decisions = {str(r["decision"]) for r in rows}
        colors.append("tab:green" if "ACCEPT" in decisions else "tab:grey" if decisions == {"STALE"} else "tab:red")
    fig, axes = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    axes[0].scatter(minutes, rates, c=colors, s=18)
    if learner == "pdgd":
        axes[0].set_ylabel("impressions with a click")
    else:
        axes[0].axhline(0.5, color="black", lw=0.8, ls="--")
        axes[0].set_ylabel("explore win-rate")
    axes[0].set_title(f"{learner.upper()} on the minor-update job: green = ACCEPT, red = REJECT, grey = STALE")
    versions = sorted((int(v["window_end"] or 0), int(v["version"])) for v in watcher.versions if v["kind"] == "MINOR")
    if versions:
        axes[1].step([(e - t0) / 60_000 for e, _ in versions], [v for _, v in versions], where="post")
    axes[1].set_ylabel("model version")
    sim_starts = sorted(sim_windows)
    axes[2].plot([(s - t0) / 60_000 for s in sim_starts],
                 [per_slot_ctr(sim_windows[s][1], sim_windows[s][0], watcher.slots) if sim_windows[s][0]
                  else float("nan") for s in sim_starts], label="learning (live)")
    axes[2].plot([(w["window_start"] - t0) / 60_000 for w in frozen_windows],
                 [per_slot_ctr(w["clicks"], w["impressions"], watcher.slots) if w["impressions"] else float("nan")
                  for w in frozen_windows],
                 label="frozen-model control", alpha=0.8)
    axes[2].set_ylabel("CTR per slot")
    axes[2].set_xlabel("event time since start (minutes)")
    axes[2].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
