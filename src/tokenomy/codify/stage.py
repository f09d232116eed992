"""The `codify` stage: codified forms for what a prompt pastes as text.

- A stored 5C contract replaces the system prompt it was made from, when the
  team opted in (technique "contract", detail: the prompt hash).
- JSON Schemas and tool lists pasted into messages become typed definitions
  (technique "typed_schema"); pretty JSON data becomes minified JSON or a
  TOON table (technique "json_compact").

The real `tools` / `response_format` fields are never touched: the backend
enforces those. Rewrites are deterministic, so a rewritten system prompt is
the same bytes on every call and provider prompt caches keep hitting.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

from tokenomy.call import Call, Result
from tokenomy.codify.contract_store import ContractStore
from tokenomy.codify.contracts import prompt_hash
from tokenomy.codify.detect import codified, find_blocks, relabel_fence
from tokenomy.codify.settings import (
    CodifySettings,
    codify_settings,
    contract_policy,
    team_opted_in,
)
from tokenomy.config import Settings
from tokenomy.pipeline import Next
from tokenomy.tokenizers import count_messages, count_text, message_text

DEFAULT_MODEL = "gpt-4o"  # tokenizer used when a call names no model


class Tally:
    """Tokens before/after per technique over one call."""

    def __init__(self) -> None:
        self.by_technique: dict[str, dict[str, Any]] = {}

    def add(self, technique: str, before: int, after: int, kind: str) -> None:
        entry = self.by_technique.setdefault(
            technique, {"before": 0, "after": 0, "blocks": 0, "kinds": {}})
        entry["before"] += before
        entry["after"] += after
        entry["blocks"] += 1
        entry["kinds"][kind] = entry["kinds"].get(kind, 0) + 1


Rewrite = tuple[str, tuple[tuple[str, int, int, str], ...]]  # text, (technique, before, ...)


def codify_text(text: str, model: str, role: str, options: CodifySettings,
                tally: Tally) -> str:
    """Rewrite every JSON schema / tool list / data block in `text` that gets shorter.

    System prompts and tool lists repeat on every call, so results are cached
    by (text, model, role, options): a repeated prompt costs one dict lookup.
    """
    if ("{" not in text and "[" not in text) or len(text) > options.max_chars:
        return text  # nothing to find, or too long to scan on the request path
    new, entries = _codify_cached(text, model, role, options.model_dump_json())
    for technique, before, after, kind in entries:
        tally.add(technique, before, after, kind)
    return new


@lru_cache(maxsize=512)
def _codify_cached(text: str, model: str, role: str, options_json: str) -> Rewrite:
    options = CodifySettings.model_validate_json(options_json)
    entries: list[tuple[str, int, int, str]] = []
    blocks = find_blocks(text)
    for block in reversed(blocks):  # from the end, so earlier offsets stay valid
        if block.kind == "data":
            if not options.json_data or role not in options.data_roles:
                continue
        elif not options.typed_schemas or role not in options.schema_roles:
            continue
        old = text[block.start:block.end]
        try:
            new = codified(block, tables=role in options.table_roles)
        except (ValueError, TypeError, KeyError, RecursionError):
            continue  # an odd schema stays as it was
        before, after = count_text(old, model), count_text(new, model)
        saved = before - after
        if saved < max(options.min_tokens, options.min_saving * before):
            continue
        text = text[:block.start] + new + text[block.end:]
        if block.kind != "data":
            text = relabel_fence(text, block.start, "ts")
        elif not new.startswith(("{", "[{", "[[", '["')) or "]{" in new.split("\n", 1)[0]:
            text = relabel_fence(text, block.start, "text")  # a table is no longer JSON
        technique = "json_compact" if block.kind == "data" else "typed_schema"
        entries.append((technique, before, after, block.kind))
    return text, tuple(reversed(entries))


def _rewrite_content(content: Any, rewrite: Any) -> Any:
    if isinstance(content, str):
        return rewrite(content)
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(
                    part.get("text"), str):
                part = {**part, "text": rewrite(part["text"])}
            parts.append(part)
        return parts
    return content


class CodifyStage:
    name = "codify"

    def __init__(self, settings: Settings | None = None,
                 store: ContractStore | None = None) -> None:
        self.settings = settings
        self.options = codify_settings(settings)
        self.policy = contract_policy(settings)
        self._store = store

    @property
    def store(self) -> ContractStore:
        if self._store is None:  # opened on first use: most deployments never opt in
            self._store = ContractStore(self.policy.db_path())
        return self._store

    async def __call__(self, call: Call, next: Next) -> Result:
        messages = call.body.get("messages")
        if not self.options.enabled or not isinstance(messages, list) or not messages:
            return await next(call)
        started = time.perf_counter()
        model = call.model or DEFAULT_MODEL
        new = list(messages)
        changed = self._substitute_contract(call, new, model)
        tally = Tally()
        roles = {*self.options.schema_roles, *self.options.data_roles}
        for index, message in enumerate(new):
            if not isinstance(message, dict) or message.get("role") not in roles:
                continue
            content = message.get("content")
            role = str(message["role"])
            rewritten = _rewrite_content(
                content, lambda text, role=role: codify_text(text, model, role, self.options,
                                                             tally))
            if rewritten != content:
                new[index] = {**message, "content": rewritten}
                changed = True
        ms = (time.perf_counter() - started) * 1000
        for technique, entry in tally.by_technique.items():
            call.record(self.name, technique=technique, tokens_before=entry["before"],
                        tokens_after=entry["after"], ms=ms,
                        detail={"blocks": entry["blocks"], "kinds": entry["kinds"]})
        if changed:
            tools = call.body.get("tools")
            if call.prompt_tokens_original is None:
                call.prompt_tokens_original = count_messages(messages, model, tools=tools)
            call.body["messages"] = new
            call.prompt_tokens_sent = count_messages(new, model, tools=tools)
        return await next(call)

    def _substitute_contract(self, call: Call, messages: list[Any], model: str) -> bool:
        if not team_opted_in(self.settings, self.policy, call.identity.team):
            return False
        first = messages[0]
        if not isinstance(first, dict) or first.get("role") not in ("system", "developer"):
            return False
        started = time.perf_counter()
        original = message_text(first.get("content"))
        digest = prompt_hash(original)
        stored = self.store.get(digest)
        if stored is None:
            return False
        before, after = count_text(original, model), count_text(stored.contract, model)
        if after >= before:
            return False  # an already-tight prompt: the contract would cost more
        messages[0] = {**first, "content": stored.contract}
        call.record(self.name, technique="contract", tokens_before=before, tokens_after=after,
                    ms=(time.perf_counter() - started) * 1000,
                    detail={"hash": digest, "source": stored.source})
        return True
