"""Every kind of user mistake: exit 2, `path:line:col: message`, all errors at once, and
nothing on disk changes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpers.catalog_edit import edit_yaml
from helpers.diagnostics import line_of
from helpers.repo import snapshot

ERROR_LINE = re.compile(r"^(?P<path>[^:\s]+):(?P<line>\d+):(?P<col>\d+): (?P<message>.+)$")


def errors_of(err: str) -> list[dict[str, str]]:
    found = [m.groupdict() for line in err.splitlines() if (m := ERROR_LINE.match(line))]
    return found


def run_expect_errors(companyos, repo: Path, *args: str) -> list[dict[str, str]]:
    before = snapshot(repo)
    result = companyos(*(args or ("render",)), cwd=repo)
    assert result.code == 2, (result.out, result.err)
    assert "Traceback" not in result.err
    assert snapshot(repo) == before, "a failed run must not change anything on disk"
    errors = errors_of(result.err)
    assert errors, result.err
    return errors


def write(repo: Path, rel: str, text: str | bytes) -> Path:
    path = repo / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def test_yaml_syntax_error(companyos, repo):
    path = repo / "tenants/globex.yaml"
    path.write_text(path.read_text() + "services: [api, web\n")
    (err,) = run_expect_errors(companyos, repo)
    assert err["path"] == "tenants/globex.yaml"
    assert "YAML error" in err["message"]


def test_duplicate_key(companyos, repo):
    path = repo / "tenants/globex.yaml"
    path.write_text(path.read_text() + "owner: someone-else@globex.example\n")
    (err,) = run_expect_errors(companyos, repo)
    assert err["path"] == "tenants/globex.yaml"
    assert int(err["line"]) == len(path.read_text().splitlines())
    assert 'duplicate key "owner"' in err["message"]


def test_unknown_key_suggests_the_real_one(companyos, repo):
    path = repo / "tenants/acme.yaml"
    path.write_text(
        path.read_text().replace("  database:\n    instance_class: db.r6g.large", "  databse:\n    instance_class: db.r6g.large", 1)
    )
    (err,) = run_expect_errors(companyos, repo)
    assert (err["path"], int(err["line"]), int(err["col"])) == ("tenants/acme.yaml", line_of(path, "databse:"), 3)
    assert "unknown key 'databse'" in err["message"] and "did you mean 'database'" in err["message"]


def test_wrong_type(companyos, repo):
    edit_yaml(repo / "catalog/services/web.yaml", lambda d: d["defaults"].__setitem__("replicas", "two"))
    (err,) = run_expect_errors(companyos, repo)
    assert err["path"] == "catalog/services/web.yaml"
    assert int(err["line"]) == line_of(repo / "catalog/services/web.yaml", "replicas: two")
    assert "defaults.replicas" in err["message"] and "integer" in err["message"]


def test_unquoted_account_id_is_explained(companyos, repo):
    path = repo / "tenants/acme.yaml"
    path.write_text(path.read_text().replace('dev: "210000000101"', "dev: 210000000101"))
    (err,) = run_expect_errors(companyos, repo)
    assert int(err["line"]) == line_of(path, "dev: 210000000101")
    assert 'quote it: "210000000101"' in err["message"]


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [("tier", "platinum", "tier"), ("environments", ["dev", "qa"], "environment"), ("services", ["api", "billing"], "service")],
)
def test_unknown_references(companyos, repo, field, value, kind):
    edit_yaml(repo / "tenants/globex.yaml", lambda d: d.__setitem__(field, value))
    errors = run_expect_errors(companyos, repo)
    bad = value if isinstance(value, str) else value[-1]
    matching = [e for e in errors if f"unknown {kind} '{bad}'" in e["message"]]
    assert matching and matching[0]["path"] == "tenants/globex.yaml"
    needle = f"{field}: {bad}" if isinstance(value, str) else f"- {bad}"
    assert int(matching[0]["line"]) == line_of(repo / "tenants/globex.yaml", needle)


def test_file_name_must_match_tenant_name(companyos, repo):
    (repo / "tenants/globex.yaml").rename(repo / "tenants/globex-corp.yaml")
    (err,) = run_expect_errors(companyos, repo)
    assert err["path"] == "tenants/globex-corp.yaml"
    assert "does not match its file name" in err["message"]


def test_duplicate_tenant(companyos, repo):
    (repo / "tenants/globex.yml").write_bytes((repo / "tenants/globex.yaml").read_bytes())
    errors = run_expect_errors(companyos, repo)
    assert any("duplicate tenant 'globex'" in e["message"] for e in errors)


@pytest.mark.parametrize("name", ["Acme", "a", "acme_corp", "-acme", "acme-", "../../etc", "acme/evil", "x" * 21, "1acme"])
def test_invalid_tenant_names(companyos, repo, name):
    text = (repo / "tenants/globex.yaml").read_text().replace("name: globex", f"name: {name!r}")
    write(repo, "tenants/globex.yaml", text)
    errors = run_expect_errors(companyos, repo)
    assert any(e["path"] == "tenants/globex.yaml" and "not a valid name" in e["message"] for e in errors), errors


def test_non_utf8_file(companyos, repo):
    path = repo / "tenants/globex.yaml"
    path.write_bytes(path.read_bytes().replace(b"ops@globex.example", b"ops@gl\xf6bex.example"))
    (err,) = run_expect_errors(companyos, repo)
    assert (err["path"], int(err["line"])) == ("tenants/globex.yaml", 4)
    assert "not valid UTF-8" in err["message"]


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("canary: !!python/object/apply:os.system [echo pwned]\n", "YAML tag"),
        ("canary: !!bool true\n", "YAML tag"),
        ("x: &a [lol, lol, lol]\ny: &b [*a, *a, *a]\nz: [*b, *b, *b]\n", "anchors and aliases"),
    ],
)
def test_hostile_yaml(companyos, repo, snippet, message):
    path = repo / "tenants/globex.yaml"
    path.write_text(path.read_text().replace("canary: true\n", "") + snippet)
    (err,) = run_expect_errors(companyos, repo)
    assert err["path"] == "tenants/globex.yaml" and message in err["message"]


def test_all_errors_of_a_run_are_reported_at_once(companyos, repo):
    edit_yaml(repo / "tenants/globex.yaml", lambda d: d.__setitem__("tier", "gold"))
    edit_yaml(repo / "tenants/hooli.yaml", lambda d: d.__setitem__("owner", "not-an-email"))
    path = repo / "environments/dev.yaml"
    path.write_text(path.read_text().replace("rpo_minutes: 1440", "rpo_minutes: lots"))
    errors = run_expect_errors(companyos, repo)
    assert {e["path"] for e in errors} >= {"tenants/globex.yaml", "tenants/hooli.yaml", "environments/dev.yaml"}


def test_tier_guardrail_names_override_and_rule(companyos, repo):
    edit_yaml(repo / "tenants/acme.yaml", lambda d: d["overrides"]["prod"].__setitem__("kms", {"rotation_days": 365}))
    errors = run_expect_errors(companyos, repo)
    (err,) = [e for e in errors if "kms.rotation_days" in e["message"]]
    assert err["path"] == "tenants/acme.yaml"
    assert f"catalog/tiers/regulated.yaml:{line_of(repo / 'catalog/tiers/regulated.yaml', 'kms.rotation_days:')}" in err["message"]


def test_check_and_validate_report_errors_the_same_way(companyos, repo):
    edit_yaml(repo / "tenants/globex.yaml", lambda d: d.__setitem__("tier", "gold"))
    for command in ("check", "validate", "diff"):
        errors = run_expect_errors(companyos, repo, command)
        assert any("unknown tier 'gold'" in e["message"] for e in errors)


def test_usage_errors_exit_2_without_traceback(companyos, repo):
    result = companyos("explain", "nobody", "prod", cwd=repo)
    assert result.code == 2 and "unknown tenant 'nobody'" in result.err and "Traceback" not in result.err
    result = companyos("explain", "umbrella", "dev", cwd=repo)
    assert result.code == 2 and "not deployed to 'dev'" in result.err
    result = companyos("no-such-command", cwd=repo)
    assert result.code == 2 and "Traceback" not in result.err
