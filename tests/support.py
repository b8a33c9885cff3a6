"""Helpers the test modules share (so that test modules never import each other)."""

from __future__ import annotations

from fastapi.testclient import TestClient

SAME_ORIGIN = {"Origin": "http://testserver"}  # the TestClient's own origin: a form posted by our own pages


def sign_in(client: TestClient, token: str) -> None:
    """Sign in as a browser does from the login page; the client keeps the session cookie."""
    answer = client.post("/login", data={"token": token}, headers=SAME_ORIGIN, follow_redirects=False)
    assert answer.status_code == 303, answer.text
