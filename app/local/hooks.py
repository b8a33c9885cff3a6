"""`tokentrail hooks install|uninstall claude-code|codex`: make each finished agent session upload itself.

- Claude Code: a `SessionEnd` hook (and with `--live` a `Stop` hook, after every answer) in the user settings
  (`$CLAUDE_CONFIG_DIR/settings.json`, default `~/.claude/settings.json`), in Claude Code's hooks schema:
  `{"hooks": {"SessionEnd": [{"hooks": [{"type": "command", "command": "…"}]}]}}`. The settings are rewritten as
  JSON with the file's own indentation and key order; every other setting stays as it was.
- Codex: its `notify` program in `$CODEX_HOME/config.toml` (default `~/.codex/config.toml`), which Codex runs after
  every turn with a JSON argument. The key is added as one line at the top of the file (where a top-level key is
  always valid TOML), so the rest of the file keeps its text byte for byte. Codex runs a single `notify` program:
  a user's own is never replaced.

Install is idempotent (a second one changes nothing, the file is not even rewritten) and uninstall removes exactly
what install added. The command installed is `tokentrail hooks run <agent>` of this installation
(`app.local.hook_run`), which reads the stored server and token (`hook_run.CONFIG_NAME`, mode 0600).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

AGENTS = ("claude-code", "codex")
CODEX_MARK = "# tokentrail hooks: each finished Codex turn uploads its rollout (tokentrail hooks uninstall codex)"


class HookError(Exception):
    """A settings file install cannot change safely: the user is told why, nothing is written."""


@dataclass(frozen=True)
class Change:
    path: Path
    changed: bool
    what: str


def hook_argv(agent: str) -> list[str]:
    """How the agent runs our hook: this installation's `tokentrail` script, else its interpreter with `-m`."""
    script = Path(sys.executable).with_name("tokentrail")
    base = [str(script)] if script.is_file() else [sys.executable, "-m", "app.cli"]
    return [*base, "hooks", "run", agent]


def is_ours(argv: list[str], agent: str) -> bool:
    """Whether a command is a `tokentrail hooks run <agent>` (of any installation: a moved venv included)."""
    if argv[-3:] != ["hooks", "run", agent] or len(argv) < 4:
        return False
    return Path(argv[0]).name == "tokentrail" or argv[-5:-3] == ["-m", "app.cli"]


def _split(command: Any) -> list[str]:
    if not isinstance(command, str):
        return []
    try:
        return shlex.split(command)
    except ValueError:
        return []


# --- Claude Code: settings.json ------------------------------------------------------------------------------------


def claude_settings_path(environ: Mapping[str, str], home: Path) -> Path:
    folder = environ.get("CLAUDE_CONFIG_DIR")
    return (Path(folder).expanduser() if folder else home / ".claude") / "settings.json"


def _read_json(path: Path) -> tuple[dict[str, Any], str | int]:
    """The settings and the indentation to write them back with."""
    if not path.exists():
        return {}, 2
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        return {}, 2
    try:
        settings = json.loads(text)
    except json.JSONDecodeError as error:
        raise HookError(f"{path} is not valid JSON ({error}); fix it first, nothing was changed") from None
    if not isinstance(settings, dict):
        raise HookError(f"{path} does not hold a JSON object; nothing was changed")
    indented = re.search(r"\n([ \t]+)\S", text)
    indent: str | int = indented.group(1) if indented else 2
    if isinstance(indent, str) and set(indent) == {" "}:
        indent = len(indent)
    return settings, indent


