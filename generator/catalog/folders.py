"""The repository's folders by role: what a catalog read takes, what the generator writes.

One definition for the stages that need them: the incremental render's input digests, the
verified-clean record, the journal's writes and a base commit's comparisons
(``check --base --committed`` proves the inputs are HEAD's and diffs the outputs). Plain
values and :func:`find_root` only: the CLI reads them before it loads anything else.
"""

from __future__ import annotations

from pathlib import Path

#: What loading and resolving a catalog reads (with the generator's code, every input).
INPUT_DIRS = ("catalog", "environments", "tenants", "templates")
#: Where the generator writes: only files its manifests list are ever changed or pruned there.
OUTPUT_DIRS = ("rendered", ".github/workflows")
#: The fleet-wide manifest of an older layout (the unit manifests replaced it): still known so
#: that a tree rendered then is read, and pruned, as its own.
MANIFEST_PATH = "rendered/.companyos-manifest.json"


def find_root(start: Path) -> Path:
    """The repository root: the nearest folder at or above ``start`` with catalog/platform.yaml."""
    start = start.resolve()
    for candidate in (start, *start.parents):
        if (candidate / "catalog" / "platform.yaml").is_file():
            return candidate
    return start
