"""`tokentrail demo` as a newcomer starts it: on a busy port it says who holds the port and which one is free
(and touches nothing), and the `export TOKEN=…` line it prints is what the README's next step needs."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.conftest import ROOT, free_port

ENV = {k: v for k, v in os.environ.items() if not k.startswith("TOKENTRAIL_")}


def test_a_busy_port_names_the_process_and_a_free_port_and_seeds_nothing(tmp_path: Path) -> None:
    database = tmp_path / "tokentrail-demo.db"
    database.write_bytes(b"another demo's database")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "app.cli", "demo", "--no-serve", "--port", str(port), "--database", str(database)],
            cwd=ROOT,
            env=ENV,
            capture_output=True,
            text=True,
            timeout=120,
        )
        listener.setblocking(False)
        try:
            listener.accept()
            contacted = True
        except BlockingIOError:
            contacted = False
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"port {port} on 127.0.0.1 is already in use by process {os.getpid()}" in result.stderr
    assert f"kill {os.getpid()}" in result.stderr
    suggested = re.search(r"tokentrail demo --port (\d+)", result.stderr)
    assert suggested is not None and int(suggested.group(1)) != port
    assert not contacted  # nothing was sent to whoever listens there
    assert database.read_bytes() == b"another demo's database"  # and no database was recreated


def test_the_printed_token_sends_usage_to_the_running_demo(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "demo", "--port", str(port), "--database", str(tmp_path / "demo.db")],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:  # bounded: the demo prints "Press Ctrl-C" once it has seeded
            lines.append(line)
            if "Press Ctrl-C" in line or len(lines) > 500:
                break
        exports = [line.strip() for line in lines if line.startswith("export TOKEN=")]
        assert len(exports) == 1, "".join(lines)
        token = exports[0].removeprefix("export TOKEN=")
        record = {
            "id": "readme-1",
            "timestamp": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
            "provider": "anthropic",
            "model": "claude-sonnet-4-5",
            "input_tokens": 1000,
            "output_tokens": 100,
            "repo": "acme/widgets",
            "branch": "feat/cache",
        }
        sent = httpx.post(
            f"http://127.0.0.1:{port}/v1/usage", json=[record], headers={"Authorization": f"Bearer {token}"}
        )
        assert sent.status_code == 200, sent.text
        assert sent.json()["accepted"] == 1
    finally:
        process.terminate()
        process.wait(timeout=60)
        if process.stdout is not None:
            process.stdout.close()
