"""LR / FM baselines (models/baselines.py) and the offline metrics of DRN's Table 4
(models/major/offline_eval.py), against hand-computed values."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from models.baselines import BaselineConfig, train_baseline
from models.major.offline_eval import (
    logged_scorer,
    markdown_table,
    offline_table,
    position_propensity,
    random_scorer,
    ranking_metrics,
)
from models.transitions import build_transitions

torch.set_num_threads(1)


def test_metrics_by_hand() -> None:
    # Two lists of 3; clicks on logged positions 1 and 2 (list 0) and 0 (list 1); a third list without clicks.
    clicks = np.array([[0, 1, 1], [1, 0, 0], [0, 0, 0]], dtype=bool)
    mask = np.ones((3, 3), dtype=bool)
    scores = np.array([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])  # list 1 puts the clicked item last
    m = ranking_metrics("x", scores, clicks, mask)
    assert m.impressions == 2  # lists without a click are left out
    assert m.ctr == 0.0  # neither top item was clicked
    assert m.precision_at_5 == pytest.approx((2 / 3 + 1 / 3) / 2)
    d = [1 / math.log2(i + 2) for i in range(3)]
    ndcg0 = (d[1] + d[2]) / (d[0] + d[1])
    ndcg1 = d[2] / d[0]
    assert m.ndcg == pytest.approx((ndcg0 + ndcg1) / 2)


def test_ties_keep_the_logged_order_and_padding_is_never_ranked() -> None:
    clicks = np.array([[1, 0, 0]], dtype=bool)
    m = ranking_metrics("tie", np.zeros((1, 3)), clicks, np.ones((1, 3), dtype=bool))
    assert (m.ctr, m.ndcg) == (1.0, 1.0)
    mask = np.array([[True, True, False]])
    pad = ranking_metrics("pad", np.array([[0.0, 1.0, 9.0]]), np.array([[0, 1, 0]], dtype=bool), mask)
    assert pad.ctr == 1.0 and pad.precision_at_5 == 0.5


def test_ips_ndcg_credits_clicks_at_rarely_examined_positions() -> None:
    rho = np.array([1.0, 0.5, 0.25])
    clicks = np.array([[1, 0, 1]], dtype=bool)  # gains 1 and 4
    m = ranking_metrics("x", np.array([[3.0, 2.0, 1.0]]), clicks, np.ones((1, 3), dtype=bool), rho)
    d = [1 / math.log2(i + 2) for i in range(3)]
    assert m.ndcg_ips == pytest.approx((1 * d[0] + 4 * d[2]) / (4 * d[0] + 1 * d[1]))


def test_position_propensity_is_relative_ctr_non_increasing_and_floored() -> None:
    clicks = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0]], dtype=bool)
    rho = position_propensity(clicks, np.ones_like(clicks), floor=0.1)
    np.testing.assert_allclose(rho, [1.0, 1 / 3, 1 / 3, 0.1])


def log(n: int, seed: int) -> Any:
    """Clicks iff action feature 0 + state feature 0 > 1: LR can learn it, FM too."""
    rng = np.random.default_rng(seed)
    imps, clicks = [], []
    for i in range(n):
        s = rng.normal(size=3)
        a = rng.normal(size=(6, 2))
        rid = f"r{i}"
        imps.append({"request_id": rid, "user_id": f"u{i}", "event_time": i, "state_features": s.tolist(),
                     "slots": [{"item_id": f"i{j}", "position": j, "features": a[j].tolist()} for j in range(6)]})
        clicks += [{"request_id": rid, "item_id": f"i{j}", "event_time": i} for j in range(6) if a[j, 0] + s[0] > 1]
    return build_transitions(imps, clicks, log_end_ms=n)


def test_lr_and_fm_learn_the_click_signal_and_are_seeded() -> None:
    data = log(400, 0)
    train, test = data.split_at(300)
    cfg = BaselineConfig(steps=200, batch_size=128, seed=1)
    scorers = {k: (lambda m: lambda s, a, _mask: m.score(s, a))(train_baseline(k, data, train, cfg))
               for k in ("lr", "fm")}
    rows = offline_table(data, test, {**scorers, "random": random_scorer(0), "logged": logged_scorer()})
    by = {r.method: r for r in rows}
    assert by["lr"].ndcg > by["random"].ndcg + 0.2 and by["fm"].ndcg > by["random"].ndcg + 0.2
    again = train_baseline("fm", data, train, cfg)
    first = train_baseline("fm", data, train, cfg)
    np.testing.assert_array_equal(again.score(data.states[:5], data.actions[:5]),
                                  first.score(data.states[:5], data.actions[:5]))
    assert "| lr |" in markdown_table(rows)


def test_unknown_baseline_and_bad_config() -> None:
    data = log(10, 0)
    with pytest.raises(ValueError, match="unknown baseline"):
        train_baseline("svm", data, np.arange(5), BaselineConfig(steps=1))
    with pytest.raises(ValueError, match="fm_factors"):
        BaselineConfig(fm_factors=0)
