"""CO040: the psql image the platform's own database Jobs run is pinned by digest for every
engine version in use; planted in a scratch copy of the sample, reported where the version is set."""

from __future__ import annotations

from generator.policy import evaluate as policy
from helpers.catalog_edit import edit_yaml, override
from helpers.diagnostics import at, by_rule, line_of, validate_errors

DIGEST = "sha256:" + "ab" * 32


def test_sample_pins_every_engine_version_in_use(sample):
    versions = {d.settings.database.engine_version for d in sample.model.deployments}
    assert versions and versions <= set(sample.model.platform.postgres_client.digests)
    assert [v for v in policy.violations(sample.model) if v.rule == "CO040"] == []


def test_co040_an_engine_version_without_a_digest(companyos, repo):
    path = override(repo, "acme", "prod", {"database": {"engine_version": "16.6"}})
    errors = validate_errors(companyos, repo)
    (err,) = by_rule(errors, "CO040")
    assert at(err) == ("tenants/acme.yaml", line_of(path, "engine_version:"))
    assert "16.6" in err["message"] and "postgres_client.digests" in err["message"]


def test_co040_one_error_per_place_that_sets_the_version(companyos, repo):
    """An environment-wide upgrade is one line to fix, so one error, not one per tenant."""
    env = repo / "environments/stage.yaml"
    edit_yaml(env, lambda d: d["settings"].setdefault("database", {}).__setitem__("engine_version", "17.2"))
    errors = validate_errors(companyos, repo)
    found = by_rule(errors, "CO040")
    assert [at(e) for e in found] == [("environments/stage.yaml", line_of(env, "engine_version:"))]


def test_co040_cleared_by_pinning_the_version(companyos, repo):
    override(repo, "acme", "prod", {"database": {"engine_version": "16.6"}})
    edit_yaml(repo / "catalog/platform.yaml", lambda d: d["postgres_client"]["digests"].__setitem__("16.6", DIGEST))
    result = companyos("render", cwd=repo)
    assert result.code == 0, result.err
    recorder = (repo / "rendered/terraform/prod/tenant-acme/dr.tf").read_text()
    assert f"postgres:16.6@{DIGEST}" in recorder
