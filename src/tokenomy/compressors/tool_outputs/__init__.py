"""Tool-output compressors by kind, for coding-agent traffic.

`compress_tool_output(output, command=..., tool_name=..., query=..., model=...)`
decides what one new tool output becomes: file reads keep their outline and what
the query points at, searches keep every path and match, runs keep errors and
tracebacks, diffs keep every change, JSON is compacted losslessly first. Every
elision names the command that prints the removed lines again.

Modules: `compress` (entry point; `fold_restated` for the agent's own text),
`detect` (kinds), `command` (shell parsing), `wrapper` (agent wrappers such as
mini-swe-agent's `<output>`, Codex's `Exit code:` header), `query` (items no rule
may drop), `plan` + `marker` (line plans and recoverable markers that must pay for
themselves), `fold` (repeats, progress, look-alikes, head/tail, lines already
shown), `seen` (the conversation's lines), `signals` (error lines), `prose`
(docstrings and comment blocks in code), and one module per kind: `read` +
`source`, `search`, `runs`, `diff`, `json_output`, `generic`.
"""

from tokenomy.compressors.tool_outputs.compress import compress_tool_output, fold_restated
from tokenomy.compressors.tool_outputs.result import Elision, ToolOutputResult
from tokenomy.compressors.tool_outputs.seen import SeenLines

__all__ = ["Elision", "SeenLines", "ToolOutputResult", "compress_tool_output", "fold_restated"]
