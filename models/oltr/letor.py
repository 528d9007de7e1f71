"""LETOR-format learning-to-rank data (`rel qid:Q i:v ...`), read from the rankeval sdist's MSLR-WEB sample.

Features are min-max normalised per query, as in the online-LTR simulations this reproduces
(Lerot; Oosterhuis & de Rijke), so a linear ranker's weights are comparable across queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from models.simulator.packaged_data import read_member

MSLR_FEATURES = 136
MSLR_SAMPLE = {
    "train": "rankeval/test/data/msn1.fold1.train.5k.txt",
    "test": "rankeval/test/data/msn1.fold1.test.5k.txt",
}


@dataclass(frozen=True)
class Query:
    qid: str
    features: npt.NDArray[np.float64]  # (n_docs, n_features)
    labels: npt.NDArray[np.int64]  # (n_docs,) 0..4


def parse_letor(text: str, n_features: int, *, normalise: bool = True) -> list[Query]:
    """Queries in file order; a line's features past `n_features` are an error, missing ones are 0."""
    rows: dict[str, tuple[list[npt.NDArray[np.float64]], list[int]]] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) < 2 or not parts[1].startswith("qid:"):
            raise ValueError(f"LETOR line {lineno}: expected 'rel qid:Q i:v ...', got {raw[:60]!r}")
        vec = np.zeros(n_features)
        for tok in parts[2:]:
            idx, _, val = tok.partition(":")
            j = int(idx) - 1
            if not 0 <= j < n_features:
                raise ValueError(f"LETOR line {lineno}: feature index {idx} outside 1..{n_features}")
            vec[j] = float(val)
        feats, labels = rows.setdefault(parts[1][4:], ([], []))
        feats.append(vec)
        labels.append(int(float(parts[0])))
    out = []
    for qid, (feats, labels) in rows.items():
        x = np.vstack(feats)
        if normalise:
            lo, hi = x.min(axis=0), x.max(axis=0)
            span = np.where(hi > lo, hi - lo, 1.0)
            x = (x - lo) / span
        out.append(Query(qid, x, np.asarray(labels, dtype=np.int64)))
    return out


def mslr_sample_from(archive: Path, split: str) -> tuple[Query, ...]:
    """The MSLR-WEB fold-1 sample ('train' or 'test') read from rankeval's sdist at `archive`."""
    if split not in MSLR_SAMPLE:
        raise ValueError(f"split must be one of {sorted(MSLR_SAMPLE)}, got {split!r}")
    text = read_member(archive, MSLR_SAMPLE[split]).decode("utf-8")
    return tuple(parse_letor(text, MSLR_FEATURES))
