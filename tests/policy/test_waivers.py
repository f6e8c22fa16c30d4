"""Waivers: a valid waiver turns a violation into a note; an expired, unused or unknown one
is an error at its own path:line:col. Expiry is judged against an injected date."""

from __future__ import annotations

import datetime
from pathlib import Path

from generator import pipeline
from generator.policy import evaluate as policy
from helpers.catalog_edit import edit_yaml, override
from helpers.diagnostics import at, by_rule, line_of, validate_errors

FUTURE = "2999-12-31"


def waive(repo: Path, *entries: dict) -> Path:
    path = repo / "catalog/waivers.yaml"
    edit_yaml(path, lambda d: d.__setitem__("waivers", [dict(e) for e in entries]))
    return path


def entry(rule: str, tenant: str, expires: str = FUTURE, **extra) -> dict:
    return {
        "rule": rule,
        "tenant": tenant,
        "reason": "migration to a larger pool is scheduled for Q3",
        "approver": "cto@example.com",
        "expires": expires,
        **extra,
    }


def unenforced_model(repo: Path):
    return pipeline.resolve_only(repo)  # the model stage alone: policy not run


def test_waived_violation_is_reported_not_failed(companyos, repo):
    override(repo, "globex", "prod", {"database": {"multi_az": False}})
    path = waive(repo, entry("CO007", "globex"))
    result = companyos("validate", cwd=repo)
    assert result.code == 0, result.err
    (note,) = [line for line in result.out.splitlines() if line.startswith("waived:")]
    assert "[CO007]" in note and "tenants/globex.yaml:" in note
    assert f"catalog/waivers.yaml:{line_of(path, '- rule: CO007')}:" in note
    assert "cto@example.com" in note and FUTURE in note
    # and render goes ahead, with the same note
    rendered = companyos("render", cwd=repo)
    assert rendered.code == 0 and note in rendered.out.splitlines()


def test_expired_waiver_is_an_error_and_the_violation_returns(companyos, repo):
    override(repo, "globex", "prod", {"database": {"multi_az": False}})
    path = waive(repo, entry("CO007", "globex", expires="2000-01-31"))
    errors = validate_errors(companyos, repo)
    expired = [e for e in errors if e["path"] == "catalog/waivers.yaml"]
    assert len(expired) == 1 and "expired on 2000-01-31" in expired[0]["message"]
    assert at(expired[0]) == ("catalog/waivers.yaml", line_of(path, "- rule: CO007"))
    assert by_rule(errors, "CO007"), "an expired waiver covers nothing"


def test_unused_waiver_is_an_error(companyos, repo):
    path = waive(repo, entry("CO005", "acme"))
    (err,) = validate_errors(companyos, repo)
    assert at(err) == ("catalog/waivers.yaml", line_of(path, "- rule: CO005"))
    assert "unused" in err["message"]


def test_rules_about_the_catalog_shape_cannot_be_waived(companyos, repo):
    path = waive(repo, entry("CO013", "acme"))
    (err,) = validate_errors(companyos, repo)
    assert at(err) == ("catalog/waivers.yaml", line_of(path, "- rule: CO013"))
    assert "cannot be waived" in err["message"]


def test_waiver_names_unknown_rule_or_tenant(companyos, repo):
    path = waive(repo, entry("CO999", "acme"), entry("CO005", "nobody"))
    errors = validate_errors(companyos, repo)
    assert {(e["line"], "unknown rule" in e["message"], "unknown tenant" in e["message"]) for e in errors} == {
        (str(line_of(path, "- rule: CO999")), True, False),
        (str(line_of(path, "- rule: CO005")), False, True),
    }


def test_waiver_fields_are_validated(companyos, repo):
    path = waive(repo, {"rule": "CO007", "tenant": "globex", "reason": "short", "expires": "2026-02-30"})
    errors = validate_errors(companyos, repo)
    messages = " | ".join(e["message"] for e in errors)
    assert "approver" in messages and "reason" in messages
    assert {e["path"] for e in errors} == {"catalog/waivers.yaml"}
    edit_yaml(path, lambda d: d["waivers"][0].update({"reason": "long enough reason here", "approver": "cto@example.com"}))
    override(repo, "globex", "prod", {"database": {"multi_az": False}})
    errors = validate_errors(companyos, repo)
    assert any("not a real date" in e["message"] for e in errors)


def test_expiry_day_is_inclusive_with_injected_today(repo):
    override(repo, "globex", "prod", {"database": {"multi_az": False}})
    waive(repo, entry("CO007", "globex", expires="2030-06-30"))
    model = unenforced_model(repo)
    on_the_day = policy.evaluate(model, datetime.date(2030, 6, 30))
    assert on_the_day.ok and len(on_the_day.waived) == 1
    day_after = policy.evaluate(model, datetime.date(2030, 7, 1))
    assert not day_after.ok and not day_after.waived
    assert any("expired" in e.message for e in day_after.errors)
    assert any(e.message.startswith("[CO007]") for e in day_after.errors)


def test_environment_scoped_waiver_covers_only_that_environment(repo):
    override(repo, "globex", None, {"kms": {"rotation_days": 400}})  # CO012 in dev, stage and prod
    waive(repo, entry("CO012", "globex", environment="prod"))
    report = policy.evaluate(unenforced_model(repo), datetime.date(2026, 1, 1))
    assert [w.violation.environment for w in report.waived] == ["prod"]
    assert sorted(e.message.split(" in ")[1].split(" ")[0] for e in report.errors) == ["dev", "stage"]


def test_each_rule_on_one_value_needs_its_own_waiver(repo):
    # backup retention 14 in prod breaks the regulated tier guardrail (CO012), CO005 and CO020
    override(repo, "acme", "prod", {"database": {"backup_retention_days": 14}})
    waive(repo, entry("CO012", "acme", environment="prod"))
    report = policy.evaluate(unenforced_model(repo), datetime.date(2026, 1, 1))
    assert [w.violation.rule for w in report.waived] == ["CO012"]
    assert [e.message.split("]")[0] for e in report.errors] == ["[CO005", "[CO020"]
    waive(repo, entry("CO012", "acme", environment="prod"), entry("CO005", "acme", environment="prod"))
    report = policy.evaluate(unenforced_model(repo), datetime.date(2026, 1, 1))
    assert [e.message.split("]")[0] for e in report.errors] == ["[CO020"]
    waive(
        repo,
        entry("CO012", "acme", environment="prod"),
        entry("CO005", "acme", environment="prod"),
        entry("CO020", "acme", environment="prod"),
    )
    report = policy.evaluate(unenforced_model(repo), datetime.date(2026, 1, 1))
    assert report.ok and sorted(w.violation.rule for w in report.waived) == ["CO005", "CO012", "CO020"]


def test_waiver_for_one_tenant_does_not_cover_another(repo):
    override(repo, "globex", "prod", {"database": {"multi_az": False}})
    override(repo, "initech", "prod", {"database": {"multi_az": False}})
    waive(repo, entry("CO007", "globex"))
    report = policy.evaluate(unenforced_model(repo), datetime.date(2026, 1, 1))
    assert [w.violation.tenant for w in report.waived] == ["globex"]
    assert all("'initech'" in e.message for e in report.errors)


def test_sample_waivers_file_is_valid(sample):
    report = policy.evaluate(sample.model, datetime.date.today())
    assert report.ok, report.errors
