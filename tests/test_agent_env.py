"""`tokentrail env`: attribution exports for the checkout the agent works in (app/agent_env.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from app.local.agent_env import (
    Checkout,
    build_env,
    merge_header_lines,
    merge_otel_resource_attributes,
    normalize_remote,
    render_sh,
    sh_quote,
)
from tests.git_checkouts import _environ, git, make_repo, run_env

BRANCH = 'feat/it\'s-"quoted",x=1'


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = make_repo(tmp_path / "work" / "widgets")
    git(path, "checkout", "-q", "-b", BRANCH)
    return path


def env_json(cwd: Path, tmp_path: Path, **env: str) -> dict[str, object]:
    result = run_env(cwd, tmp_path, "--format", "json", **env)
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def eval_in_bash(cwd: Path, tmp_path: Path, names: list[str], **env: str) -> dict[str, str | None]:
    """eval "$(tokentrail env)" in bash, then read the variables back (NUL-separated; unset ones marked)."""
    command = sys.executable + " -m app.cli env"
    script = f'eval "$({command})" || exit 9\n' + "".join(
        f'if [ -n "${{{name}+set}}" ]; then printf "%s\\0" "${name}"; else printf "<unset>\\0"; fi\n' for name in names
    )
    result = subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=_environ(tmp_path, **env), capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    values = result.stdout.decode().split("\0")[:-1]
    return {name: (None if value == "<unset>" else value) for name, value in zip(names, values, strict=True)}


def test_json_names_the_checkout_and_every_channel(repo: Path, tmp_path: Path) -> None:
    data = env_json(repo, tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    assert data["repository"] == "acme/widgets"
    assert data["repository_url"] == "https://github.com/Acme/Widgets"
    assert data["branch"] == BRANCH
    assert data["commit"] == head
    env = data["env"]
    assert isinstance(env, dict)
    headers = dict(line.split(": ", 1) for line in env["ANTHROPIC_CUSTOM_HEADERS"].splitlines())
    assert headers["x-vcs-repository-url-full"] == "https://github.com/Acme/Widgets"
    assert headers["x-vcs-ref-head-name"] == BRANCH
    assert headers["x-vcs-ref-head-revision"] == head
    metadata = {"repo": "acme/widgets", "branch": BRANCH, "commit": head}
    assert json.loads(headers["x-litellm-spend-logs-metadata"]) == metadata
    assert json.loads(headers["x-portkey-metadata"]) == metadata
    assert headers["Helicone-Property-Repo"] == "acme/widgets"
    assert headers["Helicone-Property-Commit"] == head
    # A branch holding a comma cannot be a comma-separated LiteLLM tag: left out there, kept everywhere else.
    assert headers["x-litellm-tags"] == f"repo:acme/widgets,commit:{head}"
    assert json.loads(env["TOKENTRAIL_LITELLM_METADATA_HEADER"]) == metadata
    assert env["TOKENTRAIL_VCS_REPOSITORY"] == "acme/widgets"
    assert env["TOKENTRAIL_VCS_REPOSITORY_URL"] == "https://github.com/Acme/Widgets"
    assert env["TOKENTRAIL_VCS_BRANCH"] == BRANCH
    assert env["TOKENTRAIL_VCS_COMMIT"] == head
    assert env["TOKENTRAIL_HELICONE_PROPERTIES"].splitlines() == [
        "Helicone-Property-Repo: acme/widgets",
        f"Helicone-Property-Branch: {BRANCH}",
        f"Helicone-Property-Commit: {head}",
    ]
    # OTEL_RESOURCE_ATTRIBUTES: W3C baggage style, values percent-encoded.
    assert env["OTEL_RESOURCE_ATTRIBUTES"] == (
        "vcs.repository.url.full=https://github.com/Acme/Widgets,"
        "vcs.ref.head.name=feat/it%27s-%22quoted%22%2Cx%3D1,"
        f"vcs.ref.head.revision={head}"
    )
    assert data["headers"] == headers


def test_codex_snippet_maps_headers_to_exported_variables(repo: Path, tmp_path: Path) -> None:
    data = env_json(repo, tmp_path)
    config = tomllib.loads(str(data["codex_config_toml"]))
    provider = config["model_providers"]["tokentrail"]
    assert provider["env_key"] == "OPENAI_API_KEY" and provider["base_url"].startswith("https://")
    mapping = provider["env_http_headers"]
    env = data["env"]
    assert isinstance(env, dict)
    assert mapping["x-vcs-repository-url-full"] == "TOKENTRAIL_VCS_REPOSITORY_URL"
    assert mapping["x-litellm-spend-logs-metadata"] == "TOKENTRAIL_LITELLM_METADATA_HEADER"
    for variable in mapping.values():
        assert variable in env, variable
    # Every variable a header reads holds exactly what that header carries in ANTHROPIC_CUSTOM_HEADERS.
    headers = data["headers"]
    assert isinstance(headers, dict)
    for header, variable in mapping.items():
        if header in headers:
            assert env[variable] == headers[header], header


def test_sh_output_survives_eval_in_bash(repo: Path, tmp_path: Path) -> None:
    data = env_json(repo, tmp_path)
    env = data["env"]
    assert isinstance(env, dict)
    names = list(env)
    assert eval_in_bash(repo, tmp_path, names) == env
    sh = run_env(repo, tmp_path).stdout
    assert sh.count("\n#   [model_providers.tokentrail]\n") == 1  # the Codex snippet, as comments


def test_eval_merges_existing_values_without_duplicating_keys(repo: Path, tmp_path: Path) -> None:
    values = eval_in_bash(
        repo,
        tmp_path,
        ["OTEL_RESOURCE_ATTRIBUTES", "ANTHROPIC_CUSTOM_HEADERS"],
        OTEL_RESOURCE_ATTRIBUTES="service.name=claude,vcs.ref.head.name=old-branch,team=a%20b",
        ANTHROPIC_CUSTOM_HEADERS="X-Team: core\nx-vcs-ref-head-name: old-branch",
    )
    attributes = str(values["OTEL_RESOURCE_ATTRIBUTES"]).split(",")
    keys = [entry.split("=", 1)[0] for entry in attributes]
    assert keys == ["service.name", "team", "vcs.repository.url.full", "vcs.ref.head.name", "vcs.ref.head.revision"]
    assert "team=a%20b" in attributes and "vcs.ref.head.name=old-branch" not in attributes
    lines = str(values["ANTHROPIC_CUSTOM_HEADERS"]).splitlines()
    assert lines[0] == "X-Team: core"
    assert [line for line in lines if line.startswith("x-vcs-ref-head-name")] == [f"x-vcs-ref-head-name: {BRANCH}"]


def test_running_again_after_switching_branches_replaces_everything(repo: Path, tmp_path: Path) -> None:
    first = eval_in_bash(repo, tmp_path, ["OTEL_RESOURCE_ATTRIBUTES", "ANTHROPIC_CUSTOM_HEADERS"])
    git(repo, "checkout", "-q", "-b", "feat/second")
    again = eval_in_bash(
        repo,
        tmp_path,
        ["OTEL_RESOURCE_ATTRIBUTES", "ANTHROPIC_CUSTOM_HEADERS"],
        OTEL_RESOURCE_ATTRIBUTES=str(first["OTEL_RESOURCE_ATTRIBUTES"]),
        ANTHROPIC_CUSTOM_HEADERS=str(first["ANTHROPIC_CUSTOM_HEADERS"]),
    )
    assert str(again["OTEL_RESOURCE_ATTRIBUTES"]).count("vcs.ref.head.name=") == 1
    assert "vcs.ref.head.name=feat/second" in str(again["OTEL_RESOURCE_ATTRIBUTES"])
    assert str(again["ANTHROPIC_CUSTOM_HEADERS"]).count("x-vcs-ref-head-name:") == 1


def test_detached_head_names_no_branch(repo: Path, tmp_path: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "--detach")
    data = env_json(repo, tmp_path)
    assert data["branch"] is None and data["commit"] == head
    env = data["env"]
    assert isinstance(env, dict)
    assert env["TOKENTRAIL_VCS_BRANCH"] is None
    assert "vcs.ref.head.name" not in env["OTEL_RESOURCE_ATTRIBUTES"]
    assert "x-vcs-ref-head-name" not in env["ANTHROPIC_CUSTOM_HEADERS"]
    assert json.loads(env["TOKENTRAIL_LITELLM_METADATA_HEADER"]) == {"repo": "acme/widgets", "commit": head}
    # sh: the branch variable of an earlier eval is unset, not left behind.
    values = eval_in_bash(repo, tmp_path, ["TOKENTRAIL_VCS_BRANCH", "TOKENTRAIL_VCS_COMMIT"], TOKENTRAIL_VCS_BRANCH="x")
    assert values == {"TOKENTRAIL_VCS_BRANCH": None, "TOKENTRAIL_VCS_COMMIT": head}
    assert "unset TOKENTRAIL_VCS_BRANCH" in run_env(repo, tmp_path).stdout


def test_repository_without_commits_has_a_branch_but_no_commit(tmp_path: Path) -> None:
    path = make_repo(tmp_path / "fresh", origin="https://github.com/acme/fresh.git", commit=False)
    data = env_json(path, tmp_path)
    assert (data["repository"], data["branch"], data["commit"]) == ("acme/fresh", "main", None)


def test_works_from_a_subfolder_of_the_checkout(repo: Path, tmp_path: Path) -> None:
    sub = repo / "src" / "pkg"
    sub.mkdir(parents=True)
    assert env_json(sub, tmp_path)["repository"] == "acme/widgets"


def test_outside_a_checkout_exits_2_with_a_message(tmp_path: Path) -> None:
    folder = tmp_path / "not-a-repo"
    folder.mkdir()
    result = run_env(folder, tmp_path)
    assert result.returncode == 2
    assert "not inside a git checkout" in result.stderr
    assert result.stdout == ""


def test_without_git_exits_2_with_a_message(repo: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    result = run_env(repo, tmp_path, PATH=str(empty))
    assert result.returncode == 2
    assert "git is not installed" in result.stderr


def test_without_origin_remote_exits_2_with_a_message(tmp_path: Path) -> None:
    path = make_repo(tmp_path / "local-only", origin=None)
    result = run_env(path, tmp_path)
    assert result.returncode == 2
    assert "no `origin` remote" in result.stderr
    assert result.stdout == ""


def test_an_origin_that_names_no_repository_exits_2(tmp_path: Path) -> None:
    path = make_repo(tmp_path / "mirror", origin="/srv/git/widgets.git")
    result = run_env(path, tmp_path)
    assert result.returncode == 2
    assert "OWNER/NAME" in result.stderr


def test_server_adds_the_otlp_exporter_and_reads_the_token_at_eval_time(repo: Path, tmp_path: Path) -> None:
    result = run_env(repo, tmp_path, "--server", "https://tt.example.com/", TOKENTRAIL_TOKEN="tt_secret")
    assert result.returncode == 0, result.stderr
    assert "tt_secret" not in result.stdout  # never printed
    script = (
        f'cd {sh_quote(str(repo))} && eval "$({sys.executable} -m app.cli env --server https://tt.example.com/)" '
        '&& printf "%s|%s|%s|%s|%s" "$OTEL_EXPORTER_OTLP_LOGS_ENDPOINT" "$OTEL_EXPORTER_OTLP_LOGS_HEADERS" '
        '"$CLAUDE_CODE_ENABLE_TELEMETRY" "$OTEL_EXPORTER_OTLP_LOGS_PROTOCOL" "$OTEL_METRICS_INCLUDE_REPOSITORY"'
    )
    evaluated = subprocess.run(
        ["bash", "-c", script],
        env=_environ(tmp_path, TOKENTRAIL_TOKEN="tt_secret"),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # Protobuf, the exporters' default, which Tokentrail reads; Claude Code's own vcs.* attributes switched on.
    assert evaluated.stdout == (
        "https://tt.example.com/v1/ingest/otlp/v1/logs|Authorization=Bearer%20tt_secret|1|http/protobuf|true"
    )


# --- pure functions ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("remote", "expected"),
    [
        ("git@github.com:Acme/Widgets.git", ("acme/widgets", "https://github.com/Acme/Widgets")),
        ("https://github.com/acme/widgets", ("acme/widgets", "https://github.com/acme/widgets")),
        (
            "https://x-access-token:ghs_secret@github.com/acme/widgets.git",
            ("acme/widgets", "https://github.com/acme/widgets"),
        ),
        ("ssh://git@ghe.example.com:2222/Team/Repo.git", ("team/repo", "https://ghe.example.com/Team/Repo")),
        ("https://ghe.example.com:8443/team/repo", ("team/repo", "https://ghe.example.com:8443/team/repo")),
        ("/srv/git/widgets.git", (None, None)),
        ("file:///srv/git/acme/widgets.git", (None, None)),
    ],
)
def test_normalize_remote(remote: str, expected: tuple[str | None, str | None]) -> None:
    assert normalize_remote(remote) == expected


@pytest.mark.parametrize(
    "value", ["plain", "it's", "a\nb\n", "'", "''", '$HOME `id` \\n "x"', "tab\there", "ünïcode ✓", ""]
)
def test_sh_quote_round_trips_through_sh(value: str) -> None:
    result = subprocess.run(["sh", "-c", f"printf '%s' {sh_quote(value)}"], capture_output=True, text=True, check=True)
    assert result.stdout == value


def test_merge_otel_keeps_other_keys_and_drops_stale_vcs_keys() -> None:
    merged = merge_otel_resource_attributes(
        " a=1 ,vcs.ref.head.name=old,,vcs.repository.ref.name=older,b=x%2Cy",
        [("vcs.repository.url.full", "https://github.com/a/b")],
    )
    assert merged == "a=1,b=x%2Cy,vcs.repository.url.full=https://github.com/a/b"
    assert merge_otel_resource_attributes(None, []) == ""


def test_merge_header_lines_is_case_insensitive_on_names() -> None:
    merged = merge_header_lines("X-Auth: k\nX-VCS-Ref-Head-Name: old\n\n", [("x-vcs-ref-head-name", "new")])
    assert merged == "X-Auth: k\nx-vcs-ref-head-name: new"


def test_non_ascii_branch_travels_only_in_json_headers() -> None:
    env = build_env(Checkout(repo="acme/widgets", url="https://github.com/acme/widgets", branch="fix/café"))
    headers = dict(env.headers)
    assert "x-vcs-ref-head-name" not in headers and "Helicone-Property-Branch" not in headers
    assert json.loads(headers["x-litellm-spend-logs-metadata"])["branch"] == "fix/café"
    assert "\\u00e9" in headers["x-litellm-spend-logs-metadata"]  # ASCII on the wire
    assert "vcs.ref.head.name=fix/caf%C3%A9" in str(env.variables["OTEL_RESOURCE_ATTRIBUTES"])
    assert all(line.isascii() for line in str(env.variables["ANTHROPIC_CUSTOM_HEADERS"]).splitlines())
    assert "unset TOKENTRAIL_VCS_BRANCH" in render_sh(env)
