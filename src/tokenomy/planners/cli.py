"""`tokenomy planners ...`: train the difficulty model, and show a decision for a prompt."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click


@click.group()
def planners() -> None:
    """Reasoning-mode selection: train the difficulty model, inspect decisions."""


@planners.command("train")
@click.option("--data", "data", required=True, type=click.Path(exists=True, dir_okay=False),
              help="JSONL with prompt, weak_correct, strong_correct per line.")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
              help="Where to write the model (default: difficulty_model.json in $TOKENOMY_HOME).")
@click.option("--embeddings/--no-embeddings", default=True, show_default=True,
              help="Also fit the MiniLM embedding head for math word problems "
                   "(needs `tokenomy assets install`; one MiniLM pass per math prompt).")
def train_command(data: str, out: str | None, embeddings: bool) -> None:
    """Train the difficulty model on routing labels; point [planner] model_path at the result."""
    from tokenomy.config import tokenomy_home
    from tokenomy.errors import AssetsMissing
    from tokenomy.planners.training import train_file

    target = Path(out) if out else tokenomy_home() / "difficulty_model.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    encode = None
    if embeddings:
        from tokenomy.assets import minilm_path, require
        from tokenomy.scoring.embeddings import embed_texts

        try:
            require(minilm_path(), "all-MiniLM-L6-v2")
        except AssetsMissing as exc:
            raise click.ClickException(f"{exc} Or train without it: --no-embeddings.") from exc
        encode = embed_texts
    try:
        model = train_file(data, target, encode=encode)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    info = model.artifact.trained_on
    segments = ", ".join(f"{k}: {v.rows} rows" for k, v in model.artifact.segments.items())
    head = model.artifact.embedding
    extra = f", embedding head on {head.segment}: {head.rows} rows" if head else ""
    click.echo(f"trained on {info['rows']} prompts ({segments}{extra}); "
               f"cheap mode sufficed for {info['cheap_ok_rate']:.1%}")
    click.echo(f"wrote {target}")
    click.echo(f"use it with: [planner] model_path = \"{target}\"")


@planners.command("select")
@click.option("--model", "model", default="", help="Target model (picks the provider knob).")
@click.option("--mode", "mode", default="auto", help="auto or a mode name.")
@click.option("--degrade", is_flag=True, help="As under budget pressure.")
@click.option("--model-path", default=None, help="A difficulty model from `planners train`.")
@click.argument("prompt", required=False)
def select_command(model: str, mode: str, degrade: bool, model_path: str | None,
                   prompt: str | None) -> None:
    """Show the mode and provider params chosen for PROMPT (or stdin)."""
    from tokenomy.planners import PlannerPolicy, select_mode

    text = prompt if prompt is not None else sys.stdin.read()
    try:
        policy = PlannerPolicy(model_path=model_path)
        decision = select_mode([{"role": "user", "content": text}], model=model, policy=policy,
                               requested=mode, degrade=degrade)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(decision.model_dump(mode="json"), indent=2))
