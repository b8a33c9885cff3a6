"""A stand-in for GitHub Actions' OIDC provider on loopback: an RSA signing key, its JWKS served over HTTP, a
`mint(**claims)` helper, and the runtime's ID-token endpoint that a job step calls.

The token endpoint behaves as the Actions runtime does for `@actions/core`'s `getIDToken(audience)`:
`ACTIONS_ID_TOKEN_REQUEST_URL` already carries a query string, the caller appends `&audience=<url-encoded>`, sends
`Authorization: Bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN` and reads the JWT from the JSON body's `value`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from tests.github_payloads import github_id

ISSUER = "https://token.actions.githubusercontent.com"
JWKS_PATH = "/.well-known/jwks"
TOKEN_PATH = "/_apis/oidc/token"


def new_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(key: RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


@dataclass
class TokenRequest:
    path: str
    audience: str | None
    authorization: str | None


@dataclass
class OidcIssuer:
    """Use as a context manager: `with OidcIssuer(audience=...) as issuer: issuer.mint()`."""

    audience: str = "https://tokentrail.test"
    repository: str = "acme/widgets"  # whom the token endpoint mints for
    request_token: str = field(default_factory=lambda: "runtime-" + uuid.uuid4().hex)
    kid: str = "tokentrail-test-key-1"
    keys: dict[str, RSAPrivateKey] = field(default_factory=dict)  # every key we can sign with, by kid
    published: list[str] = field(default_factory=list)  # the kids the JWKS lists
    jwks_requests: int = 0
    token_requests: list[TokenRequest] = field(default_factory=list)
    token_endpoint_status: int = 200  # set to e.g. 500 to make the runtime's endpoint fail
    token_claims: dict[str, Any] = field(default_factory=dict)  # claims the runtime's tokens carry besides the defaults
    _server: ThreadingHTTPServer | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.keys:
            self.keys[self.kid] = new_key()
            self.published.append(self.kid)

    # ---- keys and tokens ----

    @property
    def private_key(self) -> RSAPrivateKey:
        return self.keys[self.kid]

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def add_key(self, kid: str, *, publish: bool = True) -> RSAPrivateKey:
        self.keys[kid] = new_key()
        if publish:
            self.published.append(kid)
        return self.keys[kid]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(self.keys[kid], kid) for kid in self.published]}

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """GitHub's claim set for a pull_request run; an override of None drops the claim."""
        now = int(time.time())
        repository = str(overrides.get("repository") or self.repository)
        owner = repository.split("/", 1)[0]
        claims: dict[str, Any] = {
            "jti": str(uuid.uuid4()),
            "sub": f"repo:{repository}:pull_request",
            "aud": self.audience,
            "ref": "refs/pull/12/merge",
            "sha": "b" * 40,
            "repository": repository,
            "repository_owner": owner,
            # GitHub's ids, as strings: the ones the test webhooks give this owner and repository
            "repository_owner_id": str(github_id(owner)),
            "repository_id": str(github_id(repository)),
            "repository_visibility": "private",
            "run_id": "3003",
            "run_number": "7",
            "run_attempt": "1",
            "actor": "alice",
            "actor_id": "4004",
            "workflow": "AI spend",
            "head_ref": "feat/cache",
            "base_ref": "main",
            "event_name": "pull_request",
            "ref_type": "branch",
            "job_workflow_ref": f"{repository}/.github/workflows/ai-spend.yml@refs/pull/12/merge",
            "runner_environment": "github-hosted",
            "iss": ISSUER,
            "nbf": now - 5,
            "iat": now - 5,
            "exp": now + 300,
        }
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    def mint(self, *, kid: str | None = None, headers: dict[str, Any] | None = None, **claims: Any) -> str:
        """An RS256 JWT signed with key `kid` (default: the published one)."""
        kid = kid or self.kid
        return jwt.encode(
            self.claims(**claims), self.keys[kid], algorithm="RS256", headers={"kid": kid, **(headers or {})}
        )

    def mint_unsigned(self, **claims: Any) -> str:
        """`alg: none`: a token that claims no signature at all."""
        header = {"alg": "none", "typ": "JWT", "kid": self.kid}
        return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(self.claims(**claims)).encode())}."

    def mint_hs256_with_public_key(self, **claims: Any) -> str:
        """The key-confusion attack: HS256 "signed" with the RSA public key as the HMAC secret."""
        header = {"alg": "HS256", "typ": "JWT", "kid": self.kid}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(self.claims(**claims)).encode())}"
        signature = hmac.new(self.public_pem(), signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64url(signature)}"

    # ---- the HTTP side ----

    @property
    def url(self) -> str:
        assert self._server is not None, "use OidcIssuer as a context manager"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def jwks_url(self) -> str:
        return self.url + JWKS_PATH

    @property
    def token_request_url(self) -> str:
        """What the runner puts in ACTIONS_ID_TOKEN_REQUEST_URL: it already has a query string."""
        return f"{self.url}{TOKEN_PATH}?api-version=2.0"

    def __enter__(self) -> OidcIssuer:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path == JWKS_PATH:
                    issuer.jwks_requests += 1
                    self._json(200, issuer.jwks())
                elif parts.path == TOKEN_PATH:
                    self._token(parse_qs(parts.query))
                else:
                    self._json(404, {"message": "Not Found"})

            def _token(self, query: dict[str, list[str]]) -> None:
                authorization = self.headers.get("Authorization")
                audience = query.get("audience", [None])[0]
                issuer.token_requests.append(TokenRequest(self.path, audience, authorization))
                scheme, _, secret = (authorization or "").partition(" ")
                if scheme.lower() != "bearer" or secret != issuer.request_token:
                    self._json(401, {"message": "Bad credentials"})
                elif issuer.token_endpoint_status != 200:
                    self._json(issuer.token_endpoint_status, {"message": "Internal error"})
                else:
                    # Without an audience GitHub uses the owner's URL, which no Tokentrail server accepts.
                    owner = issuer.repository.split("/", 1)[0]
                    aud = audience or f"https://github.com/{owner}"
                    self._json(200, {"count": 1, "value": issuer.mint(**{"aud": aud, **issuer.token_claims})})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="oidc-issuer", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
