"""Virtual API keys: created once (printed once), stored only as a hash.

A key looks like `tkn_<key id>_<secret>`. The id finds the row; the secret is
compared as HMAC-SHA256 digests with `hmac.compare_digest` (constant time).
The secret has 256 bits of entropy, so a fast keyed hash is enough (the same
choice GitHub and Stripe make for their tokens); `ledger.key_pepper` adds a
server-side secret so a stolen database alone cannot confirm a guessed key.

The request path's reads (`auth_enabled`, `verify`) raise LedgerUnavailable
(503) when the database cannot be reached: a key that cannot be checked is
refused, never waved through.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time

from pydantic import BaseModel
from sqlalchemy import Engine, select, update

from tokenomy.budgets import schema
from tokenomy.budgets.db import guarded, reader
from tokenomy.budgets.settings import BudgetSpec, LedgerSettings

_KEYS = schema.api_keys
_FORMAT = re.compile(r"tkn_([0-9a-f]{12})_([A-Za-z0-9_\-]{20,})")


class KeyInfo(BaseModel):
    key_id: str
    team: str
    name: str | None = None
    created_at: float
    revoked_at: float | None = None
    budget: BudgetSpec | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class KeyStore:
    def __init__(self, engine: Engine, settings: LedgerSettings):
        self.engine = engine
        self.reader = reader(engine)
        self.settings = settings
        self._pepper = (settings.key_pepper or "tokenomy-key-v1").encode()
        self._auth_seen_on = False
        self._auth_checked_at = -1e9

    def _digest(self, secret: str) -> str:
        return hmac.new(self._pepper, secret.encode(), hashlib.sha256).hexdigest()

    def create(
        self, team: str, *, name: str | None = None, budget: BudgetSpec | None = None
    ) -> tuple[KeyInfo, str]:
        """Make a key for `team`; returns its info and the plaintext key (shown once)."""
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        now = time.time()
        spec = budget if budget is not None and budget.active else None
        with self.engine.begin() as conn:
            conn.execute(
                _KEYS.insert().values(
                    key_id=key_id,
                    team=team,
                    name=name,
                    hash=self._digest(secret),
                    created_at=now,
                    budget_tokens=spec.tokens if spec else None,
                    budget_usd=spec.usd if spec else None,
                    budget_window=spec.window if spec else None,
                    soft_limit=spec.soft_limit if spec else None,
                    soft_action=spec.soft_action if spec else None,
                )
            )
        self._auth_seen_on = True
        info = KeyInfo(key_id=key_id, team=team, name=name, created_at=now, budget=spec)
        return info, f"tkn_{key_id}_{secret}"

    def list(self, team: str | None = None, *, include_revoked: bool = True) -> list[KeyInfo]:
        stmt = select(_KEYS).order_by(_KEYS.c.created_at)
        if team is not None:
            stmt = stmt.where(_KEYS.c.team == team)
        if not include_revoked:
            stmt = stmt.where(_KEYS.c.revoked_at.is_(None))
        with self.reader.connect() as conn:
            return [_info(row) for row in conn.execute(stmt).mappings()]

    @guarded("reading the API keys")
    def active(self, key_id: str) -> KeyInfo | None:
        """The key with this id unless it is revoked (a dashboard session re-checks it)."""
        with self.reader.connect() as conn:
            row = conn.execute(select(_KEYS).where(_KEYS.c.key_id == key_id)).mappings().first()
        info = _info(row) if row is not None else None
        return None if info is None or info.revoked else info

    def revoke(self, key_id: str) -> bool:
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(_KEYS)
                .where(_KEYS.c.key_id == key_id, _KEYS.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            ).rowcount
        return bool(changed)

    @guarded("reading the API keys")
    def any_keys(self) -> bool:
        with self.reader.connect() as conn:
            return conn.execute(select(_KEYS.c.key_id).limit(1)).first() is not None

    def auth_enabled(self) -> bool:
        if self.settings.auth == "on":
            return True
        if self.settings.auth == "off":
            return False
        if self.settings.require_keys:
            # Not "on once a key exists": a ledger that comes back empty (a new
            # database, a wiped volume) must not open the proxy to anyone.
            return True
        # Keys are revoked, never deleted: once one exists, auth stays on, so a
        # True answer never needs asking again. "No keys yet" is re-checked at
        # most once a second: a key created by the CLI turns auth on within 1 s.
        if self._auth_seen_on:
            return True
        now = time.monotonic()
        if now - self._auth_checked_at >= 1.0:
            self._auth_seen_on = self.any_keys()
            self._auth_checked_at = now
        return self._auth_seen_on

    @guarded("checking the API key")
    def verify(self, token: str) -> KeyInfo | None:
        """The key's info if `token` is a live key; None if unknown, malformed or revoked."""
        match = _FORMAT.fullmatch(token.strip())
        # Hash even a malformed token, so timing does not tell shapes apart.
        digest = self._digest(match.group(2) if match else token)
        if match is None:
            return None
        with self.reader.connect() as conn:
            row = (
                conn.execute(select(_KEYS).where(_KEYS.c.key_id == match.group(1)))
                .mappings()
                .first()
            )
        if row is None or not hmac.compare_digest(digest, row["hash"]):
            return None
        info = _info(row)
        return None if info.revoked else info


def _info(row: object) -> KeyInfo:
    data = dict(row)  # type: ignore[call-overload]
    budget = None
    if data.get("budget_tokens") is not None or data.get("budget_usd") is not None:
        budget = BudgetSpec(
            tokens=data["budget_tokens"],
            usd=data["budget_usd"],
            window=data["budget_window"] or "month",
            soft_limit=data["soft_limit"] or 0.8,
            soft_action=data["soft_action"] or "degrade",
        )
    return KeyInfo(
        key_id=data["key_id"],
        team=data["team"],
        name=data["name"],
        created_at=data["created_at"],
        revoked_at=data["revoked_at"],
        budget=budget,
    )
