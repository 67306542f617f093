"""The cache: per-file summaries and per-file results, in one SQLite database per project.

`.sync-lint-cache/index.sqlite` at the project root (a `.gitignore` inside keeps
the folder out of git). A summary is keyed by the file's content (its SHA-256);
its stat signature (mtime, size) only saves re-reading files that did not change.
A result is keyed by the file's content, the tool version, the settings and the
project's fingerprint (the contents of all its files), so it is reused only when
nothing it could depend on changed.

SQLite gives the safety this needs for free: every update is one transaction, so
a run killed midway leaves the previous state; concurrent runs take turns (WAL
journal, a generous busy timeout). A database that cannot be opened or has an
older format is rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sqlite3
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable

from sync_lint import __version__
from sync_lint.project.index import calls_by_name, table_rows
from sync_lint.project.summary import SUMMARY_FORMAT, ModuleSummary

CACHE_DIRNAME = ".sync-lint-cache"
DATABASE = "index.sqlite"
_FORMAT = f"{SUMMARY_FORMAT}.3:{__version__}"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, module TEXT, mtime_ns INTEGER, size INTEGER, sha TEXT, summary BLOB);
CREATE INDEX IF NOT EXISTS files_module ON files (module);
CREATE TABLE IF NOT EXISTS names (kind TEXT, name TEXT, module TEXT);
CREATE INDEX IF NOT EXISTS names_lookup ON names (kind, name);
CREATE INDEX IF NOT EXISTS names_module ON names (module);
CREATE TABLE IF NOT EXISTS results (path TEXT PRIMARY KEY, key TEXT, result BLOB);
CREATE TABLE IF NOT EXISTS calls (name TEXT, module TEXT, sites BLOB);
CREATE INDEX IF NOT EXISTS calls_name ON calls (name);
CREATE INDEX IF NOT EXISTS calls_module ON calls (module);
CREATE TABLE IF NOT EXISTS conventions (
    name TEXT, module TEXT, gpu INTEGER, cpu INTEGER, total INTEGER,
    gpu_where TEXT, gpu_reason TEXT, cpu_where TEXT, cpu_reason TEXT);
CREATE INDEX IF NOT EXISTS conventions_name ON conventions (name);
"""


@dataclass(frozen=True)
class Stat:
    mtime_ns: int
    size: int
    sha: str
    module: str


