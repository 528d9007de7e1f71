"""Probation of a MAJOR against its parent and the automatic ROLLBACK (models/probation.py, models/dbgd.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from models.dbgd import DbgdConfig, DbgdLearner
from models.perturbation import ExploreParams
from models.probation import ProbationParams, probation_seed, verdict, without_probation
from models.weights import ParamSpec, from_bytes, make_model_weights_record
from schemas import serde

WIN = 30 * 60_000
LAYOUT = [ParamSpec("w", (2, 3)), ParamSpec("b", (2,))]
W_PARENT = np.array([0.5, -1.0, 2.0, 0.25, -0.75, 1.5, 0.1, -0.2], dtype=np.float32)
W_NEW = np.array([-0.5, 1.0, -2.0, 0.5, 0.75, -1.5, 0.3, 0.2], dtype=np.float32)
ARCH = ExploreParams(0.1).written_into('{"family": "test"}')


def record(version: int, weights: np.ndarray, parent: int | None = None, kind: str = "MAJOR",
           probation: ProbationParams | None = None) -> dict[str, Any]:
    arch = ARCH if probation is None else probation.written_into(ARCH)
    return make_model_weights_record("m", version, parent, kind, weights, LAYOUT, 0, [], architecture=arch)


def row(version: int, seed: int, e: int, c: int, window: int) -> dict[str, Any]:
    return {"model_id": "m", "window_start": window * WIN, "window_end": (window + 1) * WIN,
            "model_version": version, "explore_seed": seed, "impressions": e + c, "explore_wins": e,
            "current_wins": c, "ties": 0, "no_clicks": 0}


def on_probation(windows: int = 2, min_win_rate: float = 0.5) -> DbgdLearner:
    lrn = DbgdLearner("m", DbgdConfig())
    assert lrn.rebase(record(0, W_PARENT))
    assert lrn.rebase(record(1, W_NEW, parent=0, probation=ProbationParams(windows, min_win_rate)))
    assert lrn.on_probation == (1, 0)
    return lrn


def test_params_travel_in_the_architecture_and_a_minor_does_not_inherit_them() -> None:
    params = ProbationParams(3, 0.45)
    arch = params.written_into(ARCH)
    assert ProbationParams.read_from(arch) == params
    assert ProbationParams.read_from(ARCH) is None
    assert ProbationParams.read_from(without_probation(arch)) is None
    assert ExploreParams.read_from(without_probation(arch)) == ExploreParams(0.1)
    for bad in ('{"probation": {"windows": 0}}', '{"probation": "x"}', "not json"):
        assert ProbationParams.read_from(bad) is None
    with pytest.raises(ValueError, match="windows"):
        ProbationParams(0)
    with pytest.raises(ValueError, match="min_win_rate"):
        ProbationParams(2, 1.5)


def test_probation_seed_is_a_stable_non_negative_63_bit_value_per_version_pair() -> None:
    seeds = {probation_seed(v, p) for v in range(50) for p in range(50)}
    assert len(seeds) == 2500
    assert all(0 <= s < 2**63 for s in seeds)
    assert probation_seed(7, 3) == probation_seed(7, 3) != probation_seed(3, 7)


def test_a_losing_version_is_rolled_back_to_the_parent_weights_after_its_windows() -> None:
    lrn = on_probation(windows=2, min_win_rate=0.5)
    seed = probation_seed(1, 0)
    first = lrn.on_window([row(1, seed, e=6, c=4, window=0)])
    assert [r["decision"] for r in first.win_rates] == ["PROBATION"]
    assert first.weights is None and first.verdict is None and lrn.on_probation == (1, 0)
    second = lrn.on_window([row(1, seed, e=5, c=3, window=1)])
    assert second.verdict is not None and second.verdict.rolled_back
    assert (second.verdict.version_wins, second.verdict.parent_wins) == (7, 11)
    rollback = second.weights
    assert rollback is not None and rollback["kind"] == "ROLLBACK"
    assert (rollback["version"], rollback["parent_version"]) == (2, 0)
    assert np.array_equal(from_bytes(rollback["weights"]), W_PARENT)
    assert ProbationParams.read_from(rollback["architecture"]) is None
    serde.encode("ModelWeights", rollback)
    assert lrn.version == 2 and lrn.on_probation is None
    assert np.array_equal(lrn.weights(), W_PARENT)
    # Rows of the rolled-back version still in flight are STALE, never a step.
    late = lrn.on_window([row(1, 123, e=9, c=0, window=2)])
    assert [r["decision"] for r in late.win_rates] == ["STALE"] and late.weights is None
    # The job reads its own ROLLBACK back from the topic: nothing changes.
    assert not lrn.rebase(rollback)


def test_a_winning_version_is_kept_and_dbgd_resumes_on_it() -> None:
    lrn = on_probation(windows=2, min_win_rate=0.5)
    seed = probation_seed(1, 0)
    lrn.on_window([row(1, seed, e=2, c=6, window=0)])
    kept = lrn.on_window([row(1, seed, e=3, c=3, window=1)])
    assert kept.verdict is not None and not kept.verdict.rolled_back and kept.weights is None
    assert lrn.on_probation is None and lrn.version == 1
    # A ranker whose rounds outlast the job's windows still interleaves against the parent: never a DBGD row.
    after = lrn.on_window([row(1, probation_seed(1, 0), e=9, c=0, window=2)])
    assert [r["decision"] for r in after.win_rates] == ["STALE"] and after.weights is None
    again = DbgdLearner("m", DbgdConfig())
    again.restore(lrn.snapshot())
    assert [r["decision"] for r in again.on_window([row(1, probation_seed(1, 0), e=9, c=0, window=2)]).win_rates] \
        == ["STALE"]
    step = lrn.on_window([row(1, 77, e=5, c=1, window=2)])
    assert step.weights is not None and step.weights["kind"] == "MINOR"
    assert ProbationParams.read_from(step.weights["architecture"]) is None


def test_during_probation_rows_of_older_versions_are_stale_and_other_rows_of_it_follow_dbgd() -> None:
    lrn = on_probation(windows=3)
    res = lrn.on_window([row(0, 55, e=9, c=0, window=0), row(1, probation_seed(1, 0), e=1, c=2, window=0)])
    by_version = {r["model_version"]: r["decision"] for r in res.win_rates}
    assert by_version == {0: "STALE", 1: "PROBATION"} and res.weights is None
    assert "on probation against v0" in res.stale_reasons[0][2]
    # A ranker that explored v1 instead of serving v0 (it did not hold v0): DBGD goes on, probation ends.
    moved = lrn.on_window([row(1, 42, e=5, c=1, window=1)])
    assert moved.weights is not None and moved.weights["kind"] == "MINOR" and lrn.on_probation is None


def test_no_probation_without_the_parent_and_a_job_starting_on_the_major_takes_the_parent_record() -> None:
    fresh = DbgdLearner("m", DbgdConfig())
    assert fresh.rebase(record(1, W_NEW, parent=0, probation=ProbationParams(2)))
    assert fresh.on_probation is None
    parent_minor = record(0, W_PARENT, kind="MINOR")
    started = DbgdLearner("m", DbgdConfig())
    assert started.rebase(record(1, W_NEW, parent=0, probation=ProbationParams(2)), parent=parent_minor)
    assert started.on_probation == (1, 0)


def test_probation_survives_snapshot_and_restore_byte_for_byte() -> None:
    a = on_probation(windows=2)
    a.on_window([row(1, probation_seed(1, 0), e=6, c=4, window=0)])
    b = DbgdLearner("m", DbgdConfig())
    b.restore(a.snapshot())
    assert b.snapshot() == a.snapshot() and b.on_probation == (1, 0)
    ra = a.on_window([row(1, probation_seed(1, 0), e=5, c=3, window=1)])
    rb = b.on_window([row(1, probation_seed(1, 0), e=5, c=3, window=1)])
    assert ra.weights is not None and serde.encode("ModelWeights", ra.weights) == serde.encode("ModelWeights",
                                                                                               rb.weights)
    # A learner that never had a probation has no probation entry (older snapshots keep their bytes).
    plain = DbgdLearner("m", DbgdConfig())
    plain.rebase(record(0, W_PARENT))
    assert b"probation" not in plain.snapshot()


def test_a_probation_without_decided_impressions_keeps_the_version() -> None:
    assert not verdict(1, 0, ProbationParams(2), 2, 0, 0).rolled_back
    assert verdict(1, 0, ProbationParams(2, 0.4), 2, 39, 61).rolled_back
    assert not verdict(1, 0, ProbationParams(2, 0.4), 2, 40, 60).rolled_back


# --- the ranker's side -----------------------------------------------------------------------------
def _drn_record(version: int, seed: int, parent: int | None, probation: ProbationParams | None = None,
                kind: str = "MAJOR") -> dict[str, Any]:
    from models.drn import DrnConfig, DrnQNetwork
    from models.weights import flatten, layout_of

    net = DrnQNetwork(DrnConfig(state_dim=4, action_dim=6, state_hidden=(16, 8), action_hidden=(16, 8), seed=seed))
    arch = ARCH if probation is None else probation.written_into(ARCH)
    rec = make_model_weights_record("drn", version, parent, kind, flatten(net), layout_of(net), 0, [],
                                    architecture=arch)
    return serde.decode("ModelWeights", serde.encode("ModelWeights", rec))


def _rank(ranker: Any, round_idx: int, request: int) -> dict[str, Any]:
    rng = np.random.default_rng(request)
    state = rng.normal(size=4).astype(np.float32)
    candidates = [(f"i{j}", rng.normal(size=6).astype(np.float32)) for j in range(20)]
    return ranker.rank(f"r{request}", "u", round_idx * 60_000 + 1, state, candidates, 10)  # type: ignore[no-any-return]


def test_the_ranker_interleaves_a_major_on_probation_with_its_parent_for_its_first_rounds() -> None:
    from operators.ranker import Ranker, RankerConfig

    parent_rec = _drn_record(0, seed=1, parent=None)
    ranker = Ranker(RankerConfig(model_id="drn", round_ms=60_000, base_seed=5))
    ranker.apply_weights(parent_rec)
    ranker.apply_weights(_drn_record(1, seed=2, parent=0, probation=ProbationParams(2)))
    parent_only = Ranker(RankerConfig(model_id="drn", round_ms=60_000))
    parent_only.apply_weights(parent_rec)
    assert parent_only.served is not None
    seed = probation_seed(1, 0)
    rng = np.random.default_rng(0)
    state, actions = rng.normal(size=4).astype(np.float32), rng.normal(size=(20, 6)).astype(np.float32)
    for rnd in (10, 11):  # the first round it serves in, and the next: against the parent
        imp = _rank(ranker, rnd, rnd)
        assert (imp["model_version"], imp["explore_seed"], imp["explore_seeds"]) == (1, seed, [seed])
        assert {s["team"] for s in imp["slots"]} == {"CURRENT", "EXPLORE"}
        [(explore_seed, explorer)] = ranker.explore_scorers(rnd * 60_000)
        assert explore_seed == seed
        assert np.array_equal(explorer.q(state, actions), parent_only.served.scorer.q(state, actions))
    after = _rank(ranker, 12, 12)
    assert after["explore_seed"] != seed and after["model_version"] == 1
    [(_, explorer)] = ranker.explore_scorers(12 * 60_000)
    assert not np.array_equal(explorer.q(state, actions), parent_only.served.scorer.q(state, actions))


def test_a_ranker_without_the_parent_explores_as_usual_and_a_minor_is_never_on_probation() -> None:
    from operators.ranker import Ranker, RankerConfig

    fresh = Ranker(RankerConfig(model_id="drn", round_ms=60_000))
    fresh.apply_weights(_drn_record(1, seed=2, parent=0, probation=ProbationParams(2)))
    assert _rank(fresh, 3, 3)["explore_seed"] != probation_seed(1, 0)
    minor = Ranker(RankerConfig(model_id="drn", round_ms=60_000))
    minor.apply_weights(_drn_record(0, seed=1, parent=None))
    minor.apply_weights(_drn_record(1, seed=2, parent=0, probation=ProbationParams(2), kind="MINOR"))
    assert _rank(minor, 3, 3)["explore_seed"] != probation_seed(1, 0)


def test_a_ranker_starting_on_the_topic_holds_the_parent_of_the_major_on_probation() -> None:
    """A restarted ranker reads model-weights from the start in one batch: the follower hands the MAJOR's
    parent on before the MAJOR, so the ranker tries the MAJOR against it as a running ranker would."""
    from operators.ranker import Ranker, RankerConfig
    from operators.weights_follower import WeightsHandler

    records = [_drn_record(0, seed=1, parent=None), _drn_record(1, seed=3, parent=0, kind="MINOR"),
               _drn_record(2, seed=2, parent=1, probation=ProbationParams(2))]
    ranker = Ranker(RankerConfig(model_id="drn", round_ms=60_000))
    handler = WeightsHandler(ranker.apply_weights)
    handed = handler.handle_batch([serde.encode("ModelWeights", r) for r in records])
    assert [r["version"] for r in handed] == [1, 2] and ranker.version == 2
    assert _rank(ranker, 3, 3)["explore_seed"] == probation_seed(2, 1)
    # Already serving the parent: the MAJOR alone is handed on, and the probation holds as well.
    running = Ranker(RankerConfig(model_id="drn", round_ms=60_000))
    follower = WeightsHandler(running.apply_weights)
    follower.handle_batch([serde.encode("ModelWeights", r) for r in records[:2]])
    assert [r["version"] for r in follower.handle_batch([serde.encode("ModelWeights", records[2])])] == [2]
    assert _rank(running, 3, 3)["explore_seed"] == probation_seed(2, 1)
    # The job's rule (WeightsLog.major_parent): a MINOR published between the parent and the MAJOR means no
    # parent was served just before it, so neither the job nor a ranker tries it on probation.
    between = [records[1], _drn_record(3, seed=4, parent=1, kind="MINOR"),
               _drn_record(4, seed=2, parent=1, probation=ProbationParams(2))]
    late = Ranker(RankerConfig(model_id="drn", round_ms=60_000))
    assert [r["version"] for r in WeightsHandler(late.apply_weights).handle_batch(
        [serde.encode("ModelWeights", r) for r in between])] == [4]
    assert _rank(late, 3, 3)["explore_seed"] != probation_seed(4, 1)


# --- the loop: a worse MAJOR is rolled back on the simulator, a better one kept ----------------------
def _reversed(record: dict[str, Any], version: int, parent: int, probation: ProbationParams) -> dict[str, Any]:
    """`record`'s network with its advantage head negated: the same scores upside down, the worst order."""
    from models.weights import parse_model_weights_record

    flat, layout = parse_model_weights_record(record)
    flat = flat.copy()
    at = 0
    for spec in layout:
        size = int(np.prod(spec.shape))
        if spec.name.startswith("advantage_head."):
            flat[at:at + size] *= -1
        at += size
    return make_model_weights_record(record["model_id"], version, parent, "MAJOR", flat, layout, 0, [],
                                     architecture=probation.written_into(record["architecture"]))


