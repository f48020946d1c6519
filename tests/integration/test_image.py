"""The image's logic without a Docker engine: the wheel that deploy/Dockerfile builds,
installed into a fresh virtual environment that is then made read-only, each service
started from it as an unprivileged user with the environment the image and the compose
file give it (their container paths mapped onto temporary directories, Kafka onto the test
broker), answers /health/ready and the compose healthcheck, keeps its state in
GNLC_STATE_DIR and nowhere else, and exits cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deploy_support import TOKEN, compose_config
from tests.support import HTTP, free_port

pytestmark = [pytest.mark.integration, pytest.mark.long]

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
SERVICES = {
    "scheduler": "GNLC_SCHEDULER_PORT",
    "email": "GNLC_EMAIL_PORT",
    "webhook": "GNLC_WEBHOOK_PORT",
    "console": "GNLC_CONSOLE_PORT",
    "status": "GNLC_STATUS_PORT",
}
UNPRIVILEGED = "nobody"


def dockerfile_env() -> dict[str, str]:
    """The ENV of the Dockerfile's final stage."""
    final = DOCKERFILE.read_text().rsplit("\nFROM ", 1)[1]
    return dict(re.findall(r"(\w+)=(\S+)", " ".join(re.findall(r"^ENV (.+)$", final, re.M))))


def run_as() -> dict[str, Any]:
    """Popen arguments that drop to the unprivileged user, as the image's USER does."""
    if os.geteuid() != 0:
        return {}  # already unprivileged (the user switch needs root; see test_runs_unprivileged)
    account = pwd.getpwnam(UNPRIVILEGED)
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def chown_unprivileged(path: Path) -> None:
    account = pwd.getpwnam(UNPRIVILEGED)
    os.chown(path, account.pw_uid, account.pw_gid)


def interpreter() -> str:
    """A Python 3.11+ that the unprivileged user can run (this one may live in root's home)."""
    candidates = [os.path.realpath(sys.executable), "/usr/local/bin/python3", "/usr/bin/python3"]
    for candidate in dict.fromkeys(candidates):
        if not os.path.exists(candidate):
            continue
        try:
            done = subprocess.run(
                [candidate, "-c", "import sys, venv; sys.exit(sys.version_info < (3, 11))"],
                capture_output=True,
                timeout=30,
                check=False,
                **run_as(),
            )
        except PermissionError:  # e.g. an interpreter under root's home
            continue
        if done.returncode == 0:
            return candidate
    pytest.fail(f"no Python 3.11+ that {UNPRIVILEGED} may run among {candidates}")


def tree(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink()
    }


