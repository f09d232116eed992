"""The entry point: what one new tool output becomes.

`compress_tool_output` splits off the agent's wrapper, detects the kind, lets that
kind plan line by line, renders the plan with recoverable markers, and returns the
result only when it is shorter in the upstream model's tokens. Deterministic: the
same inputs give the same bytes, which is what lets a memo send it identically at
every later turn (prefix-stable, so provider caches keep hitting).
"""

from __future__ import annotations

import re
import time

from tokenomy.compressors.tool_outputs import fold, terminal, wrapper
from tokenomy.compressors.tool_outputs.command import Shell, parse
from tokenomy.compressors.tool_outputs.detect import Detected, detect, sized_by_tool
from tokenomy.compressors.tool_outputs.diff import plan_diff
from tokenomy.compressors.tool_outputs.generic import plan_generic, plan_large
from tokenomy.compressors.tool_outputs.json_output import compact_json, parse_json
from tokenomy.compressors.tool_outputs.marker import Locator
from tokenomy.compressors.tool_outputs.plan import Plan, render
from tokenomy.compressors.tool_outputs.query import QueryItems, query_items
from tokenomy.compressors.tool_outputs.read import plan_read
from tokenomy.compressors.tool_outputs.result import Elision, ToolOutputResult
from tokenomy.compressors.tool_outputs.runs import plan_advice, plan_run
from tokenomy.compressors.tool_outputs.search import git_status, grep_lines, ls_long, paths_list
from tokenomy.compressors.tool_outputs.seen import SeenLines
from tokenomy.tokenizers import count_text, get_encoder

# Past this size an output gets only the line-local treatments (no structure
# analysis), so a 1 MB dump costs tens of milliseconds, not seconds.
MAX_STRUCTURED_CHARS = 200_000
# Byte-pair encoding of one long unbroken piece (a minified bundle, base64) takes time
# quadratic in its length; past this size a text is counted in pieces (a count that
# can differ from the exact one by a token per piece).
_EXACT_COUNT_CHARS = 200_000
# An explicit window (`sed -n 408,550p`, `grep -A 100`, `head -250`) up to this many
# lines is kept whole: the agent chose those lines, and elided ones are what it asks
# about next (line numbers, a name inside a body).
WINDOW_LINES = 150
_PIECE_CHARS = 8_192


def compress_tool_output(output: str, *, command: str | None, tool_name: str | None,
                         query: str, model: str, min_tokens: int = 300,
                         seen: SeenLines | None = None, authored: bool = False,
                         envelopes: bool = False) -> ToolOutputResult:
    """One tool output, compressed once: never longer, nothing hidden, deterministic.

    `command` is the tool call that printed it (a shell command, or a short rendering
    of a tool's arguments), `query` the task plus the agent's latest step, `model` the
    upstream model whose tokens count. Outputs under `min_tokens` come back unchanged
    but for pip's advice about itself (`runs.plan_advice`); terminal escape codes go from
    outputs of any size (`terminal`).
    `seen` (optional): the lines of the conversation as already sent; runs of lines it
    holds are replaced by a marker saying they were shown before.
    `authored`: the text is a file the agent itself wrote (a heredoc body, `command`
    then reads it back): its outline rules apply from a few lines on.
    `envelopes`: the harness's envelope is rewritten in fewer tokens, losslessly
    (`wrapper.compact_envelope`), whatever the output's size.
    """
    done = _compress_output(output, command=command, tool_name=tool_name, query=query,
                            model=model, min_tokens=min_tokens, seen=seen, authored=authored)
    compact = wrapper.compact_envelope(done.text) if envelopes else None
    if compact is None:
        return done
    return done.model_copy(update={"text": compact, "tokens_after": _count(compact, model)})


