"""`/dashboard`: the usage dashboard, its login form, and one request's view.

The key is typed once into the login form (POST, never a URL); the browser
then holds a signed session cookie (see session.py) and every link carries
only filters. Pages are self-contained (inline CSS and SVG, no script) and
sent with a strict CSP, `Referrer-Policy: no-referrer` and `no-store`. Scripts
may still send the key in a header (`Authorization: Bearer`), like the usage
API. In dev mode (no admin key, no API keys) the dashboard is open.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import parse_qs, urlparse

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import distinct, select

from tokenomy.budgets import schema
from tokenomy.budgets.buckets import Bucket
from tokenomy.budgets.html import Filters, render_dashboard, render_login, render_request
from tokenomy.budgets.insights import insights, request_detail
from tokenomy.budgets.report import aggregate
from tokenomy.budgets.service import Budgets
from tokenomy.budgets.settings import DashboardSettings
from tokenomy.budgets.shared_secrets import shared_secret
from tokenomy.errors import BadRequest, Forbidden, NotFound, TokenomyError, Unauthorized
from tokenomy.server import session
from tokenomy.server.usage import (
    budgets_of,
    error_of,
    is_admin,
    open_to_all,
    reader_team,
    report_query,
    token_of,
)

if TYPE_CHECKING:
    from tokenomy.engine import Engine

HEADERS = {
    # The page embeds nothing from elsewhere and runs no script: say so to the browser.
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
}
MAX_FORM_BYTES = 8192
SECRET_NAME = "dashboard-session"


class Reader(NamedTuple):
    team: str | None  # None: every team
    label: str  # who, for the page's header
    session: bool  # signed in with the cookie (so there is something to log out of)


def page(html: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return HTMLResponse(html, status_code=status, headers={**HEADERS, **(headers or {})})


def login_page(request: Request, exc: Unauthorized, *, error: str | None = None) -> Response:
    """401: the sign-in form for a browser, the error in the API's JSON shape for anyone
    else (a script, a fuzzer), as every other error of this proxy."""
    if "text/html" in request.headers.get("accept", ""):
        return page(render_login(error=error), 401)
    return error_of(exc)


def _secure(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def _same_origin(request: Request) -> bool:
    """A form post from this site, not another one's (login CSRF).

    Browsers say where a request comes from in `Sec-Fetch-Site`; `Origin` is
    "null" on our own forms (the pages are `Referrer-Policy: no-referrer`), so it
    decides only when it names a real origin. Scripts send neither.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    return urlparse(origin).netloc.lower() == request.headers.get("host", "").lower()


def known_teams(budgets: Budgets) -> list[str]:
    with budgets.ledger.reader.connect() as conn:
        seen = set(conn.execute(select(distinct(schema.requests.c.team))).scalars())
    return sorted(seen | set(budgets.config.teams))