@dataclass
class Image:
    """The installed package, read-only, and a world-readable place beside it."""

    base: Path
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def demo(self) -> Path:
        """The compose file's `demo` volume: the init step writes it, the services read it."""
        return self.base / "demo"

    def writable_dir(self, name: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.base))  # mode 0700
        if os.geteuid() == 0:
            chown_unprivileged(path)
        return path


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    base = Path(tempfile.mkdtemp(prefix="gnlc-image-"))  # not under pytest's root-only tmp
    base.chmod(0o755)
    try:
        wheels = base / "wheels"
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT), "-w", str(wheels)],
            check=True,
            timeout=300,
        )
        (wheel,) = wheels.glob("gnlc_notify-*.whl")
        venv = base / "venv"
        subprocess.run(
            [interpreter(), "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60
        )
        # the same wheel and the same dependency ranges as the image's `pip install`; uv
        # (the project's installer, beside this interpreter) resolves and installs them in
        # about 3 s where pip takes about 20 s of CPU; compiled to bytecode, as pip does
        # (the image's services then import in 1.5 s instead of 4.5 s)
        uv = Path(sys.executable).with_name("uv")
        python = str(venv / "bin" / "python")
        subprocess.run(
            [str(uv), "pip", "install", "-q", "--compile-bytecode", "--python", python, str(wheel)],
            check=True,
            timeout=600,
        )
        for path in [venv, *venv.rglob("*")]:  # read-only, as the image's site-packages
            if not path.is_symlink():
                path.chmod(stat.S_IMODE(path.stat().st_mode) & ~0o222)
        yield Image(base, venv)
    finally:
        for path in base.rglob("*"):
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(base)


RECEIVER_HOST = "receiver"  # the demo receiver's name on compose's network


def service_env(name: str, image: Image, kafka: str, prefix: str, port: int) -> dict[str, str]:
    """The image's and the compose file's environment for ``name``, container paths mapped."""
    compose = compose_config()["services"][name]
    env = {**dockerfile_env(), **compose["environment"]}
    state = image.writable_dir(f"{name}-state")
    partners = image.demo / "partners.yaml"
    mapped = {
        env["GNLC_STATE_DIR"]: str(state),
        compose["environment"]["GNLC_PARTNERS_PATH"]: str(partners),
    }
    env = {key: mapped.get(value, value) for key, value in env.items()}
    if "GNLC_WEBHOOK_ALLOWED_NETWORKS" in env:  # the receiver's one address: loopback here
        env["GNLC_WEBHOOK_ALLOWED_NETWORKS"] = "127.0.0.1/32"
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": kafka,  # the test broker instead of kafka:9092
            "GNLC_TOPIC_PREFIX": prefix,
            "GNLC_TOPIC_PARTITIONS": "3",
            "GNLC_HTTP_HOST": "127.0.0.1",  # not 0.0.0.0 on a shared machine
            SERVICES[name]: str(port),
            "PATH": f"{image.venv / 'bin'}:/usr/bin:/bin",
            "HOME": str(state),
            "LANG": "C.UTF-8",
        }
    )
    return env


def make_demo_partners(image: Image) -> None:
    """The compose file's init step, from the installed package, as the same user."""
    demo = image.demo
    demo.mkdir(mode=0o700, exist_ok=True)
    if os.geteuid() == 0:
        chown_unprivileged(demo)
    init = compose_config()["services"]["demo-partners"]["command"]
    assert init[:2] == ["python", "/config/demo_partners.py"]
    subprocess.run(
        [
            image.python,
            ROOT / "deploy" / "compose" / "demo_partners.py",
            ROOT / "deploy" / "compose" / "partners.yaml",
            demo / "partners.yaml",
        ],
        env={"PATH": f"{image.venv / 'bin'}:/usr/bin:/bin", "LANG": "C.UTF-8"},
        cwd=demo,
        check=True,
        timeout=60,
        **run_as(),
    )


def own_errors(log: str) -> list[dict[str, Any]]:
    """The service's own error records (the Kafka client logs errors of its own while a
    fresh broker elects group coordinators)."""
    records = []
    for line in log.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("level") in ("error", "critical") and str(
            record.get("logger", "")
        ).startswith("gnlc"):
            records.append(record)
    return records


@dataclass
class Running:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    env: dict[str, str]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def wait_ready(service: Running, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.proc.poll() is not None:
            pytest.fail(f"{service.name} exited at start:\n{service.log.read_text()[-4000:]}")
        try:
            answer = HTTP.get(f"{service.url}/health/ready", timeout=5)
            if answer.status_code == 200:
                body: dict[str, Any] = answer.json()
                return body
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"{service.name} not ready in {timeout}s:\n{service.log.read_text()[-4000:]}")


