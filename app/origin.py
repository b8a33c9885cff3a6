"""Same-origin checks for the dashboard's forms that change who is signed in (DESIGN §9). Pure.

A browser tells where a POST comes from in its `Origin` header; a few send only `Referer`. A login or logout
posted by another site (login CSRF: signing the victim in as the attacker; or signing them out) carries that
site's origin, `null` from a sandboxed frame, or neither header when the page suppressed it; only a request whose
origin is the server's own is acted on.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of an http(s) URL, in lower case and without a default port; None for anything
    else (`null`, an empty value, another scheme)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:  # a port that is not a number, an unbalanced IPv6 bracket
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" if port in (None, DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


def request_origin(*, origin: str | None, referer: str | None) -> str | None:
    """The origin a browser claims for its request: `Origin` when sent (even `null`), else `Referer`'s."""
    if origin is not None:
        return origin_of(origin)
    return origin_of(referer) if referer else None


def is_same_origin(*, origin: str | None, referer: str | None, own: Iterable[str]) -> bool:
    """True when the request's claimed origin is one of the server's own origins (`own`: URLs)."""
    claimed = request_origin(origin=origin, referer=referer)
    return claimed is not None and claimed in {origin_of(url) for url in own}
