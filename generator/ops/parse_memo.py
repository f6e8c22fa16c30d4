"""Parses of rendered files for the analyzer that reads the rendered tree (``ops.isolation``),
kept by the sha256 of each file's bytes. python-hcl2 takes ~95 ms for a tenant's ``main.tf``,
so at 10,000 tenants x 3 a run parses 30,000 of them: most of an hour on one core.

A file whose bytes were parsed before is decoded from ``.companyos-cache/rendered-parses``
(a local cache, like the catalog's: CI has none and parses everything); the misses are
parsed on every core before the analyzer asks (:meth:`ParseMemo.warm`). An entry is the
parse alone, never a judgement: what a file means is decided afresh every run. Its key holds
the parsers' versions and the blocks kept (:data:`MEMO_VERSION`), so an upgrade parses
again. YAML is read with libyaml when PyYAML has it (17x faster than its pure-Python
composer, the same documents).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import msgspec
import yaml

from generator.errors import UsageError
from generator.output import forked
from generator.output.atomic import write_atomic
from generator.output.listing import CACHE_DIR

#: Bump when what an entry holds changes shape.
MEMO_VERSION = 1
#: Where the entries live, under the project's root.
MEMO_DIR = f"{CACHE_DIR}/rendered-parses"
#: Parses kept in memory by digest (a re-run over a copy, as the tests and ``lint`` do); each
#: is up to ~1 MB of objects, so the bound matters at 10,000 tenants.
KEPT = 256
#: Below this many misses, parsing here beats starting workers.
MIN_PARALLEL = 16

#: Which top-level blocks of a ``.tf`` file a parse keeps: kind -> block types (None: all).
Blocks = Mapping[str, frozenset[str] | None]
#: ``(first line, document)`` of every mapping document of a YAML file.
YamlDocs = list[tuple[int, dict[str, Any]]]

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder()


def unquote(value: Any) -> Any:
    """python-hcl2's output without its block markers and the quotes around string literals."""
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [unquote(v) for v in value]
    return value.strip('"') if isinstance(value, str) else value


def parse_hcl(data: bytes, blocks: Blocks) -> dict[str, Any]:
    """A ``.tf`` file's top-level blocks of the kinds and types in ``blocks``, parsed by python-hcl2."""
    try:
        import hcl2
    except ImportError:
        raise UsageError("the isolation analyzer needs python-hcl2, a test dependency: run `make install-test`") from None

    doc = unquote(hcl2.loads(data.decode("utf-8")))
    kept: dict[str, Any] = {}
    for kind, types in blocks.items():
        found = doc.get(kind, [])
        kept[kind] = found if types is None else [{t: body} for block in found for t, body in block.items() if t in types]
    return kept


def parse_yaml(data: bytes) -> YamlDocs:
    """Every mapping document of a YAML stream with the line it starts on (a stream's nodes
    composed once, each constructed from its node: no serialize-and-load round trip)."""
    loader = _LOADER(data.decode("utf-8"))
    out: YamlDocs = []
    try:
        while loader.check_node():
            node = loader.get_node()
            assert node is not None  # check_node said there is one
            doc = loader.construct_document(node)
            if isinstance(doc, dict):
                out.append((node.start_mark.line + 1, doc))
    finally:
        loader.dispose()
    return out


