"""Prometheus metrics: what the requests of this process did, counted from their records.

Series (counters end in `_total` on the wire):

    tokenomy_requests_total{route,team,model,status}
    tokenomy_request_duration_seconds{route,model}          histogram, arrival to end
    tokenomy_upstream_duration_seconds{backend,model}       histogram, waiting on the backend
    tokenomy_added_duration_seconds{route}                  histogram, tokenomy's own share
    tokenomy_tokens_total{team,model,bucket}                original|sent|input|cache_read|
                                                            cache_write|output|reasoning
    tokenomy_cost_usd_total{team,model}
    tokenomy_saved_tokens_total{team,technique}
    tokenomy_saved_usd_total{team,technique}
    tokenomy_cache_write_premium_usd_total{team}            what cache writes cost over input
    tokenomy_budget_refusals_total{team}
    tokenomy_fallbacks_total{fallback}
    tokenomy_upstream_errors_total{backend,status}          the backend's own status
    tokenomy_compression_duration_seconds{technique}        histogram
    tokenomy_ledger_settle_failures_total{reason}           spooled|rejected|failed
    tokenomy_ledger_reservations_in_flight                  sampled from the ledger at scrape
    tokenomy_ledger_spool_depth                             sampled at scrape
    tokenomy_ledger_up                                      1 when the scrape reached the ledger

Several workers (`tokenomy serve --workers N`): the serve command gives each
start a fresh `PROMETHEUS_MULTIPROC_DIR` before any worker imports
prometheus_client, every worker writes its own files there, and a scrape (in
whichever worker answers) sums them with `MultiProcessCollector`.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from tokenomy.observe.record import CallRecord

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNKNOWN = "-"
LABEL_CHARS = 64

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
            300.0)
_ADDED = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
          2.5, 5.0)
BUCKETS = ("original", "sent", "input", "cache_read", "cache_write", "output", "reasoning")


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


MAX_VALUES = 200  # distinct values per client-chosen label before the rest count as "other"
OTHER = "other"


def _label(value: str | None) -> str:
    if not value:
        return UNKNOWN
    return value if len(value) <= LABEL_CHARS else value[: LABEL_CHARS - 1] + "…"


class _Bounded:
    """A label whose values a client can choose (a model name a default backend routes, a
    team in dev mode): the first MAX_VALUES seen are kept, the rest are "other", so a
    scrape never grows without bound."""

    __slots__ = ("seen",)

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(self, value: str | None) -> str:
        label = _label(value)
        if label in self.seen:
            return label
        if len(self.seen) >= MAX_VALUES:
            return OTHER
        self.seen.add(label)
        return label


class _Family:
    """A labelled metric with its children cached by label values (the hot path skips
    prometheus_client's label validation and lock after the first request)."""

    __slots__ = ("children", "metric")

    def __init__(self, metric: Any):
        self.metric = metric
        self.children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self.children.get(values)
        if child is None:
            child = self.children[values] = self.metric.labels(*values)
        return child


class _Series(NamedTuple):
    team: str
    requests: Any
    latency: Any
    added: Any
    upstream: Any
    tokens: tuple[Any, ...]
    cost: Any


class Metrics:
    """The metric objects of this process (one instance: see `process_metrics`)."""

    name = "metrics"

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

        disable_created_metrics()  # the *_created series only double a scrape's size

        self.requests = _Family(Counter(
            "tokenomy_requests", "Requests by route, team, model alias and HTTP status.",
            ["route", "team", "model", "status"]))
        self.latency = _Family(Histogram(
            "tokenomy_request_duration_seconds",
            "Time from a request's arrival to its end (a stream: its last chunk).",
            ["route", "model"], buckets=_SECONDS))
        self.upstream = _Family(Histogram(
            "tokenomy_upstream_duration_seconds",
            "Time spent waiting on the backend (every attempt; a stream until its end).",
            ["backend", "model"], buckets=_SECONDS))
        self.added = _Family(Histogram(
            "tokenomy_added_duration_seconds",
            "Latency tokenomy added: the request's time minus the backend's.",
            ["route"], buckets=_ADDED))
        self.tokens = _Family(Counter(
            "tokenomy_tokens", "Tokens by bucket: the prompt as sent by the client (original) "
            "and to the backend (sent); what the backend billed (input = uncached + cache_read "
            "+ cache_write; output includes reasoning).", ["team", "model", "bucket"]))
        self.cost = _Family(Counter(
            "tokenomy_cost_usd", "Dollars spent at the ledger's prices.", ["team", "model"]))
        self.saved_tokens = _Family(Counter(
            "tokenomy_saved_tokens", "Prompt tokens saved, by technique.", ["team", "technique"]))
        self.saved_usd = _Family(Counter(
            "tokenomy_saved_usd", "Dollars saved, by technique (cache: what cache reads saved).",
            ["team", "technique"]))
        self.cache_premium = _Family(Counter(
            "tokenomy_cache_write_premium_usd",
            "Dollars cache writes cost over the input price (later reads repay them).", ["team"]))
        self.refusals = _Family(Counter(
            "tokenomy_budget_refusals", "Requests refused by a hard budget limit.", ["team"]))
        self.fallbacks = _Family(Counter(
            "tokenomy_fallbacks", "Requests answered by a fallback alias.", ["fallback"]))
        self.upstream_errors = _Family(Counter(
            "tokenomy_upstream_errors", "Backend failures by the backend's own HTTP status.",
            ["backend", "status"]))
        self.compression = _Family(Histogram(
            "tokenomy_compression_duration_seconds", "Time spent rewriting prompts, by technique.",
            ["technique"], buckets=_ADDED))
        self.settle_failures = _Family(Counter(
            "tokenomy_ledger_settle_failures",
            "Settles that did not land at once: spooled (database down, replayed later), "
            "rejected (kept in the spool's reject file) or failed.", ["reason"]))
        self.reservations = Gauge(
            "tokenomy_ledger_reservations_in_flight",
            "Budget reservations held in the ledger right now (all replicas).",
            multiprocess_mode="mostrecent")
        self.spool_depth = Gauge(
            "tokenomy_ledger_spool_depth", "Settles waiting in the local spool for the database.",
            multiprocess_mode="mostrecent")
        self._team, self._model = _Bounded(), _Bounded()
        self._by_key: dict[tuple[Any, ...], _Series] = {}
        self.ledger_up = Gauge(
            "tokenomy_ledger_up", "1 when the last scrape reached the ledger database.",
            multiprocess_mode="mostrecent")

    def _series(self, r: CallRecord) -> _Series:
        """The children one kind of request updates, found once per label combination."""
        key = (r.route, r.team, r.model, r.status, r.backend, r.upstream_model)
        found = self._by_key.get(key)
        if found is None:
            team = self._team(r.team)
            model = self._model(r.model) if r.backend else UNKNOWN  # unrouted: the client's
            route = r.route
            found = self._by_key[key] = _Series(
                team,
                self.requests(route, team, model, str(r.status)),
                self.latency(route, model),
                self.added(route),
                self.upstream(r.backend, _label(r.upstream_model)) if r.backend else None,
                tuple(self.tokens(team, model, bucket) for bucket in BUCKETS),
                self.cost(team, model),
            )
        return found

    def finish(self, r: CallRecord, state: Any) -> None:
        series = self._series(r)
        team = series.team
        series.requests.inc()
        series.latency.observe(r.latency_ms / 1000)
        series.added.observe(r.added_ms / 1000)
        if series.upstream is not None and r.upstream_ms:
            series.upstream.observe(r.upstream_ms / 1000)
        counts = (r.tokens_original, r.tokens_sent, r.tokens_input, r.tokens_cache_read,
                  r.tokens_cache_write, r.tokens_output, r.tokens_reasoning)
        for child, count in zip(series.tokens, counts, strict=True):
            if count:
                child.inc(count)
        if r.cost_usd:
            series.cost.inc(r.cost_usd)
        for technique, saved in r.savings.items():
            self.saved_tokens(team, _label(technique)).inc(saved)
        for technique, usd in r.savings_usd.items():
            if usd > 0:
                self.saved_usd(team, _label(technique)).inc(usd)
            elif usd < 0:
                self.cache_premium(team).inc(-usd)
        if r.outcome == "refused":
            self.refusals(team).inc()
        if r.fallback:
            self.fallbacks(_label(r.fallback)).inc()
        if r.upstream_status:
            self.upstream_errors(_label(r.backend), str(r.upstream_status)).inc()
        for technique, ms in r.stage_ms.items():
            self.compression(_label(technique)).observe(ms / 1000)
        if r.settle in ("spooled", "rejected", "failed"):
            self.settle_failures(r.settle).inc()

    def sample_ledger(self, reservations: int | None, spool: int | None) -> None:
        """The ledger's gauges, read at scrape time (None: the database did not answer)."""
        self.ledger_up.set(0 if reservations is None else 1)
        if reservations is not None:
            self.reservations.set(reservations)
        if spool is not None:
            self.spool_depth.set(spool)


_metrics: Metrics | None = None


def process_metrics() -> Metrics:
    """The one `Metrics` of this process: metric names register once per registry, and
    every engine in a process (tests build several) counts into the same series."""
    global _metrics
    if _metrics is None:
        _metrics = Metrics()
    return _metrics


def exposition() -> tuple[bytes, str]:
    """This process's metrics (all workers' under --workers) in Prometheus text format."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    if multiprocess():
        from prometheus_client import multiprocess as mp

        registry = CollectorRegistry()
        mp.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
