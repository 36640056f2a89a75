"""The catalog of a data directory: which collections and aliases a server serves.

Layout of a data directory (`hybridsearch serve --data-dir DIR`)::

    DIR/catalog.json          collections, aliases and the default (written atomically)
    DIR/writer.lock           the serving process's flock (one writer per data directory)
    DIR/collections/<name>/   each a complete index directory (`serve --index` opens it), or
                              a sharded collection (``shards.json`` and one index directory
                              per shard: `sharding.layout`)
    DIR/.tmp-<random>/        a collection being created or deleted (removed at start)

``catalog.json`` is the commit point of every change: a collection or alias exists exactly
when the catalog names it. Anything under ``collections/`` that the catalog does not name, and
every ``.tmp-*``, is what a crash left behind, and is removed when the server starts.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hybridsearch.errors import IndexFormatError, InvalidArgumentError
from hybridsearch.metadata.schema import CollectionSchema
from hybridsearch.storage.files import write_json_atomic

CATALOG_FILE = "catalog.json"
COLLECTIONS_DIR = "collections"
TMP_PREFIX = ".tmp-"
CATALOG_FORMAT = 1
DEFAULT_COLLECTION = "default"

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
NAME_RULE = "1 to 64 characters of a-z, 0-9, '_' and '-', starting with a letter or digit"
#: A collection's model: empty (BM25-only), ``default`` (the server's --model) or the name of
#: a directory under the server's --models-dir (never a path).
MODEL_DIR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MODEL_RULE = (
    "empty (BM25-only), 'default' (the server's --model) or the name of a directory under "
    "the server's --models-dir: 1 to 128 characters of A-Z, a-z, 0-9, '.', '_' and '-', "
    "starting with a letter or digit"
)


def name_problem(name: str) -> str | None:
    """What is wrong with a collection or alias name, or None."""
    if NAME.fullmatch(name):
        return None
    shown = name if len(name) <= 64 else name[:64] + "..."
    return f"must be {NAME_RULE} (got {shown!r})"


def model_problem(model: str) -> str | None:
    """What is wrong with a collection's model name (`MODEL_RULE`), or None."""
    if not model or MODEL_DIR_NAME.fullmatch(model):
        return None
    return f"must be {MODEL_RULE} (got {model!r})"


def new_uid() -> str:
    """A fresh `CollectionEntry.uid`."""
    return secrets.token_hex(8)


def check_name(name: str, field_path: str) -> None:
    """Raise `InvalidArgumentError` on ``field_path`` unless ``name`` follows the rule."""
    problem = name_problem(name)
    if problem is not None:
        raise InvalidArgumentError.single(field_path, problem)


@dataclass(frozen=True, slots=True)
class CollectionEntry:
    """One collection as the catalog records it.

    ``model`` is the name of the model directory its vectors come from (``default``: the
    server's ``--model``; others: a directory under ``--models-dir``), empty for BM25-only.
    ``shards``: 0 for one index directory, N >= 1 for a sharded collection of N shards (its
    directory's ``shards.json`` is the authority; this copy is what a listing shows).
    """

    name: str
    schema: CollectionSchema = CollectionSchema()
    model: str = ""
    dense_index: str = "exact"
    created: str = ""
    shards: int = 0
    #: Which creation this is (`new_uid`): a collection deleted and created again under its
    #: name within a second is another entry, for a read-only server following the catalog.
    #: Empty in catalogs written before it existed.
    uid: str = ""

    @property
    def relative_path(self) -> str:
        """Its index directory, relative to the data directory."""
        return f"{COLLECTIONS_DIR}/{self.name}"

    def to_json(self) -> dict[str, Any]:
        """The entry as ``catalog.json`` writes it (``shards`` only for a sharded one, so
        a catalog without sharded collections reads as before)."""
        obj: dict[str, Any] = {
            "path": self.relative_path,
            "schema": self.schema.to_json(),
            "model": self.model,
            "dense_index": self.dense_index,
            "created": self.created,
        }
        if self.shards:
            obj["shards"] = self.shards
        if self.uid:
            obj["uid"] = self.uid
        return obj

    @classmethod
    def from_json(cls, name: str, obj: Mapping[str, Any]) -> CollectionEntry:
        """Parse one entry of ``catalog.json``."""
        return cls(
            name=name,
            schema=CollectionSchema.from_json(obj.get("schema") or {}),
            model=str(obj.get("model", "")),
            dense_index=str(obj.get("dense_index", "exact")),
            created=str(obj.get("created", "")),
            shards=int(obj.get("shards", 0)),
            uid=str(obj.get("uid", "")),
        )


