"""`[response_cache]`: the exact response cache, opt-in per team or per request.

```toml
[response_cache]            # the store, for every team
store = "ledger"            # the ledger's database (SQLite/PostgreSQL), or "redis"
max_entries = 10000

[teams.support.response_cache]
enabled = true              # answer this team's temperature-0 requests from the cache
ttl = 600
```

`enabled`, `match` and `ttl` may differ per team (`[teams.NAME.response_cache]`);
the store and its bounds are the process's (`[response_cache]` only).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ResponseCacheSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Answer this team's eligible requests from the cache (a request may opt in
    # with `{"tokenomy": {"cache": true}}` or the x-tokenomy-options header).
    enabled: bool = False
    # Which requests of an enabled team are eligible: "deterministic" (temperature 0,
    # as the wire protocol defines it) or "all". Marked requests always are.
    match: Literal["deterministic", "all"] = "deterministic"
    ttl: float = Field(default=3600.0, gt=0, le=30 * 86400)  # seconds an answer is served
    store: Literal["ledger", "redis"] = "ledger"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = Field(default="tokenomy:response-cache:", min_length=1, max_length=128)
    max_entries: int = Field(default=10_000, ge=1)  # oldest answers go first past this
    max_entry_bytes: int = Field(default=1 << 20, ge=1024)  # larger answers are not kept
