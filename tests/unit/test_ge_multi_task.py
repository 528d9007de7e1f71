"""The multi-objective list evaluator and the environment's long-view and continue signals: exact and
seeded truths that disagree with clicks, held-out AUCs per objective, and weights that change the pick."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models.ge.environment import (
    ListEnvironment,
    LoggedLists,
    ObjectiveConfig,
    log_exposures,
    log_multi_objective_exposures,
    split_by_time,
)
from models.ge.evaluator import EvaluatorTrainConfig
from models.ge.multi_task import (
    MultiTaskConfig,
    MultiTaskEvaluator,
    load_multi_task,
    save_multi_task,
    train_multi_task,
)
from models.ge.multi_task_report import best_lists, candidate_lists, objective_aucs, weighting_choices
from models.ge.pipeline import PRESETS, evaluator_config_for
from models.ge.tensors import RequestTensors

torch.set_num_threads(1)

TINY = PRESETS["tiny"]
ENV = ListEnvironment(TINY, seed=0)


def _config(env: ListEnvironment = ENV, **kw: object) -> MultiTaskConfig:
    return MultiTaskConfig(evaluator_config_for(env, hidden=32), **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def trained() -> tuple[MultiTaskEvaluator, LoggedLists]:
    train, held_out = split_by_time(log_multi_objective_exposures(ENV, 6000, seed=1), 0.8)
    evaluator = MultiTaskEvaluator(_config(), seed=0)
    train_multi_task(evaluator, train, EvaluatorTrainConfig(epochs=8, batch_size=128))
    return evaluator, held_out


def test_objectives_leave_clicks_and_logs_unchanged() -> None:
    plain = log_exposures(ENV, 200, seed=3)
    multi = log_multi_objective_exposures(ENV, 200, seed=3)
    assert np.array_equal(plain.clicks, multi.clicks) and np.array_equal(plain.shown, multi.shown)
    assert plain.long_views is None and plain.continues is None
    other = ListEnvironment(TINY, seed=0, objectives=ObjectiveConfig(clickbait=0.0, leave_bias=0.0))
    items = ENV.item_lists(plain.requests, plain.shown)
    assert np.array_equal(ENV.click_probs(plain.requests.user, items), other.click_probs(plain.requests.user, items))
    assert multi.long_views is not None and multi.continues is not None
    assert (multi.long_views <= multi.clicks).all()  # a long view is a click watched long
    assert (np.diff(multi.continues, axis=1) <= 0).all()  # once gone, gone
    with pytest.raises(ValueError, match="no long_view labels"):
        plain.labels("long_view")


def test_objective_expectations_are_exact() -> None:
    """Labels averaged over many draws of the same lists converge to objective_probs."""
    log = log_exposures(ENV, 40, seed=5)
    items = ENV.item_lists(log.requests, log.shown)
    users = np.repeat(log.requests.user, 4000)
    lists = np.repeat(items, 4000, axis=0)
    rng = np.random.default_rng(0)
    clicks = ENV.sample_clicks(users, lists, rng)
    long_views, continues = ENV.sample_objectives(users, lists, clicks, rng)
    probs = ENV.objective_probs(log.requests.user, items)
    for name, labels in (("click", clicks), ("long_view", long_views), ("continue", continues)):
        mean = labels.reshape(40, 4000, -1).mean(1)
        assert np.abs(mean - probs[name]).max() < 0.04, name
    exact = ENV.expected_objectives(log.requests.user, items)
    assert np.allclose(exact["click"], ENV.expected_clicks(log.requests.user, items))


def test_environment_objectives_disagree() -> None:
    """Among one request's candidate lists, some list has more expected clicks but fewer expected long
    views (and continues) than another: no ordering is best for all objectives."""
    requests = ENV.make_requests(50, np.random.default_rng(2))
    lists = candidate_lists(requests, TINY.list_size, 16, seed=0)
    b, k, n = lists.shape
    true = ENV.true_objective_values(requests.repeat(k), lists.reshape(b * k, n))
    click, long_view, cont = (true[o].reshape(b, k) for o in ("click", "long_view", "continue"))
    more_clicks = click[:, :, None] > click[:, None, :]
    assert (more_clicks & (long_view[:, :, None] < long_view[:, None, :])).any(axis=(1, 2)).mean() > 0.5
    assert (more_clicks & (cont[:, :, None] < cont[:, None, :])).any(axis=(1, 2)).mean() > 0.5
    assert (click.argmax(1) != cont.argmax(1)).mean() > 0.5


def test_seeded_labels_and_training_are_deterministic() -> None:
    a, b = (log_multi_objective_exposures(ENV, 300, seed=4) for _ in range(2))
    assert a.long_views is not None and b.long_views is not None and a.continues is not None
    assert np.array_equal(a.long_views, b.long_views) and np.array_equal(a.continues, b.continues)  # type: ignore[arg-type]
    assert not np.array_equal(a.continues, log_multi_objective_exposures(ENV, 300, seed=6).continues)  # type: ignore[arg-type]
    runs = []
    for _ in range(2):
        ev = MultiTaskEvaluator(_config(), seed=2)
        losses = train_multi_task(ev, a, EvaluatorTrainConfig(epochs=1, batch_size=64, seed=1),
                                  loss_weights=(1.0, 2.0, 0.5))
        with torch.no_grad():
            runs.append((losses, ev.objective_scores(RequestTensors.from_batch(a.requests), a.shown)))
    assert runs[0][0] == runs[1][0] and torch.equal(runs[0][1], runs[1][1])


def test_held_out_auc_of_every_objective_is_well_above_chance(
    trained: tuple[MultiTaskEvaluator, LoggedLists]
) -> None:
    evaluator, held_out = trained
    aucs = objective_aucs(ENV, evaluator, held_out)
    for name, row in aucs.items():
        assert row["held_out_auc"] > 0.7, (name, row)
        assert row["held_out_auc_true_probs"] >= row["held_out_auc"] - 0.02, (name, row)


def test_weights_change_the_score_and_the_best_list(trained: tuple[MultiTaskEvaluator, LoggedLists]) -> None:
    evaluator, held_out = trained
    requests = held_out.requests.take(np.arange(200))
    lists = candidate_lists(requests, TINY.list_size, 8, seed=0)
    tensors = RequestTensors.from_batch(requests).repeat(8)
    flat = torch.as_tensor(lists.reshape(-1, TINY.list_size))
    with torch.no_grad():
        assert not torch.allclose(evaluator.score(tensors, flat, (1, 0, 0)), evaluator.score(tensors, flat, (0, 0, 1)))
        assert torch.allclose(evaluator.score(tensors, flat), evaluator.score(tensors, flat, (1, 1, 1)))
    assert (best_lists(evaluator, requests, lists, (1, 0, 0)) != best_lists(evaluator, requests, lists, (0, 0, 1))
            ).mean() > 0.3
    picks = weighting_choices(ENV, evaluator, requests, {"click": (1, 0, 0), "continue": (0, 0, 1)})
    # by the truth: each weighting's picks win on its own objective and lose on the other
    assert picks["click"]["click"] > picks["continue"]["click"]
    assert picks["continue"]["continue"] > picks["click"]["continue"]


def test_config_validation_and_checkpoint_round_trip(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown objective"):
        _config(objectives=("click", "dwell"))
    with pytest.raises(ValueError, match="one weight per objective"):
        _config(score_weights=(1.0, 0.5))
    with pytest.raises(ValueError, match="not all zero"):
        _config(score_weights=(0.0, 0.0, 0.0))
    ev = MultiTaskEvaluator(_config(objectives=("click", "continue"), score_weights=(1.0, 0.5)), seed=1)
    with pytest.raises(ValueError, match=">= 0"):
        train_multi_task(ev, log_multi_objective_exposures(ENV, 20, seed=1), EvaluatorTrainConfig(epochs=1),
                         loss_weights=(1.0, -1.0))
    save_multi_task(tmp_path / "m.pt", {"env_seed": 0}, ev)
    setup, loaded = load_multi_task(tmp_path / "m.pt")
    assert setup == {"env_seed": 0} and loaded.multi_task == ev.multi_task
    assert all(torch.equal(a, b) for a, b in zip(ev.state_dict().values(), loaded.state_dict().values(),
                                                 strict=True))
    (tmp_path / "bad.pt").write_text("no")
    with pytest.raises(ValueError, match="not a multi-task evaluator checkpoint"):
        load_multi_task(tmp_path / "bad.pt")


def test_cli_trains_the_multi_task_evaluator_and_keeps_the_click_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from drnflow.cli import main

    d = str(tmp_path)
    assert main(["ge", "train-evaluator", "--preset", "tiny", "--logs", "600", "--epochs", "1", "--dir", d,
                 "--objectives", "click,long_view,continue", "--objective-weights", "1,0.5,0.5"]) == 0
    report = json.loads((tmp_path / "train-evaluator-multi-task.json").read_text())
    assert set(report["held_out"]) == {"click", "long_view", "continue"}
    assert all(0.0 <= r["held_out_auc"] <= 1.0 for r in report["held_out"].values())
    assert report["objective_weights"] == [1.0, 0.5, 0.5]
    assert not (tmp_path / "evaluator.pt").exists()  # the click evaluator's checkpoint is not touched
    assert "continue: held-out AUC" in capsys.readouterr().out
    for argv, message in (
        (["--objectives", "click", "--from-topics"], "has clicks only"),
        (["--objective-weights", "1,2"], "need --objectives"),
        (["--objectives", "click,continue", "--objective-weights", "1"], "one weight per objective"),
        (["--objectives", "click,dwell"], "unknown objective"),
    ):
        assert main(["ge", "train-evaluator", "--preset", "tiny", "--dir", d, *argv]) == 1
        assert message in capsys.readouterr().err
