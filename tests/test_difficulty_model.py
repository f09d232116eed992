"""The difficulty model: ships in the package, loads offline, scores fast, retrains from labels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tokenomy.cli import main
from tokenomy.planners import PlannerPolicy, select_mode
from tokenomy.planners.difficulty import DEFAULT_MODEL_PATH, DifficultyModel, load_difficulty_model
from tokenomy.planners.training import read_labels

DATA = Path(__file__).resolve().parents[1] / "data" / "routing_labels.dev.jsonl"


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return [json.loads(line) for line in DATA.read_text().splitlines()]


def test_shipped_artifact_is_small_and_loads_without_network() -> None:
    assert DEFAULT_MODEL_PATH.is_file()
    assert DEFAULT_MODEL_PATH.stat().st_size < 200_000
    # A fresh interpreter with every proxy pointing at a dead port: loading must not care.
    dead = "http://127.0.0.1:9"
    env = {**os.environ, "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "HF_HUB_OFFLINE": "1"}
    code = (
        "from tokenomy.planners.difficulty import load_difficulty_model;"
        "s = load_difficulty_model().score('A train leaves at 3 pm, then, after 40 minutes, "
        "stops, and waits 15 minutes. How many minutes late is it if the trip takes 2 hours?');"
        "print(s.segment, round(s.difficulty, 3))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120, check=True)
    segment, difficulty = out.stdout.split()
    assert segment == "math" and 0.0 <= float(difficulty) <= 1.0


def test_scoring_takes_under_5_ms_per_request(rows: list[dict]) -> None:
    model = load_difficulty_model()
    prompts = [r["prompt"] for r in rows[:300]]
    model.score(prompts[0])
    started = time.perf_counter()
    for prompt in prompts:
        model.score(prompt)
    per_prompt_ms = (time.perf_counter() - started) * 1000 / len(prompts)
    assert per_prompt_ms < 5.0, per_prompt_ms


def test_the_model_ranks_cheap_enough_prompts_first(rows: list[dict]) -> None:
    model = load_difficulty_model()
    p = np.asarray([model.probability(r["prompt"])[0] for r in rows])
    cheap_ok = np.asarray([r["weak_correct"] or not r["strong_correct"] for r in rows])
    # Prompts the model puts in its easiest half suffice cheaply more often than the hardest half.
    easy = p >= np.median(p)
    assert cheap_ok[easy].mean() > cheap_ok[~easy].mean() + 0.05


def test_trivial_requests_are_easy_and_difficulty_is_a_percentile() -> None:
    model = load_difficulty_model()
    assert model.score("What is the capital of France?").difficulty == 0.0
    hard = model.score(
        "A store sells pens at $3 each, or 4 for $10, and notebooks at $5, except on Mondays, "
        "when, after a 20% discount, a notebook costs less than 2 pens. Tom buys 9 pens, 3 "
        "notebooks on Monday, and returns 1 pen. How much does he spend?"
    )
    assert 0.0 <= hard.difficulty <= 1.0 and hard.difficulty > 0.5


def test_train_cli_writes_a_model_that_select_mode_uses(tmp_path: Path, rows: list[dict]) -> None:
    data = tmp_path / "labels.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows[:400]))
    out = tmp_path / "model.json"
    result = CliRunner().invoke(main, ["planners", "train", "--data", str(data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "trained on 400 prompts" in result.output
    model = DifficultyModel.load(out)
    assert model.artifact.trained_on["rows"] == 400
    decision = select_mode(
        [{"role": "user", "content": rows[0]["prompt"]}],
        model="gpt-5",
        policy=PlannerPolicy(model_path=str(out)),
    )
    assert decision.p_cheap_ok == pytest.approx(model.probability(rows[0]["prompt"])[0])


def test_bad_training_data_names_the_line(tmp_path: Path) -> None:
    data = tmp_path / "bad.jsonl"
    good = {"prompt": "hi", "weak_correct": True, "strong_correct": True}
    data.write_text(json.dumps(good) + '\n{"prompt": 1}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2"):
        read_labels(data)
    result = CliRunner().invoke(main, ["planners", "train", "--data", str(data),
                                       "--out", str(tmp_path / "m.json")])
    assert result.exit_code != 0 and "bad.jsonl:2" in result.output
