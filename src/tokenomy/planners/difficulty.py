"""Difficulty: the probability that a cheap reasoning mode suffices for a prompt.

A small logistic model over `features.featurize`, in two segments: math word
problems (open questions with numbers to combine, where the number of clauses
stands in for the number of reasoning steps) and everything else (dense signals
plus hashed n-grams). The trained artefact is a small JSON file shipped in the
package (`difficulty_model.json`); `tokenomy planners train` writes a new one
from a team's own labelled prompts. Scoring one prompt takes well under a
millisecond on one CPU core: a few regexes and one dot product.

`difficulty` is reported on a uniform scale: the share of the training prompts
that the model found easier, so a threshold of 0.4 sends about the easiest 40%
of traffic like the training set's to cheap modes.
"""

from __future__ import annotations

import bisect
import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from tokenomy.planners.features import DENSE_NAMES, dense_features, hashed_ngrams

FORMAT = "tokenomy-difficulty/1"
DEFAULT_MODEL_PATH = Path(__file__).with_name("difficulty_model.json")
MAX_SCORED_CHARS = 12_000  # features of a huge prompt are decided by its first pages
MATH_GATE = DENSE_NAMES.index("is_math_word_problem")


class Segment(BaseModel):
    """One logistic model: standardised dense features, optional hashed n-grams."""

    dense: list[str]
    hash_dim: int = Field(default=0, ge=0)
    hash_weight: float = 1.0
    mean: list[float]
    std: list[float]
    weights: list[float]  # dense weights first, then hashed ones
    bias: float
    rows: int = 0

    def columns(self) -> list[int]:
        return [DENSE_NAMES.index(name) for name in self.dense]


class DifficultyArtifact(BaseModel):
    format: str = FORMAT
    label: str = "cheap_ok = weak_correct or not strong_correct"
    trained_on: dict[str, Any] = Field(default_factory=dict)
    segments: dict[str, Segment]  # "math" and "general"
    # Sorted difficulties (1 - p_cheap_ok) of the training prompts, for the percentile scale.
    quantiles: list[float]


class DifficultyScore(BaseModel):
    p_cheap_ok: float
    difficulty: float  # percentile of (1 - p_cheap_ok) among the training prompts
    segment: str


class DifficultyModel:
    """Loads an artefact once and scores prompts."""

    def __init__(self, artifact: DifficultyArtifact):
        if artifact.format != FORMAT:
            raise ValueError(f"unknown difficulty model format {artifact.format!r}")
        self.artifact = artifact
        self._segments = {
            name: (
                np.asarray(seg.columns(), dtype=np.intp),
                np.asarray(seg.mean),
                np.asarray(seg.std),
                np.asarray(seg.weights),
                seg,
            )
            for name, seg in artifact.segments.items()
        }

    @classmethod
    def load(cls, path: str | Path | None = None) -> DifficultyModel:
        file = Path(path).expanduser() if path else DEFAULT_MODEL_PATH
        data = json.loads(file.read_text(encoding="utf-8"))
        return cls(DifficultyArtifact.model_validate(data))

    def probability(self, text: str) -> tuple[float, str]:
        """P(a cheap mode suffices) for `text`, and the segment that scored it."""
        text = text[:MAX_SCORED_CHARS]
        dense = np.asarray(dense_features(text))
        name = "math" if dense[MATH_GATE] >= 0.5 and "math" in self._segments else "general"
        cols, mean, std, weights, seg = self._segments[name]
        x = (dense[cols] - mean) / std
        z = float(x @ weights[: len(cols)]) + seg.bias
        if seg.hash_dim:
            z += float(hashed_ngrams(text, seg.hash_dim) @ weights[len(cols) :]) * seg.hash_weight
        return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, z)))), name

    def score(self, text: str) -> DifficultyScore:
        if is_trivial(text):
            # Benchmark labels hold no chit-chat; a one-line ask with no math or
            # code in it would otherwise be scored like a terse exam question.
            return DifficultyScore(p_cheap_ok=0.95, difficulty=0.0, segment="trivial")
        p, segment = self.probability(text)
        quantiles = self.artifact.quantiles
        rank = bisect.bisect_left(quantiles, 1.0 - p)
        difficulty = rank / len(quantiles) if quantiles else 1.0 - p
        return DifficultyScore(p_cheap_ok=p, difficulty=difficulty, segment=segment)


TRIVIAL_MAX_WORDS = 12
_TRIVIAL_BLOCKERS = ("math_words", "code_signals", "constraints", "choices", "step_words")


def is_trivial(text: str) -> bool:
    """A short single-line request with no math, code, constraints or steps."""
    if len(text.split()) > TRIVIAL_MAX_WORDS or "\n" in text.strip():
        return False
    values = dict(zip(DENSE_NAMES, dense_features(text), strict=True))
    return values["numbers"] <= 2 and not any(values[name] for name in _TRIVIAL_BLOCKERS)


@lru_cache(maxsize=8)
def load_difficulty_model(path: str | None = None) -> DifficultyModel:
    """The shipped model (or the one at `path`), loaded once per process."""
    return DifficultyModel.load(path)
