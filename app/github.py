"""Every call Tokentrail makes to GitHub, through githubkit with GitHub App authentication.

Only the verbs we use are exposed (the `GitHubPort` protocol in app.publish names them). Reads take the raw JSON
(`response.json()`) and parse the few fields we need with app.events, so a field GitHub adds or omits never fails
a strict model. githubkit's own retries are off: failures go back to the jobs table, which retries with backoff
and honours Retry-After, so a restart loses nothing.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

from githubkit import AppAuthStrategy, GitHub
from githubkit.cache import MemCacheStrategy
from githubkit.exception import RateLimitExceeded, RequestError, RequestFailed, RequestTimeout

from app import metrics
from app.github_objects import PullCommit, parse_pull_commits
from app.pull_port import PullRef
from app.settings import Settings

log = logging.getLogger("tokentrail.github")
T = TypeVar("T")


class GitHubError(Exception):
    """A call that failed; `retry_after` (seconds) when GitHub said when to come back, `retryable` otherwise."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None, retryable: bool = True
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.retryable = retryable


class NotFound(GitHubError):
    pass


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else max(value.total_seconds(), 0.0)


def _translate(error: Exception) -> GitHubError:
    if (
        isinstance(error, RequestError)
        and not isinstance(error, RequestFailed)
        and isinstance(getattr(error, "exc", None), RequestFailed)
    ):
        error = error.exc  # a failed installation-token request arrives wrapped
    if isinstance(error, RateLimitExceeded):
        return GitHubError(
            f"rate limited: {error!r}", status=error.response.status_code, retry_after=_seconds(error.retry_after)
        )
    if isinstance(error, RequestFailed):
        status = error.response.status_code
        text = error.response.text[:300]
        if status == 404:
            return NotFound(f"not found: {error.request.url}", status=404, retryable=False)
        if status in (403, 429) and "rate limit" in text.lower():
            retry_after = error.response.headers.get("retry-after")
            seconds = float(retry_after) if retry_after and retry_after.isdigit() else 60.0
            return GitHubError(f"secondary rate limit: {text}", status=status, retry_after=seconds)
        return GitHubError(f"GitHub answered {status}: {text}", status=status, retryable=status >= 500 or status == 429)
    if isinstance(error, RequestTimeout | RequestError):
        return GitHubError(f"GitHub unreachable: {error!r}")
    return GitHubError(f"{type(error).__name__}: {error}")


class GitHubApp:
    """One App client per process; an installation client per installation, created on first use."""

    def __init__(self, settings: Settings) -> None:
        if settings.github_app_id is None or settings.github_private_key is None:
            raise ValueError("GitHub App mode needs TOKENTRAIL_GITHUB_APP_ID and a private key")
        self.app_id = settings.github_app_id
        self._base_url = str(settings.github_api_url).rstrip("/")
        self._app = GitHub(
            AppAuthStrategy(str(self.app_id), settings.github_private_key.get_secret_value()),
            base_url=self._base_url,
            # Our own cache: githubkit's default one is shared process-wide by app and installation id.
            cache_strategy=MemCacheStrategy(),
            http_cache=False,
            auto_retry=False,
            timeout=30,
        )
        self._installations: dict[int, GitHub[Any]] = {}
        self._bot_login: str | None = None

    def _client(self, installation_id: int) -> Any:
        # Typed as Any on purpose: we read raw JSON, not githubkit's response models (see the module docstring).
        client = self._installations.get(installation_id)
        if client is None:
            client = self._app.with_auth(self._app.auth.as_installation(installation_id))
            self._installations[installation_id] = client
        return client

    def _call(self, verb: str, what: Callable[[], T]) -> T:
        metrics.GITHUB_CALLS.inc(verb)
        try:
            return what()
        except Exception as error:
            translated = _translate(error)
            metrics.GITHUB_ERRORS.inc(verb, str(translated.status or "network"))
            raise translated from error

    @property
    def bot_login(self) -> str:
        if self._bot_login is None:
            app: Any = self._call("get_app", lambda: self._app.rest.apps.get_authenticated().json())
            self._bot_login = f"{(app or {}).get('slug', 'tokentrail')}[bot]"
        return self._bot_login

    # -- reads -------------------------------------------------------------------------------------------

    def get_pull(self, installation_id: int, repo: str, number: int) -> dict[str, Any]:
        owner, name = repo.split("/", 1)
        client = self._client(installation_id)
        data: dict[str, Any] = self._call("get_pull", lambda: client.rest.pulls.get(owner, name, number).json())
        return data

    def _pages(self, fetch: Callable[[int], Any], *, max_pages: int) -> Iterator[dict[str, Any]]:
        """Items of a paginated list endpoint, 100 a page, stopping at a short page or `max_pages`."""
        for page in range(1, max_pages + 1):
            batch = self._call("list", lambda: fetch(page).json())  # noqa: B023 - called at once, inside this iteration
            yield from (item for item in batch if isinstance(item, dict))
            if len(batch) < 100:
                return

    def list_pull_commits(self, installation_id: int, repo: str, number: int) -> list[PullCommit]:
        """The PR's commits, each with its author's e-mail, name and the login GitHub linked to that e-mail."""
        owner, name = repo.split("/", 1)
        pulls = self._client(installation_id).rest.pulls
        # GitHub lists at most 250 commits of a pull request.
        items = self._pages(lambda page: pulls.list_commits(owner, name, number, per_page=100, page=page), max_pages=3)
        return parse_pull_commits(list(items))

    def list_reviews(self, installation_id: int, repo: str, number: int) -> list[dict[str, Any]]:
        owner, name = repo.split("/", 1)
        pulls = self._client(installation_id).rest.pulls
        return list(
            self._pages(lambda page: pulls.list_reviews(owner, name, number, per_page=100, page=page), max_pages=10)
        )

    def get_file(self, installation_id: int, repo: str, path: str, *, ref: str) -> str | None:
        """A file's text at `ref`, or None when it does not exist."""
        owner, name = repo.split("/", 1)
        client = self._client(installation_id)
        try:
            data = self._call("get_file", lambda: client.rest.repos.get_content(owner, name, path, ref=ref).json())
        except NotFound:
            return None
        if not isinstance(data, dict) or data.get("type") != "file":
            return None
        return base64.b64decode(str(data.get("content", ""))).decode("utf-8", errors="replace")

    def pull(self, ref: PullRef, *, marker: str) -> GitHubPull:
        """This App as one pull request sees it (the `PullPort` a refresh uses)."""
        return GitHubPull(self, ref, marker)

    def find_comment(self, installation_id: int, repo: str, number: int, *, marker: str) -> tuple[int, str] | None:
        """Our sticky comment: the first one carrying the marker *and* written by our app (never someone's quote)."""
        owner, name = repo.split("/", 1)
        issues = self._client(installation_id).rest.issues
        comments = self._pages(
            lambda page: issues.list_comments(owner, name, number, per_page=100, page=page), max_pages=30
        )
        for comment in comments:
            body = comment.get("body") or ""
            via_app = (comment.get("performed_via_github_app") or {}).get("id")
            author = (comment.get("user") or {}).get("login")
            if marker in body and (via_app == self.app_id or author == self.bot_login):
                return int(comment["id"]), body
        return None

    # -- writes ------------------------------------------------------------------------------------------

    def create_comment(self, installation_id: int, repo: str, number: int, body: str) -> int:
        owner, name = repo.split("/", 1)
        client = self._client(installation_id)
        data = self._call(
            "create_comment", lambda: client.rest.issues.create_comment(owner, name, number, body=body).json()
        )
        return int(data["id"])

    def update_comment(self, installation_id: int, repo: str, comment_id: int, body: str) -> None:
        owner, name = repo.split("/", 1)
        client = self._client(installation_id)
        self._call("update_comment", lambda: client.rest.issues.update_comment(owner, name, comment_id, body=body))

    def upsert_check_run(
        self,
        installation_id: int,
        repo: str,
        *,
        check_run_id: int | None,
        head_sha: str,
        output: dict[str, str],
        conclusion: str,
    ) -> int:
        owner, name = repo.split("/", 1)
        client = self._client(installation_id)
        if check_run_id is not None:
            self._call(
                "upsert_check_run",
                lambda: client.rest.checks.update(
                    owner, name, check_run_id, status="completed", conclusion=conclusion, output=output
                ),
            )
            return check_run_id
        data = self._call(
            "upsert_check_run",
            lambda: client.rest.checks.create(
                owner,
                name,
                name="AI spend",
                head_sha=head_sha,
                status="completed",
                conclusion=conclusion,
                output=output,
            ).json(),
        )
        return int(data["id"])


