"""`companyos new-tenant acme --tier regulated` with no --account: the org root vends the
accounts in the same commit (rendered/terraform/org/tenant-<name>.tf) and the command output
and commit message say which accounts will be created."""

from __future__ import annotations

import git as gitpython
import hcl2
import yaml
from hcl2 import SerializationOptions

from helpers.tenants import OWNER

PLAIN = SerializationOptions(strip_string_quotes=True, with_comments=False)


def test_dedicated_tenant_without_accounts_gets_vended_accounts_in_the_same_commit(git_repo, companyos):
    res = companyos("new-tenant", "foo", "--tier", "regulated", "--environments", "dev,prod", *OWNER, "--no-input", cwd=git_repo)
    assert res.code == 0, res.err
    tenant = yaml.safe_load((git_repo / "tenants/foo.yaml").read_text())
    assert not tenant.get("accounts"), "no id typed anywhere"
    assert "vends     companyos-foo-dev <aws+companyos-foo-dev@example.com> in OU dev-regulated (dev)" in res.out
    assert "companyos-foo-prod" in res.out

    head = gitpython.Repo(git_repo).head.commit
    committed = {d.b_path or d.a_path for d in head.parents[0].diff(head)}
    assert "rendered/terraform/org/tenant-foo.tf" in committed
    assert "rendered/terraform/dev/tenant-foo/org_accounts.tf" in committed
    assert "rendered/terraform/org/main.tf" not in committed, "onboarding adds a file to the org root"
    assert "AWS accounts to create (rendered/terraform/org/tenant-foo.tf" in head.message
    assert "- companyos-foo-prod <aws+companyos-foo-prod@example.com> in OU prod-regulated (prod)" in head.message
    org = hcl2.loads((git_repo / "rendered/terraform/org/tenant-foo.tf").read_text(), serialization_options=PLAIN)
    created = {name for block in org["resource"] for named in block.values() for name in named}
    assert created == {"foo__dev", "foo__prod"} and "import" not in org


def test_given_ids_are_adopted_and_nothing_is_vended(git_repo, companyos):
    ids = ["--account", "dev=210000000199", "--account", "prod=410000000199"]
    res = companyos("new-tenant", "foo", "--tier", "regulated", "--environments", "dev,prod", *ids, *OWNER, "--no-input", cwd=git_repo)
    assert res.code == 0, res.err
    assert "vends" not in res.out
    org = hcl2.loads((git_repo / "rendered/terraform/org/tenant-foo.tf").read_text(), serialization_options=PLAIN)
    assert sorted(b["id"] for b in org["import"]) == ["210000000199", "410000000199"]
    assert not (git_repo / "rendered/terraform/dev/tenant-foo/org_accounts.tf").exists()
