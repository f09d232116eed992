"""`tokenomy contract`: rewrite a verbose system prompt once into a stored 5C contract."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import click

from tokenomy.errors import TokenomyError


async def _generate(prompt: str, config_path: str | None, model: str, count_model: str,
                    rules_only: bool) -> Any:
    from tokenomy.codify.contracts import make_contract

    if rules_only:
        return await make_contract(prompt, None, count_model)
    from tokenomy.codify.backend import engine_backend
    from tokenomy.config import load_settings
    from tokenomy.engine import build_engine

    engine = build_engine(load_settings(config_path))
    try:
        return await make_contract(prompt, engine_backend(engine, model, count_model),
                                   count_model)
    finally:
        await engine.aclose()


def _store(config_path: str | None, db: str | None) -> Any:
    from tokenomy.codify.contract_store import ContractStore
    from tokenomy.codify.settings import codify_settings
    from tokenomy.config import load_settings

    policy = codify_settings(load_settings(config_path)).contracts
    return ContractStore(db or policy.db_path())


@click.command("contract")
@click.argument("prompt_file", type=click.File("r", encoding="utf-8"), default="-")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              envvar="TOKENOMY_CONFIG", help="Settings file; its backend writes the contract.")
@click.option("--model", default="local", show_default=True,
              help="Model (alias) that writes the contract; `local` is the embedded SmolLM2.")
@click.option("--count-model", default="gpt-4o", show_default=True,
              help="Target model whose tokenizer counts the savings.")
@click.option("--rules-only", is_flag=True, help="Skip the model: rule-based 5C extraction.")
@click.option("--db", default=None, help="Contract store (default $TOKENOMY_HOME/contracts.db).")
@click.option("--list", "list_all", is_flag=True, help="List stored contracts and exit.")
@click.option("--delete", "delete_hash", default=None, help="Delete the contract with this hash.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def contract(prompt_file: Any, config_path: str | None, model: str, count_model: str,
             rules_only: bool,
             db: str | None, list_all: bool, delete_hash: str | None, as_json: bool) -> None:
    """Rewrite the system prompt in PROMPT_FILE (or stdin) into a 5C contract and store it.

    Character, Cause, Constraint, Contingency, Calibration. The model's draft
    is kept only if it preserves every number and must/never rule of the
    original; otherwise a rule-based extraction is stored. The proxy
    substitutes the contract for that exact system prompt (whitespace aside)
    for teams that opt in: `[planner] contracts = true` or
    `[teams.NAME] contracts = true`.
    """
    try:
        store = _store(config_path, db)
        if list_all:
            rows = store.all()
            if as_json:
                click.echo(json.dumps([r.__dict__ for r in rows], indent=2))
            for row in [] if as_json else rows:
                click.echo(f"{row.hash[:16]}  {row.source:5}  {row.tokens_before:>6} -> "
                           f"{row.tokens_after:<6}  {row.prompt[:50]!r}")
            return
        if delete_hash:
            found = [r.hash for r in store.all() if r.hash.startswith(delete_hash)]
            if len(found) != 1:
                raise click.ClickException(f"{len(found)} contracts match {delete_hash!r}")
            store.delete(found[0])
            click.echo(f"deleted {found[0]}")
            return
        prompt = prompt_file.read()
        if not prompt.strip():
            raise click.ClickException("the prompt is empty")
        made = asyncio.run(_generate(prompt, config_path, model, count_model, rules_only))
    except TokenomyError as exc:
        raise click.ClickException(exc.message) from exc
    store.put(made, model=None if made.source == "rules" else model)
    saved = made.tokens_before - made.tokens_after
    share = saved / made.tokens_before if made.tokens_before else 0.0
    if as_json:
        click.echo(json.dumps({"hash": made.hash, "source": made.source, "contract": made.text,
                               "tokens_before": made.tokens_before,
                               "tokens_after": made.tokens_after, "saved": saved,
                               "rejected_because": made.problems}, indent=2))
        return
    click.echo(made.text)
    click.echo(f"stored {made.hash[:16]} (source={made.source}, {made.tokens_before} -> "
               f"{made.tokens_after} {count_model} tokens, {share:.0%} saved)", err=True)
    if made.problems and made.source == "rules":
        click.echo("model draft rejected: " + "; ".join(made.problems[:3]), err=True)
    sys.stdout.flush()
