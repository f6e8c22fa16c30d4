"""Read the ``path:line:col: [rule] message`` errors the CLI prints, and find expected
positions in the files themselves (not in the test author's memory)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers.repo import CliResult, snapshot

ERROR_LINE = re.compile(r"^(?P<path>[^:\s]+):(?P<line>\d+):(?P<col>\d+): (?:\[(?P<rule>CO\d{3})\] )?(?P<message>.+)$")


def errors_of(err: str) -> list[dict[str, Any]]:
    """Every located error line of ``err``: path, line, col, rule (or None) and message."""
    return [m.groupdict() for line in err.splitlines() if (m := ERROR_LINE.match(line))]


def line_of(path: Path, needle: str, after: str | None = None) -> int:
    """1-based line of the first line containing ``needle`` (after the line containing
    ``after``): expected positions come from the file, not from the test author's memory."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) if after else 0
    for number, line in enumerate(lines[start:], start=start + 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def validate_errors(companyos: Callable[..., CliResult], repo: Path, *args: str) -> list[dict[str, Any]]:
    """Run ``validate``; it must fail with exit 2, no traceback, nothing written."""
    before = snapshot(repo)
    result = companyos("validate", *args, cwd=repo)
    assert result.code == 2, (result.out, result.err)
    assert "Traceback" not in result.err
    assert snapshot(repo) == before
    errors = errors_of(result.err)
    assert errors, result.err
    return errors


def by_rule(errors: list[dict[str, Any]], rule: str) -> list[dict[str, Any]]:
    return [e for e in errors if e["rule"] == rule]


def at(error: dict[str, Any]) -> tuple[str, int]:
    return error["path"], int(error["line"])
