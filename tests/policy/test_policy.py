"""Policy rules: one failing catalog per rule, each blaming the file:line:col to fix, all
violations at once, exit 2 -- and the rule list the CLI prints."""

from __future__ import annotations

import re

from generator.policy import evaluate as policy
from generator.policy.registry import RULES
from helpers.catalog_edit import drop_guardrails, edit_yaml, override
from helpers.diagnostics import at, by_rule, line_of, validate_errors
from helpers.repo import REPO

# --- the sample catalog ---------------------------------------------------------------------


def test_sample_catalog_passes_every_rule(sample):
    assert policy.violations(sample.model) == []


def test_rule_ids_are_unique_and_documented(companyos, repo):
    result = companyos("policy", "list", cwd=repo)
    assert result.code == 0, result.err
    listed = [line.split()[0] for line in result.out.splitlines()]
    assert listed == sorted([*RULES, "CO015"])
    (base,) = [line for line in result.out.splitlines() if line.startswith("CO015")]
    assert "(needs --base)" in base
    for rule in RULES.values():
        assert rule.rationale and "\n" not in rule.rationale
        assert rule.id in result.out and rule.rationale in result.out
    docs = (REPO / "docs/guardrails.md").read_text(encoding="utf-8")
    for rule_id in listed:
        assert rule_id in docs, f"{rule_id} is not documented in docs/guardrails.md"


def test_validate_runs_the_rules_without_rendering(companyos, repo):
    override(repo, "globex", "prod", {"database": {"multi_az": False}})
    for rel in (repo / "rendered").rglob("*"):
        if rel.is_file():
            rel.unlink()
    errors = validate_errors(companyos, repo)
    assert by_rule(errors, "CO007")
    assert not any((repo / "rendered").rglob("*.yaml")), "validate must not render"


# --- one failing catalog per rule -------------------------------------------------------------


def test_co001_regulated_tier_must_be_dedicated(companyos, repo):
    text = (repo / "catalog/tiers/standard.yaml").read_text().replace("name: standard", "name: secure")
    text = text.replace("isolation: pooled", "isolation: pooled\nregulated: true")
    path = repo / "catalog/tiers/secure.yaml"
    path.write_text(text)
    (err,) = validate_errors(companyos, repo)
    assert err["rule"] == "CO001"
    assert at(err) == ("catalog/tiers/secure.yaml", line_of(path, "isolation: pooled"))


def test_co002_regulated_tenant_never_in_a_shared_account(companyos, repo):
    dr_verify = "200000000009"  # environments/dev.yaml accounts.dr_verify
    assert dr_verify in (repo / "environments/dev.yaml").read_text()
    path = repo / "tenants/acme.yaml"
    edit_yaml(path, lambda d: d["accounts"].__setitem__("dev", dr_verify))
    errors = validate_errors(companyos, repo)
    (err,) = by_rule(errors, "CO002")
    assert at(err) == ("tenants/acme.yaml", line_of(path, dr_verify))
    assert "accounts.dr_verify" in err["message"]


def test_co003_kms_rotation_holds_without_the_tier_guardrail(companyos, repo):
    # Deleting the tier's guardrail does not switch the organisation rule off.
    drop_guardrails(repo)
    path = override(repo, "acme", "prod", {"kms": {"rotation_days": 180}})
    (err,) = validate_errors(companyos, repo)
    assert err["rule"] == "CO003"
    assert at(err) == ("tenants/acme.yaml", line_of(path, "rotation_days: 180"))
    assert "'acme' in prod" in err["message"]


def test_co004_object_lock_compliance(companyos, repo):
    drop_guardrails(repo)
    path = override(repo, "umbrella", None, {"storage": {"object_lock": "governance"}})
    errors = validate_errors(companyos, repo)
    co004 = by_rule(errors, "CO004")
    assert {e["message"].split(" for tenant")[0] for e in co004} == {'storage.object_lock = "governance"'}
    assert {at(e) for e in co004} == {("tenants/umbrella.yaml", line_of(path, "object_lock: governance"))}
    # one per environment the tenant runs in (each needs its own waiver)
    assert len(co004) == 2