def _write(path: Path, text: str) -> None:
    """Atomically, keeping the file's permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else None
    temporary = path.with_name(f".{path.name}.tokentrail-{os.getpid()}")
    temporary.write_text(text, encoding="utf-8")
    if mode is not None:
        os.chmod(temporary, mode)
    os.replace(temporary, path)


def _event_groups(hooks: dict[str, Any], event: str, path: Path) -> list[Any]:
    groups = hooks.get(event, [])
    if not isinstance(groups, list):
        raise HookError(f"hooks.{event} in {path} is not a list; nothing was changed")
    return groups


def _is_our_hook(hook: Any) -> bool:
    return isinstance(hook, dict) and is_ours(_split(hook.get("command")), "claude-code")


def _has_ours(groups: list[Any]) -> bool:
    return any(
        isinstance(group, dict) and isinstance(group.get("hooks"), list) and any(map(_is_our_hook, group["hooks"]))
        for group in groups
    )


def install_claude_code(path: Path, *, live: bool) -> Change:
    settings, indent = _read_json(path)
    hooks = settings.get("hooks", {})
    if not isinstance(hooks, dict):
        raise HookError(f"hooks in {path} is not an object; nothing was changed")
    command = shlex.join(hook_argv("claude-code"))
    added = []
    for event in ("SessionEnd", "Stop") if live else ("SessionEnd",):
        groups = _event_groups(hooks, event, path)
        if _has_ours(groups):
            continue
        hooks[event] = [*groups, {"hooks": [{"type": "command", "command": command}]}]
        added.append(event)
    if not added:
        return Change(path, False, "already installed")
    settings["hooks"] = hooks
    _write(path, json.dumps(settings, indent=indent, ensure_ascii=False) + "\n")
    return Change(path, True, f"added the {' and '.join(added)} hook")


def uninstall_claude_code(path: Path) -> Change:
    settings, indent = _read_json(path)
    hooks = settings.get("hooks")
    if not isinstance(hooks, dict):
        return Change(path, False, "not installed")
    removed = []
    for event in ("SessionEnd", "Stop"):
        groups = hooks.get(event)
        if not isinstance(groups, list) or not _has_ours(groups):
            continue
        kept_groups = []
        for group in groups:
            if not isinstance(group, dict) or not isinstance(group.get("hooks"), list):
                kept_groups.append(group)
                continue
            kept = [h for h in group["hooks"] if not _is_our_hook(h)]
            if kept:
                kept_groups.append({**group, "hooks": kept})
            elif len(kept) == len(group["hooks"]):
                kept_groups.append(group)
        if kept_groups:
            hooks[event] = kept_groups
        else:
            del hooks[event]
        removed.append(event)
    if not removed:
        return Change(path, False, "not installed")
    if not hooks:
        del settings["hooks"]
    _write(path, json.dumps(settings, indent=indent, ensure_ascii=False) + "\n")
    return Change(path, True, f"removed the {' and '.join(removed)} hook")


# --- Codex: config.toml --------------------------------------------------------------------------------------------


def codex_config_path(environ: Mapping[str, str], home: Path) -> Path:
    folder = environ.get("CODEX_HOME")
    return (Path(folder).expanduser() if folder else home / ".codex") / "config.toml"


def _read_toml(path: Path) -> tuple[str, dict[str, Any]]:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise HookError(f"{path} is not valid TOML ({error}); fix it first, nothing was changed") from None


def _notify_is_ours(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value) and is_ours(value, "codex")


def install_codex(path: Path) -> Change:
    text, config = _read_toml(path)
    current = config.get("notify")
    if current is not None:
        if _notify_is_ours(current):
            return Change(path, False, "already installed")
        raise HookError(
            f"Codex already runs a notify program ({current!r} in {path}) and runs only one; remove it, or keep it"
            " and upload with `tokentrail import codex` instead. Nothing was changed."
        )
    line = "notify = [" + ", ".join(json.dumps(part) for part in hook_argv("codex")) + "]"
    _write(path, f"{CODEX_MARK}\n{line}\n{text}")
    return Change(path, True, "added the notify program")


def uninstall_codex(path: Path) -> Change:
    text, config = _read_toml(path)
    if not _notify_is_ours(config.get("notify")):
        return Change(path, False, "not installed")
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if not re.match(r"\s*notify\s*=", line):
            continue
        try:
            value = tomllib.loads(line).get("notify")
        except tomllib.TOMLDecodeError:
            continue
        if _notify_is_ours(value):
            start = index - 1 if index > 0 and lines[index - 1].strip() == CODEX_MARK else index
            _write(path, "".join(lines[:start] + lines[index + 1 :]))
            return Change(path, True, "removed the notify program")
    raise HookError(f"the notify program in {path} spans several lines; remove it by hand")
