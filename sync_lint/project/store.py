"""The cache: summaries, solved facts and per-file results, in one SQLite database per project.

`.sync-lint-cache/index.sqlite` at the project root (a `.gitignore` inside keeps
the folder out of git). Three kinds of entries:

- a file's **summary**, keyed by its content (SHA-256); its stat signature (mtime,
  size) only saves re-reading files that did not change;
- a **fact** the inference solved (a key: a field, a parameter, a return), with
  what it read (`deps.py`: labels of index reads, and other facts);
- a file's **result** (its findings), keyed by the file's content, the tool version
  and the settings, with what it read.

When files change, `update` drops every fact and result that read something they
touch, transitively (a recursive query over the reads), in the same transaction
that stores the new summaries. A fact or result computed by a run that started
before an update is not stored (a generation number tells).

SQLite gives the safety this needs: every update is one transaction, so a run
killed midway leaves the previous state; concurrent runs take turns (WAL journal,
a generous busy timeout). A database that cannot be opened or has an older format
is rebuilt.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import os
import pickle
import re
import sqlite3
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, NamedTuple

from sync_lint.analysis.facts import map_text
from sync_lint.fingerprint import code_content_digest, content_digest
from sync_lint.project.deps import Dep, dep_id
from sync_lint.project.index import RENAMED_BASES, WHOLE_TABLES, calls_by_name, table_rows
from sync_lint.project.digest import ContentDigest
from sync_lint.project.parts import LineMark, PlacedDigest, part_digests
from sync_lint.project.summary import SUMMARY_FORMAT, ModuleSummary, map_call_lines, map_lines

CACHE_DIRNAME = ".sync-lint-cache"
DATABASE = "index.sqlite"
_QUERY_CHUNK = 500  # parameters per `IN (...)` query, below SQLite's limit
# An update lists the results it dropped up to this many (`ProjectStore.update`): past it, the
# edit touched so much that whatever was read ahead of it is mostly gone anyway.
_LISTED_DROPS = 5000
# A `path:line` a fact's evidence names, found in its pickle (a string's UTF-8 bytes stand whole
# there). `fact_files` keeps, for each such path, the facts naming it: an edit that moves a file's
# lines rewrites those facts without reading every fact (0.2-0.4 s for vLLM). The characters are
# those `_move_evidence` stops a path at; a path with others is looked for by reading every fact.
_CITED = re.compile(rb"(?<![\w./\\-])([\w./\\-]+\.pyi?):\d")
_PLAIN_PATH = re.compile(r"[\w./\\-]+\.pyi?", re.ASCII)


def _file_id(path: bytes) -> int:
    return dep_id(("file", path))


# What the write-ahead log may keep between transactions (SQLite's own checkpoint threshold is 4 MB).
_WAL_KEPT_BYTES = 16 << 20
# How long a statement waits for another run's write transaction before giving up.
_BUSY_TIMEOUT_S = 120


def _result_id(name: str) -> int:
    """A stored result's name as the integer its reads are kept under. Kept as the name itself, the
    reads were a third of a cold cache's data: transformers 5.23's 1.7 million rows, each with a
    path of about 80 bytes, took 418 MB with their two indexes."""
    return dep_id(("result", name))


@contextlib.contextmanager
def _immediate(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction: committed when the block ends, rolled back when it raises."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


@functools.lru_cache(maxsize=None)
def tool_fingerprint() -> str:
    """The code that solved cached facts and results: its contents, so that a fresh install of the
    same code (a CI job restoring an earlier job's cache) keeps them (`sync_lint/fingerprint.py`)."""
    return code_content_digest(str(SUMMARY_FORMAT))


@functools.lru_cache(maxsize=None)
def summary_fingerprint() -> str:
    """The code that wrote the summaries (the database's format) and their local conventions, which
    the inference evaluates: a change elsewhere keeps them."""
    package = Path(__file__).resolve().parent.parent
    names = ("project/summary.py", "project/values.py", "project/conventions.py", "project/store.py",
             "project/index.py", "project/infer.py", "analysis/facts.py", "analysis/knowledge.py")
    return content_digest([(name, package / name) for name in names], str(SUMMARY_FORMAT))


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS listings (key TEXT PRIMARY KEY, listing BLOB);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, module TEXT, mtime_ns INTEGER, size INTEGER, sha TEXT, summary BLOB);
CREATE INDEX IF NOT EXISTS files_module ON files (module);
-- Every check reads every file's stat signature (`stats`), and every update the content hashes in
-- order: from this index they are read without the summaries' pages (8 ms down to 3 for vLLM).
CREATE INDEX IF NOT EXISTS files_stat ON files (path, mtime_ns, size, sha, module);
CREATE TABLE IF NOT EXISTS names (kind TEXT, name TEXT, value TEXT, module TEXT);
CREATE INDEX IF NOT EXISTS names_lookup ON names (kind, name);
CREATE INDEX IF NOT EXISTS names_module ON names (module);
CREATE TABLE IF NOT EXISTS results (path TEXT PRIMARY KEY, key TEXT, result BLOB, id INTEGER);
CREATE INDEX IF NOT EXISTS results_id ON results (id);
CREATE TABLE IF NOT EXISTS result_reads (dep INTEGER, result INTEGER, PRIMARY KEY (dep, result)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS result_reads_result ON result_reads (result);
-- Rows in the order they are stored, found by `id` through the index: a cold run stores facts in
-- batches whose ids (hashes) fall all over the table, and keyed by `id` each commit rewrote a page of
-- the table for nearly every fact (on a cold vLLM 0.33 run, saving facts took 12.1 s of each check
-- worker's time keyed by `id`, 9.2 s so).
CREATE TABLE IF NOT EXISTS facts (seq INTEGER PRIMARY KEY, id INTEGER NOT NULL, fact BLOB);
CREATE UNIQUE INDEX IF NOT EXISTS facts_id ON facts (id);
CREATE TABLE IF NOT EXISTS fact_reads (dep INTEGER, fact INTEGER, PRIMARY KEY (dep, fact)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nodes (id INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS pending_reads (dep INTEGER, fact INTEGER);
CREATE TABLE IF NOT EXISTS fact_files (file INTEGER, fact INTEGER, PRIMARY KEY (file, fact)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS calls (name TEXT, module TEXT, sites BLOB);
CREATE INDEX IF NOT EXISTS calls_name ON calls (name);
CREATE INDEX IF NOT EXISTS calls_module ON calls (module);
CREATE TABLE IF NOT EXISTS conventions (
    name TEXT, module TEXT, gpu INTEGER, cpu INTEGER, total INTEGER,
    gpu_where TEXT, gpu_reason TEXT, cpu_where TEXT, cpu_reason TEXT);
CREATE INDEX IF NOT EXISTS conventions_name ON conventions (name);
"""


class Stat(NamedTuple):  # a tuple: a warm check reads one per project file
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


def _use_write_ahead_log(db: sqlite3.Connection) -> None:
    """Switch the database to WAL. On a new file another run may be switching it at the same moment:
    SQLite then answers "locked" at once, without waiting on the busy timeout, so wait here."""
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    pause = 0.005
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


class ProjectStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        try:
            return self._open()
        except sqlite3.OperationalError:  # locked, unreadable: never a reason to delete another run's cache
            raise
        except sqlite3.DatabaseError:  # a corrupt or foreign file: start over
            self._reset()
            return self._open()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        _use_write_ahead_log(db)
        db.execute("PRAGMA synchronous=NORMAL")
        # A cold run inserts about a million dependency rows at random keys into two B-tree
        # indexes; with SQLite's default 2 MB page cache that took 2.5x the CPU of a 128 MB one.
        db.execute("PRAGMA cache_size=-131072")
        # The write-ahead log keeps the size of the largest transaction (a cold run's merge of the
        # dependency rows: 384 MB for transformers 5.23) once its pages are copied back, as dead
        # space in every cache folder a CI job saves. Past this size it is cut back by the first
        # write after a checkpoint (and right after the merge: `_truncate_log`).
        db.execute(f"PRAGMA journal_size_limit={_WAL_KEPT_BYTES}")
        if self._format(db) != summary_fingerprint():
            self._initialise(db)
        return db

    def _initialise(self, db: sqlite3.Connection) -> None:
        """Create the tables, emptying a database of another format, in one transaction: a run that
        opens the same new cache meanwhile waits, then finds it ready (it must not take a half-made
        database for one of another format and delete it under the first run)."""
        with _immediate(db):
            if self._format(db) != summary_fingerprint():
                tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
                for table in tables:
                    db.execute(f'DROP TABLE "{table}"')
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("INSERT INTO meta VALUES ('format', ?)", (summary_fingerprint(),))

    @staticmethod
    def _format(db: sqlite3.Connection) -> str | None:
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        except sqlite3.OperationalError:  # no table yet
            return None
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
        return {row[0]: Stat._make(row[1:]) for row in
                self._db.execute("SELECT path, mtime_ns, size, sha, module FROM files")}

    def update(self, summaries: Iterable[tuple[str, int, int, str, ModuleSummary | StoredSummary]],
               removed: Iterable[str],
               touched: Iterable[tuple[str, int, int]] = ()) -> "tuple[int, frozenset[str]] | None":
        """Store new summaries, forget removed files, refresh stat signatures, and drop the facts and
        results that read anything the changes touch: one transaction.

        Returns what it dropped: the generation it started from and the names of the results, or
        None when it dropped nothing (only stat signatures changed) or too many to list."""
        summaries = list(summaries)
        removed = list(removed)
        db = self._db
        dropped: tuple[int, frozenset[str]] | None = None
        with _immediate(db):
            old: dict[str, ModuleState] = {}
            for path in [*removed, *(row[0] for row in summaries)]:
                row = db.execute("SELECT module, summary FROM files WHERE path = ?", (path,)).fetchone()
                if row is None:
                    continue
                module = row[0]
                old[module] = self.module_state(module, pickle.loads(row[1]))
                for table in ("names", "conventions", "calls"):
                    db.execute(f"DELETE FROM {table} WHERE module = ?", (module,))
            for path in removed:
                db.execute("DELETE FROM files WHERE path = ?", (path,))
            new: dict[str, ModuleState] = {}
            for path, mtime, size, sha, summary in summaries:
                stored = summary if isinstance(summary, StoredSummary) else StoredSummary(summary)
                module = stored.module
                db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)",
                           (path, module, mtime, size, sha, stored.header_blob))
                db.executemany("INSERT INTO calls VALUES (?, ?, ?)", [(name, module, blob) for name, blob in stored.calls])
                db.executemany("INSERT INTO names VALUES (?, ?, ?, ?)", [(*row, module) for row in stored.rows])
                db.executemany("INSERT INTO conventions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               [(attr, module, *rest) for attr, *rest in stored.conventions])
                new[module] = stored.state()
            for path, mtime, size in touched:
                db.execute("UPDATE files SET mtime_ns = ?, size = ? WHERE path = ?", (mtime, size, path))
            if old or new:
                # The parts of a module that an edit only moved to other lines (code below a line
                # inserted, a comment added) keep the answers that read them: they hold the same,
                # only their evidence moves.
                moves: dict[str, tuple[set[str], dict[int, int]]] = {}
                labels = changed_labels(old, new, moves) | self.renamed_bases_touched(old, new)
                results = self._invalidate(labels,
                                           {new[module].header.path: (module, lines)
                                            for module, (_moved, lines) in moves.items()},
                                           {label for moved, _lines in moves.values() for label in moved})
                generation = self._bump_generation()
                dropped = (generation, results) if results is not None else None
            fingerprint = hashlib.sha256()
            for path, sha in db.execute("SELECT path, sha FROM files ORDER BY path"):
                fingerprint.update(f"{path}\0{sha}\n".encode())
            db.execute("INSERT OR REPLACE INTO meta VALUES ('fingerprint', ?)", (fingerprint.hexdigest(),))
        return dropped

    def renamed_bases_touched(self, old: dict[str, ModuleState], new: dict[str, ModuleState]) -> set[str]:
        """The label `RENAMED_BASES` when a change may add or drop a base that names a class under another name
        (`ProjectIndex._renamed_bases`): a base row whose spelled module defines no class of that name
        (a re-export, an alias: `class Sub(Model)` after `from pkg.base import BaseModel as Model`), or a
        class row that some base spells. Any class added or dropped anywhere would be too coarse: every
        answer that asked for subclasses would go (a class appended to vLLM's `gpu_input_batch.py` took
        the next check from 10 s to 30 s)."""
        db = self._db
        for module in set(old) | set(new):
            before, after = old.get(module), new.get(module)
            if before is not None and after is not None and before.digest == after.digest:
                continue
            for kind, name, value in (before.rows if before is not None else set()) ^ \
                    (after.rows if after is not None else set()):
                if kind == "bases":
                    spelled_module, _, cls = value.rpartition(".")
                    if db.execute("SELECT 1 FROM names WHERE kind = 'classes' AND name = ? AND value = ? LIMIT 1",
                                  (cls, spelled_module)).fetchone() is None:
                        return {RENAMED_BASES}
                elif kind == "classes" and db.execute("SELECT 1 FROM names WHERE kind = 'bases' AND value = ? LIMIT 1",
                                                      (f"{value}.{name}",)).fetchone() is not None:
                    return {RENAMED_BASES}
        return set()

    def _invalidate(self, labels: Iterable[str],
                    moved: dict[str, tuple[str, dict[int, int]]] | None = None,
                    moved_labels: Iterable[str] = ()) -> frozenset[str] | None:
        """Drop every fact and result that read one of these labels, or a fact so dropped, and say
        which results were dropped (None: more than `_LISTED_DROPS`).

        `moved`: files some of whose parts only moved to other lines (path -> module, old line ->
        new line), and `moved_labels` those parts' labels. The facts that read them stay, with their
        evidence moved to the new lines (a fact citing a line the map lacks is dropped); the
        results that read them or the facts moved are dropped (a result's text holds the old lines)."""
        db = self._db
        db.execute("CREATE TEMP TABLE IF NOT EXISTS stale (path TEXT PRIMARY KEY)")
        db.execute("DELETE FROM temp.stale")
        self._drop(labels)
        if moved:
            kept, lost = self._move_evidence({path: shift for path, (_module, shift) in moved.items()})
            self._drop((), lost)
            self._drop_results_placed_in([dep_id(label) for label in moved_labels] + kept, moved)
        # A dropped result's reads stay until it is stored again (`put_results` replaces them): as
        # with facts, a stale row only makes a later edit drop more.
        stale = db.execute("SELECT path FROM temp.stale LIMIT ?", (_LISTED_DROPS + 1,)).fetchall()
        db.execute("DELETE FROM results WHERE path IN (SELECT path FROM temp.stale)")
        return frozenset(row[0] for row in stale) if len(stale) <= _LISTED_DROPS else None

    def _drop(self, labels: Iterable[str], ids: Iterable[int] = ()) -> None:
        """Drop the facts and nodes that read these labels or facts (transitively), and mark the
        results that read any of them stale.

        What a dropped answer read stays in `fact_reads`: a row there only ever makes the cache drop
        more than it must (an answer solved again mostly reads what it read before, and `put_facts`
        adds what it reads now). Deleting those rows took most of the first edit of vLLM's attention
        utilities after a cold run (1.0 s to delete, and more to commit, for 6,500 answers)."""
        db = self._db
        self._dropped_by(labels, ids)
        db.execute("DELETE FROM facts WHERE id IN (SELECT id FROM temp.dropped)")
        db.execute("DELETE FROM nodes WHERE id IN (SELECT id FROM temp.dropped)")
        db.execute("""INSERT OR IGNORE INTO temp.stale SELECT results.path FROM result_reads
            JOIN results ON results.id = result_reads.result WHERE dep IN (SELECT id FROM temp.dropped)""")

    def _drop_results_placed_in(self, ids: list[int], moved: dict[str, tuple[str, dict[int, int]]]) -> None:
        """Mark stale the results that read these labels or facts and may hold a line of a moved file:
        the file's own result, a result whose stored text names the file (its evidence cites
        `path:line`), and the cached call edges of the file's functions (each holds the line of its
        call). The others read values the move left alone, and hold none of its lines: they stay.
        A line inserted at the top of vLLM's model runner had dropped the cached edges and results
        of functions and files elsewhere that only read it, and the next check solved them again."""
        db = self._db
        db.execute("CREATE TEMP TABLE IF NOT EXISTS reading (path TEXT PRIMARY KEY)")
        db.execute("DELETE FROM temp.reading")
        for start in range(0, len(ids), _QUERY_CHUNK):
            chunk = ids[start:start + _QUERY_CHUNK]
            db.execute(f"""INSERT OR IGNORE INTO temp.reading SELECT results.path FROM result_reads
                JOIN results ON results.id = result_reads.result WHERE dep IN ({','.join('?' * len(chunk))})""", chunk)
        for path, (module, _shift) in moved.items():
            name = os.path.basename(path).encode()  # as a blob: a byte search through the pickles
            db.execute("""INSERT OR IGNORE INTO temp.stale SELECT reading.path FROM temp.reading
                LEFT JOIN results ON results.path = reading.path
                WHERE instr(CAST(reading.path AS BLOB), ?) > 0 OR instr(results.result, ?) > 0""", (name, name))
            # `_` in a module name matches any character here: at worst more is dropped.
            db.execute("""INSERT OR IGNORE INTO temp.stale SELECT path FROM temp.reading
                WHERE path LIKE '<call-graph:%' AND substr(path, instr(path, '>') + 1) LIKE ?""", (f"{module}.%",))

    def _move_evidence(self, moved: dict[str, dict[int, int]]) -> tuple[list[int], list[int]]:
        """Rewrite the cached facts whose evidence names a line of a moved file: (the ids of the
        facts whose evidence moved, the ids of those naming a line the move does not account for)."""
        kept: list[int] = []
        lost: list[int] = []
        for path, shift in moved.items():
            # `path:line` standing alone, not the tail of a longer path.
            place = re.compile(r"(?<![\w./\\-])" + re.escape(path) + r":(\d+)")
            missing: list[str] = []
            shifted: list[int] = []

            def move(text: str) -> str:
                def moved_line(match: re.Match) -> str:
                    old = int(match.group(1))
                    line = shift.get(old)
                    if line is None:
                        missing.append(match.group(0))
                        return match.group(0)
                    if line != old:
                        shifted.append(line)
                    return f"{path}:{line}"
                return place.sub(moved_line, text) if path in text else text

            if _PLAIN_PATH.fullmatch(path):
                rows = self._db.execute(
                    "SELECT id, fact FROM facts WHERE id IN (SELECT fact FROM fact_files WHERE file = ?)",
                    (_file_id(path.encode()),)).fetchall()
            else:  # a name `_CITED` would not find whole: look through every fact
                rows = self._db.execute("SELECT id, fact FROM facts WHERE instr(fact, ?) > 0",
                                        (path.encode(),)).fetchall()
            for fact_id, blob in rows:
                missing.clear()
                shifted.clear()
                fact = map_text(pickle.loads(blob), move)
                if missing:
                    lost.append(fact_id)
                elif shifted:  # evidence above the edit stays as it is
                    self._db.execute("UPDATE facts SET fact = ? WHERE id = ?", (pickle.dumps(fact, protocol=5), fact_id))
                    kept.append(fact_id)
        return kept, lost

    def module_state(self, module: str, header: ModuleSummary) -> "ModuleState":
        """What `changed_labels` compares of a cached module (`header`: its summary less the call sites)."""
        db = self._db
        # Read now (an update deletes the rows next), unpickled only if the states are compared.
        blobs = list(db.execute("SELECT name, sites FROM calls WHERE module = ? ORDER BY name", (module,)))
        return ModuleState(_rows(db, "SELECT kind, name, value FROM names WHERE module = ?", module),
                           _rows(db, "SELECT name, gpu, cpu, total FROM conventions WHERE module = ?", module),
                           header,
                           lambda: [(name, pickle.loads(sites)) for name, sites in blobs])

    def cached_state(self, module: str) -> "ModuleState | None":
        row = self._db.execute("SELECT summary FROM files WHERE module = ? ORDER BY path LIMIT 1", (module,)).fetchone()
        return self.module_state(module, pickle.loads(row[0])) if row else None

    def _dropped_by(self, labels: Iterable[str], ids: Iterable[int] = ()) -> None:
        """Fill `temp.dropped` with these facts and those that read one of these labels or facts,
        transitively."""
        db = self._db
        # The rows pending now and the query must see one state: in the caller's transaction, or one.
        with _immediate(db) if not db.in_transaction else contextlib.nullcontext():
            self._merge_reads()
            db.execute("CREATE TEMP TABLE IF NOT EXISTS changed (id INTEGER PRIMARY KEY)")
            db.execute("DELETE FROM temp.changed")
            db.executemany("INSERT OR IGNORE INTO temp.changed VALUES (?)",
                           [(dep_id(label),) for label in labels] + [(i,) for i in ids])
            db.execute("CREATE TEMP TABLE IF NOT EXISTS dropped (id INTEGER PRIMARY KEY)")
            db.execute("DELETE FROM temp.dropped")
            db.execute("""
                INSERT INTO temp.dropped
                WITH RECURSIVE bad(id) AS (
                    SELECT id FROM temp.changed
                    UNION SELECT fact_reads.fact FROM fact_reads JOIN bad ON fact_reads.dep = bad.id)
                SELECT id FROM bad""")

    def merge_reads(self) -> None:
        """Move the dependency rows `put_facts` appended into `fact_reads` (the end of a run)."""
        if self._db.execute("SELECT 1 FROM pending_reads LIMIT 1").fetchone() is None:
            return
        with _immediate(self._db):
            self._merge_reads()
        self._truncate_log()

    def _truncate_log(self) -> None:
        """Cut the write-ahead log to nothing after the merge, its largest transaction, unless another
        process is reading the database (then the next write cuts it to `_WAL_KEPT_BYTES`): a run
        ends without closing its connections (`__main__.exit_without_teardown`), and the log it
        left was 384 MB of the 1.95 GB cache folder of a cold transformers 5.23 run. The merge's
        commit has usually copied the log's pages back already (SQLite's automatic checkpoint), so
        this mostly truncates it."""
        db = self._db
        db.execute("PRAGMA busy_timeout=0")  # never wait for a reader: it only costs space
        try:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.OperationalError:
            pass
        finally:
            db.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_S * 1000}")

    def _merge_reads(self) -> None:
        # Sorted, in one statement: each page of the B-tree is written once. `OR IGNORE`: a dropped
        # answer's reads stay (`_drop`), and an answer solved again mostly reads them again. The sort
        # is most of the time (8 of 9 s for the 6.3 million rows of a cold vLLM 0.33 run): SQLite's
        # sorter may use a second thread (6.9 s), as it does nowhere else in a run.
        self._db.execute("PRAGMA threads=1")
        try:
            self._db.execute("INSERT OR IGNORE INTO fact_reads SELECT dep, fact FROM pending_reads ORDER BY dep, fact")
        finally:
            self._db.execute("PRAGMA threads=0")
        self._db.execute("DELETE FROM pending_reads")

    def facts_except(self, labels: Iterable[str]) -> "FactsExcept":
        """The cached facts, less those that read one of these labels (transitively)."""
        self._dropped_by(labels)
        return FactsExcept(self, {row[0] for row in self._db.execute("SELECT id FROM temp.dropped")})

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads that see one state of the cache (a read transaction), whatever other runs commit meanwhile."""
        self._db.execute("BEGIN")
        try:
            yield
        finally:
            self._db.execute("COMMIT")

    def generation(self) -> int:
        """Bumped by every change that drops facts or results (an update that changed a file, a change
        of settings): facts solved before it are not stored, results read before it are not kept."""
        return int(self._meta("generation") or 0)

    def _bump_generation(self) -> int:
        """Start a new generation (inside a write transaction); the one it ends."""
        generation = self.generation()
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('generation', ?)", (str(generation + 1),))
        return generation

    def use_settings(self, settings_digest: str) -> None:
        """Facts depend on the device settings and the code that solved them: a change of either drops
        them all (and the results)."""
        digest = f"{settings_digest}:{tool_fingerprint()}"
        if self._meta("fact-settings") == digest:
            return
        db = self._db
        with _immediate(db):
            if self._meta("fact-settings") != digest:
                for table in ("facts", "fact_reads", "pending_reads", "fact_files", "nodes", "results", "result_reads"):
                    db.execute(f"DELETE FROM {table}")
                db.execute("INSERT OR REPLACE INTO meta VALUES ('fact-settings', ?)", (digest,))
                # As an update does: a run that solved facts under the old settings must not store
                # them, and one that read results before this must not keep them.
                self._bump_generation()

    def fingerprint(self) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'fingerprint'").fetchone()
        return row[0] if row else ""

    def modules(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT DISTINCT module FROM files ORDER BY module")]

    def summary(self, module: str) -> ModuleSummary | None:
        row = self._db.execute("SELECT summary FROM files WHERE module = ? ORDER BY path LIMIT 1", (module,)).fetchone()
        return pickle.loads(row[0]) if row else None

    def listing(self, key: str) -> Any:
        """A folder's file listing (`listing.py`), or None."""
        row = self._db.execute("SELECT listing FROM listings WHERE key = ?", (key,)).fetchone()
        return pickle.loads(row[0]) if row else None

    def put_listing(self, key: str, listing: Any) -> None:
        try:
            self._db.execute("INSERT OR REPLACE INTO listings VALUES (?, ?)", (key, pickle.dumps(listing, protocol=5)))
        except sqlite3.OperationalError:  # locked by another run: the next run lists the folders again
            pass

    # --- facts and results --------------------------------------------------------------------
    def fact(self, key: Dep) -> Any:
        row = self._db.execute("SELECT fact FROM facts WHERE id = ?", (dep_id(key),)).fetchone()
        return pickle.loads(row[0]) if row else None

    def _write(self, generation: int, write: Callable[[sqlite3.Connection], None]) -> bool:
        """Run `write` in one transaction, unless the project changed since `generation` (then
        nothing is written: the answers were computed against an index that is gone)."""
        with _immediate(self._db):
            if self.generation() != generation:
                return False
            write(self._db)
        return True

    def put_facts(self, rows: list[tuple[Dep, Any, frozenset]], generation: int) -> bool:
        """Store solved facts with what each read, and nodes (a fact of None: `deps.py`) with what
        each read, unless the project changed since `generation`. A fact or node already stored is
        kept: within a generation the same key reads the same things."""
        if not rows:
            return True

        # Everything but the check of what is stored already is prepared before the write lock is
        # taken: the other workers of a cold run wait for that lock (most of the time it was held
        # went to pickling and to the dependency rows).
        facts: dict[int, tuple[bytes, list[tuple[int, int]], list[tuple[int, int]]]] = {}
        nodes: dict[int, list[tuple[int, int]]] = {}
        for key, fact, deps in rows:
            i = dep_id(key)
            reads = [(dep_id(dep), i) for dep in deps]
            if fact is None:
                nodes[i] = reads
            else:
                blob = pickle.dumps(fact, protocol=5)
                facts[i] = (blob, [(_file_id(path), i) for path in set(_CITED.findall(blob))], reads)

        def write(db: sqlite3.Connection) -> None:
            present = _present(db, "SELECT id FROM facts WHERE id IN ({})", list(facts))
            present |= _present(db, "SELECT id FROM nodes WHERE id IN ({})", list(nodes))
            fresh = [(i, entry) for i, entry in facts.items() if i not in present]
            new_nodes = [(i, reads) for i, reads in nodes.items() if i not in present]
            db.executemany("INSERT INTO facts (id, fact) VALUES (?, ?)",
                           [(i, blob) for i, (blob, _cited, _reads) in fresh])
            db.executemany("INSERT OR IGNORE INTO fact_files VALUES (?, ?)",
                           itertools.chain.from_iterable(cited for _i, (_blob, cited, _reads) in fresh))
            db.executemany("INSERT INTO nodes VALUES (?)", [(i,) for i, _reads in new_nodes])
            # Appended to a table without an index, and merged into `fact_reads` at the end of the
            # run (`merge_reads`) or before they are next read (`_dropped_by`). A cold vLLM run
            # stores 7 million rows at random keys: inserted into the B-tree as they came, every
            # save rewrote most of its pages (the largest share of a cold run's cache time).
            db.executemany("INSERT INTO pending_reads VALUES (?, ?)",
                           itertools.chain.from_iterable(reads for _i, (_blob, _cited, reads) in fresh))
            db.executemany("INSERT INTO pending_reads VALUES (?, ?)",
                           itertools.chain.from_iterable(reads for _i, reads in new_nodes))

        return self._write(generation, write)

    def result(self, path: str, key: str) -> Any:
        row = self._db.execute("SELECT result FROM results WHERE path = ? AND key = ?", (path, key)).fetchone()
        return pickle.loads(row[0]) if row else None

    def results(self, keys: dict[str, str]) -> dict[str, Any]:
        """The cached results of these files (path -> result key), where present."""
        out = {}
        paths = list(keys)
        # Only the rows asked for: the table also holds every function's edges and the hot-path
        # answers, which a one-file check of a large project would otherwise read through.
        for start in range(0, len(paths), _QUERY_CHUNK):
            chunk = paths[start:start + _QUERY_CHUNK]
            query = f"SELECT path, key, result FROM results WHERE path IN ({','.join('?' * len(chunk))})"
            for path, key, blob in self._db.execute(query, chunk):
                if keys.get(path) == key:
                    out[path] = pickle.loads(blob)
        return out

    def put_results(self, rows: list[tuple[str, str, Any, Iterable[Dep]]], generation: int) -> bool:
        """Store per-file results (path, key, result, what it read) in one transaction."""
        if not rows:
            return True

        def write(db: sqlite3.Connection) -> None:
            for path, key, result, deps in rows:
                result_id = _result_id(path)
                db.execute("DELETE FROM result_reads WHERE result = ?", (result_id,))
                db.execute("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?)",
                           (path, key, pickle.dumps(result, protocol=5), result_id))
                db.executemany("INSERT OR IGNORE INTO result_reads VALUES (?, ?)",
                               [(dep_id(dep), result_id) for dep in set(deps)])

        return self._write(generation, write)

    def keep_newest_results(self, prefix: str, count: int) -> None:
        """Drop all but the `count` most recently stored results whose name starts with `prefix` (not
        empty)."""
        # The names starting with `prefix` as a range of the primary key's index: `LIKE` reads every
        # row (each file's result and every function's edges), 18 ms a scan in a vLLM cache, twice
        # in every check that walks the hot paths.
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        with self._db:
            self._db.execute("DELETE FROM results WHERE path >= ? AND path < ? AND rowid NOT IN ("
                             "SELECT rowid FROM results WHERE path >= ? AND path < ? ORDER BY rowid DESC LIMIT ?)",
                             (prefix, upper, prefix, upper, count))

    def put_result(self, path: str, key: str, result: Any, deps: Iterable[Dep], generation: int) -> bool:
        return self.put_results([(path, key, result, deps)], generation)


class FactsExcept:
    """A read-only view of the cached facts with some set aside."""

    def __init__(self, store: ProjectStore, excluded: set[int]) -> None:
        self._store = store
        self._excluded = excluded

    def fact(self, key: Dep) -> Any:
        return None if dep_id(key) in self._excluded else self._store.fact(key)


def _present(db: sqlite3.Connection, query: str, ids: list[int]) -> set[int]:
    """Which of `ids` the query (with `{}` for the list) finds, asked 500 at a time."""
    found: set[int] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        found.update(row[0] for row in db.execute(query.format(",".join("?" * len(chunk))), chunk))
    return found


def _rows(db: sqlite3.Connection, query: str, module: str) -> set:
    return set(db.execute(query, (module,)))


@dataclass(frozen=True)
class ModuleState:
    """What answers can read of a module, as `changed_labels` compares it."""

    rows: set  # its rows in the name tables
    counts: set  # its convention counts per attribute
    header: ModuleSummary  # the summary less its call sites
    call_sites: Callable[[], list[tuple[str, Any]]]  # (callee name, sites), in name order

    @functools.cached_property
    def digest(self) -> str:
        """The whole summary, by its content (`ContentDigest`). Not from its pickle: equal summaries
        pickle to different bytes when their objects are shared differently (one made in a worker
        process and sent here, one made here), and a comment added to a file then dropped every
        answer that read it: the first such edit of vLLM's attention utilities after a cold run took
        4.3 s instead of 0.9 s."""
        return ContentDigest().text((self.header, self.call_sites()))

    @functools.cached_property
    def parts(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        """Each label of the module's parts with a digest of its value less its line numbers, and its
        line numbers (`parts.py`)."""
        marked = map_lines(self.header, LineMark)
        return part_digests(marked, lambda: [(name, map_call_lines(sites, LineMark)) for name, sites in self.call_sites()],
                            PlacedDigest())


class StoredSummary:
    """A summary in the form the cache stores it: the summary less its call sites (pickled), the
    call sites pickled by callee name (most of a summary, read only when asked), and its rows of
    the name and convention tables.

    Made where the file is summarised, in a worker of a cold run's pool: the worker pickles, and
    the process that writes the cache receives bytes and unpickles only the header. On vLLM 0.33
    the parent otherwise unpickled every summary whole as it came back (68 MB) and pickled it again
    for the cache, while the workers waited for a core."""

    __slots__ = ("module", "header_blob", "calls", "rows", "conventions", "_header", "_sites")

    def __init__(self, summary: ModuleSummary) -> None:
        self.module = summary.module
        self._header: ModuleSummary | None = replace(summary, calls=[])
        self.header_blob = pickle.dumps(self._header, protocol=5)
        self._sites: dict[str, list] | None = calls_by_name(summary)  # not sent: the blobs stand for it
        # In the summary's order, as the rows are inserted: `module_calls` keeps it for sites on one line.
        self.calls = [(name, pickle.dumps(sites, protocol=5)) for name, sites in self._sites.items()]
        self.rows = frozenset(table_rows(summary))
        self.conventions = [
            (attr, gpu, cpu, total,
             f"{summary.path}:{gpu_ex[0]}" if gpu_ex else None, gpu_ex[1] if gpu_ex else None,
             f"{summary.path}:{cpu_ex[0]}" if cpu_ex else None, cpu_ex[1] if cpu_ex else None)
            for attr, (gpu, cpu, total, gpu_ex, cpu_ex) in (summary.conventions or {}).items()]

    def __getstate__(self) -> tuple:
        return self.module, self.header_blob, self.calls, self.rows, self.conventions

    def __setstate__(self, state: tuple) -> None:
        self.module, self.header_blob, self.calls, self.rows, self.conventions = state
        self._header = self._sites = None

    @property
    def header(self) -> ModuleSummary:
        """The summary less its call sites (unpickled once, when first asked)."""
        if self._header is None:
            self._header = pickle.loads(self.header_blob)
        return self._header

    def state(self) -> ModuleState:
        sites, calls = self._sites, self.calls
        # Callee names are unique: the sites in name order.
        call_sites = (lambda: sorted(sites.items())) if sites is not None else \
            (lambda: [(name, pickle.loads(blob)) for name, blob in sorted(calls)])
        return ModuleState(set(self.rows), {row[:4] for row in self.conventions}, self.header,
                           call_sites)


def module_changes(before: ModuleState, after: ModuleState) -> tuple[set[str], set[str], dict[int, int]]:
    """What an edit of a module changed, by the labels of its parts (`parts.py`): (the labels whose
    values changed, the labels whose values only moved to other lines, old line -> new line for
    every line of a part that is the same up to its lines). An edit that moved code around rather
    than lines (the map does not keep their order) changed every part it moved."""
    old, new = before.parts, after.parts
    changed: set[str] = set()
    moved: set[str] = set()
    lines: dict[int, int] = {}
    clashes: set[int] = set()
    for label in old.keys() | new.keys():
        was, now = old.get(label), new.get(label)
        if was is None or now is None or was[0] != now[0] or len(was[1]) != len(now[1]):
            changed.add(label)
            continue
        if was[1] != now[1]:
            moved.add(label)
        for old_line, new_line in zip(was[1], now[1]):
            if lines.setdefault(old_line, new_line) != new_line:
                clashes.add(old_line)
    for line in clashes:
        del lines[line]
    ordered = sorted(lines.items())
    if any(later <= earlier for (_a, earlier), (_b, later) in zip(ordered, ordered[1:])):
        return changed | moved, set(), {}  # code changed places: what read its order may not hold
    return changed, moved, lines


def changed_labels(old: dict[str, ModuleState], new: dict[str, ModuleState],
                   moves: dict[str, tuple[set[str], dict[int, int]]] | None = None) -> set[str]:
    """The labels (`deps.py`) that changes to these modules touch: the parts of a summary whose
    values changed (`parts.py`; every part, and the module's existence, for a module added, removed
    or moved to another file), the names its summary adds to or drops from the name tables, and the
    attributes whose convention counts changed.

    `moves`: where given, the parts whose values only moved to other lines are not among the labels
    returned: they are put there, with the module's old line -> new line (`module_changes`), for
    the caller to move the evidence that cites them. Otherwise they are among the labels."""
    labels: set[str] = set()
    for module in set(old) | set(new):
        before, after = old.get(module), new.get(module)
        if before is not None and after is not None and before.digest == after.digest:
            continue
        if before is None or after is None or before.header.path != after.header.path or \
                before.header.is_package != after.header.is_package:
            labels |= {f"m:{module}", f"s:{module}"}
            # What read a module that was not there read that (`m:`, `s:`): the parts of a new one
            # are read by nobody yet (computing them was 40% of a cold one-file check of vLLM).
            if before is not None:
                labels.update(before.parts)
        else:
            changed, moved, lines = module_changes(before, after)
            labels |= changed
            if moves is None:
                labels |= moved
            elif moved:
                moves[module] = (moved, lines)
        old_rows = before.rows if before is not None else set()
        new_rows = after.rows if after is not None else set()
        for kind, name, value in old_rows ^ new_rows:
            labels.add(f"b:{value.rsplit('.', 1)[-1]}" if kind == "bases" else f"n:{kind}:{name}")
            if kind in WHOLE_TABLES:
                labels.add(f"t:{kind}")
        old_counts = before.counts if before is not None else set()
        new_counts = after.counts if after is not None else set()
        labels.update(f"c:{row[0]}" for row in old_counts ^ new_counts)
    return labels


class StoreTables:
    """The index's name tables, read from the database on demand (a warm run loads only what it asks)."""

    def __init__(self, store: ProjectStore) -> None:
        self._store = store
        self.calls = _LazyNames(store, "calls")
        self.stores = _LazyNames(store, "stores")
        self.entries = _LazyNames(store, "entries")
        self.classes = _LazyNames(store, "classes")
        self.bases = _LazyNames(store, "bases")
        self.roots = _LazyNames(store, "roots")
        self.forwards = _LazyNames(store, "forwards")
        self.generated = _LazyNames(store, "generated")
        self.inputs = _LazyNames(store, "inputs")
        self.ops = _LazyNames(store, "ops")
        self.mentions = _LazyNames(store, "mentions")
        self.importers = _LazyNames(store, "importers")
        self.predicates = _LazyNames(store, "predicates")
        self.typed = _LazyNames(store, "typed")
        self.slots = _LazyNames(store, "slots")
        self.methods = _LazyNames(store, "methods")
        self._call_sites: dict[str, list[tuple[str, list]]] = {}
        self._replaced: dict[str, ModuleSummary] = {}  # module -> the summary used instead of the cached one

    def replace(self, summary: ModuleSummary, old: ModuleSummary | None = None) -> None:
        """Use this summary's rows instead of the cached ones of its module (a text being edited)."""
        self._replaced[summary.module] = summary
        self._call_sites.clear()
        for kind in ("calls", "stores", "entries", "classes", "bases", "roots", "forwards", "generated", "inputs",
                     "ops", "mentions", "importers", "predicates", "typed", "slots", "methods"):
            getattr(self, kind).hide(summary.module)
        for kind, name, value in table_rows(summary):
            getattr(self, kind).extra(name, value)

    def base_rows(self) -> list[tuple[str, str]]:
        return [(cls, base) for cls, bases in self.bases.items() for base in bases]

    def module_calls(self, module: str) -> list:
        """Every call site of a module, in line order."""
        replaced = self._replaced.get(module)
        if replaced is not None:
            return list(replaced.calls)
        sites = [site for (blob,) in self._store._db.execute("SELECT sites FROM calls WHERE module = ?", (module,))
                 for site in pickle.loads(blob)]
        sites.sort(key=lambda site: site.line)
        return sites

    def call_sites(self, name: str) -> list[tuple[str, list]]:
        known = self._call_sites.get(name)
        if known is None:
            known = [(module, pickle.loads(sites)) for module, sites in self._store._db.execute(
                "SELECT module, sites FROM calls WHERE name = ? ORDER BY module", (name,))
                if module not in self._replaced]
            for module, summary in self._replaced.items():
                sites = calls_by_name(summary).get(name)
                if sites:
                    known.append((module, sites))
            self._call_sites[name] = known
        return known

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
    """One name table (which values a name maps to), read from the database on demand."""

    def __init__(self, store: ProjectStore, kind: str) -> None:
        self._store = store
        self._kind = kind
        self._known: dict[str, set[str]] = {}
        self._extra: dict[str, set[str]] = {}
        self._hidden: set[str] = set()  # modules whose cached rows are not used

    def get(self, name: str, default: object = ()) -> set[str]:
        found = self._known.get(name)
        if found is None:
            found = self._known[name] = {value for value, module in self._store._db.execute(
                "SELECT value, module FROM names WHERE kind = ? AND name = ?", (self._kind, name))
                if module not in self._hidden}
        return found | self._extra.get(name, set())

    def extra(self, name: str, value: str) -> None:
        self._extra.setdefault(name, set()).add(value)

    def hide(self, module: str) -> None:
        self._hidden.add(module)
        self._known.clear()

    def items(self) -> Iterable[tuple[str, set[str]]]:
        rows = self._store._db.execute("SELECT name, value, module FROM names WHERE kind = ?", (self._kind,))
        grouped: dict[str, set[str]] = {}
        for name, value, module in rows:
            if module not in self._hidden:
                grouped.setdefault(name, set()).add(value)
        for name, modules in self._extra.items():
            grouped.setdefault(name, set()).update(modules)
        return grouped.items()
