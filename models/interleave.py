"""Interleaving of a CURRENT and an EXPLORE ranking into one shown list, and the click credit of design.md §4.

Pure functions; all randomness comes from the caller's numpy Generator. Each returns a list of
`Pick(item, source)`: `source` is the index of the list the slot was credited to (0 = the first
list = CURRENT, 1.. = EXPLORE lists). Lists are rankings (best first) of hashable items without
repeats; they may differ in content. Every function shows each item of the union at most once and
stops at min(k, |union|) slots.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any, Generic, NamedTuple, TypeVar

import numpy as np

T = TypeVar("T", bound=Hashable)

CURRENT_SOURCE = 0
EXPLORE_SOURCE = 1


class Team(enum.StrEnum):
    CURRENT = "CURRENT"
    EXPLORE = "EXPLORE"


class Outcome(enum.StrEnum):
    EXPLORE = "EXPLORE"
    CURRENT = "CURRENT"
    TIE = "TIE"
    NO_CLICK = "NO_CLICK"


class Method(enum.StrEnum):
    TEAM_DRAFT = "team_draft"
    BALANCED = "balanced"
    PROBABILISTIC = "probabilistic"
    MULTILEAVE = "team_draft_multileave"


class Pick(NamedTuple, Generic[T]):
    item: T
    source: int

    @property
    def team(self) -> Team:
        return Team.CURRENT if self.source == CURRENT_SOURCE else Team.EXPLORE


def _check(lists: Sequence[Sequence[T]], k: int) -> None:
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    for i, lst in enumerate(lists):
        if len(set(lst)) != len(lst):
            raise ValueError(f"list {i} repeats an item; a ranking holds each item once")


def _union_size(lists: Sequence[Sequence[T]]) -> int:
    return len(set().union(*lists))


def multileave(lists: Sequence[Sequence[T]], k: int, rng: np.random.Generator) -> list[Pick[T]]:
    """Team-draft multileaving (Schuth et al. 2014): the team with the fewest picks so far (ties broken
    uniformly at random) adds its best item not yet shown. Teams whose list is used up drop out."""
    _check(lists, k)
    if not lists:
        return []
    limit = min(k, _union_size(lists))
    if len(lists) == 2:
        return _team_draft_pair(lists[0], lists[1], limit, rng)
    shown: set[T] = set()
    out: list[Pick[T]] = []
    cursor = [0] * len(lists)
    counts = [0] * len(lists)

    def advance(j: int) -> bool:
        lst = lists[j]
        while cursor[j] < len(lst) and lst[cursor[j]] in shown:
            cursor[j] += 1
        return cursor[j] < len(lst)

    while len(out) < limit:
        alive = [j for j in range(len(lists)) if advance(j)]
        fewest = min(counts[j] for j in alive)
        tied = [j for j in alive if counts[j] == fewest]
        j = tied[int(rng.integers(len(tied)))] if len(tied) > 1 else tied[0]
        item = lists[j][cursor[j]]
        shown.add(item)
        out.append(Pick(item, j))
        counts[j] += 1
    return out


def _team_draft_pair(a: Sequence[T], b: Sequence[T], limit: int, rng: np.random.Generator) -> list[Pick[T]]:
    """multileave's loop for two lists, unrolled (the serving hot path): the same picks and the same
    rng.integers(2) draws, only when both lists have unseen items and the team sizes are even."""
    shown: set[T] = set()
    out: list[Pick[T]] = []
    ia = ib = na = nb = 0
    len_a, len_b = len(a), len(b)
    while len(out) < limit:
        while ia < len_a and a[ia] in shown:
            ia += 1
        while ib < len_b and b[ib] in shown:
            ib += 1
        both = ia < len_a and ib < len_b  # else the one list with unseen items picks, without a coin
        take_a = (na < nb or (na == nb and int(rng.integers(2)) == 0)) if both else ia < len_a
        if take_a:
            item = a[ia]
            out.append(Pick(item, CURRENT_SOURCE))
            na += 1
        else:
            item = b[ib]
            out.append(Pick(item, EXPLORE_SOURCE))
            nb += 1
        shown.add(item)
    return out


def team_draft(a: Sequence[T], b: Sequence[T], k: int, rng: np.random.Generator) -> list[Pick[T]]:
    """Team-draft interleaving (Radlinski et al. 2008) of CURRENT `a` and EXPLORE `b`: the team
    behind picks next, a coin decides when even; team sizes differ by at most one while both
    lists have unseen items."""
    return multileave([a, b], k, rng)


def balanced(a: Sequence[T], b: Sequence[T], k: int, rng: np.random.Generator) -> list[Pick[T]]:
    """Balanced interleaving (Joachims 2003): walk both lists at equal depth, a coin picks which goes
    first; an item is credited to the list that contributed it (the first to reach it)."""
    _check([a, b], k)
    limit = min(k, _union_size([a, b]))
    a_first = bool(rng.integers(2))
    shown: set[T] = set()
    out: list[Pick[T]] = []
    ka = kb = 0
    while len(out) < limit:
        take_a = kb >= len(b) or (ka < len(a) and (ka < kb or (ka == kb and a_first)))
        if take_a:
            item, src = a[ka], CURRENT_SOURCE
            ka += 1
        else:
            item, src = b[kb], EXPLORE_SOURCE
            kb += 1
        if item not in shown:
            shown.add(item)
            out.append(Pick(item, src))
    return out


def probabilistic(
    a: Sequence[T], b: Sequence[T], k: int, rng: np.random.Generator, tau: float = 3.0
) -> list[Pick[T]]:
    """Probabilistic interleaving (Hofmann et al. 2011; DRN's choice): each list is a softmax over
    ranks, P(item at rank r) ∝ 1 / r^tau. Per slot a fair coin picks a list, which samples one of its
    items not yet shown (renormalised); a used-up list yields to the other."""
    _check([a, b], k)
    if not np.isfinite(tau) or tau < 0:
        raise ValueError(f"tau must be a finite number >= 0, got {tau}")
    limit = min(k, _union_size([a, b]))
    lists = [list(a), list(b)]
    weights = [1.0 / np.arange(1, len(lst) + 1, dtype=np.float64) ** tau for lst in lists]
    alive = [np.ones(len(lst), dtype=bool) for lst in lists]
    index = [{item: r for r, item in enumerate(lst)} for lst in lists]
    out: list[Pick[T]] = []
    while len(out) < limit:
        open_lists = [j for j in (0, 1) if alive[j].any()]
        j = open_lists[int(rng.integers(2))] if len(open_lists) == 2 else open_lists[0]
        cum = np.cumsum(weights[j] * alive[j])
        # inverse-CDF draw: first rank whose cumulative weight exceeds u·total (never a shown item)
        r = int(np.searchsorted(cum, rng.random() * cum[-1], side="right"))
        if r >= len(cum) or not alive[j][r]:  # u·total rounded onto the end: take the last unseen rank
            r = int(np.flatnonzero(alive[j])[-1])
        item = lists[j][r]
        out.append(Pick(item, j))
        for other in (0, 1):
            pos = index[other].get(item)
            if pos is not None:
                alive[other][pos] = False
    return out


def interleave(
    method: Method | str, lists: Sequence[Sequence[T]], k: int, rng: np.random.Generator, tau: float = 3.0
) -> list[Pick[T]]:
    """Dispatch by method name; two lists for the pairwise methods, any number for multileave."""
    method = Method(method)
    if method is Method.MULTILEAVE:
        return multileave(lists, k, rng)
    if len(lists) != 2:
        raise ValueError(f"{method.value} interleaves exactly two lists, got {len(lists)}; use multileave")
    if method is Method.TEAM_DRAFT:
        return team_draft(lists[0], lists[1], k, rng)
    if method is Method.BALANCED:
        return balanced(lists[0], lists[1], k, rng)
    return probabilistic(lists[0], lists[1], k, rng, tau=tau)


def credit(shown: Iterable[tuple[Hashable, Team | str | int]], clicked_items: Iterable[Hashable]) -> Outcome:
    """Outcome of one impression (design.md §4): e = clicked EXPLORE items, c = clicked CURRENT items;
    EXPLORE if e > c, CURRENT if c > e, TIE if e = c > 0, NO_CLICK if none. `shown` holds
    (item, team) pairs (a Pick's int source counts as EXPLORE when > 0); a repeated click counts
    once, an item listed twice takes the team of its first slot, and clicks on items not shown count
    nothing. The one credit rule: the reference, the in-memory loop and the simulators call it."""
    clicked = set(clicked_items)
    e = c = 0
    seen: set[Hashable] = set()
    for item, team in shown:
        if item not in clicked or item in seen:
            continue
        seen.add(item)
        if _is_explore(team):
            e += 1
        else:
            c += 1
    if e > c:
        return Outcome.EXPLORE
    if c > e:
        return Outcome.CURRENT
    return Outcome.TIE if e > 0 else Outcome.NO_CLICK


def multileave_credit(
    shown: Sequence[Pick[T]], clicked_items: Iterable[Hashable], n_lists: int
) -> list[Outcome]:
    """Per explore list j = 1..n_lists-1, the §4 outcome of list j against CURRENT (list 0), counting
    only the clicks on those two teams' slots: the multileave (MGD) reading of one impression."""
    clicked = set(clicked_items)
    per_source = [0] * n_lists
    for pick in shown:
        if pick.item in clicked:
            per_source[pick.source] += 1
    c = per_source[CURRENT_SOURCE]
    out = []
    for e in per_source[1:]:
        out.append(
            Outcome.EXPLORE if e > c else Outcome.CURRENT if c > e else Outcome.TIE if e else Outcome.NO_CLICK
        )
    return out


def seed_outcomes(slots: Sequence[Mapping[str, Any]], explore_seed: int, explore_seeds: Sequence[int],
                  clicked_items: Iterable[Hashable]) -> list[tuple[int, Outcome]]:
    """(explore seed, outcome) for each row one impression counts in (design.md §4): with one explore team
    [(explore_seed, credit(...))]; when multileaving (more than one distinct seed in `explore_seeds`) one per
    seed, counting the clicks on that seed's EXPLORE slots against those on CURRENT slots, the other teams'
    for neither: MGD's per-team credit. An item listed twice takes its first slot; a repeated seed is one team.
    The JVM attribution (AttributeClicks.outcomeOf) applies the same rule."""
    seeds = list(dict.fromkeys(int(s) for s in explore_seeds))
    if len(seeds) <= 1:
        return [(int(explore_seed), credit([(s["item_id"], s["team"]) for s in slots], clicked_items))]
    first: dict[Hashable, Mapping[str, Any]] = {}
    for slot in slots:
        first.setdefault(slot["item_id"], slot)
    counted = [first[item] for item in set(clicked_items) if item in first]
    c = sum(1 for slot in counted if not _is_explore(slot["team"]))
    out = []
    for seed in seeds:
        e = sum(1 for slot in counted if _is_explore(slot["team"]) and slot.get("explore_seed") == seed)
        out.append((seed, Outcome.EXPLORE if e > c else Outcome.CURRENT if c > e else Outcome.TIE if e else
                    Outcome.NO_CLICK))
    return out


def _is_explore(team: Team | str | int) -> bool:
    if isinstance(team, int):
        return team != CURRENT_SOURCE
    value = team.value if isinstance(team, Team) else team
    if value not in (Team.CURRENT.value, Team.EXPLORE.value):
        raise ValueError(f"team must be CURRENT or EXPLORE, got {team!r}")
    return value == Team.EXPLORE.value
