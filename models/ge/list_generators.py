"""List generators for serving, one request at a time: each proposes one or more lists of N candidate
indices, and when it proposes several the reward (evaluator + rules) picks one (Kuaishou's
generator-evaluator serving). The pinned trigger item, when there is one, is always at position 0."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch

from models.ge.evaluator import ListEvaluator
from models.ge.pointer_generator import PointerGenerator
from models.ge.tensors import RequestTensors
from models.ge.utilities import ListReward

IntArray = npt.NDArray[np.int64]


class ListGenerator(ABC):
    """Template: `propose` is the generator's own; `generate` keeps the proposal the reward likes best."""

    name: str = "generator"

    def __init__(self, list_size: int, reward: ListReward | None = None) -> None:
        if list_size < 1:
            raise ValueError(f"list_size must be >= 1, got {list_size}")
        self.list_size = list_size
        self.reward = reward

    @abstractmethod
    def propose(self, request: RequestTensors) -> torch.Tensor:
        """Candidate lists (K, N) for one request (a RequestTensors of length 1)."""

    @torch.no_grad()
    def generate(self, request: RequestTensors) -> torch.Tensor:
        """The served list (N,)."""
        if len(request) != 1:
            raise ValueError(f"generate serves one request at a time, got {len(request)}")
        lists = self.propose(request)
        if lists.shape[0] == 1:
            return lists[0]
        if self.reward is None:
            raise ValueError(f"{self.name} proposes {lists.shape[0]} lists and needs a reward to choose")
        return lists[int(self.reward(request.repeat(lists.shape[0]), lists).argmax())]


def _pinned(request: RequestTensors) -> int:
    return int(request.pinned[0])


def _pin_first(order: Sequence[int], pinned: int, list_size: int) -> list[int]:
    rest = [i for i in order if i != pinned]
    return ([pinned, *rest] if pinned >= 0 else rest)[:list_size]


def item_similarity(request: RequestTensors) -> npt.NDArray[np.float64]:
    """PSD similarity (M, M) with unit diagonal: cosine of features, same shop, same type (0.5)."""
    feats = request.item_features[0].double().numpy()
    feats = feats / (np.linalg.norm(feats, axis=1, keepdims=True) + 1e-9)
    _, shop = np.unique(request.shop[0].numpy(), return_inverse=True)
    _, itype = np.unique(request.item_type[0].numpy(), return_inverse=True)
    parts = [feats, np.eye(shop.max() + 1)[shop], np.sqrt(0.5) * np.eye(itype.max() + 1)[itype]]
    f = np.concatenate(parts, axis=1) / np.sqrt(2.5)
    return f @ f.T


class PointerGreedy(ListGenerator):
    name = "pointer-greedy"

    def __init__(self, generator: PointerGenerator, list_size: int, reward: ListReward | None = None) -> None:
        super().__init__(list_size, reward)
        self.generator = generator.eval()

    def propose(self, request: RequestTensors) -> torch.Tensor:
        lists, _ = self.generator.decode(request, self.list_size, sample=False)
        return lists


class PointerBestOfK(ListGenerator):
    """The greedy list plus K-1 lists sampled from the masked pointer distribution."""

    name = "pointer-best-of-k"

    def __init__(self, generator: PointerGenerator, list_size: int, reward: ListReward, k: int = 8,
                 seed: int = 0) -> None:
        super().__init__(list_size, reward)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.generator = generator.eval()
        self.k = k
        self.torch_rng = torch.Generator().manual_seed(seed)

    def propose(self, request: RequestTensors) -> torch.Tensor:
        greedy, _ = self.generator.decode(request, self.list_size, sample=False)
        if self.k == 1:
            return greedy
        sampled, _ = self.generator.decode(request.repeat(self.k - 1), self.list_size, sample=True,
                                           generator=self.torch_rng)
        return torch.cat([greedy, sampled])


class ScoreGreedy(ListGenerator):
    """Greedy by the upstream ranker's item score: what a point-wise ranker would show."""

    name = "greedy-by-score"

    def propose(self, request: RequestTensors) -> torch.Tensor:
        order = np.argsort(-request.ranker_score[0].numpy(), kind="stable").tolist()
        return torch.tensor([_pin_first(order, _pinned(request), self.list_size)])


class MMR(ListGenerator):
    """Maximal marginal relevance: (1-λ)·relevance − λ·max similarity to the items already chosen.
    Relevance is the ranker score min-max scaled within the request, so λ = 0 is greedy by score."""

    name = "mmr"

    def __init__(self, list_size: int, diversity: float = 0.3) -> None:
        super().__init__(list_size)
        if not 0.0 <= diversity <= 1.0:
            raise ValueError(f"MMR diversity must be in [0, 1], got {diversity}")
        self.diversity = diversity

    def propose(self, request: RequestTensors) -> torch.Tensor:
        score = request.ranker_score[0].double().numpy()
        rel = (score - score.min()) / (score.max() - score.min() + 1e-12)
        sim = item_similarity(request)
        m = rel.size
        chosen: list[int] = []
        max_sim = np.full(m, -np.inf)
        available = np.ones(m, dtype=bool)
        pinned = _pinned(request)
        while len(chosen) < self.list_size:
            if not chosen and pinned >= 0:
                pick = pinned
            else:
                penalty = np.where(np.isfinite(max_sim), max_sim, 0.0)
                value = (1.0 - self.diversity) * rel - self.diversity * penalty
                value[~available] = -np.inf
                pick = int(np.argmax(value))
            chosen.append(pick)
            available[pick] = False
            max_sim = np.maximum(max_sim, sim[pick])
        return torch.tensor([chosen])


