"""Code-aware compression: output parses, relevant code kept whole, signatures kept."""

from __future__ import annotations

import ast
import inspect

import pytest

import tokenomy.compressors.lossless as lossless_module
import tokenomy.compressors.segments as segments_module
from tokenomy.compressors.auto import compress_code
from tokenomy.compressors.code import CodeCompressor
from tokenomy.tokenizers import count_text

MODEL = "gpt-4o"


@pytest.mark.parametrize(
    ("module", "query", "must_keep"),
    [
        (lossless_module, "fix the bug in dedup_paragraphs: repeated paragraphs are not replaced",
         "seen[key] = f'[repeated"),
        (segments_module, "How does split_question find the question in the last user message?",
         "def split_question"),
    ],
)
def test_python_stays_valid_and_keeps_the_relevant_function(module, query, must_keep):
    source = inspect.getsource(module)
    target = count_text(source, MODEL) // 3
    result = CodeCompressor().compress(source, query=query, target_tokens=target, model=MODEL)
    tree = ast.parse(result.text)  # still parses
    assert 0.5 * target <= result.compressed_tokens <= target
    assert must_keep.split("(")[0].replace("'", '"') in result.text.replace("'", '"')
    # Every top-level function of the original is still there, at least as a signature,
    # or gone entirely; none is cut in the middle.
    names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    assert names
    original = {n.name for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef)}
    assert names <= original
    assert "..." in result.text  # some functions were reduced to stubs


def test_classes_keep_their_header_when_methods_are_stubbed():
    source = inspect.getsource(CodeCompressor) + "\n\n" + inspect.getsource(lossless_module)
    result = CodeCompressor().compress(source, query="lossless JSON minification",
                                       target_tokens=count_text(source, MODEL) // 4, model=MODEL)
    ast.parse(result.text)
    assert "class CodeCompressor" in result.text or "class LosslessCompressor" in result.text


def test_generic_fallback_for_other_languages():
    js = "\n\n".join(
        f"function handler{i}(req, res) {{\n  const value = compute{i}(req.body);\n"
        f"  if (!value) {{\n    return res.status(400).send('bad');\n  }}\n"
        f"  return res.json({{ value, id: {i} }});\n}}"
        for i in range(30)
    )
    js = "import express from 'express';\n\n" + js
    result = CodeCompressor().compress(js, query="what does handler7 return?",
                                       target_tokens=count_text(js, MODEL) // 4, model=MODEL)
    assert result.detail["language"] == "generic"
    assert result.compressed_tokens <= count_text(js, MODEL) // 4
    assert "import express" in result.text
    assert "compute7(req.body)" in result.text


def test_fenced_code_keeps_its_fence():
    source = inspect.getsource(lossless_module)
    fenced = f"```python\n{source}```"
    result = compress_code(fenced, query="toon table format", model=MODEL,
                           target_tokens=count_text(fenced, MODEL) // 3)
    assert result.text.startswith("```python\n") and result.text.endswith("\n```")
    ast.parse(result.text[len("```python\n") : -len("```")])


def test_within_budget_is_untouched():
    source = "def f():\n    return 1\n"
    result = CodeCompressor().compress(source, query="f", target_tokens=100, model=MODEL)
    assert result.text == source and result.ratio == 1.0
