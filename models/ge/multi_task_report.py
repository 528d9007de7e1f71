"""Judging a multi-task evaluator against the environment's exact objectives: held-out AUC per objective
(next to the AUC of the true probabilities, the ceiling), and which lists each weighting picks among the
same candidates, scored by the truth, which shows whether the objectives pull apart."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from models.ge.environment import ListEnvironment, LoggedLists, RequestBatch, noisy_greedy_lists
from models.ge.evaluator import auc
from models.ge.multi_task import MultiTaskEvaluator, predict_objectives
from models.ge.tensors import RequestTensors


def objective_aucs(env: ListEnvironment, evaluator: MultiTaskEvaluator, held_out: LoggedLists) -> dict[str, Any]:
    """Per objective: label rate, the evaluator's held-out AUC and the true probabilities' AUC."""
    predicted = predict_objectives(evaluator, held_out)
    truth = env.objective_probs(held_out.requests.user, env.item_lists(held_out.requests, held_out.shown))
    return {name: {"rate": float(held_out.labels(name).mean()),
                   "held_out_auc": auc(held_out.labels(name), predicted[name]),
                   "held_out_auc_true_probs": auc(held_out.labels(name), truth[name])}
            for name in evaluator.objectives}


def candidate_lists(requests: RequestBatch, list_size: int, k: int, seed: int,
                    temperature: float = 2.0) -> np.ndarray:
    """k noisy-greedy lists per request (B, k, N): the same candidates for every weighting."""
    rng = np.random.default_rng(seed)
    return np.stack([noisy_greedy_lists(requests, list_size, temperature, rng) for _ in range(k)], axis=1)


def best_lists(evaluator: MultiTaskEvaluator, requests: RequestBatch, lists: np.ndarray,
               weights: Sequence[float]) -> np.ndarray:
    """Per request, the index (B,) of its candidate list with the highest weighted score."""
    b, k, n = lists.shape
    tensors = RequestTensors.from_batch(requests).repeat(k)
    with torch.no_grad():
        scores = evaluator.score(tensors, torch.as_tensor(lists.reshape(b * k, n)), weights)
    return scores.reshape(b, k).argmax(1).numpy()


def weighting_choices(env: ListEnvironment, evaluator: MultiTaskEvaluator, requests: RequestBatch,
                      weightings: Mapping[str, Sequence[float]], k: int = 8, seed: int = 0,
                      temperature: float = 2.0) -> dict[str, Any]:
    """For each named weighting, the true mean count of each objective of the lists it picks among the
    same k candidates per request, and how often its pick differs from the first weighting's."""
    n = env.config.list_size
    lists = candidate_lists(requests, n, k, seed, temperature)
    rows = np.arange(len(requests))
    out: dict[str, Any] = {}
    first: np.ndarray | None = None
    for name, weights in weightings.items():
        pick = best_lists(evaluator, requests, lists, weights)
        true = env.true_objective_values(requests, lists[rows, pick])
        out[name] = {"weights": list(weights), **{o: float(v.mean()) for o, v in true.items()},
                     "share_picks_differ_from_first": 0.0 if first is None else float((pick != first).mean())}
        first = pick if first is None else first
    return out
