"""Images the platform runs itself are pinned by digest (CO040).

The pool bootstrap Jobs and the DR integrity recorder run psql of each database's engine
version against production data; a tag can be re-pointed upstream, a digest cannot. So every
engine version a deployment resolves to needs a digest in ``postgres_client.digests`` of
catalog/platform.yaml, reported once per place that sets the version.
"""

from __future__ import annotations

from collections.abc import Iterator

from generator.model.resolve import Model
from generator.policy.core import Violation, blame, rule, value_of

ENGINE_VERSION = "database.engine_version"


@rule(
    "CO040",
    "client-image-pinned",
    "Every PostgreSQL engine version in use has a psql image pinned by digest in catalog/platform.yaml (postgres_client).",
    waivable=False,
)
def client_image_pinned(model: Model) -> Iterator[Violation]:
    client = model.platform.postgres_client
    seen: set[tuple[str, str]] = set()
    for d in model.deployments:
        version = str(value_of(d, ENGINE_VERSION))
        if client.pinned(version):
            continue
        where = blame(d, ENGINE_VERSION, model.source("tier", d.tier.name))
        if (str(where), version) in seen:
            continue
        seen.add((str(where), version))
        pinned = ", ".join(sorted(client.digests)) or "none"
        yield Violation(
            "CO040",
            where,
            f"{ENGINE_VERSION} = {version} (tenant '{d.name}' in {d.env} and any other resolving here) has no psql image digest: "
            f'add postgres_client.digests."{version}" to catalog/platform.yaml (pinned: {pinned})',
            d.name,
            d.env,
            ENGINE_VERSION,
        )