def _republished(record: dict[str, Any], version: int, parent: int, probation: ProbationParams) -> dict[str, Any]:
    from models.weights import parse_model_weights_record

    flat, layout = parse_model_weights_record(record)
    return make_model_weights_record(record["model_id"], version, parent, "MAJOR", flat, layout, 0, [],
                                     architecture=probation.written_into(record["architecture"]))


def test_in_the_loop_a_truly_worse_major_is_rolled_back_and_a_truly_better_one_kept() -> None:
    import torch

    from drnflow.demo.inmemory import GreedyPolicy, make_learner, make_ranker, run_loop
    from models.major.ddqn import DdqnConfig
    from models.major.offline_start import log_range, train_offline_start
    from models.major.update import MajorUpdateConfig
    from models.simulator import ArrivalConfig, Simulator, SimulatorConfig, World, WorldConfig
    from models.simulator.evaluate import evaluate_policy
    from models.simulator.policies import ExploringPolicy, PopularPolicy
    from tests.unit.test_simulator import synthetic_movielens

    torch.set_num_threads(1)
    world = World.build(WorldConfig(seed=3, n_candidates=30), synthetic_movielens(3))
    sim_cfg = SimulatorConfig(seed=3, click_model="pbm", return_visits=False,
                              arrivals=ArrivalConfig(mode="poisson", rate_per_s=1.0))
    fast = MajorUpdateConfig(ddqn=DdqnConfig(steps=200, batch_size=128, seed=3, device="cpu"), run_baselines=False)
    good, _ = train_offline_start(
        log_range("drn", Simulator(world, ExploringPolicy(PopularPolicy(), 0.5, model_id="drn", seed=3),
                                   sim_cfg).run(1500)), fast, created_at=0, explore=ExploreParams(0.2))
    probation = ProbationParams(windows=12, min_win_rate=0.5)
    window_ms = 60_000

    def served_truth(record: dict[str, Any]) -> float:
        return evaluate_policy(GreedyPolicy(make_ranker("drn", record, 0.2, 3)), world, 800, 99,
                               click_model_name="pbm").ctr

    def trial(parent: dict[str, Any], candidate: dict[str, Any]) -> tuple[Any, list[Any]]:
        ranker = make_ranker("drn", parent, alpha=0.2, seed=3)
        learner = make_learner("drn", parent, 0.2, 0.5, window_ms, 2 * window_ms)
        ranker.apply_weights(candidate)
        assert learner.rebase(candidate) and learner.on_probation == (candidate["version"], parent["version"])
        verdicts: list[Any] = []
        original = learner.on_window

        def watched(rows: Any) -> Any:
            result = original(rows)
            if result.verdict is not None:
                verdicts.append((result.verdict, result.weights))
            return result

        learner.on_window = watched  # type: ignore[method-assign]
        run_loop(Simulator(world, ranker, sim_cfg), ranker, learner, 1200, window_ms)
        return ranker, verdicts

    worse = _reversed(good, version=2, parent=1, probation=probation)
    assert served_truth(worse) < served_truth(good), "the reversed network is truly worse"
    ranker, verdicts = trial(good, worse)
    assert [v.rolled_back for v, _ in verdicts] == [True], verdicts
    rollback = verdicts[0][1]
    assert (rollback["kind"], rollback["version"], rollback["parent_version"]) == ("ROLLBACK", 3, 1)
    assert rollback["weights"] == good["weights"], "the parent's weights again"
    assert ranker.version is not None and ranker.version >= 3, "the ranker served it (DBGD went on from it)"

    better = _republished(good, version=2, parent=1, probation=probation)
    bad_parent = _reversed(good, version=1, parent=0, probation=probation)
    ranker, verdicts = trial(bad_parent, better)
    assert [v.rolled_back for v, _ in verdicts] == [False], verdicts
    kept, no_record = verdicts[0]
    assert no_record is None and kept.win_rate is not None and kept.win_rate > 0.5


