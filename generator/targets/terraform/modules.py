"""The Terraform versions every rendered root pins: one table, reviewed like a lock file.

Modules are the public terraform-aws-modules at exact versions (the ones whose inputs are
recorded in ``generator/vendor/terraform/terraform-aws-modules-inputs.json``; a test keeps
this table and that file in step). Upgrading a module is one line here plus a render, and
the module-input test then tells you which rendered arguments the new version no longer
accepts.
"""

from __future__ import annotations

#: ``required_version`` of every root. The rds module needs Terraform >= 1.11.1.
TERRAFORM_VERSION = "~> 1.13.0"

#: Provider name -> (source, version constraint). The s3-bucket module needs aws >= 6.42.
PROVIDERS: dict[str, tuple[str, str]] = {
    "aws": ("hashicorp/aws", "~> 6.42"),
    "random": ("hashicorp/random", "~> 3.7"),
    "time": ("hashicorp/time", "~> 0.13"),
    "tls": ("hashicorp/tls", "~> 4.1"),
}

#: Short name -> (registry source, exact version). Submodules (``//modules/...``) share
#: their package's version.
MODULES: dict[str, tuple[str, str]] = {
    "vpc": ("terraform-aws-modules/vpc/aws", "6.6.0"),
    "vpc_endpoints": ("terraform-aws-modules/vpc/aws//modules/vpc-endpoints", "6.6.0"),
    "eks": ("terraform-aws-modules/eks/aws", "21.19.0"),
    "karpenter": ("terraform-aws-modules/eks/aws//modules/karpenter", "21.19.0"),
    "rds": ("terraform-aws-modules/rds/aws", "7.2.0"),
    "rds_backup_replication": ("terraform-aws-modules/rds/aws//modules/db_instance_automated_backups_replication", "7.2.0"),
    "elasticache": ("terraform-aws-modules/elasticache/aws", "1.10.3"),
    "s3_bucket": ("terraform-aws-modules/s3-bucket/aws", "5.15.4"),
    "kms": ("terraform-aws-modules/kms/aws", "4.2.0"),
    "sqs": ("terraform-aws-modules/sqs/aws", "5.2.1"),
    "sns": ("terraform-aws-modules/sns/aws", "7.1.0"),
    "cloudfront": ("terraform-aws-modules/cloudfront/aws", "6.6.0"),
    "wafv2": ("terraform-aws-modules/wafv2/aws", "1.1.0"),
    "security_group_postgresql": ("terraform-aws-modules/security-group/aws//modules/postgresql", "5.3.1"),
    "iam_oidc_provider": ("terraform-aws-modules/iam/aws//modules/iam-oidc-provider", "6.5.0"),
    "iam_irsa": ("terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts", "6.5.0"),
}

#: Providers a module needs besides ``aws`` (a root declares the union of its modules').
MODULE_PROVIDERS: dict[str, tuple[str, ...]] = {
    "eks": ("time", "tls"),
    "iam_oidc_provider": ("tls",),
    "rds": ("random",),
    "elasticache": ("random",),
}


def required_providers(modules: set[str] | frozenset[str]) -> dict[str, tuple[str, str]]:
    """The ``required_providers`` entries a root using ``modules`` must declare."""
    names = {"aws"}
    for module in modules:
        names.update(MODULE_PROVIDERS.get(module, ()))
    return {name: PROVIDERS[name] for name in sorted(names)}
