"""The `tokentrail hooks` command line: install, uninstall, and what the installed hooks run (`run`, `upload`)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from app.local import hook_run, hooks


def add_arguments(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("hooks", help="make each finished Claude Code or Codex session upload itself")
    actions = parser.add_subparsers(dest="hooks_action", required=True, metavar="ACTION")
    install = actions.add_parser("install", help="add the hook to the agent's user settings (idempotent)")
    install.add_argument("agent", choices=hooks.AGENTS)
    install.add_argument("--live", action="store_true", help="Claude Code: also upload after every answer (Stop)")
    install.add_argument("--server", help="Tokentrail server URL the hooks upload to (stored for them)")
    install.add_argument("--token", help="API token the hooks upload with (stored for them, mode 0600)")
    uninstall = actions.add_parser("uninstall", help="remove exactly what install added")
    uninstall.add_argument("agent", choices=hooks.AGENTS)
    run = actions.add_parser("run", help="what the installed hook runs (the agent calls it)")
    run.add_argument("agent", choices=hooks.AGENTS)
    run.add_argument("payload", nargs="*", help=argparse.SUPPRESS)
    upload = actions.add_parser("upload", help="upload one transcript or rollout now, logging the outcome")
    upload.add_argument("agent", choices=hooks.AGENTS)
    upload.add_argument("path", type=Path)
    parser.set_defaults(func=main)


def main(
    args: argparse.Namespace,
    *,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
) -> int:
    environ = os.environ if environ is None else environ
    home = Path.home() if home is None else home
    out, err = out or sys.stdout, err or sys.stderr
    if args.hooks_action == "run":
        return hook_run.run_hook(args.agent, args.payload, stdin=sys.stdin, environ=environ, home=home)
    if args.hooks_action == "upload":
        return hook_run.upload(args.agent, args.path.expanduser(), environ=environ, home=home)
    if args.agent == "codex" and getattr(args, "live", False):
        err.write("tokentrail hooks: --live is for claude-code; Codex's notify runs after every turn already\n")
        return 2
    try:
        if args.hooks_action == "install":
            change = (
                hooks.install_claude_code(hooks.claude_settings_path(environ, home), live=args.live)
                if args.agent == "claude-code"
                else hooks.install_codex(hooks.codex_config_path(environ, home))
            )
        elif args.agent == "claude-code":
            change = hooks.uninstall_claude_code(hooks.claude_settings_path(environ, home))
        else:
            change = hooks.uninstall_codex(hooks.codex_config_path(environ, home))
    except hooks.HookError as error:
        err.write(f"tokentrail hooks: {error}\n")
        return 1
    out.write(f"{change.path}: {change.what}\n")
    if args.hooks_action == "install":
        folder = hook_run.config_dir(environ, home)
        if args.server or args.token:
            stored = hook_run.store_credentials(folder, server=args.server, token=args.token)
            out.write(f"{stored}: server and token stored for the hooks (mode 0600)\n")
        server, token = hook_run.credentials(folder, environ)
        if not token:
            err.write(
                "tokentrail hooks: warning: no token stored yet; the hooks upload nothing until you run "
                f"`tokentrail hooks install {args.agent} --token T` (or set TOKENTRAIL_TOKEN for the agent)\n"
            )
        out.write(f"Finished sessions upload to {server}; problems go to {folder / hook_run.LOG_NAME}.\n")
    return 0
