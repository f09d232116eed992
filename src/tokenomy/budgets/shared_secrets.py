"""Secrets every replica on one ledger must share (the dashboard's session key).

Created once, at random, by whichever process asks first; the insert that
loses a race changes nothing and everyone reads the winner's value.
"""

from __future__ import annotations

import secrets
import time

from sqlalchemy import Engine, select

from tokenomy.budgets import schema
from tokenomy.budgets.statements import dialect_insert

_T = schema.secrets


def shared_secret(engine: Engine, name: str) -> bytes:
    """The secret called `name` (32 random bytes, hex), created on first use."""
    with engine.begin() as conn:
        found = conn.execute(select(_T.c.value).where(_T.c.name == name)).scalar()
        if found is None:
            stmt = dialect_insert(conn, _T).values(name=name, value=secrets.token_hex(32),
                                                   created_at=time.time())
            conn.execute(stmt.on_conflict_do_nothing())
            found = conn.execute(select(_T.c.value).where(_T.c.name == name)).scalar()
    return str(found).encode()
