"""The dashboard (DESIGN §1): server-rendered HTML pages with inline SVG charts; no JavaScript, no CDN.

Login is an API token: `POST /login` checks it and opens a server-side session (app.sessions) whose random id
goes in the HttpOnly cookie `tokentrail_session`, so a browser sees exactly what the token may read (its owner's
repositories) without ever holding the token. Signing in and out are POSTs accepted only from the server's own
origin (app.origin). In demo mode (`TOKENTRAIL_DEMO_MODE`) the pages open without login on the demo owner.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.analytics import build_analytics
from app.books import has_pulls, is_known_repo
from app.cache_books import MEDIAN_DAYS, pull_low_cache_sessions
from app.cache_savings import FAR_BELOW, MIN_SESSION_INPUT
from app.csv_report import csv_export
from app.db import session_scope, utcnow, write_lock
from app.deps import PullNumber, SessionDep, SessionFactoryDep, SettingsDep, Since, Until, csv_response, read_body
from app.facts import PullNotFound, gather_facts, published
from app.origin import is_same_origin
from app.outcome_report import Analytics, Scope
from app.outcome_sections import outcome_context
from app.pages import overview_charts, period_inputs, render_page, review_loops_chart, timeline_chart
from app.people_view import visible_report
from app.periods import BadPeriod
from app.report import build_report
from app.sessions import LIFETIME, end_session, owner_of_session, start_session
from app.settings import Settings
from app.tokens import TokenInfo, find_token, record_use

router = APIRouter(tags=["dashboard"], include_in_schema=False)
COOKIE = "tokentrail_session"
MAX_FORM_BYTES = 4096
Name = Annotated[str, Path(max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]


def viewer_of(request: Request, session: SessionDep, settings: Settings) -> str | None:
    """The owner whose pages this browser may see: its session's owner; in demo mode, the demo owner."""
    session_id = request.cookies.get(COOKIE)
    owner = owner_of_session(session, session_id) if session_id else None
    if owner is None and settings.demo_mode:
        return settings.demo_owner
    return owner


def _signed_in(request: Request, session: SessionDep, settings: Settings) -> bool:
    """Whether "Sign out" would end something: in demo mode the pages open without a session, and signing out of
    none would land on the same pages again, so the button only shows for a real session."""
    if not settings.demo_mode:
        return True
    session_id = request.cookies.get(COOKIE)
    return session_id is not None and owner_of_session(session, session_id) is not None


def _html(template: str, *, status: int = 200, **context: object) -> HTMLResponse:
    return HTMLResponse(render_page(template, **context), status_code=status)


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _gate(request: Request, session: SessionDep, settings: Settings, owner: str) -> tuple[str | None, Response | None]:
    """(viewer, None) when the viewer may see `owner`'s pages; otherwise a redirect to the login or a 403 page."""
    viewer = viewer_of(request, session, settings)
    if viewer is None:
        return None, _redirect("/")
    if viewer != owner.lower():
        page = _html(
            "error.html.j2",
            status=403,
            viewer=viewer,
            demo=settings.demo_mode,
            title="Not your organisation",
            message=f"You are signed in for {viewer}; the pages of {owner.lower()} need a token of {owner.lower()}.",
        )
        return viewer, page
    return viewer, None


def _not_found(viewer: str | None, settings: Settings, message: str) -> HTMLResponse:
    return _html(
        "error.html.j2", status=404, viewer=viewer, demo=settings.demo_mode, title="Not found", message=message
    )


def malformed_url_page(request: Request, places: list[str]) -> HTMLResponse:
    """A dashboard URL FastAPI could not read (`/pulls/abc`, a 500-character `since`): the page a browser can show,
    not the API's JSON. `places` are where the errors are ("path", "query"). The viewer is not looked up (no
    database read for a URL that names nothing), so the page offers the way home."""
    settings: Settings = request.app.state.settings
    if "path" in places:
        title, status = "Not found", 404
        message = f"{request.url.path} names no page: owners and repositories are GitHub names, pull requests numbers."
    else:
        title, status = "Bad request", 422
        message = "A value of this address's query cannot be read: dates are YYYY-MM-DD."
    return _html("error.html.j2", status=status, viewer=None, demo=settings.demo_mode, title=title, message=message)


