"""PDGD on the DRN network (models/pdgd_learner.py, operators/pdgd_ranker.py): the shown-only gradient is
PDGD's full gradient, a window's step moves the network toward the clicked item, and it is deterministic."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.drn import DrnConfig, DrnQNetwork, DrnScorer
from models.pdgd import document_weights, log_rest_mass, plackett_luce_sample, shown_document_weights
from models.pdgd_learner import PDGD_BATCH_FIELD, PDGD_FIELD, PdgdConfig, PdgdLearner, batch_bytes
from models.weights import flatten, layout_of, make_model_weights_record, parse_model_weights_record
from operators.pdgd_ranker import PdgdRanker
from operators.ranker import RankerConfig

DS, DA, N, K = 6, 5, 30, 8


def test_the_shown_items_and_the_rest_mass_give_pdgds_gradient_over_all_candidates() -> None:
    rng = np.random.default_rng(0)
    for trial in range(20):
        scores = rng.normal(size=N) * 2
        shown = plackett_luce_sample(scores, K, rng)
        clicked = rng.random(K) < 0.3
        full_docs, full_coef = document_weights(scores, shown, clicked)
        docs, coef = shown_document_weights(scores[shown], clicked, log_rest_mass(scores, shown.tolist()))
        assert sorted(shown[docs].tolist()) == sorted(full_docs.tolist()), trial
        by_doc = dict(zip(shown[docs].tolist(), coef.tolist(), strict=True))
        assert np.allclose([by_doc[d] for d in full_docs.tolist()], full_coef, rtol=1e-9, atol=1e-12), trial
    assert log_rest_mass(np.zeros(3), [0, 1, 2]) == -math.inf


def _major(seed: int = 1) -> dict:
    net = DrnQNetwork(DrnConfig(DS, DA, (16,), (16,), seed=seed))
    return make_model_weights_record(model_id="drn", version=1, parent_version=None, kind="MAJOR",
                                     flat=flatten(net), layout=layout_of(net), created_at=0, explore_seeds=[])


def _request(rng: np.random.Generator) -> tuple[list[float], list[tuple[str, list[float]]]]:
    state = rng.normal(size=DS).astype(np.float32).tolist()
    return state, [(f"i{j}", rng.normal(size=DA).astype(np.float32).tolist()) for j in range(N)]


def test_the_ranker_samples_per_request_and_logs_the_rest_mass() -> None:
    ranker = PdgdRanker(RankerConfig(model_id="drn", base_seed=3), temperature=0.5)
    ranker.apply_weights(_major())
    state, cands = _request(np.random.default_rng(2))
    first = ranker.rank("r1", "u", 1_000, state, cands, K)
    later = ranker.rank("r1", "u", 9_999_999, state, cands, K)
    assert first["slots"] == later["slots"], "the sample depends on the request only, not on its time"
    assert first["slots"] != ranker.rank("r2", "u", 1_000, state, cands, K)["slots"]
    served = ranker.served
    assert served is not None
    scores = served.scorer.q(np.asarray(state), np.asarray([f for _, f in cands])).astype(np.float64) / 0.5
    shown = [int(s["item_id"][1:]) for s in first["slots"]]
    assert first[PDGD_FIELD] == {"temperature": 0.5, "log_rest": pytest.approx(log_rest_mass(scores, shown))}
    assert {s["team"] for s in first["slots"]} == {"CURRENT"} and first["explore_seeds"] == []
    with pytest.raises(ValueError, match="temperature"):
        PdgdRanker(RankerConfig(), temperature=0.0)


def _row(version: int, samples: list, impressions: int) -> dict:
    clicked = sum(1 for *_, items in samples if items)
    return {"model_id": "drn", "window_start": 0, "window_end": 60_000, "model_version": version,
            "explore_seed": 0, "impressions": impressions, "explore_wins": 0, "current_wins": clicked, "ties": 0,
            "no_clicks": impressions - clicked, PDGD_BATCH_FIELD: batch_bytes(samples)}


def _rows(ranker: PdgdRanker, n: int, click_position: int, version: int = 1) -> list[dict]:
    rng = np.random.default_rng(7)
    samples = []
    for i in range(n):
        state, cands = _request(rng)
        imp = ranker.rank(f"r{i}", "u", 1_000 + i, state, cands, K)
        samples.append((0, i, imp, [imp["slots"][click_position]["item_id"]]))
    return [_row(version, samples, n)]


def _window(learner: PdgdLearner, ranker: PdgdRanker, n: int, click_position: int) -> dict:
    result = learner.on_window(_rows(ranker, n, click_position, version=int(learner.version or 0)))
    assert result.weights is not None
    assert [r["decision"] for r in result.win_rates] == ["ACCEPT"]
    assert [r["win_rate"] for r in result.win_rates] == [None], "PDGD has no explore list to win"
    return result.weights


def test_a_window_step_raises_the_clicked_item_over_those_above_it_and_is_deterministic() -> None:
    major = _major()
    ranker = PdgdRanker(RankerConfig(model_id="drn", base_seed=3))
    ranker.apply_weights(major)
    learner = PdgdLearner("drn", PdgdConfig(learning_rate=0.05))
    learner.rebase(major)
    minor = _window(learner, ranker, 40, click_position=3)
    assert (minor["kind"], minor["version"], minor["parent_version"], minor["created_at"]) == ("MINOR", 2, 1, 60_000)
    before = DrnScorer(*parse_model_weights_record(major))
    after = DrnScorer(*parse_model_weights_record(minor))
    rng = np.random.default_rng(7)
    gains = []
    for i in range(40):  # the same requests: the clicked slot's margin over the slots above it grows
        state, cands = _request(rng)
        imp = ranker.rank(f"r{i}", "u", 1_000 + i, state, cands, K)
        feats = np.asarray([s["features"] for s in imp["slots"]])
        margin = [float(np.mean(m.q(np.asarray(state), feats)[3] - m.q(np.asarray(state), feats)[:3]))
                  for m in (before, after)]
        gains.append(margin[1] - margin[0])
    assert np.mean(gains) > 0, gains
    again = PdgdLearner("drn", PdgdConfig(learning_rate=0.05))
    again.rebase(major)
    assert _window(again, ranker, 40, click_position=3)["weights"] == minor["weights"], "same input, same bytes"


def test_impressions_of_another_version_or_without_a_click_move_nothing() -> None:
    major = _major()
    ranker = PdgdRanker(RankerConfig(model_id="drn", base_seed=3))
    ranker.apply_weights(major)
    learner = PdgdLearner("drn", PdgdConfig())
    learner.rebase(major)
    state, cands = _request(np.random.default_rng(1))
    imp = ranker.rank("r", "u", 1, state, cands, K)
    other = {**imp, "model_version": 9}
    clicked = [imp["slots"][0]["item_id"]]
    result = learner.on_window([_row(1, [(0, 0, imp, [])], 1), _row(9, [(0, 1, other, clicked)], 1)])
    assert result.weights is None and result.refused and learner.version == 1
    assert [(r["model_version"], r["decision"]) for r in result.win_rates] == [(1, "REJECT"), (9, "STALE")]
    # a sample of another version inside the current version's row is skipped too
    result = learner.on_window([_row(1, [(0, 1, other, [imp["slots"][0]["item_id"]])], 1)])
    assert result.weights is None and learner.version == 1
    assert not learner.rebase(major), "an older or the same version is not rebased on"
    with pytest.raises(ValueError, match="learning_rate"):
        PdgdConfig(learning_rate=0.0)


def test_a_step_that_is_not_finite_is_refused_and_the_version_stays(monkeypatch: pytest.MonkeyPatch) -> None:
    import models.pdgd_learner as pdgd_learner

    major = _major()
    ranker = PdgdRanker(RankerConfig(model_id="drn", base_seed=3))
    ranker.apply_weights(major)
    learner = PdgdLearner("drn", PdgdConfig(learning_rate=1.0))
    real = pdgd_learner.shown_document_weights  # as the learner imported it
    monkeypatch.setattr(pdgd_learner, "shown_document_weights",
                        lambda *a, **kw: (real(*a, **kw)[0], np.full(real(*a, **kw)[0].size, 3e38)))
    learner.rebase(major)
    result = learner.on_window(_rows(ranker, 40, click_position=3))
    assert result.weights is None and result.refused and "not finite" in result.refused
    assert learner.version == 1
    monkeypatch.setattr(pdgd_learner, "shown_document_weights", real)
    assert _window(learner, ranker, 5, click_position=2)["parent_version"] == 1, "it goes on from the same weights"


def test_the_batch_order_does_not_matter_and_the_state_survives_a_snapshot() -> None:
    major = _major()
    ranker = PdgdRanker(RankerConfig(model_id="drn", base_seed=3))
    ranker.apply_weights(major)
    rows = _rows(ranker, 30, click_position=2)
    shuffled = dict(rows[0])
    from schemas import serde

    batch = serde.decode("PdgdBatch", rows[0][PDGD_BATCH_FIELD])
    batch["samples"].reverse()
    shuffled[PDGD_BATCH_FIELD] = serde.encode("PdgdBatch", batch)
    one, two = PdgdLearner("drn", PdgdConfig(learning_rate=0.05)), PdgdLearner("drn", PdgdConfig(learning_rate=0.05))
    one.rebase(major)
    two.rebase(major)
    restored = PdgdLearner("drn", PdgdConfig(learning_rate=0.05))
    restored.restore(two.snapshot())
    assert restored.snapshot() == two.snapshot()
    a, b = one.on_window(rows).weights, restored.on_window([shuffled]).weights
    assert a is not None and b is not None and a["weights"] == b["weights"], "the JVM's order does not matter"
    assert restored.minor_count == 1 and restored.version == 2
    with pytest.raises(ValueError, match="corrupt"):
        PdgdLearner("drn").restore(restored.snapshot()[:-3])
    with pytest.raises(ValueError, match="not this learner's"):
        PdgdLearner("other").restore(restored.snapshot())


def test_a_sample_served_by_a_recent_version_counts_with_its_samplers_weight() -> None:
    """MINORs reach the ranker a window late: a row of the previous version still moves the weights (its ρ
    from the version that sampled it), up to max_staleness versions back; older rows are STALE."""
    major = _major()
    ranker = PdgdRanker(RankerConfig(model_id="drn", base_seed=3))
    ranker.apply_weights(major)
    learner = PdgdLearner("drn", PdgdConfig(learning_rate=0.05, max_staleness=1))
    learner.rebase(major)
    _window(learner, ranker, 20, click_position=2)  # v2 made; the ranker still serves v1
    late = learner.on_window(_rows(ranker, 20, click_position=3, version=1))
    assert late.weights is not None and late.weights["version"] == 3 and late.weights["parent_version"] == 2
    assert [r["decision"] for r in late.win_rates] == ["ACCEPT"]
    too_old = learner.on_window(_rows(ranker, 20, click_position=3, version=1))  # v1 is 2 back now
    assert too_old.weights is None and [r["decision"] for r in too_old.win_rates] == ["STALE"]
    from models.pdgd import shown_document_weights

    scores, cur = np.array([0.3, -0.2, 1.0]), np.array([0.1, 0.4, -0.5])
    clicked = np.array([False, True, False])
    own = shown_document_weights(scores, clicked, 0.7)
    mixed = shown_document_weights(scores, clicked, 0.7, current=cur)
    assert np.array_equal(own[0], mixed[0]) and not np.allclose(own[1], mixed[1]), "the preference is the current's"
    assert np.array_equal(shown_document_weights(scores, clicked, 0.7, current=scores)[1], own[1])
