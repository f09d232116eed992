"""The ledger's tables (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Money is stored as float USD (sums of per-token prices, never used for
accounting beyond reporting and budget checks); tokens as integers; times as
epoch seconds (float) plus a UTC `day` column so reports group by day in plain
SQL on both databases.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
    true,
)

metadata = MetaData()

schema_version = Table(
    "tk_schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_at", Float, nullable=False),
)

# One row per request, whatever happened to it.
requests = Table(
    "tk_requests",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("request_id", String(64), nullable=False, unique=True),
    Column("ts", Float, nullable=False),
    Column("day", String(10), nullable=False),
    Column("team", String(128), nullable=False),
    Column("key_id", String(64)),
    Column("user", String(256)),
    Column("step", String(256)),
    Column("model", String(256)),
    Column("upstream_model", String(256)),
    Column("backend", String(128)),
    Column("prompt_tokens_original", Integer, nullable=False, default=0),
    Column("prompt_tokens", Integer, nullable=False, default=0),
    Column("completion_tokens", Integer, nullable=False, default=0),
    Column("reasoning_tokens", Integer, nullable=False, default=0),
    Column("cached_tokens", Integer, nullable=False, default=0),  # cache reads
    Column("total_tokens", Integer, nullable=False, default=0),
    Column("cost_usd", Float, nullable=False, default=0.0),
    Column("saved_tokens", Integer, nullable=False, default=0),
    Column("saved_usd", Float, nullable=False, default=0.0),
    Column("mode", String(64)),
    Column("latency_ms", Float, nullable=False, default=0.0),
    Column("status", Integer, nullable=False),
    Column("outcome", String(16), nullable=False),  # ok|error|refused|cancelled|abandoned
    Column("error", Text),
    Column("stream", Boolean, nullable=False, default=False),
    Column("tags", Text),  # JSON object
    # Added by migration 2 (see migrations.py): the other input buckets, whether
    # usage was estimated, and whether a settle (not reconciliation) wrote the row.
    Column("uncached_tokens", Integer, nullable=False, default=0, server_default="0"),
    Column("cache_write_tokens", Integer, nullable=False, default=0, server_default="0"),
    Column("cache_write_1h_tokens", Integer, nullable=False, default=0, server_default="0"),
    Column("estimated", Boolean, nullable=False, default=False, server_default=false()),
    Column("settled", Boolean, nullable=False, default=True, server_default=true()),
    # Added by migration 3: answered by the response cache (no upstream call), and
    # what each stage did (JSON list of events: stage, technique, tokens, ms, detail).
    Column("from_cache", Boolean, nullable=False, default=False, server_default=false()),
    Column("events", Text),
    # Added by migration 4: "alias that failed -> alias that answered".
    Column("fallback", String(256)),
    Index("tk_requests_team_ts", "team", "ts"),
    Index("tk_requests_ts", "ts"),
    Index("tk_requests_key_ts", "key_id", "ts"),
)

# Tokens and dollars saved per technique, per request (from the call's events).
savings = Table(
    "tk_savings",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("technique", String(64), primary_key=True),
    Column("ts", Float, nullable=False),
    Column("team", String(128), nullable=False),
    Column("tokens_saved", Integer, nullable=False),
    Column("usd_saved", Float, nullable=False),
    Index("tk_savings_team_ts", "team", "ts"),
)

# The running total of one budget scope in one window: the row that reservations
# lock (a conditional UPDATE), so the check and the reservation are one statement.
budget_usage = Table(
    "tk_budget_usage",
    metadata,
    Column("scope", String(8), primary_key=True),  # team|key
    Column("scope_id", String(128), primary_key=True),
    Column("window_start", BigInteger, primary_key=True),
    Column("window_end", BigInteger, nullable=False),
    Column("spent_tokens", BigInteger, nullable=False, default=0),
    Column("reserved_tokens", BigInteger, nullable=False, default=0),
    Column("spent_usd", Float, nullable=False, default=0.0),
    Column("reserved_usd", Float, nullable=False, default=0.0),
)

reservations = Table(
    "tk_reservations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("request_id", String(64), nullable=False),
    Column("owner", String(128), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("tokens", BigInteger, nullable=False),
    Column("usd", Float, nullable=False),
    Column("scopes", Text, nullable=False),  # JSON [[scope, scope_id, window_start], ...]
    Column("row", Text, nullable=False),  # JSON: the request row to write if abandoned
    Index("tk_reservations_owner", "owner"),
    Index("tk_reservations_expires", "expires_at"),
)

# Live proxy processes: a heartbeat lets others reclaim a dead owner's reservations.
owners = Table(
    "tk_owners",
    metadata,
    Column("owner", String(128), primary_key=True),
    Column("host", String(256), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
)

api_keys = Table(
    "tk_api_keys",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("team", String(128), nullable=False),
    Column("name", String(256)),
    Column("hash", String(128), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
    Column("budget_tokens", BigInteger),
    Column("budget_usd", Float),
    Column("budget_window", String(8)),
    Column("soft_limit", Float),
    Column("soft_action", String(16)),
    Index("tk_api_keys_team", "team"),
)

# The exact response cache (migration 3): one answer per key (a hash of the team,
# the protocol, the backend and the body exactly as the backend would receive it).
response_cache = Table(
    "tk_response_cache",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("team", String(128), nullable=False),
    Column("protocol", String(64), nullable=False),
    Column("stream", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("size", Integer, nullable=False),
    Column("value", Text, nullable=False),  # JSON: the answer, its usage, how it was made
    Index("tk_response_cache_created", "created_at"),
    Index("tk_response_cache_expires", "expires_at"),
)

# Values every replica must share (migration 3), e.g. the dashboard's session secret.
secrets = Table(
    "tk_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)
