"""A GitHub Actions run token is checked against what GitHub's webhooks told Tokentrail (DESIGN §8), from the
attacker's side, on a real `tokentrail serve` over SQLite and PostgreSQL: a token whose `repository_owner`, repository
id or owner id differs from the recorded ones (an organisation renamed and its name re-registered, a repository
deleted and re-created under the same name) reads nothing; neither does one for a repository the App was never
installed on, removed from the installation, or whose installation is suspended or deleted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import LiveServer, make_token, start_server
from tests.github_payloads import github_id, make_installation_event
from tests.oidc_issuer import OidcIssuer
from tests.oidc_scene import AUDIENCE, REPO, get, seed, send_webhook, wait_for

BUDGET = f"/v1/repos/{REPO}/pulls/12/budget"


@pytest.fixture
def issuer() -> Iterator[OidcIssuer]:
    with OidcIssuer(audience=AUDIENCE, repository=REPO) as running:
        yield running


@pytest.fixture
def server(database_url: str, tmp_path: Path, issuer: OidcIssuer) -> Iterator[LiveServer]:
    env = {"TOKENTRAIL_OIDC_JWKS_URL": issuer.jwks_url, "TOKENTRAIL_PUBLIC_URL": AUDIENCE + "/"}
    live = start_server(database_url=database_url, log=tmp_path / "server.log", env=env)
    yield live
    live.stop()


@pytest.fixture
def api_token(factory: sessionmaker[Session]) -> str:
    return make_token(factory, "acme")


@pytest.fixture
def seeded(server: LiveServer, issuer: OidcIssuer, api_token: str) -> LiveServer:
    """acme installed the App on acme/widgets, whose PR 12 has spend; its own run token reads it."""
    seed(server.url, api_token)
    assert get(server, BUDGET, issuer.mint()).status_code == 200
    return server


def refused(server: LiveServer, token: str, path: str = BUDGET) -> str:
    response = get(server, path, token)
    assert response.status_code == 403, response.text
    detail: str = response.json()["detail"]
    return detail


def test_a_token_naming_another_repository_owner_is_refused(seeded: LiveServer, issuer: OidcIssuer) -> None:
    detail = refused(seeded, issuer.mint(repository_owner="evil"))
    assert "repository_owner" in detail and "evil" in detail


def test_an_organisation_renamed_and_re_registered_inherits_nothing(seeded: LiveServer, issuer: OidcIssuer) -> None:
    """acme renamed itself; a newcomer registered the name acme and created a repository called widgets."""
    newcomer = issuer.mint(repository_owner_id=str(github_id("newcomer")), repository_id=str(github_id("new/repo")))
    assert "id" in refused(seeded, newcomer)
    # each id is checked on its own: the same owner with a re-created repository, or the reverse
    assert "repository id" in refused(seeded, issuer.mint(repository_id=str(github_id("acme/widgets-2"))))
    assert "owner id" in refused(seeded, issuer.mint(repository_owner_id=str(github_id("someone"))))
    for path in (BUDGET.removesuffix("/budget"), BUDGET.replace("/budget", "/comment.md")):
        refused(seeded, newcomer, path)


def test_a_suspended_installation_no_longer_authorises(seeded: LiveServer, issuer: OidcIssuer) -> None:
    send_webhook(seeded.url, "installation", make_installation_event(action="suspend"))
    wait_for(lambda: get(seeded, BUDGET, issuer.mint()).status_code == 403, what="the suspension to apply")
    assert "suspended" in refused(seeded, issuer.mint())
    send_webhook(seeded.url, "installation", make_installation_event(action="unsuspend"))
    wait_for(lambda: get(seeded, BUDGET, issuer.mint()).status_code == 200, what="the installation to resume")


def test_a_deleted_installation_no_longer_authorises(seeded: LiveServer, issuer: OidcIssuer) -> None:
    send_webhook(seeded.url, "installation", make_installation_event(action="deleted"))
    wait_for(lambda: get(seeded, BUDGET, issuer.mint()).status_code == 403, what="the uninstallation to apply")
    assert "uninstalled" in refused(seeded, issuer.mint())


def test_a_repository_the_app_was_never_installed_on_is_refused(seeded: LiveServer, issuer: OidcIssuer) -> None:
    """acme installed the App on acme/widgets only: GitHub never told Tokentrail of acme/unknown."""
    unknown = refused(seeded, issuer.mint(repository="acme/unknown"), "/v1/repos/acme/unknown/pulls/1/budget")
    assert "not installed on acme/unknown" in unknown


def test_a_repository_removed_from_the_installation_is_refused(seeded: LiveServer, issuer: OidcIssuer) -> None:
    removal = make_installation_event(repos=())
    removal["action"] = "removed"
    removal["repositories_removed"] = [{"id": github_id(REPO), "full_name": REPO, "name": "widgets"}]
    removal["repositories_added"] = []
    send_webhook(seeded.url, "installation_repositories", removal)
    wait_for(lambda: get(seeded, BUDGET, issuer.mint()).status_code == 403, what="the removal to apply")
    assert "removed" in refused(seeded, issuer.mint())


def test_ids_not_recorded_yet_ask_for_the_app_to_be_installed(
    server: LiveServer, issuer: OidcIssuer, api_token: str
) -> None:
    """Webhooks that carried no ids (recorded before Tokentrail kept them) do not let any token through."""
    installation = make_installation_event()
    for repository in installation["repositories"]:
        del repository["id"]
    send_webhook(server.url, "installation", installation)
    wait_for(lambda: get(server, BUDGET, issuer.mint()).status_code == 403, what="the installation to be stored")
    detail = refused(server, issuer.mint())
    assert "must be installed on acme/widgets" in detail
    # the next webhook about the repository carries its ids: from then on its own runs read it
    seed(server.url, api_token, installation=False)
    assert get(server, BUDGET, issuer.mint()).status_code == 200


def test_the_api_token_of_the_owner_is_not_affected(seeded: LiveServer, issuer: OidcIssuer, api_token: str) -> None:
    send_webhook(seeded.url, "installation", make_installation_event(action="suspend"))
    wait_for(lambda: get(seeded, BUDGET, issuer.mint()).status_code == 403, what="the suspension to apply")
    response = httpx.get(f"{seeded.url}{BUDGET}", headers={"Authorization": f"Bearer {api_token}"}, timeout=30)
    assert response.status_code == 200, response.text