def _compress_output(output: str, *, command: str | None, tool_name: str | None, query: str,
                     model: str, min_tokens: int, seen: SeenLines | None,
                     authored: bool) -> ToolOutputResult:
    started = time.perf_counter()
    envelope = wrapper.json_envelope(output)
    if envelope is not None:  # Codex's `{"output": "...", "metadata": {...}}`
        inner = compress_tool_output(envelope["output"], command=command, tool_name=tool_name,
                                     query=query, model=model, min_tokens=min_tokens,
                                     seen=seen, authored=authored)
        text = wrapper.json_envelope_with(envelope, inner.text)
        before, after = _count(output, model), _count(text, model)
        changed = inner.text != envelope["output"] and after < before
        return ToolOutputResult(text=text if changed else output, kind=inner.kind,
                                tokens_before=before, tokens_after=after if changed else before,
                                elisions=inner.elisions if changed else [],
                                ms=round((time.perf_counter() - started) * 1000, 3))
    before = _count(output, model)
    parts = wrapper.split(output)
    shell = parse(command)
    bodies = [p for p in parts if p.body]
    # Escape codes go first, from outputs of any size: every rule reads the plain text.
    colored: dict[int, int] = {}  # id(body part) -> its lines that held codes
    for part in bodies:
        part.text, lines = terminal.strip_codes(part.text)
        if lines:
            colored[id(part)] = lines
    main = max(bodies, key=lambda p: len(p.text)) if bodies else None
    main_lines = main.text.split("\n") if main else []
    is_json = bool(main and len(main.text) <= MAX_STRUCTURED_CHARS
                   and parse_json(main.text) is not None)
    detected = detect(main.text if main else "", main_lines, shell, tool_name, is_json)

    def result(text: str, elisions: list[Elision], after: int) -> ToolOutputResult:
        return ToolOutputResult(text=text, kind=detected.kind, tokens_before=before,
                                tokens_after=after, elisions=elisions,
                                ms=round((time.perf_counter() - started) * 1000, 3))

    if not bodies:
        return result(output, [], before)
    elisions: list[Elision] = []
    if before < min_tokens:
        _without_advice(parts, shell, elisions)
    else:
        items = query_items(query, command, shell.incidental)
        for part in parts:
            if part.body and part.text:
                part.text = _compress_body(part, detected, shell, items, model, command,
                                           elisions, seen, authored, tool_name)
    for part in bodies:
        if id(part) in colored:
            text, elision = terminal.note(colored[id(part)], Locator(shell, part.position),
                                          body_lines=part.text.count("\n") + 1)
            part.text = f"{part.text}\n{text}" if part.text else text
            elisions.append(elision)
    text = wrapper.join(parts)
    if text == output:
        return result(output, [], before)
    after = _count(text, model)
    if after >= before:
        return result(output, [], before)
    return result(text, elisions, after)


def _without_advice(parts: list[wrapper.Part], shell: Shell, elisions: list[Elision]) -> None:
    """An output under the floor stays as it is but for pip's advice (`plan_advice`)."""
    for part in parts:
        plan = plan_advice(part.text.split("\n")) if part.body and part.text else None
        if plan is not None:
            part.text, found = render(plan, Locator(shell, part.position, body_lines=len(plan)))
            elisions.extend(found)


def fold_restated(text: str, *, seen: SeenLines | None, model: str,
                  min_tokens: int = 300) -> tuple[str, int, int] | None:
    """The agent's own words with the passages it quoted from the conversation folded.

    An agent restates what it read (a function it is about to change, a traceback it is
    explaining); those lines are in the prompt already, verbatim. Nothing else of its
    text changes: its reasoning exists nowhere else. Returns (text, tokens before,
    tokens after), or None when nothing is folded (no `seen`: the conversation is not
    indexed).
    """
    # Fewer characters than the floor's tokens cannot reach it.
    if seen is None or not len(seen) or len(text) < min_tokens:
        return None
    plan = Plan(text.split("\n"))
    fold.seen_before(plan, seen)
    if not plan.changed():
        return None
    folded, _ = render(plan, Locator(parse(None)))
    before, after = _count(text, model), _count(folded, model)
    if folded == text or after >= before or before < min_tokens:
        return None
    return folded, before, after


