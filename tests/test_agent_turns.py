"""The agent's own turn in the live zone: files it writes with a heredoc, and its text.

The agent's tool call (`cat > check.py << 'EOF' ... EOF`) sits in every later
request; once written, the file is on disk. Its body keeps imports, definitions
and the first line of each paragraph; every elided run is named by the `sed -n`
range that prints it from the file, so expanding the markers gives the body back.
Its text loses only passages it quoted from the conversation.
"""

from __future__ import annotations

import json
import re

from tokenomy.compressors.agent.heredoc import compress_tool_call, find_heredocs
from tokenomy.compressors.tool_outputs import SeenLines, fold_restated

MODEL = "deepseek-chat"
MARKER = re.compile(r"^\s*\[\.\.\. (\d+) (.+?) omitted: sed -n (\d+),(\d+)p(?: (\S+))?\]$")


def script() -> list[str]:
    lines = ["import sys", "import numpy as np", "from pkg.iam import physical", "",
             "def check(aoi, n):", '    """Print the modifier for one angle."""',
             "    value = physical(aoi, n=n)",
             "    status = 'nan' if np.isnan(value) else 'ok'",
             "    print(f'aoi={aoi} n={n}: {value} ({status})')",
             "    sys.stdout.flush()", "    return value", ""]
    for case in range(4):
        lines += [f"# Case {case}: angles around {case * 30} degrees",
                  *[f"check({case * 30 + k}, {1 + case / 10})  # angle {k} of case {case}"
                    for k in range(8)], ""]
    lines += ["print('done')"]
    return lines


def arguments(body: list[str], command: str = "cat > check.py << 'EOF'") -> str:
    return json.dumps({"command": f"{command}\n" + "\n".join(body) + "\nEOF\npython check.py"})


def expand(text: str, body: list[str]) -> list[str]:
    out: list[str] = []
    for line in text.split("\n"):
        m = MARKER.fullmatch(line)
        if m is None:
            out.append(line)
            continue
        start, end = int(m.group(3)), int(m.group(4))
        assert m.group(5) in ("check.py", None) and end - start + 1 == int(m.group(1))
        out += body[start - 1 : end]
    return out


def test_a_written_file_keeps_its_outline_and_every_marker_reads_it_back():
    body = script()
    done = compress_tool_call(arguments(body), model=MODEL, min_tokens=50)
    assert done is not None
    new_arguments, before, after = done
    assert after < before
    command = json.loads(new_arguments)["command"]
    assert command.startswith("cat > check.py << 'EOF'\n") and command.endswith(
        "\nEOF\npython check.py")
    written = command.split("\n")[1:-2]
    for kept in ("import numpy as np", "def check(aoi, n):",
                 '    """Print the modifier for one angle."""',
                 "# Case 2: angles around 60 degrees", "print('done')"):
        assert kept in written
    assert "check(61, 1.2)  # angle 1 of case 2" not in written
    assert expand("\n".join(written), body) == body


def test_scripts_that_live_nowhere_else_and_short_files_stay():
    body = script()
    for command in ("python - << 'EOF'", "cat << 'EOF' | python"):
        assert compress_tool_call(arguments(body, command), model=MODEL, min_tokens=50) is None
    assert compress_tool_call(arguments(body[:6]), model=MODEL, min_tokens=50) is None
    assert compress_tool_call(arguments(body), model=MODEL, min_tokens=10**6) is None
    assert compress_tool_call("not json", model=MODEL, min_tokens=50) is None
    assert find_heredocs("cat > out.txt << 'EOF'\nnever closed") == []


def test_lines_the_conversation_holds_fold():
    body = script()
    seen = SeenLines(["\n".join(body[:12])])  # the agent wrote check() before
    done = compress_tool_call(arguments(body), model=MODEL, min_tokens=50, seen=seen)
    assert done is not None
    command = json.loads(done[0])["command"]
    assert "lines shown before omitted" in command
    assert "    status = 'nan' if np.isnan(value) else 'ok'" not in command


def test_the_agents_text_loses_only_what_it_quoted():
    # Its reasoning exists nowhere else; a passage it quotes from an output is in the
    # prompt already, verbatim.
    quoted = script()[4:11]
    text = "\n".join(["The modifier goes wrong at grazing angles. Here is check() again:", "",
                      "```python", *quoted, "```", "",
                      "So `physical` must clip the cosine before the power; I will fix it."])
    folded = fold_restated(text, seen=SeenLines(["\n".join(script())]), model=MODEL,
                           min_tokens=20)
    assert folded is not None
    new, before, after = folded
    assert after < before
    assert new.startswith("The modifier goes wrong at grazing angles. Here is check() again:")
    assert new.endswith("So `physical` must clip the cosine before the power; I will fix it.")
    assert "lines shown before omitted]" in new and "    sys.stdout.flush()" not in new
    assert fold_restated(text, seen=SeenLines(["unrelated text of no interest here"]),
                         model=MODEL, min_tokens=20) is None


def test_a_file_the_agent_wrote_is_known_when_it_reads_it_back():
    # The heredoc travels as JSON (one line, escaped newlines); the lines the model read
    # are the command's, so a later `cat check.py` folds against them (heredocs are sent
    # whole here, so every line of the file is in the prompt).
    from tokenomy.compressors.agent.loop import AgentCompressor
    from tokenomy.compressors.memo import Memo
    from tokenomy.transcript import OPENAI_CHAT

    body = script()

    def call(number: int, command: str) -> dict[str, object]:
        return {"role": "assistant", "content": None, "tool_calls": [{
            "id": f"c{number}", "type": "function",
            "function": {"name": "bash", "arguments": json.dumps({"command": command})}}]}

    messages: list[dict[str, object]] = [
        {"role": "system", "content": "You are a coding agent."},
        {"role": "user", "content": "Check the modifier at grazing angles."},
        call(1, "cat > check.py << 'EOF'\n" + "\n".join(body) + "\nEOF"),
        {"role": "tool", "tool_call_id": "c1", "content": "<returncode>0</returncode>"},
        call(2, "cat check.py"),
        {"role": "tool", "tool_call_id": "c2",
         "content": "<returncode>0</returncode>\n<output>\n" + "\n".join(body) + "\n</output>"}]
    compressor = AgentCompressor(Memo(), min_tokens=50, tool_calls=False)
    compressor.run(OPENAI_CHAT.parts({"messages": messages[:4]}), team="t", model=MODEL)
    changes, _ = compressor.run(OPENAI_CHAT.parts({"messages": messages}), team="t",
                                model=MODEL)
    read_back = next(text for part, text in changes if part.tool_call_id == "c2")
    assert "lines shown before omitted" in read_back
    assert "    status = 'nan' if np.isnan(value) else 'ok'" not in read_back
