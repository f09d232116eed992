"""Real coding-agent traces: loading, replaying call by call, and what the agent used.

One definition shared by every agent benchmark (`agent_replay.py`, `tool_outputs.py`),
so their recall figures mean the same thing.

A run (see `data/README.md`) is one conversation in OpenAI chat format plus the
provider's usage per model call. Call k's request is
`messages[:calls[k].request_messages]` with the run's `tools`; the assistant
message right after that prefix is what the model answered.

Reference items ("what the agent used next"): for a tool output (a `tool`
message), the identifiers, paths and numbers that appear in it, appear in one of
the agent's next three assistant turns (its text and its tool-call arguments),
and appear in no message before the output (so the output is where the agent
learnt them). Recall is the share of (output, item, turn) checks where the item
is still in the output as the system sent it in the request that produced that
turn.

Written-file checks ("what the agent reused of a file it wrote"): tool outputs
are not the only text a compressor changes; the files an agent writes in its
own tool calls (a heredoc `cat > f.py << 'EOF'`) are compressed too. For each
such file, the names, paths and numbers of its text that the agent used in its
next three turns, and that it did not have from anywhere else (no earlier
message, no tool output in between), are checked in the assistant turn as sent.
A use is either a *reference* (the turn's prose, or its commands outside any
file they write: `sed -i 's/tag3/.../' t.py`, `python -c "from t import f"`) or
a *rewrite* (the text of the next file it writes: an agent rewrites its test
script rather than edit it, and the old version is what it rewrites from).
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "data" / "agent_traces.dev.jsonl.gz"
NEXT_TURNS = 3
# Runs 0-14 are for developing rules, 15-22 a check on runs the rules were not made on.
HOLDOUT_FROM = 15

# Code-like names: a dotted or snake/camel identifier, or one with a digit.
_IDENT = re.compile(r"(?<![\w.])[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*(?![\w])")
_PATH = re.compile(r"(?<![\w./-])(?:[\w.-]+/)+[\w.-]+|(?<![\w./-])[\w-]+\.[A-Za-z]{1,5}(?![\w])")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)*(?![\w])")


def _code_like(name: str) -> bool:
    if len(name) < 4:
        return False
    return ("_" in name or "." in name or any(c.isdigit() for c in name)
            or any(c.isupper() for c in name[1:]))


def items_of(text: str, *, code_like_only: bool = True) -> set[str]:
    """The identifiers, paths and numbers a text mentions (the units recall counts).

    Prose mentions count only code-like names (a plain word such as "validate"
    says nothing); inside a command every name of four or more characters counts.
    """
    found: set[str] = set()
    found.update(p.strip(".") for p in _PATH.findall(text) if len(p.strip(".")) >= 3)
    found.update(n for n in _NUMBER.findall(text) if len(n.replace(".", "")) >= 2)
    found.update(i for i in _IDENT.findall(text)
                 if _code_like(i) or (not code_like_only and len(i) >= 4))
    return found


def contains(text: str, item: str) -> bool:
    """`item` occurs in `text` as a whole token (not inside a longer name or number)."""
    return re.search(rf"(?<![\w]){re.escape(item)}(?![\w])", text) is not None


def content_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "\n".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
    return str(content or "")


def arguments_text(message: dict[str, Any]) -> str:
    """The message's tool calls: names and arguments."""
    return "\n".join(str((c.get("function") or {}).get("name") or "") + " "
                     + str((c.get("function") or {}).get("arguments") or "")
                     for c in message.get("tool_calls") or ())


def message_text(message: dict[str, Any]) -> str:
    """Everything a message says: its content and its tool calls' names and arguments."""
    return content_text(message) + "\n" + arguments_text(message)


@dataclass
class Reference:
    """Items of one tool output that the agent used, and the calls that used them."""

    message: int  # index of the tool message in the run
    items_by_call: dict[int, set[str]] = field(default_factory=dict)  # call index -> items


