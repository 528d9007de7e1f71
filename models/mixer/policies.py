"""Mixers: the baselines (fixed slots; the greedy per-slot value rule), the DQN's greedy policy, and the
seeded exploring policies that log the training data."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt
import torch

from models.drn import DrnQNetwork
from models.mixer.environment import MixerEnvironment, Page

I64 = npt.NDArray[np.int64]


class Mixer(Protocol):
    name: str

    def choose(self, env: MixerEnvironment, page: Page) -> I64:
        """A placement index per page row."""
        ...


class FixedPlacement:
    """Ads at the same 1-based slots on every page (e.g. 3 and 7); () shows no ads."""

    def __init__(self, slots: tuple[int, ...] = (3, 7), name: str | None = None) -> None:
        self.slots = tuple(sorted(slots))
        self.name = name or ("fixed " + ",".join(map(str, self.slots)) if self.slots else "no ads")

    def choose(self, env: MixerEnvironment, page: Page) -> I64:
        if any(not 1 <= s <= env.config.slots for s in self.slots):
            raise ValueError(f"fixed slots {self.slots} are not in 1..{env.config.slots}")
        try:
            a = env.placements.index(tuple(s - 1 for s in self.slots))
        except ValueError:
            raise ValueError(f"fixed slots {self.slots} are not a valid placement "
                             f"(at most {env.config.max_ads} ads, {env.config.min_gap} apart)") from None
        return np.full(len(page.rows), a, dtype=np.int64)


class GreedyPerSlot:
    """The per-slot value rule: top-down, put the next ad at a slot when its immediate predicted value
    (w_revenue · bid · pCTR · examination) beats that of the organic item that would sit there
    (w_engagement · predicted attractiveness · examination), within max_ads and min_gap. It sees one
    slot of one page at a time: neither the shift of the organic items below nor the session."""

    name = "greedy per-slot"

    def choose(self, env: MixerEnvironment, page: Page) -> I64:
        c = env.config
        n = len(page.rows)
        exam = env.examination
        k = np.zeros(n, dtype=np.int64)  # ads placed
        r = np.zeros(n, dtype=np.int64)  # organic items placed
        last = np.full(n, -c.slots, dtype=np.int64)
        positions = np.full((n, c.max_ads), -1, dtype=np.int64)
        idx = np.arange(n)
        for j in range(c.slots):
            kk = np.minimum(k, c.max_ads - 1)
            ad_value = c.w_revenue * page.pred_ad[idx, kk] * exam[j] if c.max_ads else np.zeros(n)
            org_value = c.w_engagement * page.pred_organic[idx, np.minimum(r, c.slots - 1)] * exam[j]
            place = (k < c.max_ads) & (j - last >= c.min_gap) & (ad_value > org_value)
            positions[idx[place], k[place]] = j
            last = np.where(place, j, last)
            k += place
            r += ~place
        lookup = {p: i for i, p in enumerate(env.placements.placements)}
        return np.array([lookup[tuple(int(x) for x in row if x >= 0)] for row in positions], dtype=np.int64)


class QMixer:
    """argmax_a Q(s, a) of a trained network."""

    def __init__(self, network: DrnQNetwork, name: str = "dueling DQN") -> None:
        self.network = network.eval()
        self.name = name

    def q(self, page: Page) -> torch.Tensor:
        with torch.no_grad():
            return self.network(torch.from_numpy(page.states), torch.from_numpy(page.actions))

    def choose(self, env: MixerEnvironment, page: Page) -> I64:
        return self.q(page).argmax(dim=1).numpy().astype(np.int64)


class RandomMixer:
    """Seeded stratified random placement: the number of ads uniform in 0..max_ads, then the placement
    uniform among those with that many ads (uniform over placements would almost always show two)."""

    def __init__(self, seed: int, name: str = "random") -> None:
        self.rng = np.random.default_rng(np.random.SeedSequence([seed, 0x7A4D]))
        self.name = name

    def choose(self, env: MixerEnvironment, page: Page) -> I64:
        n_ads = env.n_ads
        counts = self.rng.integers(0, env.config.max_ads + 1, size=len(page.rows))
        out = np.empty(len(page.rows), dtype=np.int64)
        for i, m in enumerate(counts):
            options = np.flatnonzero(n_ads == m)
            out[i] = options[self.rng.integers(len(options))]
        return out


class EpsilonGreedy:
    """With probability epsilon a stratified random placement, else the base mixer's (seeded)."""

    def __init__(self, base: Mixer, epsilon: float, seed: int) -> None:
        if not 0 <= epsilon <= 1:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
        self.base, self.epsilon = base, epsilon
        self.random = RandomMixer(seed)
        self.rng = np.random.default_rng(np.random.SeedSequence([seed, 0xE95]))
        self.name = f"{base.name} ε={epsilon:g}"

    def choose(self, env: MixerEnvironment, page: Page) -> I64:
        explore = self.rng.random(len(page.rows)) < self.epsilon
        random = self.random.choose(env, page)
        if self.epsilon >= 1:
            return random
        return np.where(explore, random, self.base.choose(env, page))
