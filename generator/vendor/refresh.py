"""Re-copy the vendored upstream data from a fresh copy of the upstream schema folder.

Why: the tool and the tests read this data from inside the package only; this script is
how the vendored copy is kept byte-identical to its source. ``VENDORED`` below is the one definition of the vendored
file set. Stdlib only, so it runs before the project's dependencies are installed.

    python -m generator.vendor.refresh --from PATH [--flagd PATH] [--check]

``--from`` names the schema folder to copy from (it is never looked up implicitly: the
project reads nothing outside its repository). Without ``--check``
it copies every file of the set that is missing or differs and removes vendored files whose
source is gone; with ``--check`` it writes nothing, lists the missing, differing and stale
files, and exits 1 if there are any.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

VENDOR_DIR = Path(__file__).resolve().parent


class Rule(NamedTuple):
    folder: str  #: sub-folder, the same in the source folder and here ("" = the top level)
    pattern: str  #: glob within that folder
    rename: str | None = None  #: vendored name when it differs (then ``pattern`` is a plain file name)


#: The vendored file set. Not vendored: upstream-crds/ (raw CRD YAML) and the tf_* regeneration tools.
VENDORED: tuple[Rule, ...] = (
    Rule("k8s-crds", "*.json"),  # strict and .loose.json variants
    Rule("helm", "application-*.values.schema.json"),
    Rule("helm", "application-*.values.yaml"),
    Rule("helm", "README.md", rename="PROVENANCE.md"),
    Rule("terraform", "*.json"),
    Rule("", "github-actions-pins.json"),
    Rule("tools", "validate_tf.py"),
    Rule("tools", "validate_k8s.py"),
    Rule("tools", "crd_to_jsonschema.py"),
)


#: flagd's flag-definition schemas (not in the schema folder): vendored path -> path in a checkout
#: of open-feature/flagd-schemas at the tag recorded in README.md (``--flagd``).
FLAGD: dict[str, str] = {"flagd/flags.json": "json/flags.json", "flagd/targeting.json": "json/targeting.json"}


def flagd_plan(checkout: Path) -> dict[str, Path]:
    out = {rel: checkout / src for rel, src in FLAGD.items()}
    absent = [str(p) for p in out.values() if not p.is_file()]
    if absent:
        raise ValueError(f"{', '.join(absent)} not found; is {checkout} a checkout of open-feature/flagd-schemas?")
    return out


def plan(source: Path) -> dict[str, Path]:
    """Vendored path (relative, POSIX) -> source file, for every rule; every rule must match."""
    out: dict[str, Path] = {}
    for rule in VENDORED:
        matches = sorted(p for p in (source / rule.folder).glob(rule.pattern) if p.is_file())
        if not matches:
            raise ValueError(f"{source / rule.folder / rule.pattern} matches no file; is {source} the upstream schema folder?")
        for src in matches:
            out[(Path(rule.folder) / (rule.rename or src.name)).as_posix()] = src
    return out


def vendored() -> set[str]:
    """The files under VENDOR_DIR that some rule claims."""
    return {
        (Path(rule.folder) / p.name).as_posix()
        for rule in VENDORED
        for p in (VENDOR_DIR / rule.folder).glob(rule.rename or rule.pattern)
        if p.is_file()
    }


def compare(wanted: dict[str, Path]) -> tuple[list[str], list[str], list[str]]:
    """(missing, differing, stale) vendored paths."""
    missing = [rel for rel in wanted if not (VENDOR_DIR / rel).is_file()]
    differing = [rel for rel, src in wanted.items()
                 if rel not in missing and (VENDOR_DIR / rel).read_bytes() != src.read_bytes()]
    stale = sorted(vendored() - wanted.keys())
    return sorted(missing), sorted(differing), stale


def write(dest: Path, data: bytes) -> None:
    """Replace ``dest`` atomically (works even if the old copy is read-only)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m generator.vendor.refresh", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="source", type=Path, required=True, metavar="PATH",
                    help="a fresh copy of the upstream schema folder to copy from")
    ap.add_argument("--flagd", type=Path, metavar="PATH",
                    help="also re-copy flagd's schemas from a checkout of open-feature/flagd-schemas")
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 listing files that differ, are missing or are stale")
    args = ap.parse_args(argv)
    source: Path = args.source
    if not source.is_dir():
        ap.error(f"no schema folder at {source}")
    try:
        wanted = plan(source)
        if args.flagd is not None:
            wanted.update(flagd_plan(args.flagd))
    except ValueError as e:
        ap.error(str(e))
    missing, differing, stale = compare(wanted)
    if args.check:
        for label, paths in (("missing", missing), ("differs", differing), ("stale", stale)):
            for rel in paths:
                print(f"{label}: generator/vendor/{rel}")
        if missing or differing or stale:
            print(f"refresh --check: generator/vendor/ is out of date with {source}", file=sys.stderr)
            return 1
        print(f"refresh --check: {len(wanted)} vendored files match {source}")
        return 0
    for rel in missing + differing:
        write(VENDOR_DIR / rel, wanted[rel].read_bytes())
        print(f"{'added' if rel in missing else 'updated'}: generator/vendor/{rel}")
    for rel in stale:
        (VENDOR_DIR / rel).unlink()
        print(f"removed: generator/vendor/{rel}")
    print(f"refresh: {len(wanted)} files from {source}; {len(missing)} added, {len(differing)} updated, {len(stale)} removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