@dataclass
class Run:
    id: str
    instance_id: str
    tools: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    calls: list[dict[str, Any]]

    def request(self, k: int) -> dict[str, Any]:
        """Call k's request body as the agent sent it (OpenAI chat)."""
        n = self.calls[k]["request_messages"]
        return {"model": "deepseek-chat", "messages": self.messages[:n], "tools": self.tools,
                "temperature": 0}

    def answer(self, k: int) -> dict[str, Any]:
        """The assistant message the model answered call k with."""
        return self.messages[self.calls[k]["request_messages"]]

    def tool_command(self, tool_index: int) -> str | None:
        """The command of the tool call a tool message answers (None when not found)."""
        call_id = self.messages[tool_index].get("tool_call_id")
        for message in reversed(self.messages[:tool_index]):
            for call in message.get("tool_calls") or ():
                if call.get("id") == call_id:
                    parsed = _arguments(call)
                    if parsed is None:
                        return str((call.get("function") or {}).get("arguments") or "")
                    return str(parsed.get("command"))
        return None

    def references(self) -> list[Reference]:
        """For every tool output, what the agent used of it in its next three turns."""
        answered_at = {c["request_messages"]: k for k, c in enumerate(self.calls)}
        seen: set[str] = set()
        refs: list[Reference] = []
        for index, message in enumerate(self.messages):
            text = message_text(message)
            if message.get("role") == "tool":
                fresh = items_of(text, code_like_only=False) - seen
                ref = Reference(index)
                turns = [k for at, k in sorted(answered_at.items()) if at > index][:NEXT_TURNS]
                for k in turns:
                    answer = self.answer(k)
                    prose, command = content_text(answer), arguments_text(answer)
                    hits = {item for item in fresh
                            if contains(command, item)
                            or (contains(prose, item) and item in items_of(item))}
                    if hits:
                        ref.items_by_call[k] = hits
                if ref.items_by_call:
                    refs.append(ref)
            seen |= items_of(text, code_like_only=False)
        return refs


# `cat > path << 'EOF'` / `cat << EOF > path` / `tee path << EOF`: the body up to the
# terminator line. The benchmark's own reading, not the compressor's `find_heredocs`: a
# measure must not share the blind spots of the code it measures.
_HEREDOC = re.compile(
    r"""(?:\bcat|\btee)\b[^\n]*?<<-?\s*(['"]?)(\w+)\1[^\n]*\n(.*?)\n[ \t]*\2[ \t]*$""",
    re.DOTALL | re.MULTILINE)


def _arguments(call: dict[str, Any]) -> dict[str, Any] | None:
    """A tool call's arguments as an object (a JSON string decoded), or None."""
    arguments = (call.get("function") or {}).get("arguments") or ""
    if not isinstance(arguments, dict):
        try:
            arguments = json.loads(arguments)
        except (ValueError, TypeError):
            return None
    return arguments if isinstance(arguments, dict) else None


def commands_of(message: dict[str, Any]) -> list[str]:
    """The shell commands of a message's tool calls, decoded from their JSON arguments."""
    commands = [(_arguments(call) or {}).get("command") for call in message.get("tool_calls") or ()]
    return [command for command in commands if isinstance(command, str)]


def written_bodies(command: str) -> list[str]:
    """The texts a command writes to files through heredocs."""
    return [m.group(3) for m in _HEREDOC.finditer(command)]


def without_written(command: str) -> str:
    return _HEREDOC.sub(lambda m: m.group(0).split("\n", 1)[0], command)


Sent = dict[int, list[dict[str, Any]]]  # call index -> the messages the upstream received


def _uses(run: Run, index: int,
          sent: Sent) -> Iterator[tuple[dict[str, Any], set[str], str]]:
    """For the assistant turn at `index`, each of the agent's next three answers: the
    answer, the items it could have learnt from tool outputs since the turn, and the
    turn's text as sent at that call (its content and commands, decoded, as the model
    reads them; the turn is found by its tool calls' ids)."""
    message = run.messages[index]
    ids = {c.get("id") for c in message.get("tool_calls") or ()}
    answered_at = sorted((c["request_messages"], k) for k, c in enumerate(run.calls))
    learnt: set[str] = set()
    for at, k in [(at, k) for at, k in answered_at if at > index + 1][:NEXT_TURNS]:
        for between in run.messages[index + 1:at]:
            if between.get("role") == "tool":
                learnt |= items_of(message_text(between), code_like_only=False)
        as_sent = next((m for m in sent.get(k, ()) if m.get("role") == "assistant"
                        and ids & {c.get("id") for c in m.get("tool_calls") or ()}), None)
        if as_sent is not None:
            yield (run.messages[at], learnt,
                   content_text(as_sent) + "\n" + "\n".join(commands_of(as_sent)))


