"""`dagster dev` for real, on a free loopback port, and its GraphQL API."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.process_tree import wait_until

REPO_ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).parent / "dagster")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(url: str, query: str, variables: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps({"query": query, "variables": variables}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        body = json.loads(resp.read())
    assert "errors" not in body, body
    return body["data"]


@contextmanager
def dagster_dev(env: dict[str, str], log: Path) -> Iterator[str]:
    """Start `dagster dev` with `env` (its output in `log`), wait until it answers, yield its GraphQL URL;
    stop its whole process group at the end."""
    port = free_port()
    with log.open("w") as out:
        server = subprocess.Popen([DAGSTER, "dev", "-h", "127.0.0.1", "-p", str(port)], cwd=REPO_ROOT, env=env,
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/graphql"

    def up():
        try:
            return graphql(url, "{ version }", {})
        except (urllib.error.URLError, OSError):
            assert server.poll() is None, f"dagster dev exited:\n{log.read_text()[-3000:]}"
            return None

    try:
        wait_until(up, 120, "the webserver", poll_s=0.5)
        yield url
    finally:
        os.killpg(server.pid, 15)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait()
