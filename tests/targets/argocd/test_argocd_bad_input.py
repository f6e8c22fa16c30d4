"""Bad input for delivery (issue item 7): each mistake is one ``path:line:col`` error,
exit 2, and nothing on disk changes."""

from __future__ import annotations

import re

import pytest

from generator.catalog.changewindow import cron_problem
from generator.model import naming
from helpers.catalog_edit import edit_yaml
from helpers.repo import snapshot


def _line_of(path, pattern: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if re.search(pattern, line):
            return number
    raise AssertionError(f"{pattern} not in {path}")


def _render_fails(companyos, repo, expected: str) -> str:
    before = snapshot(repo)
    result = companyos("render", cwd=repo)
    assert result.code == 2, result.out + result.err
    assert expected in result.err, result.err
    assert snapshot(repo) == before
    return result.err


def test_unknown_chart(companyos, repo):
    path = repo / "catalog" / "services" / "web.yaml"
    edit_yaml(path, lambda data: data.__setitem__("chart", "nginx"))
    line = _line_of(path, r"^chart:")
    _render_fails(companyos, repo, f"catalog/services/web.yaml:{line}:8: unknown chart 'nginx' (known: application)")


@pytest.mark.parametrize("weight", [0, 101])
def test_canary_weight_outside_1_to_100(companyos, repo, weight):
    path = repo / "catalog" / "services" / "api.yaml"
    edit_yaml(path, lambda data: data["canary"]["steps"][1].__setitem__("weight", weight))
    line = _line_of(path, rf"weight: {weight}\b")
    col = path.read_text().splitlines()[line - 1].index(str(weight)) + 1
    _render_fails(companyos, repo, f"catalog/services/api.yaml:{line}:{col}: canary.steps.1.weight:")


def test_canary_weights_not_increasing(companyos, repo):
    path = repo / "catalog" / "services" / "web.yaml"
    edit_yaml(path, lambda data: data["canary"]["steps"][1].__setitem__("weight", 5))
    line = _line_of(path, r"^  steps:") + 1
    col = path.read_text().splitlines()[line - 1].index("-") + 1
    _render_fails(companyos, repo, f"catalog/services/web.yaml:{line}:{col}: canary step weights must increase strictly; got [10, 5, 100]")


@pytest.mark.parametrize(
    ("schedule", "problem"),
    [
        ("0 25 * * 1-4", "hour field '25'"),
        ("at eight on weekdays", "expected 5 fields"),
        ("0 8 * * MON-XYZ", "day of week field 'MON-XYZ'"),
        ("*/0 8 * * *", "step '0' must be a positive number"),
    ],
)
def test_change_window_that_does_not_parse(companyos, repo, schedule, problem):
    path = repo / "environments" / "prod.yaml"
    edit_yaml(path, lambda data: data["change_window"].__setitem__("schedule", schedule))
    line = _line_of(path, r"^  schedule:")
    err = _render_fails(
        companyos, repo, f"environments/prod.yaml:{line}:13: change_window.schedule '{schedule}' is not a cron schedule Argo CD can use:"
    )
    assert problem in err


@pytest.mark.parametrize("schedule", ["0 8 * * 1-4", "*/15 0-6,22-23 ? JAN-MAR mon,wed,FRI", "@daily", "30 2 1,15 */2 0"])
def test_valid_cron_schedules(schedule):
    assert cron_problem(schedule) is None


@pytest.mark.parametrize("schedule", ["", "60 * * * *", "* * 0 * *", "* * * 13 *", "* * * * 7", "5-1 * * * *", "1,,2 * * * *", "? * * * *"])
def test_invalid_cron_schedules(schedule):
    assert cron_problem(schedule)


def test_namespace_over_63_characters(companyos, repo, monkeypatch):
    """Tenant names stop at 20 characters today, so the derived namespace fits; the
    check guards the derivation itself (a longer prefix, a longer name pattern)."""
    monkeypatch.setattr(naming, "namespace", lambda tenant: f"tenant-{'x' * 50}-{tenant}")
    line = _line_of(repo / "tenants" / "umbrella.yaml", r"^name:")
    namespace = f"tenant-{'x' * 50}-umbrella"
    err = _render_fails(
        companyos,
        repo,
        f"tenants/umbrella.yaml:{line}:7: namespace '{namespace}' derived from tenant 'umbrella' is 66 characters; Kubernetes allows at most 63",
    )
    assert "tenants/acme.yaml" not in err  # 62 characters still fit


def test_tenant_name_too_long_for_a_namespace(companyos, repo):
    long_name = "a" * 64
    path = repo / "tenants" / "acme.yaml"
    edit_yaml(path, lambda data: data.__setitem__("name", long_name))
    path.rename(repo / "tenants" / f"{long_name}.yaml")
    line = _line_of(repo / "tenants" / f"{long_name}.yaml", r"^name:")
    _render_fails(companyos, repo, f"tenants/{long_name}.yaml:{line}:7: name: '{long_name}' is not a valid name")
