"""5C prompt contracts: a verbose system prompt rewritten once into five labelled parts.

Character (who), Cause (why), Constraint (hard rules), Contingency (what to do
when...), Calibration (tone, format, length). The model's rewrite is accepted
only if it keeps every number and every must/never rule of the original
(`validate`); otherwise a deterministic rule-based extraction (`rule_contract`)
is used, which is built to pass that same check on its own.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

from tokenomy.codify.backend import ChatBackend
from tokenomy.tokenizers import count_text

SECTIONS = ("Character", "Cause", "Constraint", "Contingency", "Calibration")
Source = Literal["model", "rules"]

_CONTINGENCY = re.compile(
    r"^(if|when|whenever|in case|unless|otherwise|should|in the event)\b", re.I)
_CHARACTER = re.compile(
    r"^((you are|you're) (an?|the) |act as|your role|as an? |your name is|i am|we are)", re.I)
_CALIBRATION = re.compile(
    r"\b(tone|style|format|formatting|concise|brief|friendly|formal|polite|markdown|bullet|"
    r"voice|professional|empathetic|verbose|plain language|respond in|reply in|answer in|"
    r"language|emoji)\b", re.I)
_NEGATION = re.compile(
    r"\b(never|not|no|don't|do not|doesn't|cannot|can't|won't|mustn't|shouldn't|without|"
    r"avoid|refuse|forbidden|prohibited)\b", re.I)
_MODAL = re.compile(r"\b(must|always|only|required|exactly|at most|at least|no more than)\b", re.I)
_NUMBER = re.compile(r"(?<![\w.])[$€£]?\d+(?:[.,:]\d+)*%?")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(\[])")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_PLACEHOLDER = re.compile(r"\{[A-Za-z_]\w*\}")
_POLITE = re.compile(r"^(thank you|thanks|good luck|have fun)\b[^.!?]*[.!?]?$", re.I)

# Filler that carries no instruction; removed from the front of a sentence.
_FILLER_PREFIX = [
    (re.compile(r"^(please|kindly)\s*,?\s+", re.I), ""),
    (re.compile(r"^it is (very |extremely |really |absolutely |critically )?"
                r"(important|essential|crucial|vital|imperative) (that you |that |to )", re.I), ""),
    (re.compile(r"^(make sure|be sure|ensure) (that you |to )", re.I), ""),
    (re.compile(r"^(make sure|be sure) that ", re.I), "ensure "),
    (re.compile(r"^(remember|note|keep in mind|bear in mind)( that | to |\s*[:,]\s*)", re.I), ""),
    (re.compile(r"^(i want you to|i would like you to|we want you to|your job is to|"
                r"your task is to)\s+", re.I), ""),
    (re.compile(r"^you (should|will|need to|have to) (always )?", re.I), r"\2"),
    (re.compile(r"^you must (?=never|not|always)", re.I), ""),
    (re.compile(r"^you must ", re.I), "must "),
    (re.compile(r"^must (?=never|always)", re.I), ""),
]
# Telegraphic style: words a model does not need to read an instruction. Lower case
# only ("A and B" names things), plus a capitalised article that starts a sentence.
_DROP_WORDS = re.compile(r"\b(the|a|an|your|our|please)\s+|^(The|A|An|Your|Our)\s+(?=[a-z])")
_FILLER_INSIDE = re.compile(r"\bit is (very |really |extremely |absolutely )?(important|essential|"
                            r"crucial|vital) (that you |that |to )", re.I)
_PHRASES = [(re.compile(p, re.I), r) for p, r in (
    (r"\bin order to\b", "to"), (r"\bas quickly as possible\b", "ASAP"),
    (r"\bis able to\b", "can"), (r"\bat this point in time\b", "now"),
    (r"\bdue to the fact that\b", "because"), (r"\bfor the purpose of\b", "for"),
    (r"\bin the event that\b", "if"), (r"\ba number of\b", "several"),
    (r"\ball of the\b", "all"), (r"\bwhenever that is at all possible\b", "where possible"),
)]
_INTENSIFIERS = re.compile(r"\b(very|really|extremely|absolutely|basically|actually|simply|"
                           r"just|truly|definitely|certainly)\s+", re.I)
_STOP = frozenset(re.findall(r"\w+",
    "a an the to of and or in on for with is are be as at by it this that you your we our "
    "i me my from into any all can will should would"))
_CONTRACTIONS = {"don't": "do not", "can't": "cannot", "won't": "will not",
                 "doesn't": "does not", "mustn't": "must not", "shouldn't": "should not"}


def normalise(prompt: str) -> str:
    """Whitespace-insensitive form that identifies a system prompt."""
    return " ".join(prompt.split())


def prompt_hash(prompt: str) -> str:
    return hashlib.sha256(normalise(prompt).encode("utf-8")).hexdigest()


@dataclass
class Unit:
    text: str
    kind: Literal["prose", "verbatim", "heading", "label"]
    tag: str | None = None  # the enclosing <tag>, if the prompt uses XML-style sections


def units(text: str) -> list[Unit]:
    """The prompt in order: sentences and bullet items of the prose, markdown
    headings, and verbatim blocks (code fences, JSON, template placeholders).

    Hard-wrapped lines of one paragraph are joined before splitting sentences.
    """
    out: list[Unit] = []
    para: list[str] = []
    block: list[str] = []
    depth, fenced = 0, False
    tag: str | None = None

    def flush() -> None:
        if para:
            joined = " ".join(para)
            out.extend(Unit(s.strip(), "prose", tag) for s in _SENTENCE_END.split(joined)
                       if s.strip())
            para.clear()

    for line in text.splitlines():
        stripped = line.strip()
        if fenced or stripped.startswith("```") or depth > 0 or stripped[:1] in ("{", "["):
            flush()
            block.append(line)
            if stripped.startswith("```"):
                fenced = not fenced
            if not fenced:
                depth += sum(stripped.count(c) for c in "{[") - sum(stripped.count(c)
                                                                   for c in "}]")
                if depth <= 0:
                    depth = 0
                    out.append(Unit("\n".join(block), "verbatim", tag))
                    block.clear()
            continue
        opened = re.fullmatch(r"<([\w-]+)>", stripped)
        if opened or re.fullmatch(r"</[\w-]+>", stripped):
            flush()
            tag = opened.group(1).lower() if opened else None
            continue
        if stripped.startswith("#"):
            flush()
            out.append(Unit(stripped, "heading", tag))
            continue
        if not stripped:
            flush()
            continue
        if re.fullmatch(r"[A-Z][\w ]{0,30}:", stripped):  # "Guidelines:" introduces a list
            flush()
            out.append(Unit(stripped, "label", tag))
            continue
        if _BULLET.match(line):
            flush()
            para.append(_BULLET.sub("", line).strip())
            flush()
            continue
        para.append(stripped)
    flush()
    if block:
        out.append(Unit("\n".join(block), "verbatim", tag))
    return out


def sentences(text: str) -> list[str]:
    return [unit.text for unit in units(text) if unit.kind in ("prose", "verbatim")]


def _redundant(sentence: str, kept: list[str]) -> bool:
    """Every clause of `sentence` is already stated by a kept line."""
    clauses = [c for c in re.split(r",?\s+and\s+|;\s*|:\s+", sentence) if len(_words(c)) >= 2]
    return bool(clauses) and all(any(_covers(k, c) for k in kept) for c in clauses)


def _words(text: str) -> set[str]:
    text = text.lower()
    for short, long in _CONTRACTIONS.items():
        text = text.replace(short, long)
    return {w for w in re.findall(r"[a-z0-9$%]+", text) if w not in _STOP}


def is_rule(sentence: str) -> bool:
    return bool(_NEGATION.search(sentence) or _MODAL.search(sentence))


_TAG_SECTIONS = (("role", "Character"), ("persona", "Character"), ("identity", "Character"),
                 ("objective", "Cause"), ("goal", "Cause"), ("purpose", "Cause"),
                 ("context", "Cause"), ("rule", "Constraint"), ("constraint", "Constraint"),
                 ("format", "Calibration"), ("style", "Calibration"), ("tone", "Calibration"))


def classify(sentence: str, tag: str | None = None) -> str:
    if _CONTINGENCY.search(sentence):
        return "Contingency"
    for word, section in _TAG_SECTIONS:
        if tag and word in tag:
            return section
    if _CHARACTER.search(sentence):
        return "Character"
    if _CALIBRATION.search(sentence) and not _NEGATION.search(sentence):
        return "Calibration"
    if is_rule(sentence) or _NUMBER.search(sentence):
        return "Constraint"
    return "Cause"


def tighten(sentence: str) -> str:
    """Drop filler words; never touches numbers, negations or modal verbs."""
    text = sentence.strip()
    for _ in range(3):  # "Please make sure to ..." has stacked filler
        for pattern, repl in _FILLER_PREFIX:
            text = pattern.sub(repl, text)
    text = _INTENSIFIERS.sub("", text)
    text = _FILLER_INSIDE.sub("", text)
    for pattern, repl in _PHRASES:
        text = pattern.sub(repl, text)
    text = _DROP_WORDS.sub("", text)
    text = re.sub(r"^(you are|you're|act as) (an? |the )?", "", text, flags=re.I)
    text = re.sub(r"\s+", " ", text).strip()
    return text[:1].upper() + text[1:] if text else text


def _covers(kept: str, rule: str) -> bool:
    """Whether `kept` states `rule`: same numbers, its negation, most of its words."""
    rule_words, kept_words = _words(rule), _words(kept)
    if not set(_NUMBER.findall(rule)) <= set(_NUMBER.findall(kept)):
        return False
    if _NEGATION.search(rule) and not _NEGATION.search(kept):
        return False
    if not rule_words:
        return True
    return len(rule_words & kept_words) / len(rule_words) >= 0.6


def validate(original: str, contract: str) -> list[str]:
    """The hard constraints of `original` that `contract` lost (empty means valid)."""
    problems = [f"number {n} missing" for n in dict.fromkeys(_NUMBER.findall(original))
                if not re.search(rf"(?<![\w.]){re.escape(n)}(?![\d])", contract)]
    problems += [f"placeholder {p} missing" for p in dict.fromkeys(_PLACEHOLDER.findall(original))
                 if p not in contract]
    problems += [f"heading lost: {u.text}" for u in units(original)
                 if u.kind == "heading" and u.text not in contract.splitlines()]
    lines = sentences(contract) + [line for line in contract.splitlines() if line.strip()]
    for rule in sentences(original):
        if is_rule(rule) and not any(_covers(line, rule) for line in lines) and not _redundant(
                rule, lines):
            problems.append(f"rule lost: {rule}")
    return problems


def rule_contract(prompt: str) -> str:
    """Deterministic 5C extraction: classify, tighten, de-duplicate, keep every rule.

    A prompt that lays out its output with markdown headings keeps that part
    in order after the five sections (its headings and placeholders such as
    `{messages}` are structure, not prose to re-sort).
    """
    parts: dict[str, list[str]] = {name: [] for name in SECTIONS}
    tail: list[str] = []  # headed sections and template placeholders, in order
    kept: list[str] = []
    for unit in units(prompt):
        if unit.kind == "heading" or tail or _PLACEHOLDER.search(unit.text):
            if unit.kind == "prose" and not _PLACEHOLDER.search(unit.text):
                short = tighten(unit.text)
                tail.append(short if _covers(short, unit.text) else unit.text)
            else:
                tail.append(unit.text)
            continue
        if unit.kind == "label":  # in the five sections the label's list is re-sorted
            continue
        if unit.kind == "verbatim":  # examples and output formats are kept byte for byte
            parts["Calibration"].append(unit.text)
            continue
        sentence = unit.text
        if _POLITE.match(sentence):
            continue
        short = tighten(sentence)
        if not short or _redundant(sentence, kept):
            continue  # a repetition of something already kept
        if not _covers(short, sentence):
            short = sentence  # tightening lost a rule word; keep it as written
        kept.append(short)
        parts[classify(sentence, unit.tag)].append(short)
    text = render_contract(parts, tail)
    lost = [p.removeprefix("rule lost: ") for p in validate(prompt, text) if p.startswith("rule")]
    if lost:  # belt and braces: the check is the contract's definition
        parts["Constraint"] += lost
        text = render_contract(parts, tail)
    return text


def render_contract(parts: dict[str, list[str]], tail: list[str] | None = None) -> str:
    lines: list[str] = []
    for name in SECTIONS:
        items = [i if "\n" in i else i.rstrip(".:") for i in parts.get(name) or []]
        if not items:
            continue
        if len(items) == 1 and "\n" not in items[0]:
            lines.append(f"{name}: {items[0]}.")
        else:
            lines.append(f"{name}:")
            lines += [item if "\n" in item else f"- {item}." for item in items]
    return "\n".join(lines + (tail or []))


INSTRUCTION = (
    "Rewrite the system prompt below as a compact 5C contract with five labelled lines: "
    "Character:, Cause:, Constraint:, Contingency:, Calibration:. Keep every number and "
    "every must/never/always rule word for word; drop filler. Output only the contract."
)


@dataclass
class Contract:
    hash: str
    prompt: str
    text: str
    source: Source
    tokens_before: int
    tokens_after: int
    problems: list[str]  # why the model's draft was rejected, if it was


def _model_draft_ok(prompt: str, draft: str, model: str) -> list[str]:
    problems = validate(prompt, draft)
    if sum(draft.count(f"{name}:") for name in SECTIONS) < 3:
        problems.append("fewer than three 5C sections")
    if count_text(draft, model) >= count_text(prompt, model):
        problems.append("not shorter than the original")
    return problems


async def make_contract(prompt: str, backend: ChatBackend | None = None,
                        model: str = "gpt-4o", max_tokens: int = 1024) -> Contract:
    """Ask `backend` for a 5C rewrite; fall back to `rule_contract` if it fails validation."""
    problems: list[str] = []
    text, source = "", "rules"
    if backend is not None:
        try:
            # A contract is shorter than its prompt, so that bounds the reply.
            budget = max(32, min(max_tokens, count_text(prompt, model)))
            reply = await backend([{"role": "system", "content": INSTRUCTION},
                                   {"role": "user", "content": prompt}],
                                  temperature=0, max_tokens=budget)
            draft = reply.text.strip()
            problems = _model_draft_ok(prompt, draft, model)
            if not problems:
                text, source = draft, "model"
        except Exception as exc:  # a backend failure must not stop a rule-based contract
            problems = [f"backend failed: {exc}"]
    if not text:
        text = rule_contract(prompt)
    return Contract(prompt_hash(prompt), prompt, text, source,  # type: ignore[arg-type]
                    count_text(prompt, model), count_text(text, model), problems)
