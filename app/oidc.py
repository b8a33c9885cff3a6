"""GitHub Actions OIDC tokens: the companion Action proves which repository it runs for without a secret.

The run's JWT (RS256) is checked against GitHub's JWKS (cached; fetched again when a token names a key we do not
know, at most every MIN_REFRESH seconds so forged `kid`s cannot make us hammer the JWKS endpoint), its issuer,
its audience (the server's public URL unless configured), and its times with a small leeway. Then `refusal`
holds its claims against what GitHub's webhooks told of the repository: names can be renamed and taken again,
GitHub's numeric ids cannot.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

ISSUER = "https://token.actions.githubusercontent.com"
LEEWAY_SECONDS = 60
MIN_REFRESH = 10.0
MAX_AGE = 3600.0


class OidcError(Exception):
    """Why a token is refused; 401 for a token that proves nothing, 403 for one that proves the wrong thing."""

    def __init__(self, message: str, *, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class ActionsIdentity:
    repository: str  # "owner/name", lower-cased
    owner: str
    claims: dict[str, Any]

    def claim(self, name: str) -> str:
        """A claim as text (GitHub sends ids as strings), lower-cased; "" when absent."""
        value = self.claims.get(name)
        return str(value).strip().lower() if isinstance(value, str | int) and not isinstance(value, bool) else ""


@dataclass(frozen=True, slots=True)
class RecordedInstallation:
    account_login: str
    account_id: int | None
    suspended: bool
    deleted: bool


@dataclass(frozen=True, slots=True)
class RecordedRepository:
    """What the webhooks told of a repository, and of the App installation it belongs to (None: no such
    installation was ever announced)."""

    full_name: str
    repository_id: int | None
    owner_id: int | None
    removed: bool
    installation: RecordedInstallation | None


def refusal(identity: ActionsIdentity, recorded: RecordedRepository | None) -> str | None:
    """Why a verified run token of `identity.repository` may not read it, or None when it may."""
    repo, owner = identity.repository, identity.owner
    if identity.claim("repository_owner") != owner:
        return f"this OIDC token's repository_owner {identity.claim('repository_owner')!r} is not {owner}, of {repo}"
    if recorded is None:
        return f"the Tokentrail App is not installed on {repo}: it must be installed on it for its runs to read"
    installation = recorded.installation
    if installation is None:
        return f"the Tokentrail App is not installed for {owner}"
    if installation.deleted:
        return f"the Tokentrail App was uninstalled from {installation.account_login}"
    if installation.suspended:
        return f"the Tokentrail App's installation on {installation.account_login} is suspended"
    if recorded.removed:
        return f"{repo} was removed from the Tokentrail App's installation"
    if recorded.repository_id is None or recorded.owner_id is None:
        return (
            f"the Tokentrail App must be installed on {repo}: GitHub's ids for it are not recorded yet "
            "(the next webhook about it brings them)"
        )
    if identity.claim("repository_id") != str(recorded.repository_id):
        return f"this OIDC token is for another repository id than {repo}'s: a different repository of that name"
    owner_ids = {str(recorded.owner_id)} | ({str(installation.account_id)} if installation.account_id else set())
    if {identity.claim("repository_owner_id")} != owner_ids:
        return f"this OIDC token is for another owner id than {owner}'s: a different account of that name"
    return None


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")


class JwksCache:
    """The signing keys of the JWKS at `url`, by key id."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.url = url
        self.timeout = timeout
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        try:
            response = httpx.get(self.url, timeout=self.timeout)
            response.raise_for_status()
            keys = jwt.PyJWKSet.from_dict(response.json()).keys
        except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as error:
            raise OidcError(f"cannot read the OIDC signing keys: {error}") from None
        finally:
            self._fetched_at = time.monotonic()
        self._keys = {key.key_id: key for key in keys if key.key_id}

    def key(self, kid: str) -> jwt.PyJWK:
        with self._lock:
            age = time.monotonic() - self._fetched_at
            if age > MAX_AGE or (kid not in self._keys and age > MIN_REFRESH):
                try:
                    self._refresh()
                except OidcError:
                    if kid not in self._keys:  # a key we already trust stays usable while GitHub is unreachable
                        raise
            found = self._keys.get(kid)
        if found is None:
            raise OidcError("token signed with an unknown key")
        return found


def verify_actions_token(token: str, *, jwks: JwksCache, audience: str) -> ActionsIdentity:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError:
        raise OidcError("malformed token") from None
    if header.get("alg") != "RS256" or not isinstance(header.get("kid"), str):
        raise OidcError("token must be RS256 with a key id")
    key = jwks.key(header["kid"])
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key.key,
            algorithms=["RS256"],
            audience=audience,
            issuer=ISSUER,
            leeway=LEEWAY_SECONDS,
            # GitHub sends every run token these claims; the ids are what a reused name cannot fake
            options={
                "require": [
                    "exp",
                    "iat",
                    "iss",
                    "aud",
                    "repository",
                    "repository_owner",
                    "repository_owner_id",
                    "repository_id",
                ]
            },
        )
    except jwt.ExpiredSignatureError:
        raise OidcError("token has expired") from None
    except jwt.ImmatureSignatureError:
        raise OidcError("token is not valid yet") from None
    except jwt.InvalidAudienceError:
        raise OidcError(f"token audience is not {audience}") from None
    except jwt.InvalidIssuerError:
        raise OidcError(f"token issuer is not {ISSUER}") from None
    except jwt.InvalidTokenError as error:
        raise OidcError(f"invalid token: {error}") from None
    repository = str(claims.get("repository", "")).lower()
    if repository.count("/") != 1:
        raise OidcError("token names no repository")
    return ActionsIdentity(repository=repository, owner=repository.split("/", 1)[0], claims=claims)
