"""`GET /github/setup` (DESIGN §9): create Tokentrail's GitHub App from its manifest, then run as that App.

Without `code`, the page: a form that posts the manifest (app.yml with this server's TOKENTRAIL_PUBLIC_URL) to
GitHub's new-App page, for the personal account or for an organisation. GitHub then sends the browser back here
with `code` and the `state` the form carried; the exchange trades the code for the App's id, private key and
webhook secret, stores them (app.app_credentials) and switches this server to App mode (app.app_mode).

The page needs no login because it only exists before there is an App: once one is configured in the
environment or created here, every request answers 404. The exchange accepts only a state this server issued,
once, within the hour a manifest code lives.

An HTML route: a browser gets its errors as a page, any other client as `{"detail": …}`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from functools import cache
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from app.app_credentials import AppCredentials, app_exists, make_cipher, store_credentials
from app.app_manifest import (
    WEBHOOK_PATH,
    build_manifest,
    install_url,
    is_loopback,
    new_app_url,
    parse_manifest_template,
)
from app.db import ROOT, session_scope, utcnow
from app.deps import SessionFactoryDep, SettingsDep
from app.github import GitHubError, create_app_from_manifest
from app.github_login import LOGIN_RULE, is_github_login
from app.pages import render_page
from app.settings import Settings
from app.setup_states import consume_state, issue_state

router = APIRouter(tags=["github"], include_in_schema=False)
log = logging.getLogger("tokentrail.github_setup")
MANIFEST_TEMPLATE = ROOT / "app.yml"
# GitHub's manifest codes are short hex strings; the code goes into the conversion's URL path, so nothing that
# could change that path (a slash, a dot segment, a query) gets through.
_CODE = re.compile(r"[A-Za-z0-9_-]{1,100}")


class SetupRefused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@cache
def manifest_template() -> dict[str, Any]:
    return parse_manifest_template(MANIFEST_TEMPLATE.read_text())


def _style_sources(html: str) -> str:
    blocks = re.findall(r"<style>(.*?)</style>", html, flags=re.DOTALL)
    return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in blocks)


def _page(html: str, *, status: int = 200, form_target: str = "") -> HTMLResponse:
    # The form posts to GitHub: this page's policy allows exactly that origin besides our own.
    policy = (
        f"default-src 'none'; style-src {_style_sources(html)}; img-src 'self'; "
        f"form-action 'self' {form_target}".rstrip()
        + "; frame-ancestors 'none'; base-uri 'none'"
    )
    headers = {"Content-Security-Policy": policy, "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"}
    return HTMLResponse(html, status_code=status, headers=headers)


def _refusal(request: Request, refused: SetupRefused) -> Response:
    if "text/html" in request.headers.get("accept", ""):
        titles = {404: "Not found", 409: "Already set up", 502: "GitHub did not answer", 503: "Not configured"}
        html = render_page(
            "error.html.j2",
            viewer=None,
            demo=False,
            title=titles.get(refused.status, "Cannot set up the GitHub App"),
            message=refused.detail,
        )
        return _page(html, status=refused.status)
    return JSONResponse({"detail": refused.detail}, status_code=refused.status)


@router.get("/github/setup", response_class=HTMLResponse)
def github_setup(request: Request, factory: SessionFactoryDep, settings: SettingsDep) -> Response:
    params = request.query_params
    try:
        with factory() as session:
            exists = settings.has_app_credentials or app_exists(session)
        if exists:
            raise SetupRefused(404, "This server already has its GitHub App; /github/setup is closed.")
        if "code" in params or "state" in params:
            code, state = params.get("code", ""), params.get("state", "")
            return _exchange(request, factory=factory, settings=settings, code=code, state=state)
        return _setup_page(factory=factory, settings=settings, organization=params.get("organization"))
    except SetupRefused as refused:
        return _refusal(request, refused)


def _setup_page(*, factory: SessionFactoryDep, settings: Settings, organization: str | None) -> Response:
    public_url = str(settings.public_url).rstrip("/")
    context: dict[str, Any] = {"viewer": None, "demo": False, "public_url": public_url}
    if settings.encryption_key is None:
        return _page(render_page("github_setup.html.j2", stage="key_missing", **context))
    if organization is not None:
        organization = organization.strip()
        if not is_github_login(organization):
            raise SetupRefused(422, f"{organization[:50]!r} is not an organisation login: {LOGIN_RULE}.")
    with session_scope(factory) as session:
        state = issue_state(session, now=utcnow())
    manifest = build_manifest(manifest_template(), public_url=public_url)
    web = settings.web_url
    html = render_page(
        "github_setup.html.j2",
        stage="organization" if organization else "choose",
        manifest=json.dumps(manifest),
        personal_action=new_app_url(web, state=state),
        organization=organization,
        organization_action=new_app_url(web, state=state, organization=organization) if organization else "",
        webhook_url=public_url + WEBHOOK_PATH,
        loopback=is_loopback(public_url),
        **context,
    )
    return _page(html, form_target=web)


def _exchange(request: Request, *, factory: SessionFactoryDep, settings: Settings, code: str, state: str) -> Response:
    if not code or not state:
        raise SetupRefused(400, "GitHub's redirect carries both code and state: start again at /github/setup.")
    if settings.encryption_key is None:
        raise SetupRefused(503, "TOKENTRAIL_ENCRYPTION_KEY is not set: the App's credentials cannot be stored.")
    with session_scope(factory) as session:
        issued = consume_state(session, state, now=utcnow())
    if not issued:
        raise SetupRefused(
            400, "This state was not issued here, has expired or was used: start again at /github/setup."
        )
    if _CODE.fullmatch(code) is None:
        raise SetupRefused(400, "The code is not one GitHub issues: start again at /github/setup.")
    credentials = _convert(str(settings.github_api_url), code)
    cipher = make_cipher(settings.encryption_key.get_secret_value())
    with session_scope(factory) as session:
        stored = store_credentials(session, credentials, cipher=cipher)
    if not stored:
        raise SetupRefused(409, "Another GitHub App was stored first: this server uses that one.")
    request.app.state.app_mode.switch(credentials)
    log.warning("GitHub App %s (id %s) created through /github/setup", credentials.slug, credentials.app_id)
    html = render_page(
        "github_setup.html.j2",
        stage="created",
        viewer=None,
        demo=False,
        app_name=credentials.name,
        app_slug=credentials.slug,
        app_id=credentials.app_id,
        app_owner=credentials.owner,
        install_url=install_url(credentials.html_url),
    )
    return _page(html)


def _convert(api_url: str, code: str) -> AppCredentials:
    try:
        data = create_app_from_manifest(api_url, code)
    except GitHubError as error:
        if error.status is not None and 400 <= error.status < 500:
            raise SetupRefused(
                400,
                f"GitHub refused the code (it lives one hour and works once): start again at /github/setup. ({error})",
            ) from None
        raise SetupRefused(
            502, f"GitHub did not answer the exchange: start again at /github/setup. ({error})"
        ) from None
    try:
        owner = data.get("owner") or {}
        return AppCredentials(
            app_id=int(data["id"]),
            slug=str(data["slug"]),
            name=str(data.get("name") or data["slug"]),
            owner=str(owner.get("login") or owner.get("slug") or ""),
            html_url=str(data["html_url"]),
            client_id=str(data["client_id"]),
            private_key=str(data["pem"]),
            webhook_secret=None if data.get("webhook_secret") is None else str(data["webhook_secret"]),
            client_secret=str(data["client_secret"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise SetupRefused(502, "GitHub's answer to the exchange lacks the App's id, slug or key.") from None