def test_co005_backup_retention(companyos, repo):
    drop_guardrails(repo)
    path = override(repo, "acme", "stage", {"database": {"backup_retention_days": 14}})
    errors = validate_errors(companyos, repo)
    (err,) = by_rule(errors, "CO005")
    assert at(err) == ("tenants/acme.yaml", line_of(path, "backup_retention_days: 14"))
    assert "'acme' in stage" in err["message"]


def test_co006_pitr_and_cross_region_copy(companyos, repo):
    drop_guardrails(repo)
    path = override(repo, "umbrella", "prod", {"database": {"pitr": False, "cross_region_copy": False}})
    errors = validate_errors(companyos, repo)
    co006 = by_rule(errors, "CO006")
    assert sorted(at(e)[1] for e in co006) == sorted([line_of(path, "pitr: false"), line_of(path, "cross_region_copy: false")])


def test_co007_production_is_multi_az(companyos, repo):
    path = override(repo, "globex", "prod", {"database": {"multi_az": False}, "cache": {"replicas_per_shard": 0}})
    errors = validate_errors(companyos, repo)
    co007 = by_rule(errors, "CO007")
    assert {at(e) for e in co007} == {
        ("tenants/globex.yaml", line_of(path, "multi_az: false")),
        ("tenants/globex.yaml", line_of(path, "replicas_per_shard: 0")),
    }
    assert errors == co007, "stage and dev may be single-AZ"


def test_co008_budget_alerts_reach_someone(companyos, repo):
    path = override(repo, "hooli", None, {"budget": {"notify": [], "alert_thresholds": [150]}})
    errors = validate_errors(companyos, repo)
    co008 = by_rule(errors, "CO008")
    assert {at(e)[0] for e in co008} == {"tenants/hooli.yaml"}
    assert {at(e)[1] for e in co008} == {line_of(path, "notify:"), line_of(path, "- 150")}
    assert len(co008) == 4  # two problems x hooli's two environments


def test_co009_instance_class_outside_the_tier_list(companyos, repo):
    path = override(repo, "globex", "stage", {"database": {"instance_class": "db.r6g.2xlarge"}})
    errors = validate_errors(companyos, repo)
    (err,) = by_rule(errors, "CO009")
    assert at(err) == ("tenants/globex.yaml", line_of(path, "db.r6g.2xlarge"))
    rule_line = line_of(repo / "catalog/tiers/standard.yaml", "database:", after="allowed_instance_classes")
    assert f"catalog/tiers/standard.yaml:{rule_line}:" in err["message"]


def test_co010_log_retention_outside_environment_bounds(companyos, repo):
    path = repo / "environments/stage.yaml"
    edit_yaml(path, lambda d: d["settings"]["logs"].__setitem__("retention_days", 60))
    errors = validate_errors(companyos, repo)
    co010 = by_rule(errors, "CO010")
    stage_tenants = {p.stem for p in (repo / "tenants").glob("*.yaml") if "stage" in p.read_text()}
    assert {re.search(r"tenant '(\w+)'", e["message"]).group(1) for e in co010} == stage_tenants
    assert {at(e) for e in co010} == {("environments/stage.yaml", line_of(path, "retention_days: 60"))}
    assert f"environments/stage.yaml:{line_of(path, 'log_retention:')}:" in co010[0]["message"]


def test_co011_promotion_chain(companyos, repo):
    path = repo / "environments/prod.yaml"
    edit_yaml(path, lambda d: d["promotion"].__setitem__("after", None))
    errors = validate_errors(companyos, repo)
    chain = [e for e in errors if "promotion chain" in e["message"]]
    assert chain and chain[0]["path"].startswith("environments/")
    # the same check, reported with its id when called on a model
    from generator.catalog.load import load_catalog
    from generator.model.references import promotion_chain_errors

    catalog = load_catalog(repo)
    assert promotion_chain_errors(catalog)