def dashboard_router(engine: Engine) -> APIRouter:
    router = APIRouter()
    admin_key = engine.settings.server.admin_key
    config = engine.settings.section("dashboard", DashboardSettings)
    secrets: list[bytes] = []  # the signing key, fetched once

    def secret(budgets: Budgets) -> bytes:
        if not secrets:
            found = (config.session_secret.encode() if config.session_secret
                     else shared_secret(budgets.ledger.engine, SECRET_NAME))
            secrets.append(found)
        return secrets[0]

    def resolve(budgets: Budgets, token: str | None, cookie: str | None) -> Reader:
        """Who is reading (runs in the ledger's thread: it may query the key store)."""
        if token:
            team = reader_team(budgets, admin_key, token)
            return Reader(team, "admin" if team is None else f"team {team}", False)
        found = session.read(cookie, secret(budgets)) if cookie else None
        if found is not None:
            if (found.sub == "admin" and admin_key
                    and found.fp == session.fingerprint(admin_key)):
                return Reader(None, "admin", True)
            if found.sub == "key" and found.kid:
                info = budgets.keys.active(found.kid)
                if info is not None and info.team == found.team:
                    return Reader(info.team, f"team {info.team} · {info.name or info.key_id}",
                                  True)
        if open_to_all(budgets, admin_key):
            return Reader(None, "dev mode (no keys exist)", False)
        raise Unauthorized("Sign in with the admin key or a team's API key.")

    def login(budgets: Budgets, key: str) -> session.Session:
        """The session a key opens; raises Unauthorized for a wrong or revoked key."""
        expires = time.time() + config.session_hours * 3600
        if admin_key and is_admin(admin_key, key):
            return session.Session(sub="admin", exp=expires, fp=session.fingerprint(admin_key))
        info = budgets.keys.verify(key)
        if info is None:
            raise Unauthorized("That key is not the admin key or an active API key.")
        return session.Session(sub="key", exp=expires, kid=info.key_id, team=info.team)

    async def who(request: Request) -> tuple[Budgets, Reader] | Response:
        budgets = budgets_of(engine)
        if budgets is None:
            return error_of(TokenomyError("the ledger is not enabled in this engine", status=503))
        try:
            reader = await budgets.ledger.run(resolve, budgets, token_of(request),
                                              request.cookies.get(session.COOKIE))
        except Unauthorized as exc:
            return login_page(request, exc)
        except TokenomyError as exc:
            return error_of(exc)
        return budgets, reader

    @router.get("/dashboard", response_class=HTMLResponse, summary="Usage dashboard (HTML)")
    async def dashboard(request: Request) -> Response:
        found = await who(request)
        if isinstance(found, Response):
            return found
        budgets, reader = found
        params = request.query_params
        try:
            query = report_query(params, reader.team)
            number = _page(params.get("page"))
            raw = params.get("bucket") or None
            if raw not in (None, "hour", "day"):
                raise BadRequest("bucket must be hour or day", param="bucket")
            bucket: Bucket | None = "hour" if raw == "hour" else "day" if raw == "day" else None
        except TokenomyError as exc:
            return error_of(exc)
        report = await asyncio.to_thread(aggregate, budgets, query)
        view = await asyncio.to_thread(insights, budgets, query, page=number, bucket=bucket)
        teams = ([reader.team] if reader.team is not None
                 else await asyncio.to_thread(known_teams, budgets))
        filters = Filters(team=query.team or "", since=params.get("since") or "",
                          key_id=query.key_id or "", model=query.model or "",
                          step=query.step or "", status=query.status or "",
                          group_by=query.group_by, bucket=bucket or "", page=number, teams=teams)
        return page(render_dashboard(report, view, filters, reader=reader.label,
                                     can_logout=reader.session))

    @router.get("/dashboard/requests/{request_id}", response_class=HTMLResponse,
                summary="One request: what each stage did")
    async def one_request(request: Request, request_id: str) -> Response:
        found = await who(request)
        if isinstance(found, Response):
            return found
        budgets, reader = found
        detail = await asyncio.to_thread(request_detail, budgets, request_id, reader.team)
        if detail is None:
            return error_of(NotFound(f"no request {request_id!r} that this reader may see"))
        filters = Filters(team=detail.team if reader.team is None else "")
        return page(render_request(detail, filters, reader=reader.label,
                                   can_logout=reader.session))

    @router.get("/dashboard/login", response_class=HTMLResponse, include_in_schema=False)
    async def login_form() -> Response:
        return page(render_login())

    @router.post("/dashboard/login", response_class=HTMLResponse,
                 summary="Sign in to the dashboard (form field `key`); sets a session cookie")
    async def sign_in(request: Request) -> Response:
        budgets = budgets_of(engine)
        if budgets is None:
            return error_of(TokenomyError("the ledger is not enabled in this engine", status=503))
        if not _same_origin(request):
            return error_of(Forbidden("cross-site sign-in refused"))
        raw = await _form(request)
        if isinstance(raw, Response):
            return raw
        key = (raw.get("key") or [""])[0].strip()
        try:
            opened = await budgets.ledger.run(login, budgets, key)
            value = session.sign(opened, await budgets.ledger.run(secret, budgets))
        except Unauthorized as exc:
            return login_page(request, exc, error=exc.message)
        except TokenomyError as exc:
            return error_of(exc)
        cookie = session.set_cookie(value, max_age=int(config.session_hours * 3600),
                                    secure=_secure(request))
        return RedirectResponse("/dashboard", status_code=303,
                                headers={**HEADERS, "set-cookie": cookie})

    @router.post("/dashboard/logout", summary="Sign out of the dashboard")
    async def sign_out(request: Request) -> Response:
        if not _same_origin(request):
            return error_of(Forbidden("cross-site sign-out refused"))
        cookie = session.clear_cookie(secure=_secure(request))
        return RedirectResponse("/dashboard/login", status_code=303,
                                headers={**HEADERS, "set-cookie": cookie})

    return router


async def _form(request: Request) -> dict[str, list[str]] | Response:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_FORM_BYTES):
        return error_of(BadRequest("the sign-in form is too large"))
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return error_of(BadRequest("the sign-in form is too large"))
    try:
        return parse_qs(body.decode("utf-8"), max_num_fields=8)
    except (UnicodeDecodeError, ValueError):
        return error_of(BadRequest("the sign-in form is not valid form data"))


def _page(value: str | None) -> int:
    if not value:
        return 0
    if not value.isdigit() or int(value) > 100_000:
        raise BadRequest("page must be a whole number", param="page")
    return int(value)
