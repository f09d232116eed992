"""Cheap text features of a prompt that predict whether a cheap reasoning mode suffices.

Two kinds, both computed in well under a millisecond with plain regular
expressions: a few dense signals (length, numbers, math and code words,
constraints, question type, clause count: a proxy for the number of reasoning
steps) and hashed word uni/bi-grams (topic and phrasing). The hash is crc32, so
the same prompt maps to the same columns in every process and on every machine.
"""

from __future__ import annotations

import itertools
import math
import re
import zlib

import numpy as np

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NUMBER_WORDS = re.compile(
    r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|"
    r"fifty|hundred|thousand|million|dozen|twice|half|thrice|triple|double|quarter|third)\b"
)
_MATH_WORDS = re.compile(
    r"\b(?:more|less|fewer|each|every|per|total|times|percent|rate|remaining|left|rest|spend|"
    r"spent|cost|costs|profit|average|ratio|increase|decrease|discount|split|share|divide|"
    r"divided|sum|product|solve|equation|integral|derivative|probability|prove)\b"
)
_UNITS = re.compile(
    r"\b(?:minutes?|hours?|days?|weeks?|months?|years?|seconds?|miles?|feet|inches|pounds?|"
    r"ounces?|gallons?|liters?|meters?|km|kg|dollars?|cents?)\b"
)
_CODE = re.compile(
    r"```|\bdef |\bclass |\breturn\b|\bfunction\b|=>|\{|\}|;\s*$|\bimport\b|\bSELECT\b|\bregex\b",
    re.MULTILINE,
)
_CONSTRAINTS = re.compile(
    r"\b(?:must|should|exactly|at least|at most|no more than|no less than|only|without|"
    r"never|always|ensure|make sure|do not|don't)\b"
)
_NEGATIONS = re.compile(r"\b(?:not|except|least|false|incorrect)\b")
_STEP_WORDS = re.compile(r"\b(?:then|after|before|later|next|finally|afterwards|meanwhile)\b")
_CHOICE = re.compile(r"^\s*\(?[A-Ha-h][.)]\s", re.MULTILINE)
_ASKS = re.compile(r"\?|\b(?:find|calculate|compute|determine|work out)\b")
_SENTENCE = re.compile(r"[.!?](?:\s|$)")
_TOKEN = re.compile(r"[a-z]+|\d|[%$/*+=^<>-]")

DENSE_NAMES: tuple[str, ...] = (
    "log_chars",
    "log_words",
    "numbers",
    "distinct_numbers",
    "max_number_digits",
    "decimals",
    "number_words",
    "math_words",
    "units",
    "percent_dollar_slash",
    "code_signals",
    "constraints",
    "negations",
    "sentences",
    "mean_sentence_words",
    "commas",
    "clauses",
    "step_words",
    "choices",
    "ends_with_answer",
    "asks_how_many_much",
    "asks_why_explain",
    "is_math_word_problem",
    "lines",
)


def dense_features(text: str) -> list[float]:
    """The dense signals of `text`, in the order of `DENSE_NAMES`."""
    lower = text.lower()
    words = lower.split()
    numbers = _NUMBER.findall(text)
    sentences = max(1, len(_SENTENCE.findall(text)))
    commas = text.count(",")
    choices = len(_CHOICE.findall(text))
    how = int("how many" in lower or "how much" in lower)
    math_words = len(_MATH_WORDS.findall(lower))
    number_words = len(_NUMBER_WORDS.findall(lower))
    # A math word problem: no answer options, and numbers to combine in a question
    # ("how old will she be", "what is the combined weight", "find the mean").
    word_problem = choices < 2 and (
        how or (len(numbers) + number_words >= 2 and (math_words >= 1 or bool(_ASKS.search(lower))))
    )
    return [
        math.log1p(len(text)),
        math.log1p(len(words)),
        float(len(numbers)),
        float(len(set(numbers))),
        float(max((len(n.replace(",", "").split(".")[0]) for n in numbers), default=0)),
        float(sum("." in n for n in numbers)),
        float(number_words),
        float(math_words),
        float(len(set(_UNITS.findall(lower)))),
        float(text.count("%") + text.count("$") + text.count("/")),
        float(len(_CODE.findall(text))),
        float(len(_CONSTRAINTS.findall(lower))),
        float(len(_NEGATIONS.findall(lower))),
        float(sentences),
        len(words) / sentences,
        float(commas),
        float(commas + sentences + lower.count(" and ")),
        float(len(_STEP_WORDS.findall(lower))),
        float(choices),
        float(text.rstrip().endswith("Answer:")),
        float(how),
        float("why" in lower or "explain" in lower),
        float(word_problem),
        float(text.count("\n") + 1),
    ]


def hashed_ngrams(text: str, dim: int) -> np.ndarray:
    """L2-normalised counts of word uni- and bi-grams hashed into `dim` buckets."""
    if dim <= 0:
        return np.zeros(0)
    tokens = _TOKEN.findall(text.lower())
    grams = tokens + [f"{a} {b}" for a, b in itertools.pairwise(tokens)]
    buckets = [zlib.crc32(gram.encode()) % dim for gram in grams]
    vector = np.bincount(buckets, minlength=dim).astype(np.float64)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


def featurize(text: str, hash_dim: int) -> np.ndarray:
    """Dense signals followed by hashed n-grams: one row of the model's input."""
    return np.concatenate([np.asarray(dense_features(text)), hashed_ngrams(text, hash_dim)])
