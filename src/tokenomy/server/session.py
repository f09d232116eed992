"""The dashboard's session cookie: who signed in, signed, with an expiry.

The browser sends the key once (the login form); from then on it holds only
this cookie: `HttpOnly` (no script reads it), `SameSite=Strict` (no other site
sends it), `Path=/dashboard`, `Secure` over HTTPS. The value names the reader
(the admin, by a fingerprint of the admin key, or a key by its id), never the
key itself, and is HMAC-SHA256 signed; each request re-checks that the admin
key is unchanged or the key still active, so revoking a key ends its sessions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Literal

import orjson
from pydantic import BaseModel, ValidationError

COOKIE = "tokenomy_session"


class Session(BaseModel):
    sub: Literal["admin", "key"]
    exp: float
    fp: str | None = None  # admin: a fingerprint of the admin key
    kid: str | None = None  # key: its id
    team: str | None = None  # key: its team


def fingerprint(admin_key: str) -> str:
    return hashlib.sha256(b"tokenomy-admin\x00" + admin_key.encode()).hexdigest()[:32]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(session: Session, secret: bytes) -> str:
    payload = _b64(orjson.dumps(session.model_dump(exclude_none=True)))
    mac = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(mac)}"


def read(value: str | None, secret: bytes, now: float | None = None) -> Session | None:
    """The session in a cookie value, or None if absent, forged, malformed or expired."""
    if not value or value.count(".") != 1 or len(value) > 2048:
        return None
    payload, mac = value.split(".")
    expected = _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(mac, expected):
        return None
    try:
        session = Session.model_validate(orjson.loads(_unb64(payload)))
    except (ValueError, ValidationError):
        return None
    return session if session.exp > (time.time() if now is None else now) else None


def set_cookie(value: str, *, max_age: int, secure: bool) -> str:
    flags = f"; Max-Age={max_age}; Path=/dashboard; HttpOnly; SameSite=Strict"
    return f"{COOKIE}={value}{flags}{'; Secure' if secure else ''}"


def clear_cookie(*, secure: bool) -> str:
    return set_cookie("", max_age=0, secure=secure)