class ParseMemo:
    """Parses by content digest: in memory (the last :data:`KEPT`), then in ``folder`` (None:
    memory only), then parsed. Every file a run asks for is remembered (:meth:`prune`)."""

    def __init__(self, folder: Path | None, blocks: Blocks) -> None:
        self.blocks = blocks
        self.salt = _salt(blocks)
        self.folder = folder / MEMO_DIR / self.salt[:16] if folder is not None else None
        self._kept: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._used: set[str] = set()

    def hcl(self, path: Path) -> dict[str, Any]:
        """The kept blocks of a ``.tf`` file (shared: callers only read it)."""
        parsed: dict[str, Any] = self._parse(path, "hcl")
        return parsed

    def yaml_docs(self, path: Path) -> YamlDocs:
        """:func:`parse_yaml` of a file (shared: callers only read it)."""
        docs: YamlDocs = self._parse(path, "yaml")
        return docs

    def warm(self, paths: Sequence[Path], jobs: int) -> int:
        """Parse every file of ``paths`` not in the folder yet, on ``jobs`` cores, into the
        folder; the number parsed. Without a folder, nothing (each is parsed when asked)."""
        if self.folder is None:
            return 0
        missing = []
        for path in paths:
            with contextlib.suppress(OSError):
                key = _digest(path.read_bytes())
                self._used.add(key)
                if not _entry(self.folder, key).exists():
                    missing.append(str(path))
        jobs = jobs if len(missing) >= MIN_PARALLEL else 1
        forked.each_forked(functools.partial(_store, self.folder, dict(self.blocks)), missing, jobs, who="parse")
        return len(missing)

    def prune(self) -> None:
        """Drop every entry no call of this memo asked for, and other versions' folders: the
        memo holds what the run read (one environment's files after ``isolation --env``: in
        CI each environment's job keeps its own)."""
        if self.folder is None or not self.folder.is_dir():
            return
        for other in self.folder.parent.iterdir():
            if other != self.folder:
                shutil.rmtree(other, ignore_errors=True)
        for shard in self.folder.iterdir():
            for entry in shard.iterdir() if shard.is_dir() else ():
                if entry.name not in self._used:
                    entry.unlink(missing_ok=True)

    def _parse(self, path: Path, kind: str) -> Any:
        data = path.read_bytes()
        key = _digest(data)
        self._used.add(key)
        found = self._kept.get((kind, key))
        if found is not None:
            self._kept.move_to_end((kind, key))
            return found
        found = _read(self.folder, key) if self.folder is not None else None
        if found is None:
            found = _parsed(data, kind, self.blocks)
            if self.folder is not None:
                _write(self.folder, key, found)
        self._kept[(kind, key)] = found
        if len(self._kept) > KEPT:
            self._kept.popitem(last=False)
        return found


def _parsed(data: bytes, kind: str, blocks: Blocks) -> Any:
    return parse_hcl(data, blocks) if kind == "hcl" else parse_yaml(data)


def _store(folder: Path, blocks: Blocks, path: str) -> None:
    """One miss parsed into ``folder`` (in a worker). A file that does not parse is left
    out: the analyzer parses it again and meets the error itself."""
    data = Path(path).read_bytes()
    with contextlib.suppress(Exception):
        _write(folder, _digest(data), _parsed(data, "hcl" if path.endswith(".tf") else "yaml", blocks))


def _entry(folder: Path, key: str) -> Path:
    return folder / key[:2] / key


def _read(folder: Path, key: str) -> Any:
    try:
        return _from_entry(_entry(folder, key).read_bytes())
    except (OSError, msgspec.DecodeError):
        return None


def _write(folder: Path, key: str, parsed: Any) -> None:
    """An entry, only when it reads back as the same value (a YAML timestamp or a non-string
    key would not) and the folder can take it: a cache, so a failure is only a miss."""
    with contextlib.suppress(OSError, TypeError, ValueError, OverflowError, msgspec.EncodeError, msgspec.DecodeError):
        encoded = _ENCODER.encode(_to_entry(parsed))
        if _from_entry(encoded) == parsed:
            write_atomic(_entry(folder, key), encoded)


def _to_entry(parsed: Any) -> Any:
    # YAML documents are (line, doc) tuples, which msgpack reads back as lists
    return [list(item) for item in parsed] if isinstance(parsed, list) else parsed


def _from_entry(data: bytes) -> Any:
    value = _DECODER.decode(data)
    return [(line, doc) for line, doc in value] if isinstance(value, list) else value


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _salt(blocks: Blocks) -> str:
    """The parsers' versions (and whether libyaml reads), the blocks kept, the entry shape."""
    parts = [f"memo-v{MEMO_VERSION}", f"libyaml={_LOADER is not yaml.SafeLoader}"]
    for name in ("python-hcl2", "lark", "PyYAML", "msgspec"):
        try:
            parts.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name}==?")
    parts += [f"{kind}:{','.join(sorted(types)) if types is not None else '*'}" for kind, types in sorted(blocks.items())]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def memo_folder(root: Path) -> Path | None:
    """``root`` when the memo may live under it (a writable project folder), else None."""
    return root if os.access(root, os.W_OK) else None