def test_co012_override_cannot_weaken_tier_guardrail(companyos, repo):
    path = override(repo, "globex", None, {"kms": {"rotation_days": 400}})
    errors = validate_errors(companyos, repo)
    co012 = by_rule(errors, "CO012")
    assert len(co012) == 3  # globex runs in dev, stage and prod
    err = co012[0]
    assert at(err) == ("tenants/globex.yaml", line_of(path, "rotation_days: 400"))
    rule_line = line_of(repo / "catalog/tiers/standard.yaml", "kms.rotation_days:")
    assert f"catalog/tiers/standard.yaml:{rule_line}:" in err["message"]
    assert errors == co012


def test_co013_schema_versions_follow_promotion_order(companyos, repo):
    path = repo / "catalog/services/api.yaml"
    edit_yaml(path, lambda d: d["migrations"]["versions"].update({"dev": 42, "stage": 43, "prod": 41}))
    (err,) = validate_errors(companyos, repo)
    assert err["rule"] == "CO013"
    assert at(err) == ("catalog/services/api.yaml", line_of(path, "versions:"))
    assert "43 in stage is ahead of 42 in dev" in err["message"]


def test_co014_contract_before_expand_reached_prod(companyos, repo):
    path = repo / "catalog/services/api.yaml"
    edit_yaml(path, lambda d: d["migrations"]["versions"].update({"dev": 42, "stage": 41, "prod": 39}))
    (err,) = validate_errors(companyos, repo)
    assert err["rule"] == "CO014"
    assert "contract 42" in err["message"] and "expand 40" in err["message"] and "dev" in err["message"]


def test_guardrail_and_rule_on_one_value_print_one_line(companyos, repo):
    """A regulated prod override that breaks the tier guardrail, CO005 and CO020 (prod
    backups) is one error line, naming the override, the guardrail and every rule id."""
    path = override(repo, "acme", "prod", {"database": {"backup_retention_days": 14}})
    (err,) = validate_errors(companyos, repo)
    assert err["rule"] == "CO012" and err["message"].endswith("(also breaks CO005, CO020)")
    assert at(err) == ("tenants/acme.yaml", line_of(path, "backup_retention_days: 14"))
    rule_line = line_of(repo / "catalog/tiers/regulated.yaml", "database.backup_retention_days:")
    assert f"catalog/tiers/regulated.yaml:{rule_line}:" in err["message"]


def test_all_violations_are_reported_at_once(companyos, repo):
    override(repo, "globex", "prod", {"database": {"multi_az": False}})
    override(repo, "acme", "prod", {"database": {"backup_retention_days": 14}})
    override(repo, "hooli", None, {"budget": {"notify": []}})
    errors = validate_errors(companyos, repo)
    assert {"CO007", "CO008", "CO012"} <= {e["rule"] for e in errors}
    assert any(e["message"].endswith("(also breaks CO005, CO020)") for e in errors)


def test_a_guardrail_reads_the_value_a_full_settings_dump_holds(sample):
    """``setting_at`` reads one path instead of dumping every deployment's settings: for
    every deployment, every guardrail path of every tier, containers and unknown paths, it
    gives what ``lookup(settings.model_dump(), path)`` gives."""
    from generator.model.layers import lookup
    from generator.policy.rules.tier_guardrails import setting_at

    model = sample.model
    paths = {tuple(p.split(".")) for tier in model.catalog.tiers.values() for p in tier.spec.guardrails}
    assert paths, "the sample's tiers name guardrails"
    paths |= {("kms",), ("database",), ("kms", "nope"), ("nope",), ("kms", "rotation_days", "deeper"), ()}
    for d in model.deployments:
        dumped = d.settings.model_dump()
        for path in sorted(paths):
            assert setting_at(d.settings, path) == lookup(dumped, path), (d.name, d.env, path)
