"""On a CPython other than 3.11, 3.12 and 3.13, `import ferrodyn` says which versions it supports
(issue 14: the Rust extension is built for those only)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PYSRC = Path(__file__).resolve().parents[1] / "pysrc"


def _interpreters() -> list[str]:
    """Real interpreters of other versions on this machine (pyenv's, or on PATH; not shims)."""
    found = []
    for v in ("3.14", "3.10"):
        pyenv = sorted(Path.home().glob(f".pyenv/versions/{v}.*/bin/python"))
        path = str(pyenv[-1]) if pyenv else shutil.which(f"python{v}")
        if path is not None and "shims" not in path:
            found.append(path)
    return found


@pytest.mark.parametrize("python", _interpreters() or [pytest.param(None, marks=pytest.mark.skip)])
def test_import_on_another_version_names_the_supported_one(python: str | None) -> None:
    assert python is not None
    r = subprocess.run(
        [python, "-c", "import ferrodyn"],
        check=False,
        env={"PYTHONPATH": str(PYSRC), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode != 0
    assert "ferrodyn supports CPython 3.11, 3.12 and 3.13 only" in r.stderr, r.stderr


def test_this_interpreter_is_the_supported_one() -> None:
    assert sys.version_info[:2] in ((3, 11), (3, 12), (3, 13))
