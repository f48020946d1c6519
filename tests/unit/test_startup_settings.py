"""Start-up settings: where state lives (a source checkout, an installed package, an image)
and the refusal to serve the operator API without a token."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

import gnlc_core.settings as settings_module
from gnlc_core.db import database_url
from gnlc_core.service import operator_token_problem
from gnlc_core.settings import PROJECT_ROOT, SAMPLE_DIRECTORY, Settings, checkout_root


def tree(root: Path, *files: str) -> None:
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).touch()


SITE = "usr/local/lib/python3.11/site-packages"


@pytest.mark.parametrize(
    ("files", "package", "is_checkout"),
    [
        (["pyproject.toml", "services/gnlc_core/settings.py"], "services/gnlc_core", True),
        (["services/gnlc_core/settings.py"], "services/gnlc_core", False),
        ([f"{SITE}/gnlc_core/settings.py"], f"{SITE}/gnlc_core", False),
        (
            [f"{SITE}/gnlc_core/settings.py", "usr/local/lib/pyproject.toml"],
            f"{SITE}/gnlc_core",
            False,
        ),
    ],
)
def test_checkout_root(tmp_path: Path, files: list[str], package: str, is_checkout: bool) -> None:
    tree(tmp_path, *files)
    assert checkout_root(tmp_path / package) == (tmp_path if is_checkout else None)


def test_this_checkout_keeps_state_in_local_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GNLC_STATE_DIR", raising=False)
    assert PROJECT_ROOT is not None
    assert (PROJECT_ROOT / "pyproject.toml").is_file()
    assert Settings().state_dir == PROJECT_ROOT / ".local" / "state"
    assert SAMPLE_DIRECTORY.is_file()


def test_state_dir_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GNLC_DATABASE_URL", raising=False)
    monkeypatch.setenv("GNLC_STATE_DIR", str(tmp_path / "state"))
    settings = Settings()
    assert database_url(settings, "email") == f"sqlite+aiosqlite:///{tmp_path}/state/email.db"
    assert (tmp_path / "state").is_dir()


def test_database_url_wins_over_the_state_dir(tmp_path: Path) -> None:
    settings = Settings(
        state_dir=tmp_path / "unused", database_url=SecretStr("sqlite+aiosqlite:///x")
    )
    assert database_url(settings, "email") == "sqlite+aiosqlite:///x"
    assert not (tmp_path / "unused").exists()


def test_unusable_state_dir_names_the_variable(tmp_path: Path) -> None:
    (tmp_path / "a-file").touch()
    settings = Settings(state_dir=tmp_path / "a-file" / "state")
    with pytest.raises(RuntimeError, match="GNLC_STATE_DIR"):
        database_url(settings, "scheduler")


def test_installed_package_state_is_in_the_working_directory(tmp_path: Path) -> None:
    """A copy of the package outside any checkout (as pip installs it) resolves its state
    directory in the current directory, not next to the library."""
    site = tmp_path / "site-packages"
    package = site / "gnlc_core"
    package.mkdir(parents=True)
    source = Path(settings_module.__file__)
    (package / "settings.py").write_text(source.read_text())
    (package / "__init__.py").touch()
    work = tmp_path / "work"
    work.mkdir()
    probe = (
        "import gnlc_core.settings as s; "
        "print(s.PROJECT_ROOT); print(s.Settings().state_dir); print(s.SAMPLE_DIRECTORY)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=work,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out == ["None", str(work / ".local" / "state"), str(package / "sample-cities.csv")]


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        (None, "GNLC_OPERATOR_TOKEN is not set: the scheduler serves the operator API"),
        ("", "GNLC_OPERATOR_TOKEN is not set"),
        ("   ", "GNLC_OPERATOR_TOKEN is not set"),
        ("short-token", "GNLC_OPERATOR_TOKEN is too short (11 characters, at least 16)"),
        ("a-long-enough-token", None),
    ],
)
def test_operator_token_problem(token: str | None, problem: str | None) -> None:
    settings = Settings(operator_token=None if token is None else SecretStr(token))
    found = operator_token_problem(settings, "scheduler")
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert found.startswith(problem)


@pytest.mark.parametrize("service", ["gnlc_scheduler", "gnlc_webhook"])
def test_service_refuses_to_start_without_a_token(service: str, tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "GNLC_STATE_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", service],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "GNLC_OPERATOR_TOKEN is not set" in done.stderr
    assert not list(tmp_path.iterdir())  # refused before touching any state
