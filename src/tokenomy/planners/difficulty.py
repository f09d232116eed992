"""Difficulty: the probability that a cheap reasoning mode suffices for a prompt.

A small logistic model over `features.featurize`, in two segments: math word
problems (open questions with numbers to combine, where the number of clauses
stands in for the number of reasoning steps) and everything else (dense signals
plus hashed n-grams). The trained artefact is a small JSON file shipped in the
package (`difficulty_model.json`); `tokenomy planners train` writes a new one
from a team's own labelled prompts. Scoring one prompt takes well under a
millisecond on one CPU core: a few regexes and one dot product. An artefact
may also hold an `EmbeddingHead` for the math segment, used only when the
model is loaded with an encoder (`[planner] embeddings`).

`difficulty` is reported on a uniform scale: the share of the training prompts
that the model found easier, so a threshold of 0.4 sends about the easiest 40%
of traffic like the training set's to cheap modes.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from tokenomy.planners.embedding_head import EmbeddingHead, EncodeFn, percentile
from tokenomy.planners.features import DENSE_NAMES, dense_features, hashed_ngrams
from tokenomy.planners.logistic import sigmoid

log = logging.getLogger(__name__)
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
    embedding: EmbeddingHead | None = None


class DifficultyScore(BaseModel):
    p_cheap_ok: float
    difficulty: float  # percentile of (1 - p_cheap_ok) among the training prompts
    segment: str
    embedded: bool = False  # the embedding head took part



class DifficultyModel:
    """Loads an artefact once and scores prompts; `encode` switches the embedding head on."""

    def __init__(self, artifact: DifficultyArtifact, encode: EncodeFn | None = None):
        if artifact.format != FORMAT:
            raise ValueError(f"unknown difficulty model format {artifact.format!r}")
        self.artifact = artifact
        self.head = artifact.embedding if encode is not None else None
        self._encode = encode
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
    def load(
        cls, path: str | Path | None = None, encode: EncodeFn | None = None
    ) -> DifficultyModel:
        file = Path(path).expanduser() if path else DEFAULT_MODEL_PATH
        data = json.loads(file.read_text(encoding="utf-8"))
        return cls(DifficultyArtifact.model_validate(data), encode)

    def probability(self, text: str) -> tuple[float, str]:
        """P(a cheap mode suffices) for `text`, and the segment that scored it."""
        p, name, _ = self._probability(text)
        return p, name

    def _probability(self, text: str) -> tuple[float, str, bool]:
        text = text[:MAX_SCORED_CHARS]
        dense = np.asarray(dense_features(text))
        name = "math" if dense[MATH_GATE] >= 0.5 and "math" in self._segments else "general"
        cols, mean, std, weights, seg = self._segments[name]
        x = (dense[cols] - mean) / std
        z = float(x @ weights[: len(cols)]) + seg.bias
        if seg.hash_dim:
            z += float(hashed_ngrams(text, seg.hash_dim) @ weights[len(cols) :]) * seg.hash_weight
        p = sigmoid(z)
        if self.head is not None and self._encode is not None and name == self.head.segment:
            vector = self._encode([text])[0]
            return self.head.blend(p, self.head.embedding_probability(vector)), name, True
        return p, name, False

    def score(self, text: str) -> DifficultyScore:
        if is_trivial(text):
            # Benchmark labels hold no chit-chat; a one-line ask with no math or
            # code in it would otherwise be scored like a terse exam question.
            return DifficultyScore(p_cheap_ok=0.95, difficulty=0.0, segment="trivial")
        p, segment, embedded = self._probability(text)
        quantiles = self.head.quantiles if self.head and self.head.quantiles else (
            self.artifact.quantiles
        )
        difficulty = percentile(quantiles, 1.0 - p, empty=1.0 - p)
        return DifficultyScore(
            p_cheap_ok=p, difficulty=difficulty, segment=segment, embedded=embedded
        )


TRIVIAL_MAX_WORDS = 12
_TRIVIAL_BLOCKERS = ("math_words", "code_signals", "constraints", "choices", "step_words")


def is_trivial(text: str) -> bool:
    """A short single-line request with no math, code, constraints or steps."""
    if len(text.split()) > TRIVIAL_MAX_WORDS or "\n" in text.strip():
        return False
    values = dict(zip(DENSE_NAMES, dense_features(text), strict=True))
    return values["numbers"] <= 2 and not any(values[name] for name in _TRIVIAL_BLOCKERS)


@lru_cache(maxsize=8)
def load_difficulty_model(path: str | None = None, embeddings: bool = False) -> DifficultyModel:
    """The shipped model (or the one at `path`), loaded once per process.

    With `embeddings`, its embedding head (if it has one) scores with the shared
    MiniLM embedding cache, the one the compressors use.
    """
    encode = None
    if embeddings:
        from tokenomy.assets import minilm_path, require
        from tokenomy.errors import AssetsMissing
        from tokenomy.scoring.embeddings import embed_texts

        try:
            require(minilm_path(), "all-MiniLM-L6-v2")
            encode = embed_texts
        except AssetsMissing as exc:
            log.warning("difficulty model scores with text features only: %s", exc)
    return DifficultyModel.load(path, encode)
