"""`tokenomy compress`: compress stdin (or a file) for a question and print the result."""

from __future__ import annotations

import sys
from typing import Any

import click

from tokenomy.plugins import compressor_methods


@click.command("compress")
@click.option("--query", "-q", default=None, help="The question the context must still answer.")
@click.option("--ratio", "-r", type=float, default=None, help="Target ratio, e.g. 4 keeps ~1/4.")
@click.option("--target-tokens", "-t", type=int, default=None,
              help="Token budget instead of a ratio.")
@click.option("--model", "-m", default="gpt-4o", show_default=True,
              help="Count tokens in this model's tokenizer.")
@click.option("--method", type=click.Choice(compressor_methods()), default="auto",
              show_default=True,
              help="auto picks per piece (JSON: lossless, code: code, prose: extractive); "
                   "or any registered compressor, plugins' included.")
@click.option("--reorder/--keep-order", default=False, help="Most relevant document first.")
@click.option("--min-tokens", type=int, default=0, show_default=True,
              help="Leave contexts shorter than this alone.")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@click.argument("source", type=click.File("r", encoding="utf-8"), default="-")
def compress(
    query: str | None,
    ratio: float | None,
    target_tokens: int | None,
    model: str,
    method: str,
    reorder: bool,
    min_tokens: int,
    as_json: bool,
    source: Any,
) -> None:
    """Compress the context read from SOURCE (default: stdin)."""
    from tokenomy.compressors.api import compress as run

    _say_what_loads()
    if ratio is not None and target_tokens is not None:
        raise click.UsageError("give --ratio or --target-tokens, not both")
    text = source.read()
    try:
        result = run(text, query=query, target_ratio=ratio, target_tokens=target_tokens,
                     model=model, method=method, reorder=reorder, min_tokens=min_tokens)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if as_json:
        click.echo(result.model_dump_json(indent=2))
        return
    click.echo(result.text)
    target = result.detail.get("target_tokens")
    click.echo(
        f"# {result.method}: {result.original_tokens} -> {result.compressed_tokens} tokens "
        f"({result.ratio:.2f}x{f', target {target}' if target else ''}, {result.ms:.0f} ms)",
        err=True,
    )
    sys.stdout.flush()


def _say_what_loads() -> None:
    """A cold run loads models for seconds: say which, on stderr, as it happens."""
    import logging

    log = logging.getLogger("tokenomy.scoring")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("tokenomy: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
