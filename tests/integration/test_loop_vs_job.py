"""The in-memory learning loop (drnflow/demo/inmemory.py, what bench_learning measures) and the real
minor-update job take the same decisions on the same stream: the loop's impressions and clicks of a DBGD
run, replayed through Kafka and the Flink job, give the loop's WinRate rows and its MINOR versions, byte
for byte. So what the learning benchmark measures in memory is what the pipeline would have learned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from schemas import serde
from tests.integration.minor_update_data import Stream
from tests.integration.test_minor_update import decoded, run_job

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.slow]

WINDOW_MS = 60_000
ATTRIBUTION_MS = 30 * 60_000  # covers the simulator's longest click delay (25 min): every click counts


def in_memory_run(n: int) -> tuple[dict[str, Any], Stream, list[dict[str, Any]], list[dict[str, Any]]]:
    """A seeded DBGD run of the loop: its starting MAJOR, its stream, and the learner's rows and MINORs."""
    import torch

    from drnflow.demo.inmemory import make_learner, make_ranker, run_loop
    from models.initial_model import initial_drn_record
    from models.perturbation import ExploreParams
    from models.simulator import ArrivalConfig, Simulator, SimulatorConfig, World, WorldConfig
    from tests.unit.test_simulator import synthetic_movielens

    torch.set_num_threads(1)
    world = World.build(WorldConfig(seed=3, n_candidates=30), synthetic_movielens(3))
    major = initial_drn_record("drn", world.state_dim, world.action_dim, 5, created_at=0,
                               explore=ExploreParams(0.1))
    ranker = make_ranker("drn", major, alpha=0.1, seed=5)
    learner = make_learner("drn", major, 0.1, 0.5, WINDOW_MS, ATTRIBUTION_MS)
    rows: list[dict[str, Any]] = []
    minors: list[dict[str, Any]] = []
    decide = learner.on_window

    def watched(window_rows: Any) -> Any:
        result = decide(window_rows)
        rows.extend(result.win_rates)
        if result.weights is not None:
            minors.append(result.weights)
        return result

    learner.on_window = watched  # type: ignore[method-assign]
    stream = Stream()

    def keep(step: Any) -> None:
        stream.impressions.append(step.impression)
        stream.clicks.extend(step.clicks)

    sim = Simulator(world, ranker, SimulatorConfig(seed=5, click_model="pbm", return_visits=False,
                                                   arrivals=ArrivalConfig(mode="poisson", rate_per_s=1.0)))
    run_loop(sim, ranker, learner, n, WINDOW_MS, on_step=keep)
    stream.clicks.sort(key=lambda c: int(c["event_time"]))  # a click topic is written in click-time order
    # One impression two attribution windows later closes every window of the bounded run; it is the loop's
    # own last window in the job only, so its rows are left out of the comparison.
    flush = dict(stream.impressions[-1], request_id="flush",
                 event_time=int(stream.impressions[-1]["event_time"]) + 2 * ATTRIBUTION_MS)
    stream.impressions.append(flush)
    return major, stream, rows, minors


def test_the_job_decides_a_learning_runs_windows_as_the_in_memory_loop_did(kafka_bootstrap: str,
                                                                            tmp_path: Path) -> None:
    major, stream, loop_rows, loop_minors = in_memory_run(1500)
    assert loop_minors, "the run should move the weights at least once"
    run = run_job(kafka_bootstrap, tmp_path, stream=stream, weights=[major], window=WINDOW_MS,
                  attribution_window=ATTRIBUTION_MS, out_of_orderness=1_000, trigger_every=60 * WINDOW_MS)
    assert decoded(run, "dead-letters") == []
    flush_window = int(stream.impressions[-1]["event_time"]) // WINDOW_MS * WINDOW_MS

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        return (r["window_start"], r["model_version"], r["explore_seed"])

    job_rows = sorted((r for r in decoded(run, "win-rates") if r["model_id"] == "drn"
                       and r["window_start"] != flush_window), key=key)
    assert job_rows == sorted(loop_rows, key=key)
    job_minors = [w for w in decoded(run, "model-weights") if w["model_id"] == "drn" and w["kind"] == "MINOR"]
    assert [serde.encode("ModelWeights", w) for w in job_minors] == [serde.encode("ModelWeights", w)
                                                                     for w in loop_minors]