def test_installed_image_starts_each_service_unprivileged(image: Image, kafka: str) -> None:
    make_demo_partners(image)
    # compose's network names the receiver; here it is loopback (the webhook service checks
    # the file's URLs at start, DNS and SSRF guard included, as it does in a container)
    partners = image.demo / "partners.yaml"
    partners.write_text(partners.read_text().replace(f"//{RECEIVER_HOST}:", "//127.0.0.1:"))
    before = tree(image.venv)
    prefix = f"img{uuid.uuid4().hex[:8]}."
    running: list[Running] = []
    try:
        for name in SERVICES:
            port = free_port()
            env = service_env(name, image, kafka, prefix, port)
            if name == "console":  # compose's network names the services; here, loopback
                env["GNLC_CONSOLE_SCHEDULER_URL"] = running[0].url
                env["GNLC_CONSOLE_WEBHOOK_URL"] = running[2].url
            log = image.base / f"{name}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    compose_config()["services"][name]["command"],
                    env=env,
                    cwd=env["GNLC_STATE_DIR"],  # the image's WORKDIR is its state directory
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    **run_as(),
                )
            running.append(Running(name, proc, port, env, log))
        ready = {service.name: wait_ready(service) for service in running}

        for service in running:
            checks = ready[service.name]["checks"]
            assert checks.get("kafka", service.name == "console") is True
            assert checks["database"] is True, ready
            # the compose healthcheck, with the service's own port
            test = compose_config()["services"][service.name]["healthcheck"]["test"]
            command = [*test[1:4], re.sub(r":\d+/", f":{service.port}/", test[4])]
            probe = subprocess.run(command, env=service.env, timeout=30, check=False, **run_as())
            assert probe.returncode == 0, command
            state = Path(service.env["GNLC_STATE_DIR"])
            database = state / f"{service.name}.db"
            assert database.is_file()
            if os.geteuid() == 0:
                assert database.stat().st_uid == pwd.getpwnam(UNPRIVILEGED).pw_uid
        # Mailpit is not here: the email service is ready, with SMTP degraded
        assert ready["email"]["degraded"] == ["smtp"]
        assert "degraded" not in ready["scheduler"]

        token = {"authorization": f"Bearer {TOKEN}"}
        scheduler, _email, webhook, console, _status = running
        assert ready["console"]["checks"]["scheduler"] is True
        # the console's templates and static files are in the wheel
        assert "Sign in" in HTTP.get(f"{console.url}/signin", timeout=10).text
        htmx = HTTP.get(f"{console.url}/static/htmx-2.0.11.min.js", timeout=10)
        assert htmx.status_code == 200
        assert htmx.headers["content-type"].startswith(
            ("text/javascript", "application/javascript")
        )
        cities = HTTP.get(f"{scheduler.url}/v1/cities", headers=token, timeout=10)
        assert cities.status_code == 200
        assert len(cities.json()) > 20  # the sample directory shipped in the wheel
        endpoints = HTTP.get(f"{webhook.url}/v1/endpoints", headers=token, timeout=10)
        assert [e["id"] for e in endpoints.json()] == ["demo-partner"]  # from the init step
    finally:
        for service in running:
            if service.proc.poll() is None:
                service.proc.send_signal(signal.SIGTERM)
        codes = {}
        for service in running:
            try:
                codes[service.name] = service.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                service.proc.kill()
                codes[service.name] = service.proc.wait()
    # a clean stop: the lifespan's shutdown ran to its end; uvicorn then re-raises the
    # SIGTERM it caught, so the status is that of SIGTERM (143 in a container)
    for service in running:
        output = service.log.read_text()
        assert codes[service.name] in (0, -signal.SIGTERM), (service.name, output[-3000:])
        assert '"event": "service stopped"' in output, (service.name, output[-3000:])
        assert not own_errors(output), (service.name, own_errors(output))
    assert tree(image.venv) == before  # nothing written into the installed package
    assert not list(image.venv.rglob("*.db"))


def test_runs_unprivileged() -> None:
    if os.geteuid() != 0:
        pytest.skip("the tests run unprivileged already: no user to switch from (needs root)")
    done = subprocess.run(["id", "-u"], capture_output=True, text=True, check=True, **run_as())
    assert done.stdout.strip() == str(pwd.getpwnam(UNPRIVILEGED).pw_uid)


def test_service_without_a_token_refuses_to_start(image: Image, kafka: str) -> None:
    env = service_env("webhook", image, kafka, f"img{uuid.uuid4().hex[:8]}.", free_port())
    del env["GNLC_OPERATOR_TOKEN"]
    done = subprocess.run(
        ["python", "-m", "gnlc_webhook"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        **run_as(),
    )
    assert done.returncode != 0
    assert "GNLC_OPERATOR_TOKEN is not set" in done.stderr
    assert json.dumps(sorted(os.listdir(env["GNLC_STATE_DIR"]))) == "[]"
