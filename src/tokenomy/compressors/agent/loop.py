"""Agent-loop compression: compress the live zone once, send it the same way forever after.

For every request of an agent loop:

1. Every tool result, tool call and assistant text *before* the live zone is looked
   up in the memo; what was compressed when it was new is sent in that same form
   again, everything else exactly as the client sent it. Nothing already sent is
   ever compressed anew, so the provider's prompt cache keeps hitting.
2. The live zone (the last assistant turn and the tool results after it) is new:
   files the assistant's tool call writes (`written`), passages its text quotes
   and the sentences of it that only announce the call (`announcements`), and
   each tool result are compressed (`tool_outputs`; a harness's envelope around
   it, however short it is, in fewer tokens: `envelopes`), relevance judged against
   the task and the agent's latest step, every elision naming the command that
   prints it again, lines the conversation already holds folded (the `seen`
   index, built from the conversation as sent). The results, parts left as they
   were included, go into the memo in one write.

An exact repeat of content is scoped by its occurrence (the second identical
`git diff` output is a different memo entry from the first), so each position
in the history has exactly one form. A request with nothing new to compress
whose earlier parts this process knows is answered on the event loop (`run_local`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from tokenomy.compressors.agent.announcements import drop_announcements
from tokenomy.compressors.agent.seen_cache import SeenCache, readable
from tokenomy.compressors.agent.written import compress_tool_call, without_heredoc_bodies
from tokenomy.compressors.agent.zone import AGENT_KINDS, Zones, command_of, zones
from tokenomy.compressors.memo import UNCHANGED, Memo, memo_key
from tokenomy.compressors.settings import AgentSettings
from tokenomy.compressors.tool_outputs import SeenLines, compress_tool_output, fold_restated
from tokenomy.compressors.tool_outputs.wrapper import has_envelope
from tokenomy.transcript import Part, PartKind

VERSION = "agent-v3"  # part of every memo key: a new algorithm never reuses old forms
MIN_MEMO_CHARS = 200  # shorter parts are never compressed, so never looked up
# An agent's text this short is one sentence at most: nothing to drop (`announcements`).
MIN_TEXT_CHARS = 40
_OUTSIDE_CHAIN = frozenset({PartKind.THINKING, PartKind.OPAQUE})


@dataclass
class AgentStats:
    """What one request's agent compression did, per technique."""

    new: dict[str, int] = field(default_factory=dict)  # technique -> parts it changed
    replayed: dict[str, int] = field(default_factory=dict)  # technique -> parts sent as before
    kinds: dict[str, int] = field(default_factory=dict)
    live_parts: int = 0
    ms: float = 0.0

    def changed(self, technique: str) -> None:
        self.new[technique] = self.new.get(technique, 0) + 1


