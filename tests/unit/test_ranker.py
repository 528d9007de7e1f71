"""Shared checks of the ranker: seeded repeatability, state round trip, the shared ΔW, seed rotation,
weights swaps; and the weights follower's message handling."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest
import torch

from models.drn import DrnConfig, DrnQNetwork, DrnScorer, TorchScorer
from models.interleave import Method
from models.perturbation import explore_delta
from models.weights import (
    WeightsError,
    flatten,
    layout_of,
    make_model_weights_record,
    to_bytes,
    unflatten_into,
)
from operators.ranker import (
    Ranker,
    RankerConfig,
    RankerNotReady,
    explore_seeds_for,
    round_index,
)
from operators.weights_follower import WeightsFollower, WeightsHandler
from schemas import serde

torch.set_num_threads(1)
NET = DrnConfig(state_dim=4, action_dim=6, state_hidden=(16, 8), action_hidden=(16, 8), seed=7)
T0 = 1_700_000_000_000
ROUND = 60_000


def _weights_record(
    version: int, seed: int = 7, model_id: str = "drn", kind: str = "MAJOR"
) -> dict[str, Any]:
    net = DrnQNetwork(DrnConfig(**{**NET.__dict__, "seed": seed}))
    rec = make_model_weights_record(
        model_id, version, None if version == 0 else version - 1, kind, flatten(net), layout_of(net), T0, []
    )
    return serde.decode("ModelWeights", serde.encode("ModelWeights", rec))


def _request(seed: int, n: int = 25) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
    rng = np.random.default_rng(seed)
    state = rng.normal(size=NET.state_dim).astype(np.float32)
    return state, [(f"item-{j}", rng.normal(size=NET.action_dim).astype(np.float32)) for j in range(n)]


def _ranker(**cfg: Any) -> Ranker:
    r = Ranker(RankerConfig(**{"alpha": 0.3, "round_ms": ROUND, "base_seed": 5, **cfg}))
    r.apply_weights(_weights_record(1))
    return r


CONFIGS = [
    {"interleaving": "team_draft"},
    {"interleaving": "balanced"},
    {"interleaving": "probabilistic"},
    {"interleaving": "team_draft", "n_explore": 3},
    {"interleaving": "team_draft", "perturbation": "unit_sphere", "alpha": 0.5},
]


# --- shared check suite ------------------------------------------------------------------------
@pytest.mark.parametrize("cfg", CONFIGS)
def test_seeded_repeatability(cfg: dict[str, Any]) -> None:
    state, cands = _request(0)
    first = _ranker(**cfg).rank("r-1", "u-1", T0, state, cands, 10)
    second = _ranker(**cfg).rank("r-1", "u-1", T0, state, cands, 10)
    assert first == second
    other_base = _ranker(**{**cfg, "base_seed": 6}).rank("r-1", "u-1", T0, state, cands, 10)
    assert other_base["explore_seed"] != first["explore_seed"]


@pytest.mark.parametrize("cfg", CONFIGS)
def test_impression_is_a_valid_record_with_the_features_used(cfg: dict[str, Any]) -> None:
    state, cands = _request(1)
    imp = _ranker(**cfg).rank("r-2", "u-2", T0 + 5, state, cands, 8)
    decoded = serde.decode("Impression", serde.encode("Impression", imp))
    assert decoded == imp
    by_id = dict(cands)
    assert [s["position"] for s in imp["slots"]] == list(range(8))
    assert len({s["item_id"] for s in imp["slots"]}) == 8
    for slot in imp["slots"]:
        assert np.array_equal(np.asarray(slot["features"], np.float32), by_id[slot["item_id"]])
        if slot["team"] == "CURRENT":
            assert slot["explore_seed"] is None
        else:
            assert slot["explore_seed"] in imp["explore_seeds"]
    assert np.array_equal(np.asarray(imp["state_features"], np.float32), state)
    assert imp["explore_seed"] == imp["explore_seeds"][0]
    assert len(imp["explore_seeds"]) == cfg.get("n_explore", 1)
    assert imp["interleaving"] == (
        "team_draft_multileave" if cfg.get("n_explore", 1) > 1 else cfg["interleaving"]
    )
    assert {s["team"] for s in imp["slots"]} <= {"CURRENT", "EXPLORE"}


def test_state_round_trip_gives_identical_scores_and_impressions() -> None:
    state, cands = _request(2)
    actions = np.stack([a for _, a in cands])
    original = _ranker()
    served = original.served
    assert served is not None
    # through the Avro record ...
    rec = make_model_weights_record("drn", 1, 0, "MAJOR", served.flat, served.layout, T0, [])
    copy = Ranker(original.config)
    copy.apply_weights(serde.decode("ModelWeights", serde.encode("ModelWeights", rec)))
    assert copy.rank("r", "u", T0, state, cands, 10) == original.rank("r", "u", T0, state, cands, 10)
    # ... and through a torch network (unflatten, flatten)
    net = DrnQNetwork(NET)
    unflatten_into(net, served.flat, served.layout)
    assert np.array_equal(flatten(net), served.flat)
    with torch.no_grad():
        torch_q = net.q(torch.from_numpy(state), torch.from_numpy(actions)).numpy()
    np.testing.assert_allclose(served.scorer.q(state, actions), torch_q, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["multiplicative", "unit_sphere"])
def test_explore_weights_are_w_plus_the_shared_delta(kind: str) -> None:
    ranker = _ranker(n_explore=2, perturbation=kind)
    state, cands = _request(3)
    imp = ranker.rank("r-3", "u", T0, state, cands, 5)
    served = ranker.served
    assert served is not None
    explorers = ranker.explore_scorers(T0)
    assert [s for s, _ in explorers] == imp["explore_seeds"]
    for seed, scorer in explorers:
        fresh = explore_delta(served.flat.copy(), seed, 0.3, kind)
        assert np.array_equal(scorer.flat, served.flat + fresh)  # type: ignore[attr-defined]
        assert not np.array_equal(scorer.flat, served.flat)  # type: ignore[attr-defined]


def test_alpha_zero_shows_the_current_ranking() -> None:
    ranker = _ranker(alpha=0.0)
    state, cands = _request(4)
    served = ranker.served
    assert served is not None
    q = served.scorer.q(state, np.stack([a for _, a in cands]))
    best = [cands[i][0] for i in np.argsort(-q, kind="stable")[:7]]
    for req in range(5):
        imp = ranker.rank(f"r-{req}", "u", T0, state, cands, 7)
        assert [s["item_id"] for s in imp["slots"]] == best


def test_exploration_changes_the_shown_list() -> None:
    state, cands = _request(5)
    calm = _ranker(alpha=0.0).rank("r", "u", T0, state, cands, 10)
    shown = {
        tuple(
            s["item_id"]
            for s in _ranker(alpha=1.0).rank(f"r-{i}", "u", T0 + i * ROUND, state, cands, 10)["slots"]
        )
        for i in range(8)
    }
    assert any(lst != tuple(s["item_id"] for s in calm["slots"]) for lst in shown)


def test_explore_seeds_rotate_per_round_and_version() -> None:
    ranker = _ranker(n_explore=2)
    state, cands = _request(6)
    a = ranker.rank("r-a", "u", T0, state, cands, 5)["explore_seeds"]
    rnd = round_index(T0, ROUND)
    same_round = ranker.rank("r-b", "u", rnd * ROUND + ROUND - 1, state, cands, 5)["explore_seeds"]
    next_round = ranker.rank("r-c", "u", (rnd + 1) * ROUND, state, cands, 5)["explore_seeds"]
    assert a == same_round == explore_seeds_for(5, 1, rnd, 2)
    assert next_round == explore_seeds_for(5, 1, rnd + 1, 2) != a
    assert len(set(a)) == 2 and all(0 <= s < 2**63 for s in a)
    ranker.apply_weights(_weights_record(2, seed=8))
    assert ranker.rank("r-d", "u", T0, state, cands, 5)["explore_seeds"] != a


def test_apply_weights_swaps_validates_and_keeps_old_on_error() -> None:
    ranker = _ranker()
    assert ranker.version == 1
    assert ranker.apply_weights(_weights_record(1)) is False
    bad = _weights_record(2, seed=9)
    bad["weights"] = to_bytes(np.zeros(len(bad["weights"]) // 4, np.float32))
    with pytest.raises(WeightsError, match="checksum"):
        ranker.apply_weights(bad)
    assert ranker.version == 1
    with pytest.raises(ValueError, match="not this ranker's"):
        ranker.apply_weights(_weights_record(3, model_id="other"))
    assert ranker.apply_weights(_weights_record(3, seed=9)) is True
    assert ranker.version == 3
    rollback = _weights_record(1, kind="ROLLBACK")
    assert ranker.apply_weights(rollback) is True and ranker.version == 1


def test_torch_scorer_gives_the_same_impression() -> None:
    state, cands = _request(7)
    np_ranker = _ranker()
    torch_ranker = Ranker(np_ranker.config, scorer_factory=TorchScorer)
    torch_ranker.apply_weights(_weights_record(1))
    for req in range(3):
        assert np_ranker.rank(f"r{req}", "u", T0, state, cands, 10) == torch_ranker.rank(
            f"r{req}", "u", T0, state, cands, 10
        )


def test_input_and_config_errors() -> None:
    with pytest.raises(RankerNotReady):
        Ranker(RankerConfig()).rank("r", "u", T0, np.zeros(4), [], 3)
    ranker = _ranker()
    state, cands = _request(8)
    with pytest.raises(ValueError, match="state_features has 3 values"):
        ranker.rank("r", "u", T0, state[:3], cands, 3)
    with pytest.raises(ValueError, match="action features must be 6"):
        ranker.rank("r", "u", T0, state, [("x", np.zeros(5))], 3)
    with pytest.raises(ValueError, match="repeat an item_id"):
        ranker.rank("r", "u", T0, state, [cands[0], cands[0]], 3)
    with pytest.raises(ValueError, match="event_time"):
        ranker.rank("r", "u", -1, state, cands, 3)
    assert ranker.rank("r", "u", T0, state, [], 3)["slots"] == []
    assert len(ranker.rank("r", "u", T0, state, cands[:2], 5)["slots"]) == 2
    with pytest.raises(ValueError, match="alpha"):
        RankerConfig(alpha=-1)
    with pytest.raises(ValueError, match="n_explore=3"):
        RankerConfig(interleaving=Method.PROBABILISTIC, n_explore=3)
    with pytest.raises(ValueError, match="round_ms"):
        RankerConfig(round_ms=0)


def test_numpy_scorer_is_the_default() -> None:
    served = _ranker().served
    assert served is not None and isinstance(served.scorer, DrnScorer)


# --- weights follower --------------------------------------------------------------------------
def _encoded(version: int, model_id: str = "drn", kind: str = "MINOR") -> bytes:
    return serde.encode("ModelWeights", _weights_record(version, seed=version, model_id=model_id, kind=kind))


def test_handler_hands_the_last_record_per_model_in_topic_order() -> None:
    got: list[tuple[str, int]] = []
    handler = WeightsHandler(lambda rec: got.append((rec["model_id"], rec["version"])))
    handler.handle_batch([_encoded(1), _encoded(5, "other"), _encoded(3), _encoded(2, kind="ROLLBACK")])
    assert got == [("other", 5), ("drn", 2)]  # ROLLBACK to 2 is newer than version 3 in topic order
    assert handler.handed == {"drn": 2, "other": 5}


def test_handler_filters_models_and_survives_bad_records() -> None:
    ranker = _ranker()

    handler = WeightsHandler(ranker.apply_weights, model_ids={"drn"})
    corrupt = _weights_record(4, seed=4)
    corrupt["checksum"] = "0" * 64
    handled = handler.handle_batch([b"\x00garbage", _encoded(9, "other")])
    assert handled == [] and ranker.version == 1
    assert "undecodable" in handler.rejected[0].reason
    handler.handle_batch([serde.encode("ModelWeights", corrupt)])
    assert ranker.version == 1
    assert handler.rejected[-1].version == 4 and "checksum" in handler.rejected[-1].reason
    handler.handle_batch([_encoded(6)])
    assert ranker.version == 6


class _FakeMessage:
    def __init__(self, value: bytes) -> None:
        self.value = value


class _FakeConsumer:
    """In-memory stand-in for KafkaConsumer.poll: returns what was queued, else waits the timeout."""

    def __init__(self) -> None:
        self.queue: list[bytes] = []
        self.lock = threading.Lock()
        self.closed = False

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[str, list[_FakeMessage]]:
        with self.lock:
            batch, self.queue = self.queue, []
        if not batch:
            time.sleep(timeout_ms / 1000)
            return {}
        return {"model-weights-0": [_FakeMessage(v) for v in batch]}

    def close(self) -> None:
        self.closed = True


def test_follower_thread_picks_up_a_new_version_within_a_second() -> None:
    ranker = Ranker(RankerConfig(round_ms=ROUND))
    consumer = _FakeConsumer()
    follower = WeightsFollower(
        WeightsHandler(ranker.apply_weights), lambda: consumer, poll_timeout_ms=50
    ).start()
    try:
        with consumer.lock:
            consumer.queue += [_encoded(1), _encoded(2)]
        start = time.monotonic()
        while ranker.version != 2 and time.monotonic() - start < 1.0:
            time.sleep(0.005)
        assert ranker.version == 2
        with consumer.lock:
            consumer.queue.append(_encoded(3))
        start = time.monotonic()
        while ranker.version != 3 and time.monotonic() - start < 1.0:
            time.sleep(0.005)
        assert ranker.version == 3
    finally:
        follower.stop()
    assert not follower.alive and consumer.closed and follower.error is None
