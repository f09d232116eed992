"""The `[compression]` settings section, validated here (the core keeps it free-form).

Compression is off unless a request asks (`tokenomy.compress` body field) or
the settings or the team (`[teams.NAME.compression]`, merged by
`Settings.for_team`) turn it on; under budget
pressure (`call.degrade`) the stage compresses anyway, `degrade_factor` times
harder.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tokenomy.plugins import check_method


class AgentSettings(BaseModel):
    """`[compression.agent]`: live-zone compression of coding-agent requests.

    On by default for agent-shaped requests (tool results in the history), even
    when `[compression] enabled` is off: it only ever touches content that is new
    in a request, and sends it the same way at every later turn, so provider
    prompt caches keep hitting. A team turns it off with
    `[teams.NAME.compression.agent] enabled = false`.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    min_tokens: int = Field(default=100, ge=0)  # tool outputs under this are left alone
    seen: bool = True  # fold runs of lines the conversation already holds
    tool_calls: bool = True  # compress file-writing heredocs in the agent's own tool calls
    # A file the agent writes: "outline" keeps imports, definitions and each paragraph's
    # first line; "repeats" keeps it whole but for passages the conversation already
    # holds (more of what the agent reuses of its own files, for a smaller saving).
    written: Literal["outline", "repeats"] = "outline"
    # Drop the sentences in which the agent only announces its turn's tool call ("Now
    # let me run the tests:"): the call says what it does, and stays.
    announcements: bool = True
    # Rewrite a harness's envelope around every tool output in fewer tokens, losslessly:
    # mini-swe-agent's `<returncode>N</returncode><output>...</output>` becomes the output
    # alone, with an `[exit N]` line first for a failure.
    envelopes: bool = True
    memo_ttl: float = Field(default=86_400.0, gt=0)  # seconds an unused memo entry lives
    memo_max_entries: int = Field(default=200_000, ge=100)


class CompressionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False  # compress requests that did not ask
    target_ratio: float = Field(default=2.0, gt=1.0, le=100.0)  # when a request names none
    min_tokens: int = Field(default=300, ge=0)  # prompts below this are left alone
    degrade_factor: float = Field(default=2.0, ge=1.0, le=10.0)
    compress_on_degrade: bool = True
    max_ratio: float = Field(default=20.0, gt=1.0, le=100.0)
    keep_last_turns: int = Field(default=2, ge=0)
    method: str = "auto"  # "auto" or a registered compressor (the plugin registry)
    reorder: bool = False
    table_format: Literal["json", "toon", "csv", "off"] = "json"
    # Caps after which compression steps aside and the request goes through unchanged:
    # prompts larger than this (a 1 MB message took a minute and ~850 MB to compress),
    # and compression work that runs longer than this (checked between batches).
    max_input_tokens: int = Field(default=100_000, ge=1)
    max_seconds: float = Field(default=30.0, gt=0)
    agent: AgentSettings = Field(default_factory=AgentSettings)

    @field_validator("method")
    @classmethod
    def _registered(cls, value: str) -> str:
        return check_method(value)