def _secure(settings: Settings) -> bool:
    return str(settings.public_url).startswith("https://")


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    viewer = viewer_of(request, session, settings)
    if viewer is not None:
        return _redirect(f"/dashboard/{quote(viewer)}")
    return _html("login.html.j2", viewer=None, demo=False, error=None)


def _require_same_origin(request: Request, settings: Settings, *, action: str) -> None:
    own = (str(settings.public_url), str(request.base_url))
    if not is_same_origin(origin=request.headers.get("origin"), referer=request.headers.get("referer"), own=own):
        raise HTTPException(
            status_code=403,
            detail=f"{action} refused: the request's Origin (or Referer) is not this server's own origin",
        )


def _sign_in(factory: SessionFactoryDep, token: str) -> tuple[TokenInfo | None, str | None]:
    """(the token, a new session id), or (None or the revoked token, None) when it may not sign in."""
    with factory() as session:
        found = find_token(session, token) if token else None
    if found is None or found.is_revoked:
        return found, None
    with write_lock(factory), session_scope(factory) as session:
        record_use(session, token_id=found.id)
        return found, start_session(session, token_id=found.id)


def _sign_out(factory: SessionFactoryDep, session_id: str) -> None:
    with write_lock(factory), session_scope(factory) as session:
        end_session(session, session_id)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, factory: SessionFactoryDep, settings: SettingsDep) -> Response:
    _require_same_origin(request, settings, action="sign-in")
    body = await read_body(request, limit=MAX_FORM_BYTES)
    fields = parse_qs(body.decode("utf-8", "replace"))
    token = (fields.get("token") or [""])[0].strip()
    found, session_id = await run_in_threadpool(_sign_in, factory, token)
    if session_id is None or found is None:
        error = "That token is not valid. Create one with `tokentrail token create --owner LOGIN`."
        if found is not None:
            error = "That token was revoked. Create a new one with `tokentrail token create --owner LOGIN`."
        return _html("login.html.j2", status=401, viewer=None, demo=False, error=error)
    previous = request.cookies.get(COOKIE)
    if previous:  # a browser signing in again leaves no session of its own behind
        await run_in_threadpool(_sign_out, factory, previous)
    response = _redirect(f"/dashboard/{quote(found.owner)}")
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=int(LIFETIME.total_seconds()),
        path="/",
        secure=_secure(settings),
        httponly=True,
        samesite="lax",
    )
    return response


@router.post("/logout")
async def logout(request: Request, factory: SessionFactoryDep, settings: SettingsDep) -> Response:
    _require_same_origin(request, settings, action="sign-out")
    session_id = request.cookies.get(COOKIE)
    if session_id:
        await run_in_threadpool(_sign_out, factory, session_id)
    response = _redirect("/")
    response.delete_cookie(COOKIE, path="/", secure=_secure(settings), httponly=True, samesite="lax")
    return response


def _overview(
    request: Request, session: SessionDep, settings: Settings, *, scope: Scope, since: str | None, until: str | None
) -> Response:
    viewer, denied = _gate(request, session, settings, scope.owner)
    if denied is not None:
        return denied
    if scope.repo is not None and not is_known_repo(session, scope.repo):
        return _not_found(viewer, settings, f"No repository {scope.repo} is known to Tokentrail.")
    try:
        analytics: Analytics = build_analytics(session, scope=scope, since=since, until=until, now=utcnow())
    except BadPeriod as error:
        return _html(
            "error.html.j2", status=422, viewer=viewer, demo=settings.demo_mode, title="Bad period", message=str(error)
        )
    since_value, until_value = period_inputs(analytics.period)
    outcomes = outcome_context(session, analytics, default=settings.dashboard_people)
    analytics = outcomes.pop("analytics")  # without people under dashboard.people: aggregate
    # A repository's page draws its weekly trend of review rounds; an owner's lists its repositories' in the table.
    loops = outcomes["loops"] if scope.repo is not None else ()
    return _html(
        "owner.html.j2" if scope.repo is None else "repo.html.j2",
        viewer=viewer,
        demo=settings.demo_mode,
        signed_in=_signed_in(request, session, settings),
        a=analytics,
        charts=overview_charts(analytics),
        loops_chart=review_loops_chart(loops[0], analytics.period) if loops else None,
        **outcomes,
        since=since_value,
        until=until_value,
        # No PR known yet: PRs arrive through GitHub's webhooks, so say how to connect GitHub.
        connect=None
        if has_pulls(session, Scope(owner=scope.owner))
        else ("install" if settings.has_app_credentials else "setup"),
    )


