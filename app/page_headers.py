"""Headers every response carries (DESIGN §9): no framing (clickjacking), no script at all, no resource from
elsewhere, forms that post only to this server, and no full URL leaked to other sites in `Referer`.

The dashboard has no JavaScript and one inline <style> block in its layout; the policy allows exactly that block
by its SHA-256, so an injected <style> or style attribute would not apply either. Added by a plain ASGI wrapper:
a per-request middleware that reads the response would cost every ingest call.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Awaitable, Callable, MutableMapping
from functools import cache
from typing import Any

from app.pages import render_page

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def style_sources(html: str) -> list[str]:
    """CSP sources (`'sha256-…'`) of the inline <style> blocks of a page."""
    blocks = re.findall(r"<style>(.*?)</style>", html, flags=re.DOTALL)
    return [f"'sha256-{base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()}'" for block in blocks]


@cache
def security_headers() -> tuple[tuple[bytes, bytes], ...]:
    # Every page extends the same layout, so the login page's style block is every page's.
    styles = " ".join(style_sources(render_page("login.html.j2", viewer=None, demo=False, error=None)))
    policy = (
        "default-src 'none'; "
        f"style-src {styles}; "
        "img-src 'self'; "
        "form-action 'self'; "
        "frame-ancestors 'none'; "
        "base-uri 'none'"
    )
    return (
        (b"content-security-policy", policy.encode()),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"same-origin"),
        (b"x-content-type-options", b"nosniff"),
    )


class SecurityHeaders:
    """ASGI middleware: adds `security_headers()` to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(header for header in security_headers() if header[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
