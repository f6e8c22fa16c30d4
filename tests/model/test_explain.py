"""`companyos explain` names the file:line that set each value and what it overrode."""

from __future__ import annotations

import json

from helpers.catalog_edit import edit_yaml
from helpers.diagnostics import line_of
from helpers.repo import REPO


def explain_json(companyos, cwd, *args):
    result = companyos("explain", *args, "--format", "json", cwd=cwd)
    assert result.code == 0, result.err
    return {item["key"]: item for item in json.loads(result.out)}


def test_tier_default_environment_value_and_tenant_override(companyos):
    items = explain_json(companyos, REPO, "acme", "prod")
    tier = items["kms.rotation_days"]
    assert tier["value"] == 90
    assert tier["set_by"]["location"].startswith(
        f"catalog/tiers/regulated.yaml:{line_of(REPO / 'catalog/tiers/regulated.yaml', 'rotation_days: 90')}:"
    )
    assert [o["layer"] for o in tier["overrode"]] == ["built-in defaults"]

    env = items["logs.retention_days"]
    assert env["value"] == 90
    assert env["set_by"]["location"].startswith(f"environments/prod.yaml:{line_of(REPO / 'environments/prod.yaml', 'retention_days: 90')}:")

    override = items["database.instance_class"]
    assert override["value"] == "db.r6g.xlarge"
    assert override["set_by"]["layer"] == "tenant acme x prod"
    assert override["set_by"]["location"].startswith(
        f"tenants/acme.yaml:{line_of(REPO / 'tenants/acme.yaml', 'instance_class: db.r6g.xlarge')}:"
    )
    assert [o["layer"] for o in override["overrode"]] == ["tenant acme", "tier regulated", "built-in defaults"]
    assert [o["value"] for o in override["overrode"]] == ["db.r6g.large", "db.r6g.large", "db.t4g.medium"]


def test_prefix_filter_and_text_output(companyos):
    result = companyos("explain", "acme", "dev", "database", cwd=REPO)
    assert result.code == 0
    keys = [line.split(" = ")[0] for line in result.out.splitlines() if " = " in line]
    assert keys and all(k.startswith("database.") for k in keys)
    assert 'database.instance_class = "db.t4g.large"' in result.out
    assert "set by   tenants/acme.yaml:" in result.out


def test_service_settings_come_from_the_service_file(companyos):
    items = explain_json(companyos, REPO, "globex", "dev", "services.api.replicas")
    assert items["services.api.replicas"]["set_by"]["location"].startswith("catalog/services/api.yaml:")


def test_explicit_null_resets_to_builtin_default(companyos, repo):
    def reset(data):
        data["overrides"]["prod"]["database"]["instance_class"] = None

    edit_yaml(repo / "tenants/acme.yaml", lambda d: d["overrides"]["prod"].__setitem__("budget", {"monthly_usd": None}))
    items = explain_json(companyos, repo, "acme", "prod", "budget.monthly_usd")
    item = items["budget.monthly_usd"]
    assert item["value"] == 1000  # the built-in default, not the tier's 6000 or the tenant's 9000
    assert item["set_by"]["reset"] is True and item["set_by"]["layer"] == "tenant acme x prod"


def test_lists_replace_rather_than_append(companyos, repo):
    edit_yaml(repo / "environments/dev.yaml", lambda d: d["settings"]["network"].__setitem__("vpc_endpoints", ["s3"]))
    items = explain_json(companyos, repo, "globex", "dev", "network.vpc_endpoints")
    assert items["network.vpc_endpoints"]["value"] == ["s3"]


def test_unknown_key_is_a_usage_error(companyos):
    result = companyos("explain", "acme", "prod", "database.instance_klass", cwd=REPO)
    assert result.code == 2 and "did you mean database.instance_class" in result.err
