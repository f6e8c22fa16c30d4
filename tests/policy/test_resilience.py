"""Backups by policy (CO020) and a reachable RPO (CO021), issue 15: planted in a scratch
catalog, each is a located error with exit 2."""

from __future__ import annotations

from helpers.catalog_edit import edit_yaml


def _located(result, rule: str) -> str:
    assert result.code == 2, result.out
    lines = [line for line in result.err.splitlines() if f"[{rule}]" in line]
    assert lines, result.err
    assert "Traceback" not in result.err
    return lines[0]


def test_prod_database_with_7_days_of_backups_breaks_co020(repo, companyos):
    edit_yaml(repo / "environments/prod.yaml", lambda d: d["settings"]["database"].__setitem__("backup_retention_days", 7))
    line = _located(companyos("check", cwd=repo), "CO020")
    assert line.startswith("environments/prod.yaml:") and "35 days" in line


def test_an_rpo_the_replication_cannot_meet_breaks_co021(repo, companyos):
    edit_yaml(repo / "environments/prod.yaml", lambda d: d["disaster_recovery"].__setitem__("replication", "snapshot_copy"))
    line = _located(companyos("check", cwd=repo), "CO021")
    assert line.startswith("environments/prod.yaml:") and "rpo_minutes 5" in line
