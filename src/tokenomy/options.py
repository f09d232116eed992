"""What a caller may ask of tokenomy per request: the `tokenomy` body field or header.

Options travel in the body field `tokenomy` (OpenAI SDKs: `extra_body`) or, for
clients that cannot add body fields (Claude Code, Codex), in the
`x-tokenomy-options` header as JSON; the `x-tokenomy-team`, `x-tokenomy-step`,
`x-tokenomy-user` and `x-tokenomy-tags` headers attribute a call too. Neither
reaches the backend.

Identity fields are checked here, at the edge: they end up in ledger columns and
log lines, so a value too long for its column or carrying control characters is
a 400 that names the field, never a row that poisons the ledger later.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tokenomy.errors import BadRequest

# Column sizes of the ledger (budgets/schema.py) that identity values land in.
MAX_TEAM = 128
MAX_NAME = 256  # step, user, model names
MAX_TAGS = 32
MAX_TAG_KEY = 64
MAX_TAG_VALUE = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_identity_value(value: str, field: str, limit: int) -> str:
    """`value` if it fits its column and holds no control character; else ValueError."""
    if len(value) > limit:
        raise ValueError(f"{field} is {len(value)} characters; the limit is {limit}")
    if _CONTROL.search(value):
        raise ValueError(f"{field} must not contain control characters (NUL, newline, ...)")
    return value


class CompressOptions(BaseModel):
    """What the caller asked of compression (the `tokenomy.compress` field).

    `method` names a registered compressor; the engine checks it against the
    plugin registry (a third-party compressor is a valid method too).
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    target_ratio: float | None = Field(default=None, gt=1.0, le=100.0)
    target_tokens: int | None = Field(default=None, ge=1)
    method: str = Field(default="auto", max_length=64)
    keep_prefix: bool = True
    reorder: bool = False
    documents: list[int] | None = None  # message indices to treat as retrieved documents


class TokenomyOptions(BaseModel):
    """The per-request `tokenomy` options. They never reach the backend."""

    model_config = ConfigDict(extra="forbid")

    compress: CompressOptions | None = None
    reasoning: str | None = Field(default=None, max_length=64)  # "auto", "off" or a mode
    step: str | None = None
    team: str | None = None
    user: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    # Ask for the cheap path (compress harder, think less): the SDK sets it when a
    # step with on_budget="degrade" has spent its budget; the `step` stage applies it.
    degrade: bool = False
    # The exact response cache: True marks this request cacheable (answered from the
    # cache, and its answer kept), False bypasses the cache; None: the team's setting.
    cache: bool | None = None
    # Do not answer from the cache, but keep the fresh answer (`Cache-Control: no-cache`).
    cache_refresh: bool = False

    @field_validator("team")
    @classmethod
    def _team(cls, value: str | None) -> str | None:
        return None if value is None else check_identity_value(value, "team", MAX_TEAM)

    @field_validator("step", "user")
    @classmethod
    def _name(cls, value: str | None, info: Any) -> str | None:
        return None if value is None else check_identity_value(value, info.field_name, MAX_NAME)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_TAGS:
            raise ValueError(f"at most {MAX_TAGS} tags")
        for key, item in value.items():
            check_identity_value(key, "a tag name", MAX_TAG_KEY)
            check_identity_value(item, f"tag '{key}'", MAX_TAG_VALUE)
        return value


OPTIONS_HEADER = "x-tokenomy-options"
# Headers that attribute a call without a body field: header name -> option name.
ATTRIBUTION_HEADERS = {"x-tokenomy-team": "team", "x-tokenomy-step": "step",
                       "x-tokenomy-user": "user"}
TAGS_HEADER = "x-tokenomy-tags"  # JSON object, or k=v pairs separated by commas
CACHE_CONTROL = "cache-control"  # no-cache: refresh the response cache; no-store: bypass it


def _bad(message: str, param: str) -> BadRequest:
    return BadRequest(message, param=param)


def _header_options(headers: dict[str, str]) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    if OPTIONS_HEADER in headers:
        try:
            parsed = orjson.loads(headers[OPTIONS_HEADER])
        except orjson.JSONDecodeError as exc:
            raise _bad(f"the {OPTIONS_HEADER} header is not valid JSON: {exc}",
                       OPTIONS_HEADER) from exc
        if not isinstance(parsed, dict):
            raise _bad(f"the {OPTIONS_HEADER} header must be a JSON object", OPTIONS_HEADER)
        raw.update(parsed)
    for header, name in ATTRIBUTION_HEADERS.items():
        if header in headers:
            raw[name] = headers[header]
    if TAGS_HEADER in headers:
        text = headers[TAGS_HEADER].strip()
        if text.startswith("{"):
            try:
                raw["tags"] = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise _bad(f"the {TAGS_HEADER} header is not valid JSON", TAGS_HEADER) from exc
        else:
            pairs = [p.split("=", 1) for p in text.split(",") if p.strip()]
            if any(len(p) != 2 for p in pairs):
                raise _bad(f"the {TAGS_HEADER} header must be k=v pairs or a JSON object",
                           TAGS_HEADER)
            raw["tags"] = {k.strip(): v.strip() for k, v in pairs}
    if CACHE_CONTROL in headers:
        directives = {d.strip().split("=", 1)[0].lower()
                      for d in headers[CACHE_CONTROL].split(",")}
        if "no-store" in directives:
            raw["cache"] = False  # neither answered from the cache nor kept in it
        elif "no-cache" in directives:
            raw["cache_refresh"] = True  # HTTP's meaning: not served from a cache unchecked
    return raw


def take_options(body: dict[str, Any], headers: dict[str, str] | None = None) -> TokenomyOptions:
    """Take the `tokenomy` field out of the body (the backend never sees it) and merge the
    header options under it: a body field wins over the same header option."""
    raw = body.pop("tokenomy", None)
    if raw is not None and not isinstance(raw, dict):
        raise _bad("'tokenomy' must be an object", "tokenomy")
    merged = {**_header_options(headers or {}), **(raw or {})}
    if not merged:
        return TokenomyOptions()
    try:
        return TokenomyOptions.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        raise _bad(f"tokenomy.{where}: {message}", f"tokenomy.{where}") from exc