@router.get("/dashboard/{owner}", response_class=HTMLResponse)
def owner_page(
    owner: Name, request: Request, session: SessionDep, settings: SettingsDep, since: Since = None, until: Until = None
) -> Response:
    scope = Scope(owner=owner.lower())
    return _overview(request, session, settings, scope=scope, since=since, until=until)


@router.get("/dashboard/{owner}/{repo}", response_class=HTMLResponse)
def repo_page(
    owner: Name,
    repo: Name,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    since: Since = None,
    until: Until = None,
) -> Response:
    scope = Scope(owner=owner.lower(), repo=f"{owner.lower()}/{repo.lower()}")
    return _overview(request, session, settings, scope=scope, since=since, until=until)


@router.get("/dashboard/{owner}/{repo}/pulls/{number}", response_class=HTMLResponse)
def pull_page(
    owner: Name, repo: Name, number: PullNumber, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    viewer, denied = _gate(request, session, settings, owner)
    if denied is not None:
        return denied
    full_name = f"{owner.lower()}/{repo.lower()}"
    try:
        facts = gather_facts(session, repo=full_name, number=number, public_url=str(settings.public_url))
    except PullNotFound:
        return _not_found(viewer, settings, f"No pull request {full_name}#{number} is known to Tokentrail.")
    report = visible_report(build_report(facts), settings.dashboard_people)
    last = published(session, repo=full_name, number=number)
    return _html(
        "pull.html.j2",
        viewer=viewer,
        demo=settings.demo_mode,
        signed_in=_signed_in(request, session, settings),
        r=report,
        timeline=timeline_chart(report),
        low_cache=pull_low_cache_sessions(session, repo=full_name, number=number),
        min_input=MIN_SESSION_INPUT,
        far_below=FAR_BELOW,
        median_days=MEDIAN_DAYS,
        last=last,
        dry_run=settings.is_dry_run,
    )


@router.get("/repos/{owner}/{repo}/pulls/{number}")
def pull_details(owner: Name, repo: Name, number: int) -> Response:
    """The "details" link of every comment (`report.details_url`) leads to the PR's dashboard page."""
    return RedirectResponse(f"/dashboard/{quote(owner)}/{quote(repo)}/pulls/{number}", status_code=307)


def _export(
    request: Request, session: SessionDep, settings: Settings, *, scope: Scope, since: str | None, until: str | None,
    kind: str,
) -> Response:  # fmt: skip
    """A CSV download for a signed-in browser (the same file as `GET …/report.csv` with a token)."""
    viewer, denied = _gate(request, session, settings, scope.owner)
    if denied is not None:
        return denied
    try:
        name, text = csv_export(
            session, scope=scope, since=since, until=until, kind=kind, people=settings.dashboard_people
        )
    except BadPeriod as error:
        return _html(
            "error.html.j2", status=422, viewer=viewer, demo=settings.demo_mode, title="Bad period", message=str(error)
        )
    return csv_response(name, text)


ExportKind = Annotated[Literal["pulls", "monthly"], Query()]


@router.get("/exports/{owner}/report.csv")
def owner_export(
    owner: Name, request: Request, session: SessionDep, settings: SettingsDep, since: Since = None,
    until: Until = None, kind: ExportKind = "pulls",
) -> Response:  # fmt: skip
    scope = Scope(owner=owner.lower())
    return _export(request, session, settings, scope=scope, since=since, until=until, kind=kind)


@router.get("/exports/{owner}/{repo}/report.csv")
def repo_export(
    owner: Name, repo: Name, request: Request, session: SessionDep, settings: SettingsDep, since: Since = None,
    until: Until = None, kind: ExportKind = "pulls",
) -> Response:  # fmt: skip
    scope = Scope(owner=owner.lower(), repo=f"{owner.lower()}/{repo.lower()}")
    return _export(request, session, settings, scope=scope, since=since, until=until, kind=kind)
