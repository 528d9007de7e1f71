"""Serving a mixer to a batch of sessions until they all end: per-session totals and, when asked, the
logged transitions (the replay memory of the off-policy trainer)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.mixer.environment import MixerEnvironment
from models.mixer.policies import Mixer

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


@dataclass
class TransitionLog:
    """One row per served page: (s, placement features, chosen placement, reward); next_index is the
    row of the same session's next page, -1 when the session ended (terminal)."""

    states: F32  # (T, Ds)
    actions: F32  # (T, A, Da)
    choice: npt.NDArray[np.int64]
    reward: npt.NDArray[np.float32]
    next_index: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.choice.shape[0])

    @staticmethod
    def concat(logs: list[TransitionLog]) -> TransitionLog:
        offsets = np.cumsum([0] + [len(x) for x in logs[:-1]])
        nxt = [np.where(x.next_index >= 0, x.next_index + o, -1) for x, o in zip(logs, offsets, strict=True)]
        return TransitionLog(np.concatenate([x.states for x in logs]), np.concatenate([x.actions for x in logs]),
                             np.concatenate([x.choice for x in logs]), np.concatenate([x.reward for x in logs]),
                             np.concatenate(nxt))


@dataclass
class SessionTotals:
    revenue: F64
    engagement: F64
    length: npt.NDArray[np.int64]
    combined: F64
    ads_per_page: F64


def rollout(env: MixerEnvironment, mixer: Mixer, n_sessions: int, seed: int,
            log: bool = False) -> tuple[SessionTotals, TransitionLog | None]:
    """Serve `mixer` to n_sessions sessions of stream `seed` (common random numbers across mixers)."""
    s = env.start(n_sessions, seed)
    states, actions, choices, rewards, sessions, dones = [], [], [], [], [], []
    ads = np.zeros(n_sessions)
    combined = np.zeros(n_sessions)
    while s.alive.any():
        page = env.observe(s)
        a = mixer.choose(env, page)
        out = env.step(s, page, a)
        ads[page.rows] += env.n_ads[a]
        combined[page.rows] += out.reward
        if log:
            states.append(page.states)
            actions.append(page.actions)
            choices.append(a)
            rewards.append(out.reward.astype(np.float32))
            sessions.append(page.rows)
            dones.append(out.done)
    totals = SessionTotals(s.rev_total.copy(), s.eng_total.copy(), s.depth.copy(), combined,
                           ads / np.maximum(s.depth, 1))
    if not log:
        return totals, None
    sess = np.concatenate(sessions)
    done = np.concatenate(dones)
    nxt = np.full(sess.size, -1, dtype=np.int64)
    last = np.full(n_sessions, -1, dtype=np.int64)
    for g, i in enumerate(sess):  # rows are in serving order: a session's pages come one step apart
        if last[i] >= 0:
            nxt[last[i]] = g
        last[i] = g
    nxt[done] = -1
    return totals, TransitionLog(np.concatenate(states), np.concatenate(actions), np.concatenate(choices),
                                 np.concatenate(rewards), nxt)
