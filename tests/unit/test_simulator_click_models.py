"""Click models: empirical click and stop rates against the table of the online-LTR literature."""

from __future__ import annotations

import numpy as np
import pytest

from models.simulator.click_models import (
    CASCADE_MODELS,
    INFORMATIONAL,
    NAVIGATIONAL,
    PERFECT,
    CascadeModel,
    PositionBasedModel,
    click_model,
)

# The table of the issue (Hofmann et al.; Schuth et al. 2016; Oosterhuis & de Rijke 2018).
TABLE = {
    "perfect": ((0.0, 0.2, 0.4, 0.8, 1.0), (0.0, 0.0, 0.0, 0.0, 0.0)),
    "navigational": ((0.05, 0.3, 0.5, 0.7, 0.95), (0.2, 0.3, 0.5, 0.7, 0.9)),
    "informational": ((0.4, 0.6, 0.7, 0.8, 0.9), (0.1, 0.2, 0.3, 0.4, 0.5)),
}
N = 10_000


def _tol(p: float, n: int) -> float:
    return 4.5 * np.sqrt(max(p * (1 - p), 1e-4) / n) + 1e-9


def test_the_three_cascades_are_the_table() -> None:
    assert set(CASCADE_MODELS) == set(TABLE)
    for name, (pc, ps) in TABLE.items():
        assert CASCADE_MODELS[name].p_click == pc
        assert CASCADE_MODELS[name].p_stop == ps


@pytest.mark.parametrize("model", [PERFECT, NAVIGATIONAL, INFORMATIONAL], ids=lambda m: m.name)
def test_empirical_click_and_stop_rates_match_the_table(model: CascadeModel) -> None:
    pc, ps = TABLE[model.name]
    rng = np.random.default_rng(7)
    for g in range(5):
        # [g, 4]: the first slot is clicked with P(click|g); the second is reached unless the user
        # clicked the first and stopped, so P(click 2nd) = (1 - pc[g]·ps[g]) · pc[4].
        first = second = 0
        for _ in range(N // 5):
            clicked = model.sample([g, 4], rng)
            first += 0 in clicked
            second += 1 in clicked
        n = N // 5
        assert abs(first / n - pc[g]) <= _tol(pc[g], n), (model.name, g, first / n)
        expected_second = (1 - pc[g] * ps[g]) * pc[4]
        assert abs(second / n - expected_second) <= _tol(expected_second, n), (model.name, g, second / n)


@pytest.mark.parametrize("name", ["perfect", "navigational", "informational", "pbm"])
def test_exact_marginals_match_sampling(name: str) -> None:
    model = click_model(name)
    grades = [0, 3, 1, 4, 2, 2, 0, 4, 1, 3]
    rng = np.random.default_rng(11)
    counts = np.zeros(len(grades))
    for _ in range(N):
        for pos in model.sample(grades, rng):
            counts[pos] += 1
    expected = model.click_probabilities(grades)
    for i, p in enumerate(expected):
        assert abs(counts[i] / N - p) <= _tol(float(p), N), (name, i)


def test_perfect_never_stops_and_clicks_are_in_order() -> None:
    rng = np.random.default_rng(0)
    assert PERFECT.sample([4] * 10, rng) == list(range(10))
    clicks = INFORMATIONAL.sample([4, 3, 2, 1, 0] * 2, rng)
    assert clicks == sorted(clicks)


def test_stopping_makes_a_better_list_get_fewer_clicks_under_navigational() -> None:
    # Why evaluate_policy reports NDCG next to CTR: users who find what they want stop.
    assert NAVIGATIONAL.click_probabilities([4] * 10).sum() < NAVIGATIONAL.click_probabilities([1] * 10).sum()


def test_pbm_examination_and_attractiveness() -> None:
    pbm = PositionBasedModel(eta=1.0, epsilon=0.1)
    p = pbm.click_probabilities([4, 4, 0])
    assert p[0] == pytest.approx(1.0)
    assert p[1] == pytest.approx(0.5)
    assert p[2] == pytest.approx(0.1 / 3)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match=r"grades must be in 0\.\.4"):
        NAVIGATIONAL.sample([5], np.random.default_rng(0))
    with pytest.raises(ValueError, match="p_click"):
        CascadeModel("x", (0.1, 0.2), (0, 0, 0, 0, 0))
    with pytest.raises(ValueError, match="must be in"):
        CascadeModel("x", (0.1, 0.2, 0.3, 0.4, 1.5), (0, 0, 0, 0, 0))
    with pytest.raises(ValueError, match="unknown click model"):
        click_model("dbn")
