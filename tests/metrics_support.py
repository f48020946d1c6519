"""Metrics for the tests: promtool (``deploy/tools.sh promtool``), the text format parsed,
and each service's registry built in process."""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from gnlc_core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("scheduler", "email", "webhook")


@functools.cache
def promtool() -> Path:
    """Prometheus's promtool; the test fails (never skips) when it cannot be had."""
    done = subprocess.run(
        [ROOT / "deploy" / "tools.sh", "promtool"], capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        pytest.fail(f"deploy/tools.sh promtool could not provide promtool:\n{done.stderr}")
    return Path(done.stdout.strip())


def run_promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], input=stdin, capture_output=True, text=True, timeout=120
    )


def check_metrics(text: str) -> None:
    """``promtool check metrics`` finds no problem in ``text``."""
    done = run_promtool("check", "metrics", stdin=text)
    problems = f"promtool check metrics:\n{done.stdout}{done.stderr}"
    assert done.returncode == 0, problems
    assert not done.stdout.strip(), problems
    assert not done.stderr.strip(), problems


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition, by (sample name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(found: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(value for (n, have), value in found.items() if n == name and wanted <= have)


def family_names(text: str) -> set[str]:
    """The names of the families in an exposition as Prometheus stores them (a counter's
    ``_total`` included; a histogram's base name)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(sample.name for sample in family.samples)
        names.add(f"{family.name}_total" if family.type == "counter" else family.name)
    return names


def settings_for(tmp: Path, **extra: object) -> Settings:
    values: Mapping[str, object] = {
        "state_dir": tmp,
        "operator_token": SecretStr("metrics-test-operator-token"),
        "kafka_bootstrap_servers": "127.0.0.1:9",
        **extra,
    }
    return Settings(**values)  # type: ignore[arg-type]


def build(service: str, settings: Settings) -> FastAPI:
    if service == "scheduler":
        from gnlc_scheduler.app import create_app as scheduler

        return scheduler(settings)
    if service == "email":
        from gnlc_email.app import create_app as email

        return email(settings)
    from gnlc_webhook.app import create_app as webhook

    return webhook(settings)


async def scrape(app: FastAPI, *, also: Iterable[str] = ()) -> str:
    """``GET /metrics`` in process (after the paths in ``also``, to have requests counted)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        for path in also:
            await client.get(path)
        answer = await client.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return answer.text
