"""Which process ran a call: a worker's own record of it would stay in the worker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def record_pids(monkeypatch: pytest.MonkeyPatch, module: object, name: str, log: Path) -> Path:
    """Each call of ``module.name``, in this process or a forked worker, adds the calling
    process's pid to ``log`` (created empty) once it returns."""
    log.write_text("")
    real = getattr(module, name)

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = real(*args, **kwargs)
        with log.open("a") as out:
            out.write(f"{os.getpid()}\n")
        return result

    monkeypatch.setattr(module, name, spy)
    return log


def pids(log: Path) -> list[str]:
    return log.read_text().split()
