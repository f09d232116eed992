"""An optional second opinion for one segment: a logistic model over sentence embeddings.

Why it exists: on math word problems the text features plateau (the clause
count, our best single signal, ranks GSM8K about as well as the reference
solution's own step count does). A MiniLM sentence embedding carries a partly
independent signal; blended with the features it sends more of GSM8K to a cheap
mode at the same quality (see `benchmarks/routing.py`). Neither is strong
alone, so the blend is by percentile: each score becomes its rank among the
training prompts of the segment, the two ranks are averaged with
`blend_weight` on the embedding's, and a one-feature logistic fit maps the
mixed rank back to a probability.

It costs one MiniLM forward pass per new prompt (about 20 ms on a 2-core CPU;
the shared embedding cache makes repeated prompts free), so the policy turns it
on by default only where scoring runs on a GPU (`[planner] embeddings`).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence

import numpy as np
from pydantic import BaseModel, Field

from tokenomy.planners.logistic import fit_logistic, predict, sigmoid

EncodeFn = Callable[[list[str]], np.ndarray]
RANK_POINTS = 201  # a percentile table this long is exact enough and keeps the file small


class EmbeddingHead(BaseModel):
    segment: str
    encoder: str = "all-MiniLM-L6-v2"
    mean: list[float]
    std: list[float]
    weights: list[float]
    bias: float
    blend_weight: float = Field(gt=0)
    feature_ranks: list[float]  # sorted feature p_cheap_ok of the segment's training prompts
    embedding_ranks: list[float]  # sorted out-of-fold embedding p_cheap_ok of the same prompts
    calibration: list[float]  # [slope, intercept]: mixed rank -> p_cheap_ok
    quantiles: list[float] = Field(default_factory=list)  # the model's difficulty scale, head on
    rows: int = 0

    def embedding_probability(self, vector: np.ndarray) -> float:
        x = (np.asarray(vector, dtype=np.float64) - self.mean) / self.std
        return sigmoid(float(x @ np.asarray(self.weights)) + self.bias)

    def mixed_rank(self, p_features: float, p_embedding: float) -> float:
        ranked_f = percentile(self.feature_ranks, p_features)
        ranked_e = percentile(self.embedding_ranks, p_embedding)
        return (ranked_f + self.blend_weight * ranked_e) / (1.0 + self.blend_weight)

    def blend(self, p_features: float, p_embedding: float) -> float:
        slope, intercept = self.calibration
        return sigmoid(slope * self.mixed_rank(p_features, p_embedding) + intercept)


def percentile(table: Sequence[float], value: float, empty: float = 0.5) -> float:
    """The share of a sorted `table` below `value` (`empty` when there is no table)."""
    return bisect.bisect_left(table, value) / len(table) if table else empty


def rank_table(values: Sequence[float]) -> list[float]:
    """At most RANK_POINTS evenly spaced order statistics of `values`."""
    ordered = sorted(values)
    picks = np.linspace(0, len(ordered) - 1, num=min(RANK_POINTS, len(ordered)))
    return [round(ordered[round(i)], 6) for i in picks]


def fit_head(
    vectors: np.ndarray,
    y: np.ndarray,
    p_features: np.ndarray,
    *,
    segment: str,
    c: float,
    blend_weight: float,
    folds: int = 5,
) -> tuple[EmbeddingHead, np.ndarray]:
    """The head for one segment's embeddings, and its out-of-fold scores of them.

    Out-of-fold, because the head's in-sample scores on a few hundred prompts
    are far more confident than its scores on new ones, and the percentile
    tables and the calibration must describe new prompts.
    """
    mean = vectors.mean(axis=0)
    std = vectors.std(axis=0)
    std[std == 0] = 1.0
    x = (vectors - mean) / std
    y = y.astype(float)
    fold = np.arange(len(y)) % folds
    oof = np.zeros(len(y))
    for k in range(folds):
        held = fold == k
        w = fit_logistic(x[~held], y[~held], c)
        oof[held] = predict(x[held], w)
    w = fit_logistic(x, y, c)
    head = EmbeddingHead(
        segment=segment,
        mean=mean.tolist(),
        std=std.tolist(),
        weights=[round(v, 6) for v in w[:-1].tolist()],
        bias=float(w[-1]),
        blend_weight=blend_weight,
        feature_ranks=rank_table(p_features.tolist()),
        embedding_ranks=rank_table(oof.tolist()),
        calibration=[1.0, 0.0],
        rows=len(y),
    )
    mixed = np.asarray([head.mixed_rank(f, e) for f, e in zip(p_features, oof, strict=True)])
    slope, intercept = fit_logistic(mixed[:, None], y, c=100.0)
    head.calibration = [float(slope), float(intercept)]
    return head, oof
