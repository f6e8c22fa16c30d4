"""``companyos promote SERVICE --to ENV``: what a promotion changes, decided without writing.

A promotion copies the release (tag and digest) the previous environment of the promotion
chain runs into the target environment's ``image.releases`` entry of the service's catalog
file. The first environment has no previous one: its release comes from the release workflow
(``--digest`` and ``--tag``), which only services with ``build`` have. Refused: a promotion
from anything but the environment's ``promotion.after`` (a skip), from an environment with no
release, into an environment whose change window is closed, and a digest that is not
``sha256:`` + 64 hex. The transactional write and re-render is ``lifecycle/promote.py``.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from generator.catalog import changewindow, spec
from generator.catalog.load import Catalog, load_catalog
from generator.errors import CatalogError, CatalogErrors, UsageError
from generator.model import naming

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Promotion:
    service: str
    source_env: str | None
    target_env: str
    tag: str
    digest: str
    #: The image the target environment will pull: the source's copy (what ``cosign copy`` reads).
    source_image: str | None
    target_repository: str
    #: Repository-relative catalog file and its new text.
    path: str
    text: str
    unchanged: bool

    def as_json(self) -> dict[str, object]:
        return {
            "service": self.service,
            "from": self.source_env,
            "to": self.target_env,
            "tag": self.tag,
            "digest": self.digest,
            "source_image": self.source_image,
            "target_repository": self.target_repository,
            "file": self.path,
            "unchanged": self.unchanged,
        }


def plan(
    root: Path,
    service: str,
    to: str,
    *,
    from_env: str | None = None,
    digest: str | None = None,
    tag: str | None = None,
    now: datetime | None = None,
) -> Promotion:
    """The promotion of ``service`` to ``to``; CatalogErrors (path:line:col) or UsageError when refused."""
    catalog = load_catalog(root)
    services = catalog.services
    envs = catalog.environments
    if service not in services:
        raise UsageError(f"unknown service '{service}' (known: {', '.join(sorted(services)) or 'none'})")
    if to not in envs:
        raise UsageError(f"unknown environment '{to}' (known: {', '.join(sorted(envs))})")
    entry = services[service]
    svc: spec.Service = entry.spec
    target: spec.Environment = envs[to].spec
    after = target.promotion.after
    if digest is not None and not DIGEST.fullmatch(digest):
        raise UsageError(f"--digest {digest!r} is not an image digest: 'sha256:' followed by 64 lowercase hex digits; nothing was written")
    if after is None:
        if svc.build is None:
            raise CatalogErrors(
                [
                    CatalogError(
                        entry.locate("name"),
                        f"service '{service}' names no source folder and Dockerfile (`build:`); it cannot be built or released to {to}",
                    )
                ]
            )
        if digest is None or tag is None:
            raise UsageError(f"{to} is the first environment: its release comes from the release workflow (--digest and --tag)")
        if from_env is not None:
            raise CatalogErrors(
                [CatalogError(envs[to].locate("promotion", "after"), f"{to} is the first environment; nothing is promoted into it")]
            )
        release = spec.ImageRelease(tag=tag, digest=spec.DigestString(digest))
        source_image = None
    else:
        if from_env is not None and from_env != after:
            raise CatalogErrors(
                [
                    CatalogError(
                        envs[to].locate("promotion", "after"),
                        f"{to} is promoted from {after} (promotion.after); promoting from {from_env} would skip {after}",
                    )
                ]
            )
        if digest is not None or tag is not None:
            raise UsageError(f"--digest and --tag record a build in the first environment; {to} takes {after}'s release")
        found = svc.image.releases.get(after)
        if found is None:
            raise CatalogErrors(
                [
                    CatalogError(
                        entry.locate("image"),
                        f"{after} runs no recorded release of '{service}' (image.releases.{after}); promote to {after} first",
                    )
                ]
            )
        release = found
        source_image = f"{_repository(svc, envs[after].spec)}:{release.tag}@{release.digest}"
        _check_window(catalog, to, now)
    path = entry.path
    text = (root / path).read_text(encoding="utf-8")
    current = svc.image.releases.get(to)
    unchanged = current == release
    new_text = text if unchanged else _edited(text, to, release)
    return Promotion(
        service=service,
        source_env=after,
        target_env=to,
        tag=release.tag,
        digest=release.digest,
        source_image=source_image,
        target_repository=_repository(svc, target),
        path=path,
        text=new_text,
        unchanged=unchanged,
    )


def _repository(svc: spec.Service, env: spec.Environment) -> str:
    return naming.ecr_repository_url(env, svc.image.repository) if svc.build is not None else svc.image.repository


def _check_window(catalog: Catalog, env: str, now: datetime | None) -> None:
    target: spec.Environment = catalog.environments[env].spec
    window = target.change_window
    if window is None:
        return
    state = changewindow.is_open(target, now or datetime.now(UTC))
    if not state.open:
        opens = f"; it opens {state.start.isoformat()}" if state.start else ""
        raise UsageError(
            f"{env}'s change window is closed ({window.schedule} for {window.duration}, {window.timezone}){opens}; nothing was written"
        )


def _edited(text: str, env: str, release: spec.ImageRelease) -> str:
    """The service file with ``image.releases.<env>`` set, comments and layout kept."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    data = yaml.load(text)
    image = data["image"]
    if "releases" not in image:
        image["releases"] = CommentedMap()
    entry = CommentedMap([("tag", release.tag), ("digest", release.digest)])
    entry.fa.set_flow_style()
    image["releases"][env] = entry
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()