def _known_after(message: dict[str, Any]) -> set[str]:
    """Every item a message gives the agent (its commands decoded, too)."""
    known = items_of(message_text(message), code_like_only=False)
    if message.get("role") == "assistant":
        for command in commands_of(message):
            known |= items_of(command, code_like_only=False)
    return known


def written_checks(run: Run, sent: Sent) -> Iterator[tuple[str, bool]]:
    """One ("reference" | "rewrite", kept) per (written file, item, using call): is an item
    of a file the agent wrote, used in its next three turns, still in its turn as sent?"""
    known: set[str] = set()
    for index, message in enumerate(run.messages):
        bodies = [b for c in commands_of(message) for b in written_bodies(c)] \
            if message.get("role") == "assistant" else []
        if bodies:
            fresh = set().union(*(items_of(b, code_like_only=False) for b in bodies)) - known
            for answer, learnt, text in _uses(run, index, sent):
                commands = commands_of(answer)
                prose = content_text(answer)
                outside = "\n".join(map(without_written, commands))
                rewritten = "\n".join(b for c in commands for b in written_bodies(c))
                for item in sorted(fresh - learnt):
                    if contains(outside, item) or (contains(prose, item)
                                                   and item in items_of(item)):
                        yield "reference", contains(text, item)
                    elif contains(rewritten, item):
                        yield "rewrite", contains(text, item)
        known |= _known_after(message)


def text_checks(run: Run, sent: Sent) -> Iterator[bool]:
    """One bool per (assistant text, item, using call): is a name, path or number the
    agent's text introduced, and the agent used in its next three turns, still in that
    turn as sent (its text or its commands)?

    Only items the text brought in count: not in any earlier message, and not in a
    tool output between the text and the use (the agent could have them from there).
    """
    known: set[str] = set()
    for index, message in enumerate(run.messages):
        prose = content_text(message) if message.get("role") == "assistant" else ""
        fresh = items_of(prose) - known if prose and message.get("tool_calls") else set()
        if fresh:
            for answer, learnt, text in _uses(run, index, sent):
                used = content_text(answer) + "\n" + "\n".join(commands_of(answer))
                for item in sorted(fresh - learnt):
                    if contains(used, item):
                        yield contains(text, item)
        known |= _known_after(message)


@dataclass
class Checks:
    """What the agent used next, still there as sent: in tool outputs (`recall_checks`),
    in files it wrote (`written_checks`), in its own text (`text_checks`)."""

    recall: list[bool]
    written: list[tuple[str, bool]]
    text: list[bool]


def checks(run: Run, sent: Sent) -> Checks:
    return Checks(list(recall_checks(run, sent)), list(written_checks(run, sent)),
                  list(text_checks(run, sent)))


def load_runs(path: Path = DATA, limit: int | None = None) -> list[Run]:
    runs: list[Run] = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            raw = json.loads(line)
            runs.append(Run(raw["id"], raw["instance_id"], raw["tools"], raw["messages"],
                            raw["calls"]))
            if limit is not None and len(runs) >= limit:
                break
    return runs


def recall_checks(run: Run, sent: Sent) -> Iterator[bool]:
    """One bool per (output, item, using call): is the item in the output as sent?

    `sent[k]` is the message list the upstream received for call k. The output
    is found in it by its `tool_call_id` (a system may change message count).
    """
    for ref in run.references():
        call_id = run.messages[ref.message].get("tool_call_id")
        for k, items in ref.items_by_call.items():
            messages = sent.get(k)
            if messages is None:
                continue
            as_sent = next((message_text(m) for m in messages
                            if m.get("role") == "tool" and m.get("tool_call_id") == call_id), "")
            for item in sorted(items):
                yield contains(as_sent, item)


if __name__ == "__main__":
    runs = load_runs()
    total = sum(len(r.calls) for r in runs)
    refs = [ref for r in runs for ref in r.references()]
    checks = sum(len(items) for ref in refs for items in ref.items_by_call.values())
    outputs = sum(1 for r in runs for m in r.messages if m.get("role") == "tool")
    print(f"{len(runs)} runs, {total} calls, {outputs} tool outputs, "
          f"{len(refs)} outputs the agent used later, {checks} reference checks")
