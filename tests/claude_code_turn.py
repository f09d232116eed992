"""One Claude Code turn, as it goes over the wire (written from Anthropic's public API
reference and Claude Code's documented request shape, not captured from a session).

`POST /v1/messages?beta=true` with:
- headers: `anthropic-version`, `anthropic-beta` (claude-code, interleaved thinking,
  fine-grained tool streaming), `x-app: cli`, the SDK's `x-stainless-*`, and the
  key as `Authorization: Bearer` (what `ANTHROPIC_AUTH_TOKEN` makes it send);
- body: `system` as two text blocks with `cache_control`, 17 tools with JSON
  Schema `input_schema`s, `metadata.user_id`, `thinking` with a budget,
  `stream: true`, and a history of user text (a `<system-reminder>` block, then
  the task), assistant turns with signed `thinking`, text and `tool_use`
  (parallel calls in the last one), and user turns of `tool_result`s; the
  newest block carries Claude Code's moving `cache_control` breakpoint.

The last assistant turn ran the test suite verbosely and read a file: the
verbose log is the long, new tool output a gateway would compress.
"""

from __future__ import annotations

from typing import Any

SCHEMA = "http://json-schema.org/draft-07/schema#"


def _tool(name: str, description: str, properties: dict[str, Any],
          required: list[str]) -> dict[str, Any]:
    return {"name": name, "description": description, "input_schema": {
        "type": "object", "properties": properties, "required": required,
        "additionalProperties": False, "$schema": SCHEMA}}


def _s(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description}


TOOLS = [
    _tool("Task", "Launch a new agent to handle complex, multi-step tasks autonomously.",
          {"description": _s("A short (3-5 word) description of the task"),
           "prompt": _s("The task for the agent to perform"),
           "subagent_type": _s("The type of specialized agent to use for this task")},
          ["description", "prompt", "subagent_type"]),
    _tool("Bash", "Executes a given bash command in a persistent shell session with optional "
          "timeout, ensuring proper handling and security measures.",
          {"command": _s("The command to execute"),
           "timeout": {"type": "number", "description": "Optional timeout in milliseconds"},
           "description": _s("Clear, concise description of what this command does"),
           "run_in_background": {"type": "boolean",
                                 "description": "Set to true to run this command in the "
                                                "background."}},
          ["command"]),
    _tool("Glob", "Fast file pattern matching tool that works with any codebase size.",
          {"pattern": _s("The glob pattern to match files against"),
           "path": _s("The directory to search in.")}, ["pattern"]),
    _tool("Grep", "A powerful search tool built on ripgrep.",
          {"pattern": _s("The regular expression pattern to search for in file contents"),
           "path": _s("File or directory to search in"),
           "glob": _s("Glob pattern to filter files"),
           "output_mode": {"type": "string",
                           "enum": ["content", "files_with_matches", "count"],
                           "description": "Output mode"},
           "-n": {"type": "boolean", "description": "Show line numbers in output"}},
          ["pattern"]),
    _tool("LS", "Lists files and directories in a given path.",
          {"path": _s("The absolute path to the directory to list"),
           "ignore": {"type": "array", "items": {"type": "string"},
                      "description": "List of glob patterns to ignore"}}, ["path"]),
    _tool("ExitPlanMode", "Use this tool when you are in plan mode and have finished "
          "presenting your plan and are ready to code.",
          {"plan": _s("The plan you came up with")}, ["plan"]),
    _tool("Read", "Reads a file from the local filesystem.",
          {"file_path": _s("The absolute path to the file to read"),
           "offset": {"type": "number", "description": "The line number to start reading from"},
           "limit": {"type": "number", "description": "The number of lines to read"}},
          ["file_path"]),
    _tool("Edit", "Performs exact string replacements in files.",
          {"file_path": _s("The absolute path to the file to modify"),
           "old_string": _s("The text to replace"),
           "new_string": _s("The text to replace it with"),
           "replace_all": {"type": "boolean", "default": False,
                           "description": "Replace all occurences of old_string"}},
          ["file_path", "old_string", "new_string"]),
    _tool("MultiEdit", "Makes multiple edits to a single file in one operation.",
          {"file_path": _s("The absolute path to the file to modify"),
           "edits": {"type": "array", "minItems": 1, "items": {
               "type": "object", "additionalProperties": False,
               "required": ["old_string", "new_string"],
               "properties": {"old_string": _s("The text to replace"),
                              "new_string": _s("The text to replace it with")}},
               "description": "Array of edit operations to perform sequentially"}},
          ["file_path", "edits"]),
    _tool("Write", "Writes a file to the local filesystem.",
          {"file_path": _s("The absolute path to the file to write"),
           "content": _s("The content to write to the file")}, ["file_path", "content"]),
    _tool("NotebookEdit", "Completely replaces the contents of a specific cell in a Jupyter "
          "notebook.",
          {"notebook_path": _s("The absolute path to the Jupyter notebook file"),
           "cell_id": _s("The ID of the cell to edit"),
           "new_source": _s("The new source for the cell")}, ["notebook_path", "new_source"]),
    _tool("WebFetch", "Fetches content from a specified URL and processes it.",
          {"url": {"type": "string", "format": "uri", "description": "The URL to fetch"},
           "prompt": _s("The prompt to run on the fetched content")}, ["url", "prompt"]),
    _tool("TodoWrite", "Use this tool to create and manage a structured task list.",
          {"todos": {"type": "array", "description": "The updated todo list", "items": {
              "type": "object", "additionalProperties": False,
              "required": ["content", "status", "activeForm"],
              "properties": {"content": {"type": "string", "minLength": 1},
                             "status": {"type": "string",
                                        "enum": ["pending", "in_progress", "completed"]},
                             "activeForm": {"type": "string", "minLength": 1}}}}},
          ["todos"]),
    _tool("WebSearch", "Allows Claude to search the web and use the results.",
          {"query": {"type": "string", "minLength": 2, "description": "The search query"},
           "allowed_domains": {"type": "array", "items": {"type": "string"}}}, ["query"]),
    _tool("BashOutput", "Retrieves output from a running or completed background bash shell.",
          {"bash_id": _s("The ID of the background shell to retrieve output from")},
          ["bash_id"]),
    _tool("KillShell", "Kills a running background bash shell by its ID.",
          {"shell_id": _s("The ID of the background shell to kill")}, ["shell_id"]),
    _tool("SlashCommand", "Execute a slash command within the main conversation.",
          {"command": _s("The slash command to execute with its arguments")}, ["command"]),
]

