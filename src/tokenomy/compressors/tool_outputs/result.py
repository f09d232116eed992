"""What `compress_tool_output` returns: the new text, its kind, and every elision."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Elision(BaseModel):
    """One removed run: where it was, what it held, and how to see it again."""

    first_line: int = Field(description="1-based line of the output body where the run began")
    last_line: int = Field(description="1-based line of the output body where the run ended")
    lines: int = Field(description="how many lines were removed")
    what: str = Field(description="what the run held, e.g. 'lines', 'pip progress lines'")
    recover: str | None = Field(
        default=None,
        description="the command that prints exactly these lines again (None: the lines "
                    "are restated in the marker, e.g. a repeated line)")


class ToolOutputResult(BaseModel):
    text: str
    kind: str = Field(description="read | search | run | diff | json | generic")
    tokens_before: int
    tokens_after: int
    elisions: list[Elision] = Field(default_factory=list)
    ms: float = 0.0

    @property
    def saved_tokens(self) -> int:
        return max(0, self.tokens_before - self.tokens_after)
