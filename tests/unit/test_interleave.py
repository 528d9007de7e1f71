"""Interleaving invariants (hypothesis) and the §4 credit rule."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.interleave import (
    Method,
    Outcome,
    Pick,
    Team,
    balanced,
    credit,
    interleave,
    multileave,
    multileave_credit,
    probabilistic,
    team_draft,
)

rankings = st.lists(st.integers(0, 25), unique=True, max_size=20)
seeds = st.integers(0, 2**32 - 1)
ks = st.integers(0, 30)
PAIRWISE = [team_draft, balanced, probabilistic]
FAST = settings(max_examples=60, deadline=None)


def _check_shown(shown: list[Pick[int]], lists: list[list[int]], k: int) -> None:
    items = [p.item for p in shown]
    assert len(items) == len(set(items)), "an item is shown twice"
    assert len(items) == min(k, len(set().union(*lists)))
    for p in shown:
        assert p.item in lists[p.source], f"slot {p} credited to a list that does not hold it"


@pytest.mark.parametrize("fn", PAIRWISE)
@FAST
@given(a=rankings, b=rankings, k=ks, seed=seeds)
def test_pairwise_shows_each_item_once_from_its_team(fn, a, b, k, seed) -> None:
    _check_shown(fn(a, b, k, np.random.default_rng(seed)), [a, b], k)


@pytest.mark.parametrize("fn", PAIRWISE)
@FAST
@given(a=rankings, b=rankings, k=ks, seed=seeds)
def test_seeded_repeatability(fn, a, b, k, seed) -> None:
    assert fn(a, b, k, np.random.default_rng(seed)) == fn(a, b, k, np.random.default_rng(seed))


@FAST
@given(perm=st.permutations(list(range(15))), other=st.permutations(list(range(15))), k=ks, seed=seeds)
def test_team_draft_is_fair_when_lists_are_long_enough(perm, other, k, seed) -> None:
    shown = team_draft(perm, other, k, np.random.default_rng(seed))
    counts = Counter(p.team for p in shown)
    assert abs(counts[Team.CURRENT] - counts[Team.EXPLORE]) <= 1


@FAST
@given(lists=st.lists(rankings, min_size=1, max_size=5), k=ks, seed=seeds)
def test_multileave_invariants(lists, k, seed) -> None:
    shown = multileave(lists, k, np.random.default_rng(seed))
    _check_shown(shown, lists, k)
    assert shown == multileave(lists, k, np.random.default_rng(seed))


@FAST
@given(perms=st.lists(st.permutations(list(range(12))), min_size=2, max_size=5), k=ks, seed=seeds)
def test_multileave_is_fair(perms, k, seed) -> None:
    counts = Counter(p.source for p in multileave(perms, k, np.random.default_rng(seed)))
    full = [counts.get(j, 0) for j in range(len(perms))]
    assert max(full) - min(full) <= 1


def test_identical_lists_show_the_ranking_itself() -> None:
    ranking = list(range(10))
    for fn in (team_draft, balanced):
        for seed in range(5):
            shown = fn(ranking, ranking, 6, np.random.default_rng(seed))
            assert [p.item for p in shown] == list(range(6))


def test_team_draft_first_pick_is_a_fair_coin() -> None:
    a, b = [1, 2, 3], [4, 5, 6]
    firsts = Counter(team_draft(a, b, 1, np.random.default_rng(s))[0].team for s in range(400))
    assert 150 < firsts[Team.CURRENT] < 250


def test_probabilistic_prefers_top_ranks() -> None:
    a = list(range(20))
    tops = Counter(probabilistic(a, a, 1, np.random.default_rng(s))[0].item for s in range(500))
    # 1/r^3 softmax: rank 1 has probability 1/zeta(3) ~ 0.83
    assert tops[0] > 350
    assert tops[0] > tops[1] > tops[2]


def test_balanced_takes_alternately_from_equal_depths() -> None:
    shown = balanced([1, 2, 3], [4, 5, 6], 6, np.random.default_rng(3))
    assert sorted(p.item for p in shown[:2]) == [1, 4]
    assert sorted(p.item for p in shown[2:4]) == [2, 5]


def test_interleave_dispatch_and_errors() -> None:
    a, b = [1, 2, 3], [3, 2, 1]
    for m in (Method.TEAM_DRAFT, Method.BALANCED, Method.PROBABILISTIC):
        assert len(interleave(m, [a, b], 3, np.random.default_rng(0))) == 3
    with pytest.raises(ValueError, match="exactly two lists"):
        interleave("team_draft", [a, b, a], 3, np.random.default_rng(0))
    with pytest.raises(ValueError, match="repeats an item"):
        team_draft([1, 1], b, 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="tau"):
        probabilistic(a, b, 2, np.random.default_rng(0), tau=-1)


@pytest.mark.parametrize(
    ("clicked", "outcome"),
    [
        ([], Outcome.NO_CLICK),
        (["x"], Outcome.CURRENT),
        (["y"], Outcome.EXPLORE),
        (["x", "y"], Outcome.TIE),
        (["y", "z", "x"], Outcome.EXPLORE),
        (["y", "y", "x"], Outcome.TIE),  # a repeated click counts once
        (["not-shown"], Outcome.NO_CLICK),
    ],
)
def test_credit_rule(clicked: list[str], outcome: Outcome) -> None:
    shown = [("x", Team.CURRENT), ("y", "EXPLORE"), ("z", Team.EXPLORE), ("w", "CURRENT")]
    assert credit(shown, clicked) == outcome


@FAST
@given(a=rankings, b=rankings, k=ks, seed=seeds, clicks=st.lists(st.integers(0, 25), max_size=6))
def test_credit_is_symmetric_under_swapping_lists(a, b, k, seed, clicks) -> None:
    shown = team_draft(a, b, k, np.random.default_rng(seed))
    swapped = [(p.item, 1 - p.source) for p in shown]
    mirror = {Outcome.EXPLORE: Outcome.CURRENT, Outcome.CURRENT: Outcome.EXPLORE}
    got = credit(shown, clicks)
    assert credit(swapped, clicks) == mirror.get(got, got)


def test_credit_rejects_unknown_team() -> None:
    with pytest.raises(ValueError, match="CURRENT or EXPLORE"):
        credit([("x", "OTHER")], ["x"])


def test_multileave_credit_per_explore_list() -> None:
    shown = [Pick("a", 0), Pick("b", 1), Pick("c", 2), Pick("d", 1)]
    assert multileave_credit(shown, ["b", "d", "a"], 3) == [Outcome.EXPLORE, Outcome.CURRENT]
    assert multileave_credit(shown, [], 3) == [Outcome.NO_CLICK, Outcome.NO_CLICK]
    assert multileave_credit(shown, ["c"], 3) == [Outcome.NO_CLICK, Outcome.EXPLORE]


# --- MGD's per-team credit of a logged impression ------------------------------------------------------
def _slots(teams: list[int | None]) -> list[dict[str, object]]:
    return [{"item_id": f"i{k}", "team": "CURRENT" if t is None else "EXPLORE", "explore_seed": t}
            for k, t in enumerate(teams)]


def test_seed_outcomes_credit_each_multileaved_seed_against_current_only() -> None:
    from models.interleave import seed_outcomes

    slots = _slots([None, 11, 22, None, 33, 11])
    got = dict(seed_outcomes(slots, 11, [11, 22, 33], ["i1", "i5", "i0", "i2"]))
    assert got == {11: Outcome.EXPLORE, 22: Outcome.TIE, 33: Outcome.CURRENT}
    assert dict(seed_outcomes(slots, 11, [11, 22, 33], [])) == {s: Outcome.NO_CLICK for s in (11, 22, 33)}
    # one explore seed (or none listed): the impression's explore_seed and the two-team credit of every EXPLORE slot
    assert seed_outcomes(slots, 7, [], ["i2", "i4"]) == [(7, Outcome.EXPLORE)]
    assert seed_outcomes(slots, 11, [11], ["i0"]) == [(11, Outcome.CURRENT)]
    # a repeated seed is one team; a repeated item takes its first slot
    assert seed_outcomes(slots, 11, [11, 11, 22], ["i1"]) == [(11, Outcome.EXPLORE), (22, Outcome.NO_CLICK)]
    twice = [*_slots([None, 11]), {"item_id": "i0", "team": "EXPLORE", "explore_seed": 11}]
    assert dict(seed_outcomes(twice, 11, [11, 22], ["i0"])) == {11: Outcome.CURRENT, 22: Outcome.CURRENT}


def test_seed_outcomes_of_a_multileaved_list_agree_with_multileave_credit() -> None:
    from models.interleave import multileave, multileave_credit, seed_outcomes

    rng = np.random.default_rng(4)
    seeds = [101, 202, 303, 404]
    for trial in range(200):
        lists = [list(rng.permutation(30)) for _ in range(len(seeds) + 1)]
        picks = multileave(lists, 10, np.random.default_rng(trial))
        slots = [{"item_id": p.item, "team": "CURRENT" if p.source == 0 else "EXPLORE",
                  "explore_seed": None if p.source == 0 else seeds[p.source - 1]} for p in picks]
        clicked = [p.item for p in picks if rng.random() < 0.3]
        assert [o for _, o in seed_outcomes(slots, seeds[0], seeds, clicked)] == multileave_credit(
            picks, clicked, len(seeds) + 1)