SYSTEM = [
    {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude.",
     "cache_control": {"type": "ephemeral"}},
    {"type": "text", "cache_control": {"type": "ephemeral"}, "text": (
        "\nYou are an interactive CLI tool that helps users with software engineering "
        "tasks. Use the instructions below and the tools available to you to assist the "
        "user.\n\n# Tone and style\nYou should be concise, direct, and to the point.\n\n"
        "# Doing tasks\nThe user will primarily request you perform software engineering "
        "tasks. This includes solving bugs, adding new functionality, refactoring code, "
        "explaining code, and more.\n- Use the TodoWrite tool to plan the task if required\n"
        "- Use the available search tools to understand the codebase and the user's query.\n"
        "- Implement the solution using all tools available to you\n- Verify the solution "
        "if possible with tests.\n\n# Tool usage policy\n- You have the capability to call "
        "multiple tools in a single response. When multiple independent pieces of "
        "information are requested, batch your tool calls together for optimal "
        "performance.\n\nHere is useful information about the environment you are running "
        "in:\n<env>\nWorking directory: /home/dev/parsekit\nIs directory a git repo: Yes\n"
        "Platform: linux\nToday's date: 2026-11-02\n</env>\nYou are powered by the model "
        "named Sonnet 4.5. The exact model ID is claude-sonnet-4-5-20250929.\n")},
]

TASK = "The test test_parse_iso_dates fails on CI. Find out why and fix it."

FAILING_RUN = "\n".join([
    '============================= test session starts ==============================',
    'platform linux -- Python 3.12.7, pytest-8.3.3, pluggy-1.5.0',
    'rootdir: /home/dev/parsekit',
    'collected 14 items',
    '',
    'tests/test_parser.py ......F.......                                      [100%]',
    '',
    '=================================== FAILURES ===================================',
    '____________________________ test_parse_iso_dates ______________________________',
    '',
    '    def test_parse_iso_dates():',
    '>       assert parse_date("2024-02-29T12:00:00+01:00") == datetime(2024, 2, 29, 11, 0,',
    '                                                                  tzinfo=timezone.utc)',
    'E       AssertionError: assert datetime.datetime(2024, 2, 29, 12, 0) '
    '== datetime.datetime(2024, 2, 29, 11, 0, tzinfo=datetime.timezone.utc)',
    '',
    'tests/test_parser.py:41: AssertionError',
    '=========================== short test summary info ============================',
    'FAILED tests/test_parser.py::test_parse_iso_dates - AssertionError: assert dat...',
    '========================= 1 failed, 13 passed in 0.21s =========================',
])


