"""A fake GitHub REST API on loopback, for driving a real HTTP client (githubkit) in tests.

    with FakeGitHub(app_id=1234, public_key=pem) as fake:      # or the `fake_github` pytest fixture
        fake.add_installation(77, "acme")
        fake.add_repo("acme/widgets", installation_id=77)
        fake.add_pull("acme/widgets", 7, head_sha="abc…", additions=10)
        GitHub(AppInstallationAuthStrategy(1234, key, 77), base_url=fake.url)

State is in memory behind a lock; every request is recorded in `fake.calls` (faults included). The App manifest
flow needs no credentials: the web form (`POST /settings/apps/new`, `/organizations/{org}/settings/apps/new`, a
`manifest` form field) creates the App at once, as if its user confirmed GitHub's page, and redirects to the
manifest's `redirect_url` with a code; `POST /app-manifests/{code}/conversions` hands out the new App's key and
secret once, and from then on the fake is that App (its id, slug and public key). Routes for the
app (`/app…`, `/repos/{o}/{r}/installation`) want `Authorization: Bearer <JWT>` (checked as RS256 against
`public_key` when one is given); every other route wants an installation token minted by
`POST /app/installations/{id}/access_tokens` ("token ghs_…"; any ghs_ token unless `strict_tokens`).
Owner/repo names are case-insensitive, as on GitHub. Link headers point at `/repositories/{id}/…` like GitHub's;
the fake maps those back to `/repos/{owner}/{repo}/…` (and records the mapped path in `Call.path`).
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import jwt
import pytest

from tests import fake_github_bodies as bodies

SECONDARY_MESSAGE = bodies.SECONDARY_MESSAGE
_SAME: Any = object()  # add_pull's head_repo default: the pull request's own repository
Response = tuple[int, Any, dict[str, str]]


@dataclass
class Call:
    method: str
    path: str  # /repositories/{id}/… already mapped to /repos/{owner}/{repo}/…
    query: dict[str, str]
    json_body: Any
    status: int
    auth: str | None = None  # "jwt", "installation", "invalid" or None (no Authorization header)
    raw_path: str = ""  # the path as requested


@dataclass
class Fault:
    method: str  # or "*"
    path_pattern: str  # fnmatch pattern on the (mapped) path, e.g. "/repos/*/pulls/*"
    status: int
    times: int
    retry_after: int | None
    secondary_rate_limit: bool
    rate_limit_remaining_zero: bool
    message: str | None


class HTTPError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def _now() -> str:
    return bodies.iso(datetime.now(UTC)) or ""


@dataclass
class FakeGitHub:
    app_id: int = 1234
    app_slug: str = "tokentrail"
    app_name: str = "Tokentrail"
    app_owner: str = "tokentrail"
    public_key: Any = None  # PEM text or key object: verify the app JWT (RS256, iss == app_id) when given
    strict_tokens: bool = False  # accept only installation tokens this fake minted, for the right installation
    web_user: str = "octocat"  # who is signed in to the fake's web pages (owns Apps created on a personal account)
    calls: list[Call] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._ids = itertools.count(1001)
        self._installations: dict[int, dict[str, Any]] = {}
        self._repos: dict[str, dict[str, Any]] = {}  # lower-case full name → record
        self._pulls: dict[tuple[str, int], dict[str, Any]] = {}
        self._comments: dict[int, dict[str, Any]] = {}
        self._runs: dict[int, dict[str, Any]] = {}
        self._files: dict[tuple[str, str, str], str] = {}
        self._tokens: dict[str, int] = {}  # minted token → installation id
        self._faults: list[Fault] = []
        self._manifest_codes: dict[str, dict[str, Any]] = {}  # code → the App waiting for its conversion
        self.manifests: list[dict[str, Any]] = []  # every manifest the web form received
        self.webhook_secret: str | None = None  # the created App's, once converted
        self._server: ThreadingHTTPServer | None = None
        n, o = r"([^/]+)", r"/repos/([^/]+)/([^/]+)"
        # The third field is the authentication a route wants: True an App JWT, False an installation token,
        # None nothing (GitHub's web pages and the manifest conversion).
        routes: list[tuple[str, str, bool | None, Callable[..., Response]]] = [
            ("POST", r"/settings/apps/new", None, self._new_app_form),
            ("POST", rf"/organizations/{n}/settings/apps/new", None, self._new_app_form),
            ("POST", rf"/app-manifests/{n}/conversions", None, self._convert_manifest),
            ("POST", rf"/app/installations/{n}/access_tokens", True, self._access_token),
            ("GET", r"/app", True, self._get_app),
            ("GET", rf"{o}/installation", True, self._repo_installation),
            ("GET", o, False, self._get_repo),
            ("GET", rf"{o}/pulls/(\d+)", False, self._get_pull),
            ("GET", rf"{o}/pulls/(\d+)/commits", False, self._list_commits),
            ("GET", rf"{o}/pulls/(\d+)/reviews", False, self._list_reviews),
            ("GET", rf"{o}/issues/(\d+)/comments", False, self._list_comments),
            ("POST", rf"{o}/issues/(\d+)/comments", False, self._create_comment),
            ("PATCH", rf"{o}/issues/comments/(\d+)", False, self._update_comment),
            ("POST", rf"{o}/check-runs", False, self._create_run),
            ("PATCH", rf"{o}/check-runs/(\d+)", False, self._update_run),
            ("GET", rf"{o}/commits/(.+)/check-runs", False, self._list_runs),
            ("GET", rf"{o}/contents/(.+)", False, self._get_content),
        ]
        self._routes = [(method, re.compile(path), app, handler) for method, path, app, handler in routes]

    # ---- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> FakeGitHub:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, payload, headers = fake.handle(
                    self.command, parts.path, dict(parse_qsl(parts.query)), raw, dict(self.headers.items())
                )
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-github", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- state -------------------------------------------------------------------------------------------
    def add_installation(self, id: int, account_login: str, account_type: str = "Organization") -> None:
        with self._lock:
            self._installations[id] = {"id": id, "account": account_login, "type": account_type}

    def add_repo(
        self, full_name: str, default_branch: str = "main", installation_id: int | None = None, *, private: bool = True
    ) -> int:
        """Returns the repository id. `installation_id` defaults to the only installation, if there is one."""
        with self._lock:
            if installation_id is None and len(self._installations) == 1:
                installation_id = next(iter(self._installations))
            ident = next(self._ids) * 1000
            record = {"id": ident, "full_name": full_name, "default_branch": default_branch}
            self._repos[full_name.lower()] = record | {"installation_id": installation_id, "private": private}
            return ident

    def add_pull(
        self,
        repo: str,
        number: int,
        *,
        title: str = "Change",
        user: str = "octocat",
        head_ref: str | None = None,
        head_sha: str | None = None,
        head_repo: str | None = _SAME,  # a full name, or None: the fork was deleted
        base_ref: str | None = None,
        additions: int = 0,
        deletions: int = 0,
        changed_files: int = 0,
        labels: tuple[str, ...] | list[str] = (),
        state: str = "open",
        merged: bool = False,
        draft: bool = False,
        body: str | None = None,
        created_at: datetime | str | None = None,
        closed_at: datetime | str | None = None,
        merged_at: datetime | str | None = None,
    ) -> None:
        with self._lock:
            record = self._repo(repo)
            created = bodies.iso(created_at) or _now()
            if merged:
                state, merged_at = "closed", merged_at or closed_at or _now()
            closed_at = closed_at or merged_at or (_now() if state == "closed" else None)
            head_sha = head_sha or bodies.fake_sha(f"{repo}#{number}")
            self._pulls[(repo.lower(), number)] = {
                "number": number, "title": title, "user": user, "body": body, "draft": draft,
                "head_ref": head_ref or f"feature-{number}", "head_sha": head_sha,
                "head_repo": record["full_name"] if head_repo is _SAME else head_repo,
                "base_ref": base_ref or record["default_branch"], "base_sha": bodies.fake_sha(f"base:{repo}"),
                "additions": additions, "deletions": deletions, "changed_files": changed_files,
                "labels": list(labels), "state": state, "merged": merged, "created_at": created,
                "updated_at": bodies.iso(closed_at) or created, "closed_at": bodies.iso(closed_at),
                "merged_at": bodies.iso(merged_at), "commits": [head_sha], "reviews": [],
            }  # fmt: skip

    def update_pull(self, repo: str, number: int, **changes: Any) -> None:
        """Change stored fields, e.g. head_sha after a push; timestamps may be datetimes."""
        with self._lock:
            changes = {"updated_at": _now()} | changes
            self._pull(repo, number).update({k: bodies.iso(v) if k.endswith("_at") else v for k, v in changes.items()})

    def set_pull_commits(
        self, repo: str, number: int, shas: list[str], authors: dict[str, tuple[str, str, str | None]] | None = None
    ) -> None:
        """The PR's commits; `authors` gives some of them a git (name, e-mail) and the login GitHub linked to that
        e-mail (None: no account has it). The others are the PR author's."""
        with self._lock:
            pull = self._pull(repo, number)
            pull["commits"] = list(shas)
            pull["commit_authors"] = dict(authors or {})

    def add_review(
        self, repo: str, number: int, user: str, state: str, submitted_at: datetime | str | None = None
    ) -> int:
        """`state` as the REST API spells it (APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED; any case)."""
        with self._lock:
            pr, ident = self._pull(repo, number), next(self._ids)
            when = bodies.iso(submitted_at) or _now()
            pr["reviews"].append(
                {"id": ident, "user": user, "state": state.upper(), "submitted_at": when, "body": ""}
                | {"commit_id": pr["head_sha"]}
            )
            return ident

    def add_comment(self, repo: str, number: int, user: str, body: str, *, via_app: bool = False) -> int:
        with self._lock:
            self._pull(repo, number)
            ident, now = next(self._ids), _now()
            self._comments[ident] = {"id": ident, "repo": repo.lower(), "number": number, "user": user}
            self._comments[ident] |= {"body": body, "created_at": now, "updated_at": now, "via_app": via_app}
            return ident

    def set_file(self, repo: str, path: str, text: str, ref: str | None = None) -> None:
        with self._lock:
            self._files[(repo.lower(), ref or self._repo(repo)["default_branch"], path.strip("/"))] = text

    def fail_next(
        self,
        method: str,
        path_pattern: str,
        status: int,
        *,
        times: int = 1,
        retry_after: int | None = None,
        secondary_rate_limit: bool = False,
        rate_limit_remaining_zero: bool = False,
        message: str | None = None,
    ) -> None:
        """Answer the next `times` matching requests (method or "*"; fnmatch pattern on the path) with an error."""
        with self._lock:
            self._faults.append(
                Fault(method.upper(), path_pattern, status, times, retry_after, secondary_rate_limit,
                      rate_limit_remaining_zero, message)
            )  # fmt: skip

    # ---- reading state -----------------------------------------------------------------------------------
    def calls_to(self, method: str, path_prefix: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method.upper() and c.path.startswith(path_prefix)]

    def comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        with self._lock:
            return [self._comment_body(c) for c in self._comments.values() if c["repo"] == repo.lower()
                    and c["number"] == number]  # fmt: skip

    def check_runs(self, repo: str, sha: str) -> list[dict[str, Any]]:
        with self._lock:
            return [self._run_body(r) for r in self._runs.values() if r["repo"] == repo.lower()
                    and r["head_sha"] == sha]  # fmt: skip

    @property
    def app(self) -> dict[str, Any]:
        return bodies.app(self.url, self.app_id, self.app_slug, self.app_name, self.app_owner)

    @property
    def bot_login(self) -> str:
        return f"{self.app_slug}[bot]"

    # ---- request handling ----------------------------------------------------------------------------------
    def handle(
        self, method: str, raw_path: str, query: dict[str, str], raw: bytes, headers: dict[str, str]
    ) -> Response:
        """Answer one request (called from the server's threads); records it in `calls`."""
        with self._lock:
            path = self._unalias(unquote(raw_path).rstrip("/") or "/")
            auth = self._auth_kind({k.lower(): v for k, v in headers.items()}.get("authorization"))
            content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
            try:
                if "application/x-www-form-urlencoded" in content_type:
                    body: Any = dict(parse_qsl(raw.decode()))
                else:
                    body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            extra = {"x-github-request-id": secrets.token_hex(8).upper()}
            fault = next((f for f in self._faults if f.method in (method, "*")
                          and fnmatch.fnmatchcase(path, f.path_pattern)), None)  # fmt: skip
            if fault is not None:
                fault.times -= 1
                self._faults = [f for f in self._faults if f.times > 0]
                payload, more = bodies.fault(fault.status, fault.retry_after, fault.secondary_rate_limit,
                                             fault.rate_limit_remaining_zero, fault.message)  # fmt: skip
                status = fault.status
            elif raw and body is None:
                status, payload, more = 400, bodies.error("Problems parsing JSON", 400), {}
            else:
                try:
                    status, payload, more = self._route(method, path, query, body, auth)
                except HTTPError as exc:
                    status, payload, more = exc.status, bodies.error(exc.message, exc.status), exc.headers
                except Exception as exc:  # a bug of the fake: answer it rather than drop the connection
                    status, payload, more = 500, bodies.error(f"fake GitHub failed: {exc!r}", 500), {}
            self.calls.append(Call(method, path, query, body, status, auth[0] if auth else None, raw_path))
            return status, payload, extra | more

    def _auth_kind(self, header: str | None) -> tuple[str, str] | None:
        if not header:
            return None
        scheme, _, credential = header.partition(" ")
        if credential.startswith("ghs_") and scheme.lower() in ("token", "bearer"):
            return "installation", credential
        if scheme.lower() == "bearer" and credential.count(".") == 2:
            if self.public_key is None:
                return "jwt", credential
            try:
                claims = jwt.decode(credential, self.public_key, algorithms=["RS256"])
            except jwt.PyJWTError:
                return "invalid", credential
            return ("jwt" if str(claims.get("iss")) == str(self.app_id) else "invalid"), credential
        return "invalid", credential

    def _route(self, method: str, path: str, query: dict[str, str], body: Any, auth: Any) -> Response:
        for route_method, pattern, app_route, handler in self._routes:
            match = pattern.fullmatch(path)
            if match is None or route_method != method:
                continue
            args = list(match.groups())
            if app_route is None:
                return handler(*args, query=query, body=body)
            if app_route and (auth is None or auth[0] != "jwt"):
                raise HTTPError(401, "A JSON web token could not be decoded")
            if not app_route:
                if auth is None or auth[0] != "installation":
                    raise HTTPError(401, "Requires authentication" if auth is None else "Bad credentials")
                installation = self._tokens.get(auth[1])
                if self.strict_tokens and installation is None:
                    raise HTTPError(401, "Bad credentials")
                repo = self._repo(f"{args[0]}/{args[1]}")
                if installation is not None and repo["installation_id"] != installation:
                    raise HTTPError(404, "Not Found")
                args[:2] = [repo]
            return handler(*args, query=query, body=body)
        raise HTTPError(404, "Not Found")

    def _unalias(self, path: str) -> str:
        match = re.fullmatch(r"/repositories/(\d+)(/.*)?", path)
        if match:
            for repo in self._repos.values():
                if repo["id"] == int(match.group(1)):
                    return f"/repos/{repo['full_name']}{match.group(2) or ''}"
        return path

    def _repo(self, full_name: str) -> dict[str, Any]:
        if full_name.lower() not in self._repos:
            raise HTTPError(404, "Not Found")
        return self._repos[full_name.lower()]

    def _pull(self, repo: str, number: int) -> dict[str, Any]:
        if (repo.lower(), int(number)) not in self._pulls:
            raise HTTPError(404, "Not Found")
        return self._pulls[(repo.lower(), int(number))]

    def _page(self, items: list[Any], query: dict[str, str], repo: dict[str, Any], path: str) -> Response:
        """A page of `items`; its Link header points at /repositories/{id}/…, as GitHub's do."""
        chunk, headers = bodies.page(items, query, f"{self.url}/repositories/{repo['id']}{path}")
        return 200, chunk, headers

    def _repo_body(self, full_name: str) -> dict[str, Any]:
        record = self._repos.get(full_name.lower())
        if record is None:  # a fork the fake was not told about
            return bodies.repository(self.url, full_name, bodies.stable_id(full_name), "main", fork=True)
        return bodies.repository(self.url, record["full_name"], record["id"], record["default_branch"],
                                 private=record["private"])  # fmt: skip

    def _comment_body(self, c: dict[str, Any]) -> dict[str, Any]:
        return bodies.issue_comment(
            self.url, self._repos[c["repo"]]["full_name"], c, self.app if c["via_app"] else None
        )

    def _run_body(self, run: dict[str, Any]) -> dict[str, Any]:
        repo = self._repo_body(self._repos[run["repo"]]["full_name"])
        pulls = [bodies.pull_minimal(self.url, pr, repo) for (name, _), pr in self._pulls.items()
                 if name == run["repo"] and pr["head_sha"] == run["head_sha"] and pr["state"] == "open"
                 and (pr["head_repo"] or "").lower() == run["repo"]]  # fmt: skip
        return bodies.check_run(self.url, repo["full_name"], run, self.app, pulls)

    # ---- handlers ------------------------------------------------------------------------------------------
    def _new_app_form(self, *org: str, query: dict[str, str], body: Any) -> Response:
        try:
            manifest = json.loads(body["manifest"])
            redirect_url, hook_url = manifest["redirect_url"], manifest["hook_attributes"]["url"]
        except (TypeError, KeyError, ValueError):
            raise HTTPError(422, "Invalid GitHub App configuration") from None
        if not isinstance(manifest.get("url"), str) or not isinstance(hook_url, str):
            raise HTTPError(422, "Invalid GitHub App configuration")
        self.manifests.append(manifest)
        code = secrets.token_hex(10)
        self._manifest_codes[code] = {"manifest": manifest, "owner": org[0] if org else self.web_user}
        separator = "&" if "?" in redirect_url else "?"
        location = f"{redirect_url}{separator}{urlencode({'code': code, 'state': query.get('state', '')})}"
        return 302, None, {"Location": location}

    def _convert_manifest(self, code: str, **_: Any) -> Response:
        pending = self._manifest_codes.pop(code, None)
        if pending is None:
            raise HTTPError(404, "Not Found")
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ).decode()
        manifest = pending["manifest"]
        name = str(manifest.get("name") or "Tokentrail")
        self.app_id, self.app_name, self.app_owner = next(self._ids), name, pending["owner"]
        self.app_slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        self.public_key = key.public_key()
        self.webhook_secret = secrets.token_hex(20)
        created = self.app | {
            "permissions": manifest.get("default_permissions") or {},
            "events": manifest.get("default_events") or [],
            "external_url": manifest["url"],
            "client_secret": secrets.token_hex(20),
            "webhook_secret": self.webhook_secret,
            "pem": pem,
        }
        return 201, created, {}

    def _access_token(self, installation_id: str, **_: Any) -> Response:
        if not installation_id.isdigit() or int(installation_id) not in self._installations:
            raise HTTPError(404, "Not Found")
        token = "ghs_fake" + secrets.token_hex(14)
        self._tokens[token] = int(installation_id)
        return 201, bodies.access_token(token), {}

    def _get_app(self, **_: Any) -> Response:
        return 200, self.app | {"installations_count": len(self._installations)}, {}

    def _repo_installation(self, owner: str, name: str, **_: Any) -> Response:
        installation = self._installations.get(self._repo(f"{owner}/{name}")["installation_id"] or -1)
        if installation is None:
            raise HTTPError(404, "Not Found")
        account, kind = installation["account"], installation["type"]
        return 200, bodies.installation(self.url, installation["id"], account, kind, self.app), {}

    def _get_repo(self, repo: dict[str, Any], **_: Any) -> Response:
        return 200, self._repo_body(repo["full_name"]), {}

    def _get_pull(self, repo: dict[str, Any], number: str, **_: Any) -> Response:
        pr = self._pull(repo["full_name"], int(number))
        comments = sum(
            1 for c in self._comments.values() if (c["repo"], c["number"]) == (repo["full_name"].lower(), pr["number"])
        )
        base = self._repo_body(repo["full_name"])
        head = None if pr["head_repo"] is None else self._repo_body(pr["head_repo"])
        return 200, bodies.pull(self.url, pr, base, head, comments), {}

    def _list_commits(self, repo: dict[str, Any], number: str, query: dict[str, str], **_: Any) -> Response:
        pr, full = self._pull(repo["full_name"], int(number)), repo["full_name"]
        shas, authors = pr["commits"], pr.get("commit_authors", {})

        def item(i: int, sha: str) -> dict[str, Any]:
            name, email, login = authors.get(sha, (None, None, pr["user"]))
            parent = shas[i - 1] if i else None
            return bodies.commit(self.url, full, sha, parent, login or pr["user"], pr["created_at"],
                                 git_name=name, git_email=email, linked=login is not None)  # fmt: skip

        items = [item(i, sha) for i, sha in enumerate(shas)]
        return self._page(items, query, repo, f"/pulls/{number}/commits")

    def _list_reviews(self, repo: dict[str, Any], number: str, query: dict[str, str], **_: Any) -> Response:
        full = repo["full_name"]
        items = [bodies.review(self.url, full, int(number), rv) for rv in self._pull(full, int(number))["reviews"]]
        return self._page(items, query, repo, f"/pulls/{number}/reviews")

    def _list_comments(self, repo: dict[str, Any], number: str, query: dict[str, str], **_: Any) -> Response:
        full = repo["full_name"]
        self._pull(full, int(number))
        return self._page(self.comments(full, int(number)), query, repo, f"/issues/{number}/comments")

    def _create_comment(self, repo: dict[str, Any], number: str, body: Any, **_: Any) -> Response:
        if not isinstance(body, dict) or not isinstance(body.get("body"), str):
            raise HTTPError(422, 'Invalid request.\n\n"body" wasn\'t supplied.')
        ident = self.add_comment(repo["full_name"], int(number), self.bot_login, body["body"], via_app=True)
        return (
            201,
            self._comment_body(self._comments[ident]),
            {"location": f"{self.url}/repos/{repo['full_name']}/issues/comments/{ident}"},
        )

    def _update_comment(self, repo: dict[str, Any], comment_id: str, body: Any, **_: Any) -> Response:
        comment = self._comments.get(int(comment_id))
        if comment is None or comment["repo"] != repo["full_name"].lower():
            raise HTTPError(404, "Not Found")
        if not isinstance(body, dict) or not isinstance(body.get("body"), str):
            raise HTTPError(422, 'Invalid request.\n\n"body" wasn\'t supplied.')
        comment |= {"body": body["body"], "updated_at": _now()}
        return 200, self._comment_body(comment), {}

    def _create_run(self, repo: dict[str, Any], body: Any, **_: Any) -> Response:
        missing = [k for k in ("name", "head_sha") if not isinstance(body, dict) or not body.get(k)]
        if missing:
            raise HTTPError(422, f'Invalid request.\n\n"{missing[0]}" wasn\'t supplied.')
        run = {"id": next(self._ids), "repo": repo["full_name"].lower(), "head_sha": body["head_sha"]}
        run |= {"status": "queued", "check_suite_id": bodies.stable_id(body["head_sha"]), "started_at": _now()}
        if problem := bodies.apply_check_run(run, body, _now()):
            raise HTTPError(422, problem)
        self._runs[run["id"]] = run
        return 201, self._run_body(run), {}

    def _update_run(self, repo: dict[str, Any], run_id: str, body: Any, **_: Any) -> Response:
        run = self._runs.get(int(run_id))
        if run is None or run["repo"] != repo["full_name"].lower():
            raise HTTPError(404, "Not Found")
        if problem := bodies.apply_check_run(run, body if isinstance(body, dict) else {}, _now()):
            raise HTTPError(422, problem)
        return 200, self._run_body(run), {}

    def _list_runs(self, repo: dict[str, Any], ref: str, query: dict[str, str], **_: Any) -> Response:
        full = repo["full_name"]
        sha = next((pr["head_sha"] for (name, _), pr in self._pulls.items()
                    if name == full.lower() and pr["head_ref"] == ref), ref)  # fmt: skip
        runs = bodies.select_check_runs(self.check_runs(full, sha), query)
        page = self._page(runs, query, repo, f"/commits/{ref}/check-runs")
        return 200, {"total_count": len(runs), "check_runs": page[1]}, page[2]

    def _get_content(self, repo: dict[str, Any], path: str, query: dict[str, str], **_: Any) -> Response:
        ref = query.get("ref") or repo["default_branch"]
        text = self._files.get((repo["full_name"].lower(), ref, path.strip("/")))
        if text is None:
            raise HTTPError(404, "Not Found")
        return 200, bodies.content_file(self.url, repo["full_name"], path.strip("/"), ref, text), {}


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    """A running FakeGitHub with default app settings (app id 1234, slug "tokentrail", no JWT verification)."""
    with FakeGitHub() as fake:
        yield fake
