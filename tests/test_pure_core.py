"""The pure core imports no framework (DESIGN §1): checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

PURE = [
    "app.records",
    "app.attribution",
    "app.agent_env",
    "app.parsing",
    "app.batch_size",
    "app.events",
    "app.webhook_fields",
    "app.pricing",
    "app.money",
    "app.charts",
    "app.outcome_report",
    "app.app_manifest",
    "app.github_login",
    "app.sources.canonical",
    "app.sources.common",
    "app.sources.litellm",
    "app.sources.otlp",
    "app.sources.claude_code",
    "app.sources.codex",
    "app.sources.langfuse",
    "app.sources.portkey",
    "app.sources.helicone",
]
FRAMEWORKS = ["fastapi", "starlette", "sqlmodel", "sqlalchemy", "githubkit", "httpx"]


def test_pure_modules_import_no_framework() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {module}\n" for module in PURE)
        + f"print(','.join(sorted(m for m in {FRAMEWORKS!r} if m in sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