def _verbose_suite() -> str:
    """`pytest tests -v` over a mid-sized project: 180 passing tests and the one failure."""
    modules = ["test_cli", "test_config", "test_formats", "test_locale", "test_numbers",
               "test_parser", "test_tokens", "test_units", "test_widths"]
    lines = ["============================= test session starts "
             "==============================",
             "platform linux -- Python 3.12.7, pytest-8.3.3, pluggy-1.5.0 -- "
             "/home/dev/parsekit/.venv/bin/python",
             "cachedir: .pytest_cache", "rootdir: /home/dev/parsekit", "configfile: pyproject.toml",
             "collecting ... collected 181 items", ""]
    done = 0
    for module in modules:
        for n in range(20):
            done += 1
            name = f"test_{module[5:]}_case_{n:02d}"
            lines.append(f"tests/{module}.py::{name} PASSED{'':>20}[{done * 100 // 181:3d}%]")
        if module == "test_parser":
            done += 1
            lines.append(f"tests/{module}.py::test_parse_iso_dates FAILED{'':>14}"
                         f"[{done * 100 // 181:3d}%]")
    lines += ["", "=================================== FAILURES "
              "===================================",
              "____________________________ test_parse_iso_dates "
              "______________________________",
              "tests/test_parser.py:41: AssertionError: assert "
              "datetime.datetime(2024, 2, 29, 12, 0) == "
              "datetime.datetime(2024, 2, 29, 11, 0, tzinfo=datetime.timezone.utc)",
              "=========================== short test summary info "
              "============================",
              "FAILED tests/test_parser.py::test_parse_iso_dates - AssertionError: assert dat...",
              "======================== 1 failed, 180 passed in 1.94s "
              "========================="]
    return "\n".join(lines)


VERBOSE_SUITE = _verbose_suite()

PARSER_SOURCE = "\n".join(f"{n:>6}\t{line}" for n, line in enumerate([
    "from datetime import datetime, timezone", "", "",
    "def parse_date(text: str) -> datetime:",
    '    """An ISO 8601 timestamp as a datetime."""',
    "    value = datetime.fromisoformat(text)",
    "    return value.replace(tzinfo=None)", ""], start=1))

HISTORY: list[dict[str, Any]] = [
    {"role": "user", "content": [
        {"type": "text", "text": "<system-reminder>\nAs you answer the user's questions, you "
                                 "can use the following context:\n# claudeMd\nRun the tests "
                                 "with `pytest`.\n</system-reminder>\n"},
        {"type": "text", "text": TASK}]},
    {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "The user wants a failing date test fixed. First I "
                                         "should reproduce the failure.",
         "signature": "ErUBCkYIBxgCIkBqA3Jt8Yk2sTz1WZr5v0nQ4bLhPpF+dWmO9cXyEuJ1gV7aHsKiLqRt"
                      "M6oNzUeY3fD2wBvC8xA0pSjGlTnIhEgx1c2YzB0bS4aTVlZmQ3aBoMdK9pLx"},
        {"type": "text", "text": "I'll start by running the failing test."},
        {"type": "tool_use", "id": "toolu_01D7FLrfh4GYq7yT1ULFeyMV", "name": "Bash",
         "input": {"command": "pytest tests/test_parser.py -q",
                   "description": "Run the parser tests"}}]},
    {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_01D7FLrfh4GYq7yT1ULFeyMV",
         "content": FAILING_RUN, "is_error": True}]},
    {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "parse_date drops the timezone instead of converting "
                                         "to UTC. I should read the parser and check whether "
                                         "other tests depend on naive datetimes.",
         "signature": "EqQBCkYIBxgCKkCv2m8Zq1Hs3Jk9Tn0Lp5Wd7Fb4Xc6Ye2Ra8Ug1Ih3Oj5Ps9Qt0Vw"
                      "BxgCIgx0kR2yP7sU9wX3zA5b"},
        {"type": "tool_use", "id": "toolu_01Xk9e2RzMG7P4dYqW8n3bJc", "name": "Bash",
         "input": {"command": "pytest tests -v", "description": "Run the whole suite verbosely"}},
        {"type": "tool_use", "id": "toolu_01Rm4TgVh8Jq2nLs6Kd9wPzE", "name": "Read",
         "input": {"file_path": "/home/dev/parsekit/src/parsekit/dates.py"}}]},
    {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_01Xk9e2RzMG7P4dYqW8n3bJc",
         "content": VERBOSE_SUITE, "is_error": True},
        {"type": "tool_result", "tool_use_id": "toolu_01Rm4TgVh8Jq2nLs6Kd9wPzE",
         "content": PARSER_SOURCE, "cache_control": {"type": "ephemeral"}}]},
]

BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-5-20250929",
    "messages": HISTORY,
    "temperature": 1,
    "system": SYSTEM,
    "tools": TOOLS,
    "metadata": {"user_id": "user_6c3b2f0e9a1d4c5b8e7f0a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d"
                            "_account__session_4f1c2a9e-7b3d-4e8a-9c6f-2d1e0b9a8c7d"},
    "max_tokens": 32000,
    "thinking": {"type": "enabled", "budget_tokens": 31999},
    "stream": True,
}

HEADERS = {
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,"
                      "fine-grained-tool-streaming-2025-05-14",
    "anthropic-dangerous-direct-browser-access": "true",
    "x-app": "cli",
    "user-agent": "claude-cli/2.0.14 (external, cli)",
    "x-stainless-lang": "js",
    "x-stainless-package-version": "0.60.0",
    "x-stainless-runtime": "node",
    "x-stainless-retry-count": "0",
    "content-type": "application/json",
}