class GitHubPull:
    """`app.pull_port.PullPort` over the App: the verbs of one pull request, with its comment marker."""

    def __init__(self, app: GitHubApp, ref: PullRef, marker: str) -> None:
        self._app, self.ref, self._marker = app, ref, marker

    def get_pull(self) -> dict[str, Any]:
        return self._app.get_pull(self.ref.installation_id, self.ref.repo, self.ref.number)

    def list_commits(self) -> list[PullCommit]:
        return self._app.list_pull_commits(self.ref.installation_id, self.ref.repo, self.ref.number)

    def list_reviews(self) -> list[dict[str, Any]]:
        return self._app.list_reviews(self.ref.installation_id, self.ref.repo, self.ref.number)

    def get_file(self, path: str, *, ref: str) -> str | None:
        return self._app.get_file(self.ref.installation_id, self.ref.repo, path, ref=ref)

    def find_comment(self) -> tuple[int, str] | None:
        return self._app.find_comment(self.ref.installation_id, self.ref.repo, self.ref.number, marker=self._marker)

    def create_comment(self, body: str) -> int:
        return self._app.create_comment(self.ref.installation_id, self.ref.repo, self.ref.number, body)

    def update_comment(self, comment_id: int, body: str) -> None:
        self._app.update_comment(self.ref.installation_id, self.ref.repo, comment_id, body)

    def upsert_check_run(
        self, *, check_run_id: int | None, head_sha: str, output: dict[str, str], conclusion: str
    ) -> int:
        return self._app.upsert_check_run(
            self.ref.installation_id,
            self.ref.repo,
            check_run_id=check_run_id,
            head_sha=head_sha,
            output=output,
            conclusion=conclusion,
        )


def create_app_from_manifest(api_url: str, code: str) -> dict[str, Any]:
    """The end of GitHub's App manifest flow (`POST /app-manifests/{code}/conversions`, no authentication: the
    one-hour code is the credential): the new App's id, slug, owner, html_url, pem, webhook_secret, client_id
    and client_secret, as GitHub's JSON."""
    github = GitHub(base_url=api_url.rstrip("/"), http_cache=False, auto_retry=False, timeout=30)
    metrics.GITHUB_CALLS.inc("create_app_from_manifest")
    try:
        data: dict[str, Any] = dict(github.rest.apps.create_from_manifest(code).json())
    except Exception as error:
        translated = _translate(error)
        metrics.GITHUB_ERRORS.inc("create_app_from_manifest", str(translated.status or "network"))
        raise translated from error
    return data
