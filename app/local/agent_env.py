"""`tokentrail env`: the exports that make every supported agent and gateway carry a checkout's repository,
branch and commit (DESIGN §2, "Attribution convention").

Pure functions build the values from a `Checkout` (repository, https URL, branch, commit); `read_checkout` is the
one thin reader of git (a subprocess, isolated in `_git`). The output is meant for `eval "$(tokentrail env)"`:

- ``ANTHROPIC_CUSTOM_HEADERS`` (Claude Code: one ``Name: Value`` a line) with the neutral ``x-vcs-*`` headers and
  the gateway headers (LiteLLM, Portkey, Helicone); header lines the user already had there are kept.
- ``OTEL_RESOURCE_ATTRIBUTES`` (W3C-baggage style ``key=value,…``, values percent-encoded) with the ``vcs.*``
  attributes, merged into the existing value: other keys are kept, ours replaced, never duplicated.
- ``OTEL_METRICS_INCLUDE_REPOSITORY=true``: Claude Code (2.1.269+) puts its own ``vcs.*`` attributes on its
  metrics and events; with ``--server``, its OTLP logs exporter too (``http/protobuf``, which Tokentrail reads).
- ``TOKENTRAIL_VCS_*`` helper variables, and the gateway header values as variables, for tools that map headers to
  environment variables (Codex ``env_http_headers``, shown as a ``config.toml`` snippet in a comment).

A value that does not apply (no branch on a detached HEAD, no commit in an empty repository) is *unset* rather
than left over from an earlier `eval` in another checkout."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from app.attribution import VCS_HEADERS, normalize_branch, normalize_commit, normalize_repo


class CheckoutError(Exception):
    """The folder is not a usable checkout (no git, not a work tree, no origin remote): the message says why."""


@dataclass(frozen=True, slots=True)
class Checkout:
    repo: str  # owner/name, lower-cased
    url: str  # https URL of the repository, without credentials or .git
    branch: str | None = None  # None on a detached HEAD
    commit: str | None = None  # None before the first commit


# --- reading git (the only impure part) ---------------------------------------------------------------------------

GitRunner = Callable[[Sequence[str], Path | None], tuple[int, str]]


def _git(args: Sequence[str], cwd: Path | None) -> tuple[int, str]:
    """Run git; (exit code, stripped stdout). FileNotFoundError when git is not installed."""
    command = ["git", *(["-C", str(cwd)] if cwd is not None else []), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    return result.returncode, result.stdout.strip()


def read_origin(folder: Path, *, git: GitRunner = _git) -> str | None:
    """The `origin` remote URL of the checkout that holds `folder`; None when there is none (or no git)."""
    try:
        code, url = git(["remote", "get-url", "origin"], folder)
    except (OSError, subprocess.SubprocessError):
        return None
    return url if code == 0 and url else None


def read_identity(folder: Path | None, *, git: GitRunner = _git) -> str | None:
    """`git config user.email` of the checkout at `folder` (None: the current directory); None when unset."""
    try:
        code, email = git(["config", "user.email"], folder)
    except (OSError, subprocess.SubprocessError):
        return None
    return email if code == 0 and email else None


def read_checkout(folder: Path | None = None, *, git: GitRunner = _git) -> Checkout:
    """Repository, branch and HEAD of the checkout at `folder` (default: the current directory)."""
    where = str(folder) if folder is not None else "the current directory"
    try:
        code, inside = git(["rev-parse", "--is-inside-work-tree"], folder)
    except FileNotFoundError:
        raise CheckoutError("git is not installed (or not on PATH)") from None
    except (OSError, subprocess.SubprocessError) as error:
        raise CheckoutError(f"could not run git: {error}") from None
    if code != 0 or inside != "true":
        raise CheckoutError(f"{where} is not inside a git checkout: run this in the checkout the agent works in")
    remote = read_origin(folder or Path.cwd(), git=git)
    if remote is None:
        raise CheckoutError(
            "this checkout has no `origin` remote, so the repository is unknown: "
            "add one with `git remote add origin https://github.com/OWNER/NAME.git`"
        )
    repo, url = normalize_remote(remote)
    if repo is None or url is None:
        raise CheckoutError(f"the origin remote {redact_url(remote)!r} does not name a repository as OWNER/NAME")
    # symbolic-ref works before the first commit too, and fails on a detached HEAD (which names no branch).
    code, branch = git(["symbolic-ref", "--quiet", "--short", "HEAD"], folder)
    code_head, commit = git(["rev-parse", "--verify", "--quiet", "HEAD"], folder)
    return Checkout(
        repo=repo,
        url=url,
        branch=normalize_branch(branch) if code == 0 else None,
        commit=normalize_commit(commit) if code_head == 0 else None,
    )


# --- pure: remotes ------------------------------------------------------------------------------------------------

_SCP_LIKE = re.compile(r"^(?:[^@/\s]+@)?(?P<host>[^:/\s]+):(?P<path>[^/].*)$")


def normalize_remote(remote: str) -> tuple[str | None, str | None]:
    """(owner/name, https URL) of a git remote (https, ssh, git@host:owner/name). Credentials are dropped."""
    repo = normalize_repo(redact_url(remote))
    if repo is None:
        return None, None
    text = remote.strip()
    host: str | None = None
    path = ""
    if "://" in text:
        parts = urlsplit(text)
        host, path = parts.hostname, parts.path
        # An https remote keeps its port; an ssh/git port means nothing for https.
        try:
            port = parts.port if parts.scheme in {"http", "https"} else None
        except ValueError:
            port = None
        if host and port:
            host = f"{host}:{port}"
    elif match := _SCP_LIKE.match(text):
        host, path = match["host"], match["path"]
    path = path.strip("/")
    if path.endswith(".git"):
        path = path[: -len(".git")]
    if not host or path.count("/") < 1:
        return repo, f"https://github.com/{repo}"
    return repo, f"https://{host.lower()}/{path}"


def redact_url(url: str) -> str:
    """The URL without user:password@ (https remotes may embed a token)."""
    return re.sub(r"^(\w[\w+.-]*://)[^@/]+@", r"\1", url.strip())


# --- pure: values -------------------------------------------------------------------------------------------------

OTEL_KEYS = {
    "repo": "vcs.repository.url.full",
    "branch": "vcs.ref.head.name",
    "commit": "vcs.ref.head.revision",
    "pr": "vcs.change.id",
}
# Older names of the same attributes: dropped from an existing value so that no stale copy survives.
_OLD_OTEL_KEYS = ("vcs.repository.ref.name", "vcs.repository.ref.revision", "vcs.repository.change.id")

# Environment variables Codex's `env_http_headers` (and any tool that maps headers to variables) can point at.
VAR_REPO = "TOKENTRAIL_VCS_REPOSITORY"
VAR_URL = "TOKENTRAIL_VCS_REPOSITORY_URL"
VAR_BRANCH = "TOKENTRAIL_VCS_BRANCH"
VAR_COMMIT = "TOKENTRAIL_VCS_COMMIT"
VAR_LITELLM_METADATA = "TOKENTRAIL_LITELLM_METADATA_HEADER"
VAR_LITELLM_TAGS = "TOKENTRAIL_LITELLM_TAGS"
VAR_PORTKEY_METADATA = "TOKENTRAIL_PORTKEY_METADATA"
VAR_HELICONE_PROPERTIES = "TOKENTRAIL_HELICONE_PROPERTIES"

# Header name → the variable holding its value (the Codex snippet's `env_http_headers`).
HEADER_VARIABLES: dict[str, str] = {
    VCS_HEADERS["repo"]: VAR_URL,
    VCS_HEADERS["branch"]: VAR_BRANCH,
    VCS_HEADERS["commit"]: VAR_COMMIT,
    "x-litellm-spend-logs-metadata": VAR_LITELLM_METADATA,
    "x-litellm-tags": VAR_LITELLM_TAGS,
    "x-portkey-metadata": VAR_PORTKEY_METADATA,
    "Helicone-Property-Repo": VAR_REPO,
    "Helicone-Property-Branch": VAR_BRANCH,
    "Helicone-Property-Commit": VAR_COMMIT,
}


def _header_safe(value: str | None) -> str | None:
    """A value an HTTP client sends as is: printable ASCII. Node (Claude Code) refuses other header values, so a
    branch named in another script travels only inside the JSON headers, where it is escaped."""
    return None if not value or any(not (" " <= c <= "~") for c in value) else value


def _metadata(checkout: Checkout) -> dict[str, str]:
    return {
        key: value
        for key, value in (("repo", checkout.repo), ("branch", checkout.branch), ("commit", checkout.commit))
        if value is not None
    }


def _compact_json(data: Mapping[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=True)


def litellm_tags(checkout: Checkout) -> str:
    """`x-litellm-tags`: comma-separated `repo:…`, `branch:…`, `commit:…` (a branch holding a comma is left out)."""
    tags = [f"{key}:{value}" for key, value in _metadata(checkout).items() if "," not in value]
    return ",".join(tag for tag in tags if _header_safe(tag))


def gateway_headers(checkout: Checkout) -> list[tuple[str, str]]:
    """Every header of the attribution convention, in a stable order; absent values are left out."""
    headers: list[tuple[str, str]] = [(VCS_HEADERS["repo"], checkout.url)]
    branch = _header_safe(checkout.branch)
    if branch is not None:
        headers.append((VCS_HEADERS["branch"], branch))
    if checkout.commit is not None:
        headers.append((VCS_HEADERS["commit"], checkout.commit))
    metadata = _compact_json(_metadata(checkout))
    headers.append(("x-litellm-spend-logs-metadata", metadata))
    tags = litellm_tags(checkout)
    if tags:
        headers.append(("x-litellm-tags", tags))
    headers.append(("x-portkey-metadata", metadata))
    headers.extend(helicone_headers(checkout))
    return headers


def helicone_headers(checkout: Checkout) -> list[tuple[str, str]]:
    headers = [("Helicone-Property-Repo", checkout.repo)]
    branch = _header_safe(checkout.branch)
    if branch is not None:
        headers.append(("Helicone-Property-Branch", branch))
    if checkout.commit is not None:
        headers.append(("Helicone-Property-Commit", checkout.commit))
    return headers


def merge_header_lines(existing: str | None, headers: Sequence[tuple[str, str]]) -> str:
    """`Name: Value` lines (ANTHROPIC_CUSTOM_HEADERS): the user's own lines first, ours replacing any of the same
    name (case-insensitive), and any stale attribution header of an earlier `eval` dropped."""
    ours = {name.lower() for name, _ in headers} | {name.lower() for name in HEADER_VARIABLES}
    kept = []
    for line in (existing or "").splitlines():
        name = line.split(":", 1)[0].strip().lower()
        if line.strip() and name not in ours:
            kept.append(line)
    return "\n".join([*kept, *(f"{name}: {value}" for name, value in headers)])


def _encode_baggage_value(value: str) -> str:
    # W3C baggage value: percent-encode everything but unreserved characters (and "/" and ":" for readable URLs).
    return quote(value, safe="/:@")


def otel_attributes(checkout: Checkout) -> list[tuple[str, str]]:
    attributes = [(OTEL_KEYS["repo"], checkout.url)]
    if checkout.branch is not None:
        attributes.append((OTEL_KEYS["branch"], checkout.branch))
    if checkout.commit is not None:
        attributes.append((OTEL_KEYS["commit"], checkout.commit))
    return attributes


def merge_otel_resource_attributes(existing: str | None, attributes: Sequence[tuple[str, str]]) -> str:
    """`key=value,…` with our attributes replacing (never duplicating) the same keys of `existing`; other
    entries are kept as written. Every vcs.* key of ours is dropped from `existing` even when we have no value for
    it now (a detached HEAD has no branch: an old branch must not linger)."""
    ours = {*OTEL_KEYS.values(), *_OLD_OTEL_KEYS}
    kept = []
    for entry in (existing or "").split(","):
        key = entry.split("=", 1)[0].strip()
        if entry.strip() and key not in ours:
            kept.append(entry.strip())
    return ",".join([*kept, *(f"{key}={_encode_baggage_value(value)}" for key, value in attributes)])


CODEX_PROVIDER_ID = "tokentrail"


def codex_config_snippet() -> str:
    """A `config.toml` model provider that sends the attribution headers from the exported variables.

    `env_http_headers` maps a header name to the environment variable that holds its value; Codex leaves out a
    header whose variable is unset or empty, so one provider works in every checkout after `eval`."""
    lines = [
        f"[model_providers.{CODEX_PROVIDER_ID}]",
        'name = "OpenAI through a gateway, attributed by tokentrail"',
        'base_url = "https://your-gateway.example.com/v1"  # your LiteLLM / Portkey / Helicone endpoint',
        'env_key = "OPENAI_API_KEY"',
        'wire_api = "responses"',
        "",
        f"[model_providers.{CODEX_PROVIDER_ID}.env_http_headers]",
        *(f'"{header}" = "{variable}"' for header, variable in HEADER_VARIABLES.items()),
    ]
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class AgentEnv:
    checkout: Checkout
    variables: dict[str, str | None]  # None: unset it
    headers: list[tuple[str, str]]
    codex_config: str
    otlp_headers_template: str | None = None
    warnings: tuple[str, ...] = ()  # for the person running the command (stderr), never part of the exports


def build_env(
    checkout: Checkout,
    *,
    environ: Mapping[str, str] | None = None,
    server: str | None = None,
) -> AgentEnv:
    """All the exports for `checkout`. `environ` supplies the values to merge into (ANTHROPIC_CUSTOM_HEADERS,
    OTEL_RESOURCE_ATTRIBUTES); `server`, a Tokentrail server, adds Claude Code's OTLP logs exporter settings."""
    environ = environ or {}
    headers = gateway_headers(checkout)
    metadata = _compact_json(_metadata(checkout))
    variables: dict[str, str | None] = {
        "ANTHROPIC_CUSTOM_HEADERS": merge_header_lines(environ.get("ANTHROPIC_CUSTOM_HEADERS"), headers),
        "OTEL_RESOURCE_ATTRIBUTES": merge_otel_resource_attributes(
            environ.get("OTEL_RESOURCE_ATTRIBUTES"), otel_attributes(checkout)
        ),
        "OTEL_METRICS_INCLUDE_REPOSITORY": "true",
        VAR_REPO: checkout.repo,
        VAR_URL: checkout.url,
        VAR_BRANCH: _header_safe(checkout.branch),
        VAR_COMMIT: checkout.commit,
        VAR_LITELLM_METADATA: metadata,
        VAR_LITELLM_TAGS: litellm_tags(checkout) or None,
        VAR_PORTKEY_METADATA: metadata,
        VAR_HELICONE_PROPERTIES: "\n".join(f"{name}: {value}" for name, value in helicone_headers(checkout)),
    }
    template = None
    warnings: tuple[str, ...] = ()
    if server:
        base = server.rstrip("/")
        variables.update(
            {
                "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
                "OTEL_LOGS_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": f"{base}/v1/ingest/otlp/v1/logs",
            }
        )
        if environ.get("TOKENTRAIL_TOKEN", "").strip():
            template = "Authorization=Bearer%20${TOKENTRAIL_TOKEN}"
        else:
            # An empty bearer would only earn 401s: leave the header out and say what is missing.
            warnings = (
                "TOKENTRAIL_TOKEN is not set: the OTLP exporter gets no Authorization header, and the server will "
                "refuse its events. Export TOKENTRAIL_TOKEN=<token> and run this again.",
            )
    return AgentEnv(
        checkout=checkout,
        variables=variables,
        headers=headers,
        codex_config=codex_config_snippet(),
        otlp_headers_template=template,
        warnings=warnings,
    )


