"""dev.sh's install decision: a fresh, half-built or stale venv is (re)installed, a current one
is left alone. pip is stubbed (FERRODYN_PIP), so nothing is downloaded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT / "dev.sh"


def _env(venv: Path, pip_log: Path, *, pip_fails: bool = False) -> dict[str, str]:
    stub = pip_log.parent / "pip-stub.sh"
    stub.write_text(
        "#!/usr/bin/env bash\n"
        f'echo "$@" >> "{pip_log}"\n' + ("exit 1\n" if pip_fails else "exit 0\n")
    )
    stub.chmod(0o755)
    env = dict(os.environ)
    env.update(FERRODYN_VENV=str(venv), FERRODYN_PIP=str(stub), PYTHON=sys.executable)
    return env


def _dev(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(DEV), *args],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _pip_calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_empty_home_creates_and_installs(tmp_path: Path) -> None:
    venv, log = tmp_path / "home" / ".cache" / "venv", tmp_path / "pip.log"
    env = _env(venv, log)
    assert _dev("plan", env=env).stdout.startswith("create no venv")
    r = _dev("install", env=env)
    assert r.returncode == 0, r.stderr
    assert "creating a venv" in r.stdout and "because: a new venv" in r.stdout
    calls = _pip_calls(log)
    assert any(c.startswith("install -r ci/requirements.txt") for c in calls), calls
    assert (venv / "bin" / "python").exists()
    assert _dev("plan", env=env).stdout.strip() == "ok"
    # A current venv: nothing is installed again.
    n = len(_pip_calls(log))
    r = _dev("install", env=env)
    assert r.returncode == 0 and "installing" not in r.stdout
    assert len(_pip_calls(log)) == n


def test_half_built_venv_is_repaired(tmp_path: Path) -> None:
    venv, log = tmp_path / "venv", tmp_path / "pip.log"
    # The install is interrupted (pip fails): no stamp is written, and the command fails.
    r = _dev("install", env=_env(venv, log, pip_fails=True))
    assert r.returncode != 0
    plan = _dev("plan", env=_env(venv, log)).stdout
    assert plan.startswith("install") and "no install stamp" in plan
    r = _dev("install", env=_env(venv, log))
    assert r.returncode == 0, r.stderr
    assert "no install stamp" in r.stdout
    assert _dev("plan", env=_env(venv, log)).stdout.strip() == "ok"


def test_stale_venv_is_reinstalled(tmp_path: Path) -> None:
    venv, log = tmp_path / "venv", tmp_path / "pip.log"
    env = _env(venv, log)
    assert _dev("install", env=env).returncode == 0
    (venv / ".ferrodyn-stamp").write_text("built-for-older-pins\n")
    plan = _dev("plan", env=env).stdout
    assert plan.startswith("install") and "other pins" in plan
    n = len(_pip_calls(log))
    r = _dev("install", env=env)
    assert r.returncode == 0 and "other pins" in r.stdout
    assert len(_pip_calls(log)) > n


def test_broken_venv_is_recreated(tmp_path: Path) -> None:
    venv, log = tmp_path / "venv", tmp_path / "pip.log"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("#!/bin/sh\nexit 1\n")
    (venv / "bin" / "python").chmod(0o755)
    env = _env(venv, log)
    assert "broken" in _dev("plan", env=env).stdout
    r = _dev("install", env=env)
    assert r.returncode == 0, r.stderr
    assert _dev("plan", env=env).stdout.strip() == "ok"


@pytest.mark.parametrize("args", [("bogus",), ()])
def test_unknown_command_prints_usage(args: tuple[str, ...], tmp_path: Path) -> None:
    r = _dev(*args, env=_env(tmp_path / "venv", tmp_path / "pip.log"))
    assert r.returncode == 2
    assert "usage: ./dev.sh" in r.stderr


def test_missing_or_unsupported_python_is_one_sentence(tmp_path: Path) -> None:
    env = _env(tmp_path / "venv", tmp_path / "pip.log")
    env["PYTHON"] = "no-such-python-3.11"
    r = _dev("plan", env=env)
    assert r.returncode == 1
    assert r.stderr.strip().startswith("[dev] error: no Python interpreter")
    assert len(r.stderr.strip().splitlines()) == 1
    fake = tmp_path / "python-old"
    fake.write_text("#!/bin/sh\necho 3.8\n")
    fake.chmod(0o755)
    env["PYTHON"] = str(fake)
    r = _dev("plan", env=env)
    assert r.returncode == 1 and "supports CPython 3.11" in r.stderr


def test_missing_rust_toolchain_is_one_sentence(tmp_path: Path) -> None:
    venv, log = tmp_path / "venv", tmp_path / "pip.log"
    env = _env(venv, log)
    assert _dev("install", env=env).returncode == 0
    # A PATH with bash, the coreutils dev.sh uses and python, but no cargo.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("bash", "sha256sum", "cut", "cat", "dirname", "rm", "mkdir"):
        src = subprocess.run(
            ["which", tool], check=True, capture_output=True, text=True
        ).stdout.strip()
        (bindir / tool).symlink_to(src)
    env["PATH"] = str(bindir)
    r = subprocess.run(
        [str(bindir / "bash"), str(DEV), "test"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1
    assert "no Rust toolchain (cargo)" in r.stderr
