"""Stored 5C contracts, keyed by the sha256 of the normalised system prompt.

One SQLite file ($TOKENOMY_HOME/contracts.db by default) in WAL mode, so the
CLI can write while proxy replicas on the same machine read. Hits are cached
in memory: a contract for a given hash never changes unless rewritten with
`put`, which also updates this process's cache.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tokenomy.codify.contracts import Contract

_SCHEMA = """
CREATE TABLE IF NOT EXISTS contracts (
    hash TEXT PRIMARY KEY,
    prompt TEXT NOT NULL,
    contract TEXT NOT NULL,
    source TEXT NOT NULL,
    model TEXT,
    tokens_before INTEGER NOT NULL,
    tokens_after INTEGER NOT NULL,
    created_at REAL NOT NULL
)
"""


@dataclass
class StoredContract:
    hash: str
    prompt: str
    contract: str
    source: str
    model: str | None
    tokens_before: int
    tokens_after: int
    created_at: float


class ContractStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._cache: dict[str, StoredContract] = {}
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def put(self, contract: Contract, model: str | None = None) -> StoredContract:
        row = StoredContract(contract.hash, contract.prompt, contract.text, contract.source,
                             model, contract.tokens_before, contract.tokens_after, time.time())
        with self._lock, self._connect() as db:
            db.execute("INSERT OR REPLACE INTO contracts VALUES (?,?,?,?,?,?,?,?)",
                       (row.hash, row.prompt, row.contract, row.source, row.model,
                        row.tokens_before, row.tokens_after, row.created_at))
            self._cache[row.hash] = row
        return row

    def get(self, hash: str) -> StoredContract | None:
        hit = self._cache.get(hash)
        if hit is not None:
            return hit
        with self._connect() as db:
            found = db.execute("SELECT * FROM contracts WHERE hash = ?", (hash,)).fetchone()
        if found is None:
            return None
        row = StoredContract(*found)
        with self._lock:
            self._cache[hash] = row
        return row

    def all(self) -> list[StoredContract]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM contracts ORDER BY created_at").fetchall()
        return [StoredContract(*r) for r in rows]

    def delete(self, hash: str) -> bool:
        with self._lock, self._connect() as db:
            self._cache.pop(hash, None)
            return db.execute("DELETE FROM contracts WHERE hash = ?", (hash,)).rowcount > 0
