"""mypy finds no errors in ``engine`` and ``server`` (STYLE.md habit 5), with the configuration
in pyproject.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # about 7 s without mypy's cache (a clean checkout), well under 1 s with it
def test_mypy_finds_no_errors_in_engine_and_server(monkeypatch: pytest.MonkeyPatch) -> None:
    api = pytest.importorskip("mypy.api", reason="mypy is not installed")
    monkeypatch.chdir(ROOT)  # where mypy finds pyproject.toml and keeps its cache
    stdout, stderr, status = api.run(["engine", "server"])
    assert status in (0, 1) and not stderr, f"mypy did not run: {stderr or stdout}"
    errors = [line for line in stdout.splitlines() if ": error:" in line]
    assert not errors, "mypy:\n" + "\n".join(errors)