class AgentCompressor:
    def __init__(self, memo: Memo, *, min_tokens: int = 100, seen: bool = True,
                 tool_calls: bool = True, written: Literal["outline", "repeats"] = "outline",
                 announcements: bool = True, envelopes: bool = True):
        self.memo = memo
        self.min_tokens = min_tokens
        self.use_seen = seen
        self.tool_calls = tool_calls
        self.announcements = announcements
        self.envelopes = envelopes
        self.outline_written = written == "outline"
        self._seen = SeenCache()

    @classmethod
    def from_settings(cls, memo: Memo, settings: AgentSettings) -> AgentCompressor:
        """The compressor a team's `[compression.agent]` settings describe."""
        return cls(memo, min_tokens=settings.min_tokens, seen=settings.seen,
                   tool_calls=settings.tool_calls, written=settings.written,
                   announcements=settings.announcements, envelopes=settings.envelopes)

    def run(self, parts: list[Part], *, team: str,
            model: str) -> tuple[list[tuple[Part, str]], AgentStats]:
        """What to send: (part, text) changes, and what this request's compression did."""
        done = self._run(parts, team=team, model=model, local_only=False)
        assert done is not None  # only a local-only run gives up
        return done

    def run_local(self, parts: list[Part], *, team: str,
                  model: str) -> tuple[list[tuple[Part, str]], AgentStats] | None:
        """`run` when it needs neither the database nor any compressing (every earlier
        part known to this process, nothing new to compress), else None: cheap enough for
        the event loop, so such a request skips the hop to a worker thread."""
        return self._run(parts, team=team, model=model, local_only=True)

    def _run(self, parts: list[Part], *, team: str, model: str,
             local_only: bool) -> tuple[list[tuple[Part, str]], AgentStats] | None:
        started = time.perf_counter()
        stats = AgentStats()
        zone = zones(parts, team)
        keys = self._keys(parts, zone)
        earlier = [k for i, k in keys.items() if not zone.is_live(parts[i])]
        current = [k for i, k in keys.items() if zone.is_live(parts[i])]
        recorded = self.memo.peek(keys.values())
        if local_only and (len(recorded) < len(keys)):
            return None  # something to look up or to compress: not on the event loop
        # Earlier parts are looked up (in the database when this process does not know
        # them: another replica may have sent them); the live zone's only here: if another
        # replica recorded a form first, recording ours returns that one (`put_many`).
        if not local_only and any(k not in recorded for k in earlier):
            recorded = {**self.memo.get_many(earlier), **self.memo.peek(current)}
        changes: list[tuple[Part, str]] = []
        sent: dict[int, str] = {}  # part index -> text as sent
        unrecorded: dict[str, str] = {}  # earlier parts the memo does not know: sent as is
        for index, part in enumerate(parts):
            key = keys.get(index)
            if key is None or (zone.is_live(part) and key not in recorded):
                continue
            value = recorded.get(key)
            if value is None:
                unrecorded[key] = UNCHANGED
            elif value and value != part.text:  # UNCHANGED (""): as the client sent it
                changes.append((part, value))
                sent[index] = value
                stats.replayed[_technique(part)] = stats.replayed.get(_technique(part), 0) + 1
        live = [i for i, p in enumerate(parts) if zone.is_live(p) and i in keys
                and keys[i] not in recorded]
        stats.live_parts = len(live)
        computed = self._live(parts, live, sent, zone, model, stats) if live else {}
        # One write per request: the live zone's forms, and what the memo did not know.
        written = self.memo.put_many({**unrecorded, **{
            keys[i]: UNCHANGED if text == parts[i].text else text
            for i, text in computed.items()}}) if unrecorded or computed else {}
        for index, text in computed.items():
            value = (written or {}).get(keys[index]) or parts[index].text
            if value != text:  # not recorded, or another replica recorded another form
                self._seen.forget(zone.conversation)
            if value != parts[index].text:
                changes.append((parts[index], value))
        stats.ms = (time.perf_counter() - started) * 1000
        return changes, stats

    def _live(self, parts: list[Part], live: list[int], sent: dict[int, str], zone: Zones,
              model: str, stats: AgentStats) -> dict[int, str]:
        """The live zone's parts, compressed (part index -> text; unchanged ones too)."""
        seen = None
        if self.use_seen:
            first_live = min(live)
            seen = self._seen.index(zone.conversation,
                                    [sent.get(i, p.text) for i, p in enumerate(parts)
                                     if i < first_live],
                                    [parts[i] for i in range(first_live)])
        query = _query(parts, zone)
        computed: dict[int, str] = {}
        # The assistant's turn first: its sent form is what the results follow.
        for index in sorted(live, key=lambda i: parts[i].kind is PartKind.TOOL_RESULT):
            part = parts[index]
            computed[index] = self._compress(part, parts, zone, query, model, seen, stats)
            if seen is not None:
                seen.add(readable(part, computed[index]))
        return computed

    def _keys(self, parts: list[Part], zone: Zones) -> dict[int, str]:
        """Memo keys of the parts agent compression may change (long tool results, tool calls
        and assistant texts).

        A part's key covers everything before it, as the client sends it (a hash chain
        from the conversation's name): its form depends on what the model had already
        seen (lines "shown before" fold), so two sessions that share a task but not a
        history never share a form. The client resends its history unchanged, so at
        every later turn the chain, and the key, are the same. Thinking and opaque parts
        stay out of the chain: clients may drop earlier turns' thinking (providers
        ignore it), and that must not make every later part look new. A client that
        edits an earlier turn gets the parts after it as it sends them (the edit broke
        the provider's cache there anyway).
        """
        keys: dict[int, str] = {}
        chain = zone.conversation
        for index, part in enumerate(parts):
            if part.kind in _OUTSIDE_CHAIN:
                continue
            chain = memo_key(chain, part.kind.value, part.text)
            if part.kind not in AGENT_KINDS or not part.editable or part.cache_mark \
                    or not self._may_change(part):
                continue
            keys[index] = memo_key(VERSION, chain, str(self.min_tokens))
        return keys

    def _assistant_text(self, part: Part, parts: list[Part], model: str,
                        seen: SeenLines | None, stats: AgentStats) -> str:
        """The agent's text: passages it quoted from the conversation folded, and the
        sentences that only announce its turn's tool call dropped (`announcements`)."""
        text = part.text
        folded = fold_restated(text, seen=seen, model=model, min_tokens=self.min_tokens)
        if folded is not None:
            stats.changed("assistant_text")
            text = folded[0]
        if self.announcements:
            kept = drop_announcements(text, _command_lines(parts, part.turn))
            if kept != text:
                stats.changed("announcements")
                text = kept
        return text

    def _may_change(self, part: Part) -> bool:
        """Whether a rule may change this part: long enough for one, or a tool result
        whose harness envelope compacts, however short it is (`envelopes`)."""
        if self.envelopes and part.kind is PartKind.TOOL_RESULT and has_envelope(part.text):
            return True
        if part.kind is PartKind.ASSISTANT_TEXT and self.announcements:
            return len(part.text) >= MIN_TEXT_CHARS
        return len(part.text) >= MIN_MEMO_CHARS

    def _compress(self, part: Part, parts: list[Part], zone: Zones, query: str, model: str,
                  seen: SeenLines | None, stats: AgentStats) -> str:
        if part.kind is PartKind.ASSISTANT_TEXT:
            return self._assistant_text(part, parts, model, seen, stats)
        if part.kind is PartKind.TOOL_CALL:
            if not self.tool_calls:
                return part.text
            done = compress_tool_call(part.text, model=model, min_tokens=self.min_tokens,
                                      seen=seen, outline=self.outline_written)
            if done is None:
                return part.text
            stats.changed("tool_calls")
            return done[0]
        result = compress_tool_output(part.text, command=command_of(part.tool_name,
                                                                    part.tool_input),
                                      tool_name=part.tool_name, query=query, model=model,
                                      min_tokens=self.min_tokens, seen=seen,
                                      envelopes=self.envelopes)
        stats.kinds[result.kind] = stats.kinds.get(result.kind, 0) + 1
        if result.text != part.text:
            stats.changed("tool_outputs")
        return result.text