def prepare_cache_dir(folder: Path) -> None:
    """Create the cache folder with the markers that keep it out of git and backups."""
    folder.mkdir(parents=True, exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# Created by sync-lint: nothing in this folder belongs in git.\n*\n", encoding="utf-8")
    tag = folder / "CACHEDIR.TAG"
    if not tag.exists():
        tag.write_text("Signature: 8a477f597d28d172789f06886806bc55\n# sync-lint cache\n", encoding="utf-8")


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ProjectStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        try:
            db = self._open()
            if self._format(db) != _FORMAT:
                db.close()
                self._reset()
                db = self._open()
            return db
        except sqlite3.DatabaseError:  # a corrupt or foreign file: start over
            self._reset()
            return self._open()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=120, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        if self._format(db) is None:
            db.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (_FORMAT,))
        return db

    @staticmethod
    def _format(db: sqlite3.Connection) -> str | None:
        row = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        return row[0] if row else None

    def _reset(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(f"{self.path}{suffix}")
            except FileNotFoundError:
                pass

    def close(self) -> None:
        self._db.close()

    # --- files and summaries -------------------------------------------------------------------
    def stats(self) -> dict[str, Stat]:
        return {path: Stat(mtime, size, sha, module) for path, module, mtime, size, sha in
                self._db.execute("SELECT path, module, mtime_ns, size, sha FROM files")}

    def update(self, summaries: Iterable[tuple[str, int, int, str, ModuleSummary]], removed: Iterable[str],
               touched: Iterable[tuple[str, int, int]] = ()) -> None:
        """Store new summaries, forget removed files, refresh stat signatures: one transaction."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for path in [*removed, *(row[0] for row in summaries)]:
                for table in ("names", "conventions", "calls"):
                    db.execute(f"DELETE FROM {table} WHERE module IN (SELECT module FROM files WHERE path = ?)",
                               (path,))
            for path in removed:
                db.execute("DELETE FROM files WHERE path = ?", (path,))
                db.execute("DELETE FROM results WHERE path = ?", (path,))
            for path, mtime, size, sha, summary in summaries:
                # The call sites, most of a summary, are kept by callee name and read only when asked.
                header = replace(summary, calls=[])
                db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)",
                           (path, summary.module, mtime, size, sha, pickle.dumps(header, protocol=5)))
                db.executemany("INSERT INTO calls VALUES (?, ?, ?)", [
                    (name, summary.module, pickle.dumps(sites, protocol=5))
                    for name, sites in calls_by_name(summary).items()])
                db.executemany("INSERT INTO names VALUES (?, ?, ?)", table_rows(summary))
                db.executemany("INSERT INTO conventions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                    (attr, summary.module, gpu, cpu, total,
                     f"{summary.path}:{gpu_ex[0]}" if gpu_ex else None, gpu_ex[1] if gpu_ex else None,
                     f"{summary.path}:{cpu_ex[0]}" if cpu_ex else None, cpu_ex[1] if cpu_ex else None)
                    for attr, (gpu, cpu, total, gpu_ex, cpu_ex) in (summary.conventions or {}).items()])
            for path, mtime, size in touched:
                db.execute("UPDATE files SET mtime_ns = ?, size = ? WHERE path = ?", (mtime, size, path))
            fingerprint = hashlib.sha256()
            for path, sha in db.execute("SELECT path, sha FROM files ORDER BY path"):
                fingerprint.update(f"{path}\0{sha}\n".encode())
            db.execute("INSERT OR REPLACE INTO meta VALUES ('fingerprint', ?)", (fingerprint.hexdigest(),))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def fingerprint(self) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'fingerprint'").fetchone()
        return row[0] if row else ""

    def modules(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT DISTINCT module FROM files ORDER BY module")]

    def summary(self, module: str) -> ModuleSummary | None:
        row = self._db.execute("SELECT summary FROM files WHERE module = ? ORDER BY path LIMIT 1", (module,)).fetchone()
        return pickle.loads(row[0]) if row else None

    def modules_naming(self, kind: str, name: str) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT module FROM names WHERE kind = ? AND name = ?",
                                                   (kind, name))}

    # --- results -------------------------------------------------------------------------------
    def result(self, path: str, key: str) -> object | None:
        row = self._db.execute("SELECT result FROM results WHERE path = ? AND key = ?", (path, key)).fetchone()
        return pickle.loads(row[0]) if row else None

    def put_results(self, rows: Iterable[tuple[str, str, object]]) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT OR REPLACE INTO results VALUES (?, ?, ?)",
                           [(path, key, pickle.dumps(result, protocol=5)) for path, key, result in rows])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


class StoreTables:
    """The index's name tables, read from the database on demand (a warm run loads only what it asks)."""

    def __init__(self, store: ProjectStore) -> None:
        self._store = store
        self.calls = _LazyNames(store, "calls")
        self.stores = _LazyNames(store, "stores")
        self.entries = _LazyNames(store, "entries")
        self.classes = _LazyNames(store, "classes")
        self.bases = _LazyNames(store, "bases")

    def add(self, summary: ModuleSummary) -> None:
        for kind, name, value in table_rows(summary):
            getattr(self, kind).extra(name, value)

    def base_rows(self) -> list[tuple[str, str]]:
        return [(cls, base) for cls, bases in self.bases.items() for base in bases]

    def call_sites(self, name: str) -> list[tuple[str, list]]:
        return [(module, pickle.loads(sites)) for module, sites in self._store._db.execute(
            "SELECT module, sites FROM calls WHERE name = ? ORDER BY module", (name,))]

    def conventions(self, attr: str) -> tuple | None:
        """(GPU stores, CPU stores, informative stores, (where, reason) of a GPU one, of a CPU one) of an
        attribute across the project, or None when nothing stores it."""
        db = self._store._db
        row = db.execute("SELECT SUM(gpu), SUM(cpu), SUM(total) FROM conventions WHERE name = ?", (attr,)).fetchone()
        if not row or row[2] is None:
            return None
        gpu = db.execute("SELECT gpu_where, gpu_reason FROM conventions WHERE name = ? AND gpu > 0 ORDER BY module "
                         "LIMIT 1", (attr,)).fetchone()
        cpu = db.execute("SELECT cpu_where, cpu_reason FROM conventions WHERE name = ? AND cpu > 0 ORDER BY module "
                         "LIMIT 1", (attr,)).fetchone()
        return row[0], row[1], row[2], gpu, cpu


class _LazyNames:
    def __init__(self, store: ProjectStore, kind: str) -> None:
        self._store = store
        self._kind = kind
        self._known: dict[str, set[str]] = {}
        self._extra: dict[str, set[str]] = {}

    def get(self, name: str, default: object = ()) -> set[str]:
        found = self._known.get(name)
        if found is None:
            found = self._known[name] = self._store.modules_naming(self._kind, name)
        return found | self._extra.get(name, set())

    def extra(self, name: str, module: str) -> None:
        self._extra.setdefault(name, set()).add(module)

    def items(self) -> Iterable[tuple[str, set[str]]]:
        rows = self._store._db.execute("SELECT name, module FROM names WHERE kind = ?", (self._kind,))
        grouped: dict[str, set[str]] = {}
        for name, module in rows:
            grouped.setdefault(name, set()).add(module)
        for name, modules in self._extra.items():
            grouped.setdefault(name, set()).update(modules)
        return grouped.items()
