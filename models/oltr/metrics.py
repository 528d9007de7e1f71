"""NDCG with exponential gain (2^rel - 1) and log2(rank + 1) discount, as in the OLTR literature."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def dcg_at_k(labels_in_rank_order: npt.ArrayLike, k: int) -> float:
    rel = np.asarray(labels_in_rank_order, dtype=np.float64)[:k]
    return float(((2.0 ** rel - 1.0) / np.log2(np.arange(2, rel.size + 2))).sum())


def ndcg_at_k(labels_in_rank_order: npt.ArrayLike, all_labels: npt.ArrayLike, k: int) -> float:
    """NDCG@k of a shown ranking; the ideal is the best k of `all_labels`. 0 when nothing is relevant."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    ideal = dcg_at_k(np.sort(np.asarray(all_labels))[::-1], k)
    return dcg_at_k(labels_in_rank_order, k) / ideal if ideal > 0 else 0.0