def test_with_a_confidence_only_a_clear_loss_rolls_back_and_the_snapshot_keeps_it() -> None:
    from models.probation import upper_win_rate

    sure = ProbationParams(3, 0.5, 0.95)
    # 490 of 1000: below one half, but a tie within noise (upper bound ~0.516) is kept; 440 of 1000 is a loss
    assert verdict(1, 0, ProbationParams(3), 3, 490, 510).rolled_back
    assert not verdict(1, 0, sure, 3, 490, 510).rolled_back
    assert verdict(1, 0, sure, 3, 440, 560).rolled_back
    assert upper_win_rate(490, 1000, 0.95) == pytest.approx(0.5159, abs=1e-4)
    assert upper_win_rate(3, 10, 0.0) == 0.3
    assert ProbationParams.read_from(sure.written_into("")) == sure
    assert "confidence" not in ProbationParams(3).written_into(""), "records without it keep their bytes"
    assert "95% confidence" in sure.describe()
    with pytest.raises(ValueError, match="confidence"):
        ProbationParams(3, 0.5, 1.0)
    lrn = DbgdLearner("m", DbgdConfig())
    assert lrn.rebase(record(0, W_PARENT))
    assert lrn.rebase(record(1, W_NEW, parent=0, probation=sure))
    lrn.on_window([row(1, probation_seed(1, 0), e=4, c=6, window=0)])
    restored = DbgdLearner("m", DbgdConfig())
    restored.restore(lrn.snapshot())
    assert restored.snapshot() == lrn.snapshot() and restored.on_probation == (1, 0)