# --- pure: rendering ----------------------------------------------------------------------------------------------


def sh_quote(value: str) -> str:
    """POSIX single quotes: everything literal (newlines too); a ' becomes '\\'' ."""
    return "'" + value.replace("'", "'\\''") + "'"


def render_sh(env: AgentEnv) -> str:
    checkout = env.checkout
    where = f"{checkout.repo} on {checkout.branch or '(detached HEAD)'}"
    if checkout.commit:
        where += f" at {checkout.commit[:12]}"
    lines = [
        f"# tokentrail attribution for {where}",
        '# Load it with: eval "$(tokentrail env)"  (run again after switching branches)',
    ]
    for name, value in env.variables.items():
        lines.append(f"export {name}={sh_quote(value)}" if value is not None else f"unset {name}")
    if env.otlp_headers_template is not None:
        lines.append("# the token is read from $TOKENTRAIL_TOKEN when this is evaluated; it is never printed")
        lines.append(f'export OTEL_EXPORTER_OTLP_LOGS_HEADERS="{env.otlp_headers_template}"')
    lines.append("#")
    lines.append("# Codex: add this model provider once to ~/.codex/config.toml (or $CODEX_HOME/config.toml),")
    lines.append(f'# select it with model_provider = "{CODEX_PROVIDER_ID}" at the top of that file (or')
    lines.append(f"# `codex -c model_provider={CODEX_PROVIDER_ID}`); it sends the headers from the variables above:")
    lines.extend(f"#   {line}" if line else "#" for line in env.codex_config.splitlines())
    return "\n".join(lines) + "\n"


def render_json(env: AgentEnv) -> str:
    checkout = env.checkout
    data: dict[str, Any] = {
        "repository": checkout.repo,
        "repository_url": checkout.url,
        "branch": checkout.branch,
        "commit": checkout.commit,
        "env": env.variables,
        "headers": dict(env.headers),
        "codex_config_toml": env.codex_config,
    }
    if env.otlp_headers_template is not None:
        data["otlp_headers_template"] = env.otlp_headers_template
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
