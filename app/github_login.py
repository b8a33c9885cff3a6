"""GitHub login syntax, for the owners of tokens and the organisations an App is created on."""

from __future__ import annotations

import re

# Letters, digits and single inner hyphens, at most 39 characters. Enterprise Managed Users add an underscore and a
# short code ("mona_acme"), so an underscore may join two parts as well.
_LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|[-_](?=[A-Za-z0-9])){0,38}")
LOGIN_RULE = "letters, digits and single hyphens between them, at most 39 characters"


def is_github_login(text: str) -> bool:
    return _LOGIN.fullmatch(text) is not None
