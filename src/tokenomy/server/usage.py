"""HTTP routes the proxy mounts: `GET /v1/tokenomy/usage` (JSON) and `GET /dashboard`.

Who may read: the admin key (`server.admin_key`) reads every team; a team's
virtual key reads only its own team. In dev mode (no admin key and no virtual
keys) both are open, like the proxy itself. Browsers can pass the key as
`?key=...` on the dashboard, since they cannot set an Authorization header
on a plain link.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import distinct, select

from tokenomy.budgets import schema
from tokenomy.budgets.html import Filters, render_html
from tokenomy.budgets.report import GROUP_BYS, ReportQuery, aggregate, parse_when
from tokenomy.budgets.service import Budgets
from tokenomy.errors import BadRequest, Forbidden, TokenomyError, Unauthorized

if TYPE_CHECKING:
    from tokenomy.engine import Engine


def budgets_of(engine: Engine) -> Budgets | None:
    stage = engine.pipeline.stage("budget")
    return getattr(stage, "budgets", None)


def _token(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return request.headers.get("x-api-key") or request.query_params.get("key") or None


def _reader_team(budgets: Budgets, admin_key: str | None, token: str | None) -> str | None:
    """None for a reader who may see every team; else the only team they may see."""
    if token and admin_key and hmac.compare_digest(token.encode(), admin_key.encode()):
        return None
    if token:
        info = budgets.keys.verify(token)
        if info is None:
            raise Unauthorized("Invalid or revoked API key.")
        return info.team
    if admin_key is None and not budgets.keys.auth_enabled():
        return None  # dev mode: nothing is secret yet
    raise Unauthorized(
        "The usage API needs the admin key (server.admin_key) or a team's API key: "
        "send 'Authorization: Bearer <key>'."
    )


def _query(params: Any, reader_team: str | None) -> ReportQuery:
    team = params.get("team") or None
    if reader_team is not None:
        if team is not None and team != reader_team:
            raise Forbidden(
                f"This key belongs to team '{reader_team}' and cannot read team '{team}'."
            )
        team = reader_team
    group_by = params.get("group_by") or "day"
    if group_by not in GROUP_BYS:
        raise BadRequest(
            f"group_by must be one of {', '.join(GROUP_BYS)}, not {group_by!r}", param="group_by"
        )
    return ReportQuery(
        team=team,
        key_id=params.get("key_id") or None,
        since=parse_when(params.get("since")),
        until=parse_when(params.get("until"), end=True),
        group_by=group_by,
    )


def _known_teams(budgets: Budgets) -> list[str]:
    with budgets.ledger.reader.connect() as conn:
        seen = set(conn.execute(select(distinct(schema.requests.c.team))).scalars())
    return sorted(seen | set(budgets.config.teams))


def usage_router(engine: Engine) -> APIRouter:
    router = APIRouter()
    admin_key = engine.settings.server.admin_key

    def _error(exc: TokenomyError) -> Response:
        from tokenomy.server.app import error_response

        return error_response(exc)

    @router.get("/v1/tokenomy/usage", summary="Usage, cost, savings and budgets as JSON")
    async def usage(request: Request) -> Response:
        budgets = budgets_of(engine)
        if budgets is None:
            return _error(TokenomyError("the ledger is not enabled in this engine", status=503))
        try:
            team = await budgets.ledger.run(_reader_team, budgets, admin_key, _token(request))
            query = _query(request.query_params, team)
        except TokenomyError as exc:
            return _error(exc)
        report = await asyncio.to_thread(aggregate, budgets, query)
        return Response(report.model_dump_json(), media_type="application/json")

    @router.get("/dashboard", response_class=HTMLResponse, summary="Usage dashboard (HTML)")
    async def dashboard(request: Request) -> Response:
        budgets = budgets_of(engine)
        if budgets is None:
            return _error(TokenomyError("the ledger is not enabled in this engine", status=503))
        params = request.query_params
        try:
            team = await budgets.ledger.run(_reader_team, budgets, admin_key, _token(request))
            query = _query(params, team)
        except TokenomyError as exc:
            return _error(exc)
        report = await asyncio.to_thread(aggregate, budgets, query)
        teams = [team] if team is not None else await asyncio.to_thread(_known_teams, budgets)
        filters = Filters(
            team=query.team or "",
            since=params.get("since") or "",
            group_by=query.group_by,
            teams=teams,
            key=params.get("key") or "",
        )
        page = render_html(report, title="tokenomy dashboard", filters=filters)
        # The page embeds nothing from elsewhere: say so to the browser.
        headers = {
            "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; "
            "img-src data:; form-action 'self'",
            "cache-control": "no-store",
        }
        return HTMLResponse(page, headers=headers)

    return router