class DPP(ListGenerator):
    """Greedy MAP of a determinantal point process, L = diag(q)·S·diag(q), q = exp(α·ranker score)
    (Chen et al. 2018's incremental Cholesky)."""

    name = "dpp"

    def __init__(self, list_size: int, quality_weight: float = 1.0, jitter: float = 1e-3) -> None:
        super().__init__(list_size)
        if quality_weight < 0 or jitter <= 0:
            raise ValueError("DPP needs quality_weight >= 0 and jitter > 0")
        self.quality_weight = quality_weight
        self.jitter = jitter

    def propose(self, request: RequestTensors) -> torch.Tensor:
        score = request.ranker_score[0].double().numpy()
        q = np.exp(self.quality_weight * (score - score.max()))
        kernel = q[:, None] * item_similarity(request) * q[None, :] + self.jitter * np.eye(q.size)
        m = q.size
        cis = np.zeros((self.list_size, m))
        gains = np.diag(kernel).copy()  # marginal gain in det of adding each item
        pinned = _pinned(request)
        pick = pinned if pinned >= 0 else int(np.argmax(gains))
        chosen = [pick]
        while len(chosen) < self.list_size:
            k = len(chosen) - 1
            e = (kernel[pick] - cis[:k, pick] @ cis[:k]) / np.sqrt(max(gains[pick], 1e-18))
            cis[k] = e
            gains = gains - e**2
            gains[chosen] = -np.inf
            pick = int(np.argmax(gains))
            chosen.append(pick)
        return torch.tensor([chosen])


class MultiQueue(ListGenerator):
    """Multi-queue weight sampling: one queue per item type sorted by ranker score; K weight vectors from a
    Dirichlet each fill a list by drawing a queue per slot and popping its best item."""

    name = "multi-queue"

    def __init__(self, list_size: int, reward: ListReward, k: int = 8, concentration: float = 1.0,
                 seed: int = 0) -> None:
        super().__init__(list_size, reward)
        if k < 1 or concentration <= 0:
            raise ValueError("MultiQueue needs k >= 1 and concentration > 0")
        self.k = k
        self.concentration = concentration
        self.rng = np.random.default_rng(seed)

    def propose(self, request: RequestTensors) -> torch.Tensor:
        score = request.ranker_score[0].numpy()
        itype = request.item_type[0].numpy()
        pinned = _pinned(request)
        kinds = np.unique(itype)
        queues = [[int(i) for i in np.argsort(-score, kind="stable") if itype[i] == t and i != pinned]
                  for t in kinds]
        lists = []
        for weights in self.rng.dirichlet(np.full(kinds.size, self.concentration), size=self.k):
            heads = [0] * len(queues)
            chosen = [pinned] if pinned >= 0 else []
            while len(chosen) < self.list_size:
                open_w = np.array([w if heads[j] < len(queues[j]) else 0.0 for j, w in enumerate(weights)])
                if open_w.sum() <= 0:  # only exhausted queues have weight: fall back to uniform
                    open_w = np.array([1.0 if heads[j] < len(queues[j]) else 0.0 for j in range(len(queues))])
                j = int(self.rng.choice(len(queues), p=open_w / open_w.sum()))
                chosen.append(queues[j][heads[j]])
                heads[j] += 1
            lists.append(chosen)
        return torch.tensor(lists)


class BeamSearch(ListGenerator):
    """Beam search guided by the evaluator: extend each beam by every unused item, keep the `width`
    prefixes with the highest predicted clicks. The evaluator is causal, so a prefix's score is final."""

    name = "beam-search"

    def __init__(self, evaluator: ListEvaluator, list_size: int, width: int = 4) -> None:
        super().__init__(list_size)
        if width < 1:
            raise ValueError(f"beam width must be >= 1, got {width}")
        self.evaluator = evaluator.eval()
        self.width = width

    def propose(self, request: RequestTensors) -> torch.Tensor:
        m = request.n_candidates
        pinned = _pinned(request)
        beams = torch.zeros(1, 0, dtype=torch.long)
        totals = torch.zeros(1)
        for step in range(self.list_size):
            if step == 0 and pinned >= 0:
                ext = torch.tensor([[pinned]])
                parent = torch.zeros(1, dtype=torch.long)
            else:
                used = torch.zeros(beams.shape[0], m, dtype=torch.bool)
                used[torch.arange(beams.shape[0]).unsqueeze(1), beams] = True
                parent, item = (~used).nonzero(as_tuple=True)
                ext = torch.cat([beams[parent], item.unsqueeze(1)], dim=1)
            last = torch.sigmoid(self.evaluator(request.repeat(ext.shape[0]).gather(ext))[:, -1])
            cand_totals = totals[parent] + last
            keep = torch.topk(cand_totals, min(self.width, ext.shape[0])).indices
            beams, totals = ext[keep], cand_totals[keep]
        return beams[:1]


class BestOfGenerators(ListGenerator):
    """Serving mode: every generator's proposals together; the reward picks the list to show."""

    name = "best-of-generators"

    def __init__(self, generators: Sequence[ListGenerator], list_size: int, reward: ListReward) -> None:
        super().__init__(list_size, reward)
        if not generators:
            raise ValueError("BestOfGenerators needs at least one generator")
        self.generators = list(generators)

    def propose(self, request: RequestTensors) -> torch.Tensor:
        return torch.cat([g.propose(request) for g in self.generators])
