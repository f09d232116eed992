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

from tokenomy.call import Call, Event, Result
from tokenomy.codify.contract_store import ContractStore
from tokenomy.codify.contracts import prompt_hash
from tokenomy.codify.detect import codified, find_blocks, relabel_fence
from tokenomy.codify.settings import CodifySettings, codify_settings, team_opted_in
from tokenomy.config import Settings
from tokenomy.pipeline import Next
from tokenomy.tokenizers import count_text
from tokenomy.transcript import Part, PartKind


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


class CodifyStage:
    name = "codify"

    def __init__(self, settings: Settings | None = None,
                 store: ContractStore | None = None) -> None:
        self.settings = settings or Settings()
        self.settings.check_section("codify", CodifySettings)
        self.options = codify_settings(self.settings)
        self.policy = self.options.contracts
        self._store = store

    @property
    def store(self) -> ContractStore:
        if self._store is None:  # opened on first use: most deployments never opt in
            self._store = ContractStore(self.policy.db_path())
        return self._store

    async def __call__(self, call: Call, next: Next) -> Result:
        options = codify_settings(self.settings.for_team(call.identity.team))
        parts = call.transcript.parts
        if not options.enabled or not parts:
            return await next(call)
        started = time.perf_counter()
        # Counted in the tokens of the model that reads the prompt (the upstream's).
        model = call.token_model
        changes: list[tuple[Part, str]] = []
        events: list[Event] = []
        contract = self._contract(call, parts, model)
        if contract is not None:
            changes.append(contract[0])
            events.append(contract[1])
        replaced = {id(changes[0][0])} if changes else set()
        tally = Tally()
        roles = {*options.schema_roles, *options.data_roles}
        for part in parts:
            if part.kind not in _TEXT_KINDS or not part.editable or part.role not in roles \
                    or id(part) in replaced:
                continue
            new = codify_text(part.text, model, _role_name(part), options, tally)
            if new != part.text:
                changes.append((part, new))
        ms = (time.perf_counter() - started) * 1000
        for technique, entry in tally.by_technique.items():
            events.append(Event(stage=self.name, technique=technique,
                                tokens_before=entry["before"], tokens_after=entry["after"], ms=ms,
                                detail={"blocks": entry["blocks"], "kinds": entry["kinds"]}))
        if changes:
            call.edit(self.name, changes, events=events)
        return await next(call)

    def _contract(self, call: Call, parts: list[Part],
                  model: str) -> tuple[tuple[Part, str], Event] | None:
        """The stored 5C contract for the system prompt, when the team opted in."""
        if not team_opted_in(self.settings, self.policy, call.identity.team):
            return None
        system = [p for p in parts if p.kind is PartKind.SYSTEM and p.turn == parts[0].turn]
        if len(system) != 1 or not system[0].editable:
            return None
        started = time.perf_counter()
        original = system[0].text
        digest = prompt_hash(original)
        stored = self.store.get(digest)
        if stored is None:
            return None
        before, after = count_text(original, model), count_text(stored.contract, model)
        if after >= before:
            return None  # an already-tight prompt: the contract would cost more
        event = Event(stage=self.name, technique="contract", tokens_before=before,
                      tokens_after=after, ms=(time.perf_counter() - started) * 1000,
                      detail={"hash": digest, "source": stored.source})
        return (system[0], stored.contract), event


_TEXT_KINDS = frozenset({PartKind.SYSTEM, PartKind.USER_TEXT, PartKind.DOCUMENT,
                         PartKind.TOOL_RESULT})


def _role_name(part: Part) -> str:
    return part.role
