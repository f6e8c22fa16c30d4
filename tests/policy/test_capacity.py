"""Capacity levers that would break something (CO030-CO033): each planted in a scratch copy of
the sample, reported at the catalog line that set it, exit 2, nothing rendered."""

from __future__ import annotations

from generator.policy import evaluate as policy
from helpers.catalog_edit import edit_yaml, override
from helpers.diagnostics import at, by_rule, line_of, validate_errors


def test_sample_uses_every_lever_and_passes(sample):
    """The sample scales workers to zero in dev, on their queue, on spot for standard tenants."""
    found = [v for v in policy.violations(sample.model) if v.rule in {"CO030", "CO031", "CO032", "CO033"}]
    assert found == []
    hooli = sample.model.deployment("hooli", "dev")
    assert hooli is not None
    worker = hooli.settings.services["worker"]
    assert worker.autoscaling.scale_to_zero and worker.autoscaling.queue == "jobs" and worker.capacity == "spot"


def test_co030_scale_to_zero_with_a_pdb(companyos, repo):
    path = override(repo, "hooli", "dev", {"services": {"worker": {"replicas": 2}}})
    errors = validate_errors(companyos, repo)
    (err,) = by_rule(errors, "CO030")
    # blamed where scale_to_zero was switched on (the environment layer), naming the replicas
    assert at(err) == ("environments/dev.yaml", line_of(repo / "environments/dev.yaml", "scale_to_zero: true"))
    assert "hooli" in err["message"] and "replicas = 2" in err["message"] and "PodDisruptionBudget" in err["message"]
    assert path.exists()


def test_co031_trigger_on_a_queue_the_service_does_not_own(companyos, repo):
    path = override(repo, "globex", None, {"services": {"api": {"autoscaling": {"queue": "jobs"}}}})
    errors = validate_errors(companyos, repo)
    found = by_rule(errors, "CO031")
    assert found, errors
    assert {at(e) for e in found} == {("tenants/globex.yaml", line_of(path, "queue: jobs"))}
    assert "does not own" in found[0]["message"] and "none" in found[0]["message"]


def test_co032_spot_for_a_regulated_tenant(companyos, repo):
    path = override(repo, "acme", "prod", {"services": {"worker": {"capacity": "spot"}}})
    errors = validate_errors(companyos, repo)
    (err,) = by_rule(errors, "CO032")
    assert at(err) == ("tenants/acme.yaml", line_of(path, "capacity: spot"))
    assert "regulated" in err["message"] and "spot_allowed" in err["message"]


def test_co032_follows_the_tier_flag_not_the_name(companyos, repo):
    """Forbidding spot in the standard tier turns its own spot workers into violations."""
    edit_yaml(repo / "catalog/tiers/standard.yaml", lambda d: d.__setitem__("spot_allowed", False))
    errors = validate_errors(companyos, repo)
    tenants = {e["message"].split("tenant '")[1].split("'")[0] for e in by_rule(errors, "CO032")}
    assert tenants == {"hooli", "initech"}
    assert {e["path"] for e in by_rule(errors, "CO032")} == {"catalog/tiers/standard.yaml"}


def test_co033_scale_to_zero_without_a_queue(companyos, repo):
    path = override(repo, "globex", "dev", {"services": {"web": {"replicas": 1, "autoscaling": {"enabled": True, "scale_to_zero": True}}}})
    errors = validate_errors(companyos, repo)
    (err,) = by_rule(errors, "CO033")
    assert at(err) == ("tenants/globex.yaml", line_of(path, "scale_to_zero: true"))


def test_co034_quotas_beyond_the_node_budget(companyos, repo):
    env = repo / "environments/prod.yaml"
    with env.open("a", encoding="utf-8") as fh:
        fh.write("node_limits:\n  cpu: 4\n  memory_gib: 8\n")
    errors = validate_errors(companyos, repo)
    (err,) = by_rule(errors, "CO034")
    assert at(err) == ("environments/prod.yaml", line_of(env, "node_limits:"))
    assert "prod" in err["message"] and "4 cores" in err["message"] and "add a cell" in err["message"]


def test_all_reported_at_once_exit_2_nothing_written(companyos, repo):
    override(repo, "acme", "prod", {"services": {"worker": {"capacity": "spot"}}})
    override(repo, "globex", None, {"services": {"api": {"autoscaling": {"queue": "orders"}}}})
    before = {p: p.read_bytes() for p in (repo / "rendered").rglob("*") if p.is_file()}
    result = companyos("render", cwd=repo)
    assert result.code == 2, result.err
    assert "[CO032]" in result.err and "[CO031]" in result.err and "Traceback" not in result.err
    after = {p: p.read_bytes() for p in (repo / "rendered").rglob("*") if p.is_file()}
    assert after == before
