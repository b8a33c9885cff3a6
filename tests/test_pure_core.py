"""The layering the code relies on (DESIGN §1, STYLE): the pure core imports no framework (checked in a fresh
interpreter), route modules hold no SQL and import no other route module, and no module outgrows ~400 lines."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.pure_modules import PURE

FRAMEWORKS = ["fastapi", "starlette", "sqlmodel", "sqlalchemy", "githubkit", "httpx"]


def test_pure_modules_import_no_framework() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {module}\n" for module in PURE)
        + f"print(','.join(sorted(m for m in {FRAMEWORKS!r} if m in sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


APP = Path(__file__).resolve().parent.parent / "app"
MAX_LINES = 400


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _route_modules() -> list[Path]:
    return sorted(path for path in APP.rglob("*.py") if "APIRouter(" in path.read_text())


def test_route_modules_hold_no_sql_and_import_no_other_route_module() -> None:
    routes = _route_modules()
    names = {"app." + ".".join(path.relative_to(APP).with_suffix("").parts) for path in routes}
    assert len(routes) >= 6
    for path in routes:
        imports = _imports(path)
        assert not any(name == "sqlalchemy" or name.startswith("sqlalchemy.") for name in imports), path.name
        assert not imports & (names - {"app." + path.stem}), path.name


def test_no_module_outgrows_four_hundred_lines() -> None:
    sizes = {str(path.relative_to(APP)): len(path.read_text().splitlines()) for path in APP.rglob("*.py")}
    assert {name: size for name, size in sizes.items() if size > MAX_LINES} == {}


def test_sums_in_sql_are_exact_sums() -> None:
    """SQLite's SUM overflows past 2^63, which ten records at the limits reach: every sum of a usage column goes
    through `app.exact_sum` (the rollup rebuild guards its own sums and skips PRs that would overflow)."""
    guarded = {"exact_sum.py", "pull_rollup.py"}
    raw = [
        str(path.relative_to(APP))
        for path in APP.rglob("*.py")
        if path.name not in guarded and "func.sum(" in path.read_text()
    ]
    assert raw == []
