"""Sentences in which the agent announces the tool call of its own turn.

Coding agents narrate each step before taking it: "Now let me run the
reproduction script again:", "Let me look at the `reindl` function:". The tool
call that follows says exactly what was done, and it stays; the announcement is
read again by the backend on every later call of the loop. In the development
traces such sentences are about 7% of the agent's text, weighted by the calls
that carry it.

A sentence goes only when it does nothing but announce:

- it opens with a first-person step ("let me", "I'll", "now I'm going to",
  ...) and is short (a long sentence that opens so is reasoning);
- every name, path, number and quoted string in it is in the turn's own
  command lines, which are always sent as they are (the bodies of files the
  call writes are not counted: they may be sent as an outline);
- it asks, explains and forbids nothing: "let me check *if* the parent is
  set", "... *because* ...", "let me *not* touch the tests" stay (so do "I
  need to ..." and "I should ...": a constraint, not a step);
- one that ends in a colon introduces what follows it, so it goes only at the
  end of the text, where what it introduces is the call.

Reasoning ("The error is in `schema.py` at line 894.") stays, as does
everything inside code fences. A text that would be left with nothing stays
whole: some protocols reject an empty text block, and a turn with no words at
all would teach the model to stop explaining its steps.
"""

from __future__ import annotations

import re

_OPENER = re.compile(
    r"^(?:(?:now|first|next|then|also|so|ok|okay|alright|finally|great|good|perfect|excellent)"
    r"[,!.]?\s+)*(?:let me|let's|let us|I'll|I will|I'm going to|I am going to)\b",
    re.IGNORECASE)
MAX_WORDS = 30  # longer sentences that open like an announcement carry reasoning
# A question, a reason or a constraint ("let me check if the parent is set", "...
# because ...", "let me not touch the tests") is the agent's reasoning, not its step.
_REASON = re.compile(r"\b(?:if|whether|why|because|how|since|not|never|avoid|without|instead)\b"
                     r"|n't\b", re.IGNORECASE)
_LABEL = re.compile(r"^[\w -]{1,24}:$")  # a section label the agent was told to write
_FENCE = re.compile(r"(```.*?(?:```|\Z))", re.DOTALL)
_SENTENCE_END = re.compile(r"(?<=[.!?:])\s+(?=\S)")
# What a sentence names: a code span, a quoted string, a word with `_`, `.`, `/` or a
# digit in it (paths, dotted names, numbers), or a camelCase / CapWords-with-caps name.
_ITEM = re.compile(r"`([^`]+)`|(?<!\w)\"([^\"\s][^\"]*)\"(?!\w)|(?<!\w)'([^'\s][^']*)'(?!\w)|"
                   r"((?<![\w./-])[\w-]*(?:\d|_|[./]\w)[\w./-]*|\b[a-z]+[A-Z]\w*|\b[A-Z][a-z0-9]+[A-Z]\w*)")


def _items(sentence: str) -> list[str]:
    found = []
    for match in _ITEM.finditer(sentence):
        item = next(g for g in match.groups() if g is not None).strip().rstrip(".:,;!?")
        if re.search(r"\w", item):
            found.append(item)
    return found


def _announces(sentence: str, commands: str, *, last: bool) -> bool:
    stripped = sentence.strip()
    if not _OPENER.match(stripped) or len(stripped.split()) > MAX_WORDS:
        return False
    if (stripped.endswith(":") and not last) or _REASON.search(stripped):
        return False
    return all(item in commands for item in _items(stripped))


def drop_announcements(text: str, commands: str) -> str:
    """`text` without the sentences that only announce a call whose command lines are
    `commands`; `text` itself when nothing goes or nothing would be left."""
    if not commands.strip():
        return text
    segments = _FENCE.split(text)
    last_prose = max((i for i, s in enumerate(segments)
                      if not s.startswith("```") and s.strip()), default=-1)
    new = "".join(segment if segment.startswith("```")
                  else _segment(segment, commands, final=i == last_prose)
                  for i, segment in enumerate(segments))
    return text if not new.strip() else new


def _segment(segment: str, commands: str, *, final: bool) -> str:
    lines = segment.split("\n")
    nonblank = [i for i, line in enumerate(lines) if line.strip()]
    if not nonblank:
        return segment
    out: list[str | None] = []
    changed = False
    for i, line in enumerate(lines):
        sentences = _SENTENCE_END.split(line.strip()) if line.strip() else []
        kept = [s for k, s in enumerate(sentences)
                if not _announces(s, commands, last=final and i == nonblank[-1]
                                  and k == len(sentences) - 1)]
        if kept and len(kept) < len(sentences) and all(_LABEL.match(s) for s in kept):
            kept = sentences  # "THOUGHT: Let me look." must not become a bare "THOUGHT:"
        changed = changed or len(kept) < len(sentences)
        if len(kept) == len(sentences):
            out.append(line)
        elif kept:
            # The line keeps its indent and its ending (a `\r` of CRLF text included).
            out.append(line[: len(line) - len(line.lstrip())] + " ".join(kept)
                       + line[len(line.rstrip()):])
        else:
            out.append(None)  # the whole line announced
    if not changed:
        return segment
    kept_lines: list[str] = []
    gap = False
    for entry in out:
        if entry is None:
            gap = True
            continue
        if gap and not entry.strip() and (not kept_lines or not kept_lines[-1].strip()):
            continue  # the blank line after a paragraph that went
        gap = gap and not entry.strip()
        kept_lines.append(entry)
    new = "\n".join(kept_lines)
    # Where the first or last line went, the segment keeps its own leading and trailing
    # whitespace (a newline before a code fence, none at the end of the text).
    if out[nonblank[0]] is None:
        new = segment[: len(segment) - len(segment.lstrip())] + new.lstrip()
    if out[nonblank[-1]] is None:
        new = new.rstrip() + segment[len(segment.rstrip()):]
    return new
