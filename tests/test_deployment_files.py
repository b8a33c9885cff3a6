"""The files a platform engineer deploys from, checked without a Docker engine: compose.yaml parses, each service's
command is a real `tokentrail` subcommand (read by the CLI's own parser), each variable it sets is a real setting
and the settings accept them; the Dockerfile pins its base image, installs from the hashed lock and checks health
with `tokentrail healthcheck`; the lock covers pyproject's runtime dependencies; `make demo` installs no dev tools."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.fernet import Fernet
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from app.cli import build_parser
from app.settings import Settings
from tests.conftest import ROOT

PREFIX = "TOKENTRAIL_"
SAMPLE = {  # what an operator puts in .env, for the ${NAME:?…} references
    "POSTGRES_PASSWORD": "s3cret",
    "TOKENTRAIL_PUBLIC_URL": "https://tokentrail.example.com",
    "TOKENTRAIL_ENCRYPTION_KEY": Fernet.generate_key().decode(),
}


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return data


def interpolate(value: str) -> str:
    """Compose's ${NAME}, ${NAME:?message} and ${NAME:-default}, filled from SAMPLE."""

    def one(match: re.Match[str]) -> str:
        name, operator, rest = match.group(1), match.group(2), match.group(3)
        if name in SAMPLE:
            return SAMPLE[name]
        assert operator == ":-", f"{name} has no sample value and no default"
        return str(rest)

    return re.sub(r"\$\{([A-Z_][A-Z0-9_]*)(?:(:[?-])([^}]*))?\}", one, value)


def tokentrail_services() -> dict[str, dict[str, Any]]:
    return {name: spec for name, spec in compose()["services"].items() if spec.get("image") == "tokentrail:local"}


def test_compose_has_postgres_one_migration_one_api_and_one_worker() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "migrate", "api", "worker"}
    assert set(tokentrail_services()) == {"migrate", "api", "worker"}
    assert services["postgres"]["healthcheck"]["test"]
    migrate = services["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("api", "worker"):  # the schema is migrated once, before either starts
        assert services[name]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert services["api"]["environment"]["TOKENTRAIL_RUN_WORKER"] == "false"
    assert "TOKENTRAIL_RUN_WORKER" not in services["worker"]["environment"]


@pytest.mark.parametrize("service", ["migrate", "api", "worker"])
def test_each_command_is_a_real_tokentrail_subcommand(service: str) -> None:
    command = tokentrail_services()[service]["command"]
    assert command[0] == "tokentrail"
    args = build_parser().parse_args(command[1:])
    expected = {"migrate": "cmd_migrate", "api": "cmd_serve", "worker": "cmd_worker"}[service]
    assert args.func.__name__ == expected
    if service == "api":
        assert (args.host, args.port) == ("0.0.0.0", 8000)
        assert tokentrail_services()["api"]["ports"] == [f"{args.port}:{args.port}"]


@pytest.mark.parametrize("service", ["migrate", "api", "worker"])
def test_each_variable_is_a_real_setting_and_the_settings_accept_the_values(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = tokentrail_services()[service]["environment"]
    names = {name for name in environment if name.startswith(PREFIX)}
    assert names == set(environment), "only Tokentrail's own variables"
    unknown = {name for name in names if name[len(PREFIX) :].lower() not in Settings.model_fields}
    assert unknown == set()
    for name in list(os.environ):
        if name.startswith(PREFIX):
            monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, interpolate(str(value)))
    settings = Settings()
    assert settings.database_url == "postgresql+psycopg://tokentrail:s3cret@postgres:5432/tokentrail"
    assert str(settings.public_url).rstrip("/") == SAMPLE["TOKENTRAIL_PUBLIC_URL"]
    assert settings.encryption_key is not None
    assert settings.run_worker is (service != "api")


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_dockerfile_pins_its_base_installs_the_lock_and_checks_health_with_the_cli() -> None:
    instructions = dockerfile_instructions()
    base = next(argument for keyword, argument in instructions if keyword == "FROM")
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base), base
    runs = " ".join(argument for keyword, argument in instructions if keyword == "RUN")
    assert "pip install --require-hashes --no-deps -r requirements.txt" in runs
    assert "--no-build-isolation" in runs  # the project builds with the locked setuptools, fetching nothing
    for keyword, argument in instructions:
        if keyword == "COPY":
            *sources, _target = argument.split()
            assert all((ROOT / source).exists() for source in sources), argument
    healthcheck = next(argument for keyword, argument in instructions if keyword == "HEALTHCHECK")
    command = json.loads(healthcheck.split("CMD", 1)[1])
    assert command[0] == "tokentrail"
    assert build_parser().parse_args(command[1:]).func.__name__ == "cmd_healthcheck"
    default = json.loads(next(argument for keyword, argument in instructions if keyword == "CMD"))
    assert build_parser().parse_args(default[1:]).func.__name__ == "cmd_serve"


def locked() -> dict[str, tuple[str, list[str]]]:
    """requirements.txt: name → (version, hashes)."""
    text = (ROOT / "requirements.txt").read_text()
    pins: dict[str, tuple[str, list[str]]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        head = block.split("\\", 1)[0].strip()
        if not head or head.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)(\s*;.*)?", head)
        assert match, f"not an exact pin: {head!r}"
        pins[canonicalize_name(match.group(1))] = (match.group(2), re.findall(r"--hash=sha256:([0-9a-f]{64})", block))
    return pins


def runtime_requirements() -> list[Requirement]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [Requirement(text) for text in pyproject["project"]["dependencies"]]


def test_the_lock_pins_every_runtime_dependency_with_hashes() -> None:
    pins = locked()
    assert all(hashes for _version, hashes in pins.values()), "every pin carries its hashes"
    environment = {**default_environment(), "sys_platform": "linux", "platform_system": "Linux"}
    wanted = list(runtime_requirements())
    # The extras pyproject asks for (uvicorn[standard], psycopg[binary], pyjwt[crypto]…), read from the installed
    # distributions' metadata: what each extra adds must be locked too.
    for requirement in runtime_requirements():
        try:
            metadata = distribution(requirement.name).requires or []
        except PackageNotFoundError:
            continue
        for extra in requirement.extras:
            for text in metadata:
                extra_requirement = Requirement(text)
                if (
                    extra_requirement.marker is not None
                    and extra_requirement.marker.evaluate({**environment, "extra": extra})
                    and not extra_requirement.marker.evaluate({**environment, "extra": ""})
                ):
                    wanted.append(extra_requirement)
    missing, outside = [], []
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        if name not in pins:
            missing.append(str(requirement))
        elif not requirement.specifier.contains(pins[name][0], prereleases=True):
            outside.append(f"{requirement} (locked {pins[name][0]})")
    assert missing == [] and outside == [], "run `make lock`"
    assert "setuptools" in pins  # the image builds Tokentrail with it


def test_make_demo_installs_tokentrail_without_its_development_tools(tmp_path: Path) -> None:
    dry_run = subprocess.run(
        ["make", "-n", "demo", f"VENV={tmp_path / 'venv'}"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    installs = [line for line in dry_run.stdout.splitlines() if "pip install" in line and "--upgrade pip" not in line]
    assert installs and all(line.rstrip().endswith("pip install --quiet -e .") for line in installs), installs
    assert "[dev]" not in dry_run.stdout
    assert "tokentrail demo" in dry_run.stdout
