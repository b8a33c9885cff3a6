"""The test environments may hold only the `.pth` files listed here.

Python runs the `import` lines of every `.pth` file in site-packages at each start of the interpreter, before any
test code. Compromised releases of client packages (some litellm releases were) shipped one to run their payload in
every Python process of the environment. The suite therefore refuses to start when a `.pth` file appears that is not
on this list; a new, legitimate one is added here after reading what it does.
"""

from __future__ import annotations

import os
import site
from collections.abc import Iterable
from fnmatch import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
CLIENTS_VENV = Path(os.environ.get("TOKENTRAIL_TEST_CLIENTS_VENV", ROOT / ".venv-clients"))

# setuptools' shim, in every venv that has setuptools; pip's editable install of Tokentrail itself; coverage's hook
# for measuring subprocesses (it does nothing unless COVERAGE_PROCESS_START is set), from the dev extra pytest-cov.
ALLOWED_PROJECT = ("distutils-precedence.pth", "__editable__.tokentrail-*.pth", "a1_coverage.pth")
ALLOWED_CLIENTS = ("distutils-precedence.pth",)


def venv_site_packages(venv: Path) -> list[Path]:
    """A venv's site-packages folders, found without starting its interpreter (which would run its .pth files)."""
    return sorted(venv.glob("lib/python*/site-packages"))


def running_site_packages() -> list[Path]:
    folders = [Path(folder) for folder in site.getsitepackages()]
    if site.ENABLE_USER_SITE:
        folders.append(Path(site.getusersitepackages()))
    return folders


def unexpected_pth_files(folders: Iterable[Path], allowed: Iterable[str]) -> list[Path]:
    patterns = tuple(allowed)
    return [
        path
        for folder in folders
        if folder.is_dir()
        for path in sorted(folder.glob("*.pth"))
        if not any(fnmatch(path.name, pattern) for pattern in patterns)
    ]


def find_unexpected_pth_files() -> list[Path]:
    """Unexpected .pth files of the interpreter running the tests and of the clients' environment."""
    return [
        *unexpected_pth_files(running_site_packages(), ALLOWED_PROJECT),
        *unexpected_pth_files(venv_site_packages(CLIENTS_VENV), ALLOWED_CLIENTS),
    ]


def refuse_unexpected_pth_files() -> None:
    found = find_unexpected_pth_files()
    if found:
        listing = "\n".join(f"  {path}" for path in found)
        pytest.exit(
            "refusing to run: unexpected .pth files, which Python executes at every interpreter start "
            f"(a compromised package is the usual source):\n{listing}\n"
            "Read each one; if it is legitimate, add it to tests/clients/pth_guard.py. Otherwise rebuild the "
            "environment from the pinned, hashed requirements.",
            returncode=3,
        )
