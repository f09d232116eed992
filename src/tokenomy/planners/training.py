"""Training the difficulty model from routing labels (`tokenomy planners train`).

Input: JSON lines with `prompt`, `weak_correct`, `strong_correct` (the
routing-labels schema). The label is "a cheap mode suffices": the cheap answer
was right, or the strong answer was wrong too (then going cheap costs nothing).
The fit is an L2-regularised logistic regression solved by Newton's method in
numpy, so training needs no extra dependency and is deterministic.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tokenomy.planners.difficulty import (
    MATH_GATE,
    DifficultyArtifact,
    DifficultyModel,
    Segment,
)
from tokenomy.planners.embedding_head import EncodeFn, fit_head, rank_table
from tokenomy.planners.features import DENSE_NAMES, dense_features, hashed_ngrams
from tokenomy.planners.logistic import fit_logistic


class LabelledPrompt(BaseModel):
    model_config = ConfigDict(extra="ignore")

    prompt: str = Field(min_length=1)
    weak_correct: bool
    strong_correct: bool

    @property
    def cheap_ok(self) -> bool:
        return self.weak_correct or not self.strong_correct


class SegmentConfig(BaseModel):
    dense: list[str]
    hash_dim: int = 0
    hash_weight: float = 1.0
    c: float = Field(default=1.0, gt=0)  # inverse L2 strength, as scikit-learn's C


class EmbeddingConfig(BaseModel):
    segment: str = "math"
    c: float = Field(default=0.003, gt=0)  # 384 dimensions, a few hundred rows: shrink hard
    blend_weight: float = Field(default=0.5, gt=0)  # the features' rank counts twice as much
    min_rows: int = Field(default=50, ge=10)


class TrainConfig(BaseModel):
    # Math word problems: clause count (a proxy for reasoning steps) carried the
    # signal on GSM8K; more features overfit the few hundred labelled problems.
    math: SegmentConfig = SegmentConfig(dense=["clauses"], c=0.1)
    general: SegmentConfig = SegmentConfig(
        dense=list(DENSE_NAMES), hash_dim=1024, hash_weight=0.5, c=1.0
    )
    # The embedding head helps where the features plateau (math word problems);
    # on MMLU-style questions it added nothing over the hashed n-grams.
    embedding: EmbeddingConfig | None = EmbeddingConfig()


def read_labels(path: str | Path) -> list[LabelledPrompt]:
    """Read a routing-labels JSONL file; a bad line names its number."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                rows.append(LabelledPrompt.model_validate_json(line))
            except ValidationError as exc:
                raise ValueError(f"{path}:{number}: not a routing label: {exc}") from exc
    if not rows:
        raise ValueError(f"{path}: no labelled prompts")
    return rows


def _fit_segment(texts: Sequence[str], y: np.ndarray, config: SegmentConfig) -> Segment:
    cols = [DENSE_NAMES.index(name) for name in config.dense]
    dense = np.asarray([dense_features(t) for t in texts])[:, cols]
    mean = dense.mean(axis=0)
    std = dense.std(axis=0)
    std[std == 0] = 1.0
    parts = [(dense - mean) / std]
    if config.hash_dim:
        hashed = np.asarray([hashed_ngrams(t, config.hash_dim) for t in texts])
        parts.append(hashed * config.hash_weight)
    w = fit_logistic(np.hstack(parts), y.astype(float), config.c)
    return Segment(
        dense=list(config.dense),
        hash_dim=config.hash_dim,
        hash_weight=config.hash_weight,
        mean=mean.tolist(),
        std=std.tolist(),
        # Hashed weights are scaled back so scoring multiplies by hash_weight once.
        weights=[round(v, 6) for v in w[:-1].tolist()],
        bias=float(w[-1]),
        rows=len(texts),
    )


def train(
    rows: Iterable[LabelledPrompt],
    config: TrainConfig | None = None,
    source: dict[str, Any] | None = None,
    encode: EncodeFn | None = None,
) -> DifficultyModel:
    """Fit both segments and the percentile scale; the math segment needs >= 20 rows.

    With `encode` (texts -> unit embeddings), also fit the embedding head for
    `config.embedding.segment` when that segment has enough rows.
    """
    config = config or TrainConfig()
    rows = list(rows)
    texts = [r.prompt for r in rows]
    y = np.asarray([r.cheap_ok for r in rows])
    is_math = np.asarray([dense_features(t)[MATH_GATE] >= 0.5 for t in texts])
    segments: dict[str, Segment] = {}
    general_idx = np.arange(len(rows))
    math_idx = np.nonzero(is_math)[0]
    if len(math_idx) >= 20 and len(set(y[math_idx].tolist())) == 2:
        segments["math"] = _fit_segment([texts[i] for i in math_idx], y[math_idx], config.math)
        general_idx = np.nonzero(~is_math)[0]
    if len(general_idx) < 2 or len(set(y[general_idx].tolist())) < 2:
        general_idx = np.arange(len(rows))  # too few to split: one model for all
    segments["general"] = _fit_segment(
        [texts[i] for i in general_idx], y[general_idx], config.general
    )
    artifact = DifficultyArtifact(
        trained_on={**(source or {}), "rows": len(rows), "cheap_ok_rate": float(y.mean())},
        segments=segments,
        quantiles=[],
    )
    features = DifficultyModel(artifact)
    scored = [features.probability(t) for t in texts]
    p = np.asarray([prob for prob, _ in scored])
    artifact.quantiles = rank_table((1.0 - p).tolist())
    head = config.embedding
    if encode is not None and head is not None and head.segment in segments:
        in_segment = np.asarray([name == head.segment for _, name in scored])
        idx = np.nonzero(in_segment)[0]
        if len(idx) >= head.min_rows and len(set(y[idx].tolist())) == 2:
            vectors = np.asarray(encode([texts[i] for i in idx]), dtype=np.float64)
            fitted, oof = fit_head(
                vectors, y[idx], p[idx], segment=head.segment, c=head.c,
                blend_weight=head.blend_weight,
            )
            blended = p.copy()
            blended[idx] = [fitted.blend(f, e) for f, e in zip(p[idx], oof, strict=True)]
            fitted.quantiles = rank_table((1.0 - blended).tolist())
            artifact.embedding = fitted
    return DifficultyModel(artifact, encode)


def train_file(
    path: str | Path,
    out: str | Path,
    config: TrainConfig | None = None,
    encode: EncodeFn | None = None,
) -> DifficultyModel:
    rows = read_labels(path)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    model = train(rows, config, source={"file": Path(path).name, "sha256": digest}, encode=encode)
    Path(out).write_text(
        json.dumps(model.artifact.model_dump(), separators=(",", ":")) + "\n", encoding="utf-8"
    )
    return model
