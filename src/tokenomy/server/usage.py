"""`GET /v1/tokenomy/usage` (JSON), and the reader rules the dashboard shares.

Who may read: the admin key (`server.admin_key`) reads every team; a team's
virtual key reads only its own team. In dev mode (no admin key and no virtual
keys) both are open, like the proxy itself. The key travels in a header
(`Authorization: Bearer` or `x-api-key`), never in the URL: URLs end up in
logs, histories and Referer headers.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tokenomy.budgets.report import GROUP_BYS, STATUSES, ReportQuery, aggregate, parse_when
from tokenomy.budgets.service import Budgets
from tokenomy.errors import BadRequest, Forbidden, TokenomyError, Unauthorized
from tokenomy.identify import api_key_from_headers

if TYPE_CHECKING:
    from tokenomy.engine import Engine


def budgets_of(engine: Engine) -> Budgets | None:
    stage = engine.pipeline.stage("budget")
    found = getattr(stage, "budgets", None)
    return found if isinstance(found, Budgets) else None


def token_of(request: Request) -> str | None:
    return api_key_from_headers(request.headers)


def is_admin(admin_key: str | None, token: str) -> bool:
    return bool(admin_key) and hmac.compare_digest(token.encode(), str(admin_key).encode())


def reader_team(budgets: Budgets, admin_key: str | None, token: str | None) -> str | None:
    """None for a reader who may see every team; else the only team they may see."""
    if token and is_admin(admin_key, token):
        return None
    if token:
        info = budgets.keys.verify(token)
        if info is None:
            raise Unauthorized("Invalid or revoked API key.")
        return info.team
    if open_to_all(budgets, admin_key):
        return None  # dev mode: nothing is secret yet
    raise Unauthorized(
        "The usage API needs the admin key (server.admin_key) or a team's API key: "
        "send 'Authorization: Bearer <key>'."
    )


def open_to_all(budgets: Budgets, admin_key: str | None) -> bool:
    """Dev mode: no admin key and no API keys, so there is nothing to sign in with."""
    return admin_key is None and not budgets.keys.auth_enabled()


def report_query(params: Any, reader: str | None) -> ReportQuery:
    """The selection in a request's query parameters, walled to the reader's team."""
    team = params.get("team") or None
    if reader is not None:
        if team is not None and team != reader:
            raise Forbidden(f"This key belongs to team '{reader}' and cannot read team '{team}'.")
        team = reader
    group_by = params.get("group_by") or "day"
    if group_by not in GROUP_BYS:
        raise BadRequest(
            f"group_by must be one of {', '.join(GROUP_BYS)}, not {group_by!r}", param="group_by"
        )
    status = params.get("status") or None
    if status is not None and status not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)}, not {status!r}",
                         param="status")
    return ReportQuery(
        team=team,
        key_id=params.get("key_id") or None,
        model=params.get("model") or None,
        step=params.get("step") or None,
        status=status,
        since=parse_when(params.get("since")),
        until=parse_when(params.get("until"), end=True),
        group_by=group_by,
    )


def error_of(exc: TokenomyError) -> Response:
    from tokenomy.server.app import error_response

    return error_response(exc)


def usage_router(engine: Engine) -> APIRouter:
    router = APIRouter()
    admin_key = engine.settings.server.admin_key

    @router.get("/v1/tokenomy/usage", summary="Usage, cost, savings and budgets as JSON")
    async def usage(request: Request) -> Response:
        budgets = budgets_of(engine)
        if budgets is None:
            return error_of(TokenomyError("the ledger is not enabled in this engine", status=503))
        try:
            team = await budgets.ledger.run(reader_team, budgets, admin_key, token_of(request))
            query = report_query(request.query_params, team)
        except TokenomyError as exc:
            return error_of(exc)
        report = await asyncio.to_thread(aggregate, budgets, query)
        return Response(report.model_dump_json(), media_type="application/json")

    return router
