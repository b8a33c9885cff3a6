"""The GitHub App manifest (app.yml) made concrete for one server, and the GitHub web addresses of the manifest
flow: the form that creates the App posts the manifest to GitHub, which sends the browser back to the manifest's
`redirect_url` with a one-hour `code` (exchanged in app.github_setup).

Pure: reads nothing but the text it is given.
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import yaml

from app.github_login import LOGIN_RULE, is_github_login

SETUP_PATH = "/github/setup"
WEBHOOK_PATH = "/github/webhook"


class ManifestError(ValueError):
    """app.yml is not a manifest Tokentrail can send."""


def parse_manifest_template(text: str) -> dict[str, Any]:
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ManifestError("app.yml must be a mapping with at least a name")
    return data


def build_manifest(template: dict[str, Any], *, public_url: str) -> dict[str, Any]:
    """The manifest GitHub receives: app.yml with this server's addresses. GitHub generates the webhook secret,
    the private key and the App id; the exchange at `redirect_url` hands them back."""
    base = public_url.rstrip("/")
    manifest = copy.deepcopy(template)
    manifest["url"] = base
    manifest["hook_attributes"] = {**(manifest.get("hook_attributes") or {}), "url": base + WEBHOOK_PATH}
    manifest["hook_attributes"].setdefault("active", True)
    manifest["redirect_url"] = base + SETUP_PATH
    return manifest


def web_url_of_api(api_url: str) -> str:
    """GitHub's web address for an API address: api.github.com → github.com; GitHub Enterprise Server's
    https://HOST/api/v3 → https://HOST; GHE.com's api.SUBDOMAIN.ghe.com → SUBDOMAIN.ghe.com. Anything else (a
    proxy, the fake of the tests) serves both at the same address."""
    parts = urlsplit(api_url.rstrip("/"))
    host, path = parts.netloc, parts.path
    if path.endswith("/api/v3"):
        path = path[: -len("/api/v3")]
    elif host.startswith("api.") and (host == "api.github.com" or host.endswith(".ghe.com")):
        host = host[len("api.") :]
    return urlunsplit((parts.scheme, host, path, "", "")).rstrip("/")


def new_app_url(web_url: str, *, state: str, organization: str | None = None) -> str:
    """Where the manifest form posts: the personal account's, or an organisation's, new-App page."""
    if organization is not None and not is_github_login(organization):
        raise ValueError(f"{organization!r} is not a GitHub organisation login ({LOGIN_RULE})")
    where = f"/organizations/{quote(organization)}/settings/apps/new" if organization else "/settings/apps/new"
    return f"{web_url.rstrip('/')}{where}?{urlencode({'state': state})}"


def install_url(html_url: str) -> str:
    """The App's page where its owner picks the accounts and repositories to install it on."""
    return html_url.rstrip("/") + "/installations/new"


def is_loopback(public_url: str) -> bool:
    """Whether GitHub could not deliver webhooks to this address (it is this machine's own)."""
    host = (urlsplit(public_url).hostname or "").lower()
    return host in {"localhost", "::1"} or host.startswith("127.") or host == "0.0.0.0"