@dataclass(frozen=True, slots=True)
class Catalog:
    """Collections by name, aliases (alias → collection name) and the default collection.

    Immutable: every change makes a new catalog, saved whole (`save`) as one atomic write.
    """

    collections: Mapping[str, CollectionEntry] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)
    default: str = DEFAULT_COLLECTION

    def resolve(self, name: str) -> str | None:
        """The collection a name or alias (empty: the default) names, or None."""
        if not name:
            return self.default
        if name in self.collections:
            return name
        return self.aliases.get(name)

    def aliases_of(self, collection: str) -> list[str]:
        """The aliases naming ``collection``, in name order."""
        return sorted(a for a, target in self.aliases.items() if target == collection)

    def taken(self, name: str) -> bool:
        """Whether ``name`` is a collection's or an alias (they share one namespace)."""
        return name in self.collections or name in self.aliases

    def with_collection(self, entry: CollectionEntry) -> Catalog:
        """This catalog plus ``entry``."""
        return replace(self, collections={**self.collections, entry.name: entry})

    def without_collection(self, name: str) -> Catalog:
        """This catalog less the collection ``name`` and its aliases."""
        return replace(
            self,
            collections={n: e for n, e in self.collections.items() if n != name},
            aliases={a: t for a, t in self.aliases.items() if t != name},
        )

    def with_aliases(self, aliases: Mapping[str, str]) -> Catalog:
        """This catalog with its aliases replaced."""
        return replace(self, aliases=dict(aliases))

    def to_json(self) -> dict[str, Any]:
        """The catalog as ``catalog.json`` holds it."""
        return {
            "format": CATALOG_FORMAT,
            "default": self.default,
            "collections": {n: e.to_json() for n, e in sorted(self.collections.items())},
            "aliases": dict(sorted(self.aliases.items())),
        }

    def save(self, data_dir: Path) -> None:
        """Write ``catalog.json`` atomically (the commit point of every change)."""
        write_json_atomic(data_dir / CATALOG_FILE, self.to_json())


def load_catalog(data_dir: Path) -> Catalog | None:
    """The catalog of ``data_dir``, or None when it has none yet.

    Raises:
        IndexFormatError: the catalog is unreadable, of another format, or inconsistent.
    """
    path = data_dir / CATALOG_FILE
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise IndexFormatError(f"{path}: cannot read the catalog: {exc}") from exc
    if not isinstance(obj, dict) or obj.get("format") != CATALOG_FORMAT:
        raise IndexFormatError(f"{path}: not a catalog of format {CATALOG_FORMAT}")
    try:
        collections = {
            str(name): CollectionEntry.from_json(str(name), entry)
            for name, entry in obj["collections"].items()
        }
        catalog = Catalog(
            collections=collections,
            aliases={str(a): str(t) for a, t in obj.get("aliases", {}).items()},
            default=str(obj["default"]),
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise IndexFormatError(f"{path}: malformed catalog: {exc}") from exc
    problem = _inconsistency(catalog)
    if problem is not None:
        raise IndexFormatError(f"{path}: {problem}")
    return catalog


def _inconsistency(catalog: Catalog) -> str | None:
    for name, entry in catalog.collections.items():
        problem = name_problem(name)
        if problem is not None:
            return f"collection {name!r}: {problem}"
        problem = model_problem(entry.model)
        if problem is not None:
            return f"collection {name!r}: model {problem}"
    for alias in catalog.aliases:
        problem = name_problem(alias)
        if problem is not None:
            return f"alias {alias!r}: {problem}"
    if catalog.default not in catalog.collections:
        return f"the default collection {catalog.default!r} is not a collection"
    for alias, target in catalog.aliases.items():
        if target not in catalog.collections:
            return f"alias {alias!r} names {target!r}, which is not a collection"
        if alias in catalog.collections:
            return f"{alias!r} is both a collection and an alias"
    return None
