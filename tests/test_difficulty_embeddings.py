"""The difficulty model's embedding head: fitted from labels, used only when switched on."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tokenomy.cli import main
from tokenomy.planners import PlannerPolicy, select_mode
from tokenomy.planners.difficulty import (
    DEFAULT_MODEL_PATH,
    DifficultyModel,
    load_difficulty_model,
)
from tokenomy.planners.policy import _gpu_with_encoder, embeddings_enabled
from tokenomy.planners.training import read_labels, train
from tokenomy.scoring.embeddings import embed_texts

DATA = Path(__file__).resolve().parents[1] / "data" / "routing_labels.dev.jsonl"
MATH = (
    "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes "
    "muffins for her friends every day with four. She sells the remainder at the farmers' "
    "market daily for $2 per fresh duck egg. How much in dollars does she make every day?"
)
TRIVIA = "Which planet is known as the red planet?\nA. Venus\nB. Mars\nC. Jupiter\nAnswer:"


@pytest.fixture(scope="module")
def mixed_rows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 GSM8K and 120 MMLU labels: enough math word problems for a head."""
    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    gsm = [r for r in rows if r["benchmark"] == "gsm8k"][:120]
    mmlu = [r for r in rows if r["benchmark"] == "mmlu"][:120]
    path = tmp_path_factory.mktemp("labels") / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in gsm + mmlu))
    return path


def test_shipped_model_has_a_math_head_that_only_scores_when_switched_on() -> None:
    artifact = DifficultyModel.load().artifact
    assert artifact.embedding is not None and artifact.embedding.segment == "math"
    assert len(artifact.embedding.weights) == 384
    features = load_difficulty_model()
    embedded = load_difficulty_model(None, True)
    assert features.head is None and embedded.head is not None
    off, on = features.score(MATH), embedded.score(MATH)
    assert off.segment == on.segment == "math"
    assert not off.embedded and on.embedded
    assert 0.0 < on.p_cheap_ok < 1.0 and on.p_cheap_ok != off.p_cheap_ok
    # Outside the head's segment both models agree exactly.
    assert embedded.score(TRIVIA) == features.score(TRIVIA)


def test_head_blends_ranks_and_calibrates_monotonically() -> None:
    head = DifficultyModel.load().artifact.embedding
    assert head is not None
    lows = [head.blend(0.3, e) for e in (0.1, 0.5, 0.9)]
    assert lows == sorted(lows)  # a more confident embedding never makes the prompt look harder
    assert head.blend(0.95, 0.5) > head.blend(0.2, 0.5)
    vector = embed_texts([MATH])[0]
    assert 0.0 < head.embedding_probability(vector) < 1.0


def test_train_fits_a_head_from_labels_and_its_scale_is_a_percentile(mixed_rows: Path) -> None:
    rows = read_labels(mixed_rows)
    model = train(rows, encode=embed_texts)
    head = model.artifact.embedding
    assert head is not None and head.rows >= 100
    assert len(head.quantiles) == len(model.artifact.quantiles)
    difficulties = [model.score(r.prompt).difficulty for r in rows]
    assert 0.3 < float(np.median(difficulties)) < 0.7
    assert train(rows).artifact.embedding is None  # no encoder: features only


def test_select_mode_uses_the_head_only_when_the_policy_says_so() -> None:
    messages = [{"role": "user", "content": MATH}]
    on = select_mode(messages, model="gpt-5", policy=PlannerPolicy(embeddings="on"))
    off = select_mode(messages, model="gpt-5", policy=PlannerPolicy(embeddings="off"))
    assert on.p_cheap_ok == pytest.approx(load_difficulty_model(None, True).probability(MATH)[0])
    assert off.p_cheap_ok == pytest.approx(load_difficulty_model().probability(MATH)[0])
    assert on.p_cheap_ok != off.p_cheap_ok


def test_auto_means_a_gpu_and_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    assert embeddings_enabled("on") and not embeddings_enabled("off")
    monkeypatch.setenv("TOKENOMY_DEVICE", "cpu")
    _gpu_with_encoder.cache_clear()
    try:
        assert not embeddings_enabled("auto")
    finally:
        _gpu_with_encoder.cache_clear()
    with pytest.raises(ValueError, match="embeddings"):
        PlannerPolicy(embeddings="sometimes")  # type: ignore[arg-type]


def test_missing_encoder_falls_back_to_features_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TOKENOMY_MODELS", str(tmp_path / "no-models"))
    copy = tmp_path / "model.json"  # a path of its own, so the cached loads do not answer
    copy.write_text(DEFAULT_MODEL_PATH.read_text())
    with caplog.at_level(logging.WARNING):
        model = load_difficulty_model(str(copy), True)
    assert model.head is None and "tokenomy assets install" in caplog.text
    assert not model.score(MATH).embedded


def test_train_cli_fits_the_head_unless_told_not_to(tmp_path: Path, mixed_rows: Path) -> None:
    runner = CliRunner()
    with_head, without = tmp_path / "with.json", tmp_path / "without.json"
    result = runner.invoke(main, ["planners", "train", "--data", str(mixed_rows),
                                  "--out", str(with_head)])
    assert result.exit_code == 0, result.output
    assert "embedding head on math" in result.output
    assert DifficultyModel.load(with_head).artifact.embedding is not None
    result = runner.invoke(main, ["planners", "train", "--data", str(mixed_rows),
                                  "--out", str(without), "--no-embeddings"])
    assert result.exit_code == 0, result.output
    assert DifficultyModel.load(without).artifact.embedding is None