_PATHISH = re.compile(r"^\.?/?[\w.-]+(?:/[\w.-]+)*/?$")


def _mostly_paths(lines: list[str]) -> bool:
    nonblank = [line.strip() for line in lines if line.strip()]
    return bool(nonblank) and sum(1 for line in nonblank if _PATHISH.match(line)) >= 0.8 * len(
        nonblank)


def _count(text: str, model: str) -> int:
    if len(text) <= _EXACT_COUNT_CHARS:
        return count_text(text, model)
    encoder = get_encoder(model)
    pieces: list[str] = []
    size = 0
    total = 0
    for line in text.split("\n"):
        for start in range(0, max(len(line), 1), _PIECE_CHARS):
            piece = line[start : start + _PIECE_CHARS]
            pieces.append(piece)
            size += len(piece) + 1
            if size >= _PIECE_CHARS:
                total += encoder.count("\n".join(pieces))
                pieces, size = [], 0
    return total + (encoder.count("\n".join(pieces)) if pieces else 0)


def _compress_body(part: wrapper.Part, detected: Detected, shell: Shell, items: QueryItems,
                   model: str, command: str | None, elisions: list[Elision],
                   seen: SeenLines | None, authored: bool, tool_name: str | None) -> str:
    body = part.text
    items = items.within(body)
    lines = body.split("\n")
    locator = Locator(shell, part.position, body_lines=len(lines))
    if detected.kind == "json":
        value = parse_json(body)
        if value is not None:
            recover = command.strip() if command and shell.simple else None
            text, found = compact_json(body, value, items, model=model, recover=recover)
            elisions.extend(found)
            return text
    # A window the agent sized itself is what it means to read: its code stays (the prose
    # around it, and lines the conversation already holds, may go). Not when the agent's
    # harness cut the output (`<output_head>`): then the agent did not get its window.
    window = ((shell.windowed or sized_by_tool(tool_name, command)) and part.position == "whole"
              and sum(1 for line in lines if line.strip()) <= WINDOW_LINES)
    plan = _plan(lines, detected, items, command, part.position, len(body), window,
                 authored)
    if plan is not None and seen is not None:
        fold.seen_before(plan, seen)
    if plan is None or not plan.changed():
        return body
    plan.settle(items)
    if detected.kind == "read" and detected.source and detected.source.path:
        locator.path = detected.source.path
    text, found = render(plan, locator)
    elisions.extend(found)
    return text


def _plan(lines: list[str], detected: Detected, items: QueryItems, command: str | None,
          position: wrapper.Position, chars: int, window: bool,
          authored: bool = False) -> Plan | None:
    if chars > MAX_STRUCTURED_CHARS:
        return plan_large(lines, items)
    kind = detected.kind
    if kind == "read":
        return plan_read(lines, detected.source, items, command=command,
                         head_offset_known=position != "tail", window=window,
                         authored=authored)
    if window and kind in ("search", "generic", "json") and detected.search != "grep":
        # `find | head -50`: a list the agent sized (a run piped to `tail -100` is still
        # a run: its window says how much to print, not what to read).
        return Plan(lines)
    if kind == "diff":
        return plan_diff(lines)
    if kind == "run":
        return plan_run(lines, items)
    if kind == "search":
        plan = Plan(lines)
        if detected.search == "grep":
            if grep_lines(plan, items, single_path=detected.single_path,
                          context=detected.context, window=window):
                return plan
            if window:  # not grep's own line format (a pipeline reshaped it): as printed
                return Plan(lines)
            if _mostly_paths(lines):  # `grep -l`, Claude Code's Grep listing files
                paths_list(plan, items)
                return plan
            return plan_generic(lines, items)
        if detected.search == "ls" and ls_long(plan):
            return plan
        if detected.search == "git-status":
            git_status(plan)
            return plan
        paths_list(plan, items)
        return plan
    return plan_generic(lines, items)
