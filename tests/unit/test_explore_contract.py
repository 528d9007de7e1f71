"""The explore contract travels with the model (design.md §3, §5): α and the ΔW kind are written into each
ModelWeights record's architecture, and the learner and the ranker read them from the version they use."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from models.dbgd import DbgdConfig, DbgdLearner
from models.initial_model import initial_drn_record
from models.perturbation import ExploreParams, Perturbation, explore_delta
from models.weights import parse_model_weights_record
from operators.ranker import Ranker, RankerConfig

WIN = 60_000


def major(explore: ExploreParams | None, version: int = 1) -> dict[str, Any]:
    return initial_drn_record("m", 3, 2, seed=5, version=version, created_at=0, explore=explore)


def accept_row(version: int, seed: int = 9) -> dict[str, Any]:
    return {"model_id": "m", "window_start": 0, "window_end": WIN, "model_version": version, "explore_seed": seed,
            "impressions": 3, "explore_wins": 3, "current_wins": 0, "ties": 0, "no_clicks": 0}


def test_params_round_trip_through_the_architecture_and_leave_the_network_readable() -> None:
    record = major(ExploreParams(0.25, Perturbation.UNIT_SPHERE))
    assert ExploreParams.read_from(record["architecture"]) == ExploreParams(0.25, "unit_sphere")
    assert ExploreParams.read_from(major(None)["architecture"]) is None
    from models.drn import DrnConfig

    assert DrnConfig.from_json(record["architecture"]) == DrnConfig(state_dim=3, action_dim=2, seed=5)


@pytest.mark.parametrize("bad", [{"alpha": float("nan")}, {"alpha": -1.0}, {"alpha": 0.1, "perturbation": "x"}])
def test_bad_params_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="explore"):
        ExploreParams(**bad)


def test_the_learner_steps_with_the_records_alpha_not_its_config() -> None:
    record = major(ExploreParams(0.3))
    lrn = DbgdLearner("m", DbgdConfig(alpha=0.1, eta=0.5, max_staleness=1))
    assert lrn.rebase(record)
    assert lrn.explore == ExploreParams(0.3)
    out = lrn.on_window([accept_row(1)])
    assert out.weights is not None
    w0, _ = parse_model_weights_record(record)
    expected = (w0.astype(np.float64) + 0.5 * explore_delta(w0, 9, 0.3).astype(np.float64)).astype(np.float32)
    new, _ = parse_model_weights_record(out.weights)
    np.testing.assert_array_equal(new, expected)
    assert ExploreParams.read_from(out.weights["architecture"]) == ExploreParams(0.3), "MINORs carry them on"


def test_a_record_without_params_uses_the_config_and_a_snapshot_keeps_the_params() -> None:
    lrn = DbgdLearner("m", DbgdConfig(alpha=0.2))
    lrn.rebase(major(None))
    assert lrn.explore == ExploreParams(0.2)
    other = DbgdLearner("m", DbgdConfig(alpha=0.2))
    other.rebase(major(ExploreParams(0.4)))
    restored = DbgdLearner("m", DbgdConfig(alpha=0.2))
    restored.restore(other.snapshot())
    assert restored.explore == ExploreParams(0.4)


def test_a_pinned_learner_refuses_a_version_that_explores_otherwise() -> None:
    lrn = DbgdLearner("m", DbgdConfig(alpha=0.1, explore_pinned=True))
    pinned = r"explores with alpha 0.3, multiplicative, this learner is pinned to alpha 0.1"
    with pytest.raises(ValueError, match=pinned):
        lrn.rebase(major(ExploreParams(0.3)))
    assert lrn.version is None
    assert lrn.rebase(major(ExploreParams(0.1)))


def test_new_params_on_a_rebase_drop_older_versions_as_bases() -> None:
    lrn = DbgdLearner("m", DbgdConfig(max_staleness=3))
    lrn.rebase(major(ExploreParams(0.1), version=1))
    lrn.rebase(major(ExploreParams(0.2), version=2))
    assert lrn.history_versions == [2]


def test_the_ranker_explores_with_the_served_records_params() -> None:
    ranker = Ranker(RankerConfig(model_id="m", alpha=0.1, base_seed=1))
    record = major(ExploreParams(0.35))
    ranker.apply_weights(record)
    served = ranker.served
    assert served is not None
    assert ranker.explore_params(served) == ExploreParams(0.35)
    legacy = Ranker(RankerConfig(model_id="m", alpha=0.15, base_seed=1))
    legacy.apply_weights(major(None))
    assert legacy.served is not None
    assert legacy.explore_params(legacy.served) == ExploreParams(0.15)