def _command_lines(parts: list[Part], turn: int) -> str:
    """What the tool calls of `turn` ran, without the bodies of the files they write (a
    body may be sent as an outline; the command lines are always sent as they are)."""
    return "\n".join(_ran(p) for p in parts
                     if p.turn == turn and p.kind is PartKind.TOOL_CALL)


def _ran(call: Part) -> str:
    """A tool call's command as it ran, without the bodies of the files it writes."""
    return without_heredoc_bodies(command_of(call.tool_name, call.text) or "")


def _technique(part: Part) -> str:
    return TECHNIQUES[part.kind]


TECHNIQUES = {PartKind.TOOL_CALL: "tool_calls", PartKind.TOOL_RESULT: "tool_outputs",
              PartKind.ASSISTANT_TEXT: "assistant_text"}


def _query(parts: list[Part], zone: Zones) -> str:
    """The task, then the agent's latest step: its words and the commands it ran.

    A heredoc's body is not part of the question: it is what the agent wrote, and
    naming every line of it would keep every line of everything.
    """
    latest = [p for p in parts if zone.is_live(p) and p.role == "assistant"]
    pieces = [zone.task]
    for part in latest:
        if part.kind is PartKind.TOOL_CALL:
            pieces.append(_ran(part))
        elif part.kind in (PartKind.ASSISTANT_TEXT, PartKind.THINKING):
            pieces.append(part.text)
    return "\n".join(piece for piece in pieces if piece)
