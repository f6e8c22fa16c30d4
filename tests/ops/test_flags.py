"""``companyos flag`` (issue 16 item 7): the switch is a small catalog edit in the right layer
(the environment, or one tenant's override), re-rendered in the same transaction so the
committed tree and the catalog agree; refusals say why and write nothing."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from generator.errors import UsageError
from generator.ops import flags
from generator.targets import common
from helpers.repo import snapshot
from helpers.yaml_docs import load_yaml_docs


def _served(repo: Path, env: str, tenant: str) -> dict[str, object]:
    [flag_doc, _] = load_yaml_docs((repo / common.flags_path(env, tenant, "web")).read_bytes())
    return flag_doc["spec"]["flagSpec"]["flags"]["new-checkout"]


def _changed_lines(before: bytes, after: bytes) -> list[str]:
    diff = difflib.unified_diff(before.decode().splitlines(), after.decode().splitlines(), lineterm="", n=0)
    return [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_set_for_one_tenant_edits_its_override_and_re_renders(companyos, repo):
    assert companyos("render", cwd=repo).code == 0
    before = snapshot(repo)
    result = companyos("flag", "web", "new-checkout", "--env", "prod", "--tenant", "globex", "--set", "on", cwd=repo)
    assert result.code == 0, result.out + result.err
    after = snapshot(repo)
    changed = {p for p in after if before.get(p) != after[p]}
    assert "tenants/globex.yaml" in changed
    assert common.flags_path("prod", "globex", "web") in changed
    # Only globex's flag (and the manifest) moved; the other tenants serve what they did.
    assert not any("/acme/" in p or "/hooli/" in p for p in changed)
    assert _served(repo, "prod", "globex")["defaultVariant"] == "on"
    assert _served(repo, "prod", "hooli")["defaultVariant"] == "off"
    added = _changed_lines(before["tenants/globex.yaml"], after["tenants/globex.yaml"])
    # Only additions (the override did not exist), ending in the variant, quoted so YAML 1.1 readers keep a string.
    # No targeting rule decides for globex in prod, so none is touched.
    assert added and all(line.startswith("+") for line in added) and added[-1].endswith('default_variant: "on"'), added
    assert not any("targeting" in line for line in added)
    # The tree is exactly what a render makes of the new catalog.
    assert companyos("check", cwd=repo).code == 0


def test_set_where_a_targeting_rule_decides_clears_the_rules_for_that_scope(companyos, repo):
    # acme is regulated: web's rule 1 serves it "off" whatever default_variant says.
    assert companyos("render", cwd=repo).code == 0
    assert _served(repo, "prod", "acme")["metadata"]["targetingRule"] == 1
    before = snapshot(repo)
    result = companyos("flag", "web", "new-checkout", "--env", "prod", "--tenant", "acme", "--set", "on", cwd=repo)
    assert result.code == 0, result.out + result.err
    after = snapshot(repo)
    added = _changed_lines(before["tenants/acme.yaml"], after["tenants/acme.yaml"])
    assert [line[1:].strip() for line in added[-2:]] == ['default_variant: "on"', "targeting: []"], added
    served = _served(repo, "prod", "acme")
    assert served["defaultVariant"] == "on" and "targetingRule" not in served["metadata"]
    # The service's rules still decide for acme elsewhere (the override is prod's only).
    assert _served(repo, "stage", "acme")["metadata"]["targetingRule"] == 1
    assert companyos("check", cwd=repo).code == 0


def test_kill_for_an_environment_is_a_one_line_diff_serving_disabled_everywhere(companyos, repo):
    assert companyos("render", cwd=repo).code == 0
    before = (repo / "environments/dev.yaml").read_bytes()
    result = companyos("flag", "web", "new-checkout", "--env", "dev", "--kill", cwd=repo)
    assert result.code == 0, result.out + result.err
    lines = _changed_lines(before, (repo / "environments/dev.yaml").read_bytes())
    assert len([x for x in lines if x.startswith("-")]) == 1 and len([x for x in lines if x.startswith("+")]) == 1, lines
    assert 'state: "DISABLED"' in lines[-1]
    tenants = [p.name for p in (repo / "rendered/argocd/dev/flags").iterdir()]
    assert tenants and all(_served(repo, "dev", t)["state"] == "DISABLED" for t in tenants)
    # Setting a variant afterwards re-enables it.
    plan = flags.plan(repo, "web", "new-checkout", "dev", variant="off")
    # (acme, regulated, is decided by a targeting rule in dev: the rules go for this scope.)
    assert plan.values == {"default_variant": "off", "state": "ENABLED", "targeting": []}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("web", "no-such-flag", "--env", "prod", "--set", "on"), "declares no flag 'no-such-flag'"),
        (("web", "new-checkout", "--env", "prod", "--set", "maybe"), "'maybe' is not a variant"),
        (("web", "new-checkout", "--env", "mars", "--set", "on"), "unknown environment 'mars'"),
        (("web", "new-checkout", "--env", "prod", "--tenant", "nobody", "--set", "on"), "unknown tenant 'nobody'"),
        (("web", "new-checkout", "--env", "prod"), "exactly one of --set VARIANT and --kill"),
        (("web", "new-checkout", "--env", "prod", "--set", "on", "--kill"), "exactly one of --set VARIANT and --kill"),
        (("set", "web", "new-checkout", "--env", "prod"), "expected SERVICE FLAG with --set VARIANT or --kill"),
        (("kill", "web", "new-checkout", "--env", "prod", "--set", "on"), "expected SERVICE FLAG with --set VARIANT or --kill"),
        (("set", "web", "new-checkout", "maybe", "--env", "prod"), "'maybe' is not a variant"),
    ],
)
def test_refusals_exit_2_and_write_nothing(companyos, repo, args, says):
    before = snapshot(repo)
    result = companyos("flag", *args, cwd=repo)
    assert result.code == 2, result.out + result.err
    assert says in result.err and "Traceback" not in result.err
    assert snapshot(repo) == before


def test_a_tenant_that_does_not_run_the_service_is_refused(repo):
    runs_web = {p.stem for p in (repo / "tenants").glob("*.yaml") if "web" in p.read_text()}
    others = sorted({p.stem for p in (repo / "tenants").glob("*.yaml")} - runs_web)
    if not others:
        pytest.skip("every sample tenant runs web")
    with pytest.raises(UsageError, match="runs service 'web'"):
        flags.plan(repo, "web", "new-checkout", "prod", tenant=others[0], variant="on")


def test_dry_run_prints_the_change_and_writes_nothing(companyos, repo):
    before = snapshot(repo)
    result = companyos("flag", "web", "new-checkout", "--env", "prod", "--set", "on", "--dry-run", cwd=repo)
    assert result.code == 0, result.err
    assert (
        "would set web.flags.new-checkout.default_variant=on, web.flags.new-checkout.targeting=[] in environments/prod.yaml" in result.out
    )
    assert snapshot(repo) == before


def test_the_verb_forms_set_and_kill_do_what_the_options_do(companyos, repo):
    assert companyos("render", cwd=repo).code == 0
    killed = companyos("flag", "kill", "web", "new-checkout", "--env", "stage", cwd=repo)
    assert killed.code == 0, killed.out + killed.err
    assert _served(repo, "stage", "globex")["state"] == "DISABLED"
    revived = companyos("flag", "set", "web", "new-checkout", "on", "--env", "stage", "--tenant", "globex", cwd=repo)
    assert revived.code == 0, revived.out + revived.err
    served = _served(repo, "stage", "globex")
    assert served["state"] == "ENABLED" and served["defaultVariant"] == "on" and "targeting" not in served
    assert _served(repo, "stage", "acme")["state"] == "DISABLED"  # the tenant override only
    assert companyos("check", cwd=repo).code == 0
