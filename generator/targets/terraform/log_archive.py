"""Long-term archive of a root's CloudWatch log group (``log_archive.tf``), where
``settings.logs.archive`` is set (prod in the sample).

A subscription filter sends every event of the group its root creates (the shared root's
platform group, a tenant root's app group) to a Kinesis Data Firehose stream that writes it to
an S3 bucket of the same root: SSE-KMS under its own rotating key, public access blocked,
TLS-only, Glacier after ``glacier_after_days`` and expiry after ``expire_after_days``. Two
roles, each for one service and one action set: CloudWatch Logs may only put records into
this stream; Firehose may only write objects to this bucket, and use the key only through S3
for this bucket. Firehose stores the records as CloudWatch Logs sends them (gzip), so nothing
reads the objects back until someone restores them from Glacier.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from generator.catalog import spec
from generator.formats.templating import Templates
from generator.model.resolve import Model
from generator.targets.base import RenderedFile
from generator.targets.terraform.hcl import format_hcl


class Root(Protocol):
    """What this module reads of a Terraform root (``target.Root``; a protocol, not an import:
    the target imports this module)."""

    kind: str
    account: str
    prefix: str
    settings: spec.Settings
    env: spec.Environment
    sources: list[str]

    @property
    def tenant(self) -> str | None: ...

    @property
    def dir(self) -> str: ...


TEMPLATE = "terraform/log_archive.tf.j2"
FILENAME = "log_archive.tf"
#: Root kind -> the ``aws_cloudwatch_log_group`` its main.tf creates (``_blocks.tf.j2`` log_group).
GROUPS = {"shared": "platform", "dedicated": "app", "pooled": "app"}
#: Modules the file calls (for the root's required_providers).
MODULES = {"kms", "s3_bucket"}
#: S3 limits bucket names to 63 characters, IAM role names to 64, Firehose stream names to 64.
MAX_BUCKET = 63
MAX_NAME = 64


def applies(root: Root) -> bool:
    return root.settings.logs.archive is not None and root.kind in GROUPS


def names(root: Root) -> dict[str, str]:
    """Names of what the file creates, bucket suffixed with the account (S3 names are global)."""
    return {
        "bucket": f"{root.prefix}-log-archive-{root.account}",
        "stream": f"{root.prefix}-log-archive",
        "firehose_role": f"{root.prefix}-log-archive-firehose",
        "logs_role": f"{root.prefix}-log-archive-logs",
        "alias": f"alias/{root.prefix}-log-archive",
    }


def context(root: Root) -> dict[str, object]:
    archive = root.settings.logs.archive
    assert archive is not None
    region = root.env.aws.region
    return {
        "archive": archive,
        "group": GROUPS[root.kind],
        "n": names(root),
        "region": region,
        "account": root.account,
        "logs_source_arn": f"arn:aws:logs:{region}:{root.account}:*",
    }


def files(model: Model, templates: Templates, root: Root, base: dict[str, Any]) -> Iterator[RenderedFile]:
    """``log_archive.tf`` of a root with a log group, where the archive is configured."""
    if not applies(root):
        return
    text = format_hcl(templates.render(TEMPLATE, **context(root), **base))
    yield RenderedFile(
        path=f"{root.dir}/{FILENAME}",
        text=text,
        sources=(*root.sources, templates.path(TEMPLATE), templates.path("terraform/_blocks.tf.j2")),
        tenant=root.tenant,
        environment=root.env.name,
        root=root.dir,
    )
