"""Checks every wire protocol applies to a request body: clear 400s, never 500s.

The bounds are generous (no provider accepts more) and exist so that a value
such as `max_tokens: 2**63-1` is refused at the edge instead of overflowing a
budget estimate or a database column later.
"""

from __future__ import annotations

from typing import Any

from tokenomy.errors import BadRequest
from tokenomy.options import MAX_NAME, check_identity_value

MAX_OUTPUT_TOKENS = 1_000_000  # no model answers more in one call
MAX_CHOICES = 128  # OpenAI's own limit on `n`


def bad(message: str, param: str | None = None) -> BadRequest:
    return BadRequest(message, param=param)


def require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad("the request body must be a JSON object")
    return body


def check_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise bad("you must provide a model parameter (a non-empty string)", "model")
    try:
        check_identity_value(model, "model", MAX_NAME)
    except ValueError as exc:
        raise bad(str(exc), "model") from exc
    return model


def check_int(body: dict[str, Any], name: str, high: int, *, low: int = 1) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad(f"'{name}' must be an integer from {low} to {high}", name)


def check_number(body: dict[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise bad(f"'{name}' must be a number between {low:g} and {high:g}", name)


def check_type(body: dict[str, Any], name: str, kind: type | tuple[type, ...], what: str) -> None:
    if name in body and body[name] is not None and not isinstance(body[name], kind):
        raise bad(f"'{name}' must be {what}", name)


def temperature_zero(body: dict[str, Any]) -> bool:
    """A body that asks for the same answer every time (`temperature: 0`, any protocol)."""
    temperature = body.get("temperature")
    return (isinstance(temperature, int | float) and not isinstance(temperature, bool)
            and temperature == 0)
