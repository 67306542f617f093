"""The cache database (`sync_lint/project/store.py`), tested directly: what an update drops, the
generation that keeps answers of an older index out, settings, and damaged databases."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import pytest

from sync_lint.analysis.facts import Device, Fact
from sync_lint.project import store as store_module
from sync_lint.project.store import ProjectStore, changed_labels, content_hash, prepare_cache_dir
from sync_lint.project.summary import summarize


def row(path: str, module: str, source: str, mtime: int = 1):
    data = textwrap.dedent(source).encode()
    summary = summarize(data, path, module)
    return (path, mtime, len(data), content_hash(data), summary)


A = "import torch\nclass A:\n    def __init__(self):\n        self.lens = torch.zeros(3, device='cuda')\n"
B = "def f(x):\n    return x\n"
C = "from a import A\ndef g():\n    return A()\n"

GPU = Fact(Device.GPU, reason="gpu")
CPU = Fact(Device.CPU, reason="cpu")
K_A = ("field", "a.A", "lens", 6)   # reads the stores of `lens` in module a
K_B = ("return", "b.f", 6)          # reads the function `f` of module b
K_C = ("return", "c.g", 6)          # reads the function `g` of module c and uses K_A
K_S = ("attrconv", "lens")          # reads which modules store `lens`
# The parts of the modules they read (`parts.py`).
READ_A, READ_B, READ_C = "p:a:stores:lens", "p:b:functions:f", "p:c:functions:g"


@pytest.fixture
def store(tmp_path: Path):
    db = ProjectStore(tmp_path / "index.sqlite")
    db.update([row("/p/a.py", "a", A), row("/p/b.py", "b", B), row("/p/c.py", "c", C)], [])
    db.use_settings("s1")
    generation = db.generation()
    assert db.put_facts([(K_A, GPU, frozenset({READ_A})), (K_B, CPU, frozenset({READ_B})),
                         (K_C, GPU, frozenset({READ_C, K_A})), (K_S, GPU, frozenset({"n:stores:lens"}))], generation)
    assert db.put_result("/p/a.py", "ka", "result-a", {READ_A}, generation)
    assert db.put_result("/p/b.py", "kb", "result-b", {READ_B}, generation)
    assert db.put_result("/p/c.py", "kc", "result-c", {K_C}, generation)
    yield db
    db.close()


def cached(db: ProjectStore) -> dict:
    facts = {key: db.fact(key) is not None for key in (K_A, K_B, K_C, K_S)}
    results = {path: db.result(path, key) is not None for path, key in
               (("/p/a.py", "ka"), ("/p/b.py", "kb"), ("/p/c.py", "kc"))}
    return {**facts, **results}


def test_stored_answers_come_back(store: ProjectStore) -> None:
    assert store.fact(K_A).lattice() == GPU.lattice()
    assert store.result("/p/b.py", "kb") == "result-b"
    assert store.result("/p/b.py", "other-key") is None  # a result is only for its key
    assert store.results({"/p/a.py": "ka", "/p/b.py": "wrong"}) == {"/p/a.py": "result-a"}
    assert set(store.modules()) == {"a", "b", "c"}
    assert store.summary("a").classes["A"].name == "A"


def test_update_drops_exactly_the_dependants_transitively(store: ProjectStore) -> None:
    before = store.generation()
    # `a` changes (a different value is stored; the attribute stays, so no `n:stores:lens`).
    store.update([row("/p/a.py", "a", A.replace("'cuda'", "'cpu'"), mtime=2)], [])
    assert store.generation() == before + 1
    assert cached(store) == {
        K_A: False,       # read the stores of `lens` in a
        K_B: True,
        K_C: False,       # used K_A
        K_S: True,        # the stores of `lens` are in the same modules as before
        "/p/a.py": False,
        "/p/b.py": True,
        "/p/c.py": False,  # used K_C
    }


def test_an_update_says_which_results_it_dropped_and_the_generation_it_started_from(store: ProjectStore) -> None:
    before = store.generation()
    dropped = store.update([row("/p/a.py", "a", A.replace("'cuda'", "'cpu'"), mtime=2)], [])
    assert dropped == (before, frozenset({"/p/a.py", "/p/c.py"}))
    dropped = store.update([row("/p/b.py", "b", B, mtime=5)], [])  # the same content: nothing dropped
    assert dropped == (before + 1, frozenset())
    assert store.update([], [], touched=[("/p/a.py", 99, len(A))]) is None  # a stat signature only


def test_an_update_that_drops_too_many_results_to_list_says_so(store: ProjectStore, monkeypatch) -> None:
    monkeypatch.setattr(store_module, "_LISTED_DROPS", 1)
    assert store.update([row("/p/a.py", "a", A.replace("'cuda'", "'cpu'"), mtime=2)], []) is None


def test_a_new_store_drops_what_read_that_name(store: ProjectStore) -> None:
    store.update([row("/p/b.py", "b", B + "def h(o):\n    o.lens = 1\n", mtime=2)], [])
    assert cached(store) == {K_A: True, K_B: True, K_C: True, K_S: False,  # `f` is as it was
                             "/p/a.py": True, "/p/b.py": True, "/p/c.py": True}


def test_a_function_added_keeps_what_read_the_others() -> None:
    # What an answer read of a module is the parts it read (`parts.py`): a function appended to a
    # module leaves the answers that read another of its functions, and drops those that read the
    # list of its functions, asked for the new name, or resolved it.
    from sync_lint.project.store import StoredSummary

    def state(source: str):
        return StoredSummary(summarize(source, "m.py", "m")).state()

    labels = changed_labels({"m": state(B)}, {"m": state(B + "def h():\n    pass\n")})
    assert {"p:m:functions", "p:m:functions:h", "s:m:h"} <= labels
    assert not {"p:m:functions:f", "s:m:f", "m:m", "s:m"} & labels


def test_removing_a_file_drops_its_dependants(store: ProjectStore) -> None:
    store.update([], ["/p/b.py"])
    assert "b" not in store.modules()
    assert cached(store)[K_B] is False and cached(store)["/p/b.py"] is False
    assert cached(store)[K_A] is True and cached(store)["/p/c.py"] is True


def test_same_content_drops_nothing(store: ProjectStore) -> None:
    store.update([row("/p/b.py", "b", B, mtime=5)], [])
    assert all(cached(store).values())
    assert store.stats()["/p/b.py"].mtime_ns == 5


def test_touched_files_only_refresh_their_stat(store: ProjectStore) -> None:
    generation = store.generation()
    store.update([], [], touched=[("/p/a.py", 99, len(A))])
    assert store.stats()["/p/a.py"].mtime_ns == 99
    assert store.generation() == generation
    assert all(cached(store).values())


def test_answers_of_an_older_generation_are_not_stored(store: ProjectStore) -> None:
    old = store.generation()
    store.update([row("/p/b.py", "b", "def f(x):\n    return x + 1\n", mtime=2)], [])
    assert not store.put_facts([(K_B, CPU, frozenset({READ_B}))], old)
    assert store.fact(K_B) is None
    assert not store.put_result("/p/b.py", "kb2", "stale", {READ_B}, old)
    assert store.result("/p/b.py", "kb2") is None
    assert store.put_facts([(K_B, CPU, frozenset({READ_B}))], store.generation())


def test_settings_change_clears_facts_and_results(store: ProjectStore) -> None:
    store.use_settings("s1")
    assert all(cached(store).values())
    generation = store.generation()
    store.use_settings("s2")
    assert not any(cached(store).values())
    assert store.generation() == generation + 1  # what a run read or solved before is not kept
    assert set(store.modules()) == {"a", "b", "c"}  # summaries do not depend on settings


def test_facts_except_sets_aside_the_dependants(store: ProjectStore) -> None:
    view = store.facts_except({READ_A})
    assert view.fact(K_A) is None and view.fact(K_C) is None
    assert view.fact(K_B) is not None
    assert store.fact(K_A) is not None  # nothing was deleted


def test_changed_labels() -> None:
    from sync_lint.project.store import StoredSummary

    def state(source: str):
        return StoredSummary(summarize(source, "m.py", "m")).state()

    same = state(B)
    assert changed_labels({"m": same}, {"m": state(B)}) == set()
    labels = changed_labels({"m": state(B)}, {"m": state(B + "o.lens = 1\n")})
    assert {"p:m:stores", "p:m:stores:lens", "n:stores:lens"} <= labels
    assert not any(label.startswith("s:") for label in labels)  # the names the module defines did not change
    assert "p:m:functions:f" not in labels
    edited = changed_labels({"m": state(B)}, {"m": state(B.replace("return x", "return x + 1"))})
    assert {"p:m:functions:f", "p:m:functions"} <= edited and "s:m:f" not in edited
    gone = changed_labels({"m": state(B)}, {})
    assert {"m:m", "s:m", "s:m:f", "p:m:functions:f"} <= gone  # a module removed: its existence and every part


def test_module_changes() -> None:
    from sync_lint.project.store import StoredSummary, module_changes

    def state(source: str):
        return StoredSummary(summarize(source, "m.py", "m")).state()

    two = B + "def g(y):\n    return f(y)\n"
    changed, moved, lines = module_changes(state(two), state("# a comment\n\n" + two))
    assert not changed and {"p:m:functions:f", "p:m:functions:g", "p:m:calls:f"} <= moved
    assert lines == {1: 3, 2: 4, 3: 5, 4: 6}
    assert module_changes(state(two), state(two.replace("def g", "\n\ndef g")))[2] == {1: 1, 2: 2, 3: 5, 4: 6}
    assert module_changes(state(two), state(two))[:2] == (set(), set())  # nothing moved
    # `g` changed and `f` moved: only `f`'s lines are known.
    changed, moved, lines = module_changes(state(two), state("# a comment\n" + two.replace("f(y)", "f(y + 1)")))
    assert {"p:m:functions:g", "p:m:calls:f", "p:m:calls-in:g"} <= changed and "p:m:functions:f" not in changed
    assert "p:m:functions:f" in moved and lines == {1: 2, 2: 3}
    swapped = "def g(y):\n    return f(y)\n" + B
    changed, moved, lines = module_changes(state(two), state(swapped))  # the functions changed places
    assert {"p:m:functions:f", "p:m:functions:g"} <= changed and not moved and not lines


def _shared(depth: int, leaf: str) -> tuple:
    """A value holding one part twice at each of `depth` levels: 2**depth parts spelled out."""
    value: tuple = ("name", leaf)
    for _ in range(depth):
        value = ("join", (value, value))
    return value


def _spelled_out(depth: int, leaf: str) -> tuple:
    return ("name", leaf) if depth == 0 else ("join", (_spelled_out(depth - 1, leaf), _spelled_out(depth - 1, leaf)))


def test_values_that_share_parts_are_compared_by_content() -> None:
    # TransformerEngine's `UnfusedDotProductAttention._forward` summarises to values whose text is
    # 1.6e9 parts long: a comparison by text did not end. The digest reads each shared part once, and
    # is the same for the same content however it is shared.
    from sync_lint.project.digest import ContentDigest
    from sync_lint.project.store import StoredSummary, module_changes
    from sync_lint.project.summary import ModuleSummary, map_lines

    assert ContentDigest()(_shared(8, "x")) == ContentDigest()(_spelled_out(8, "x"))
    assert ContentDigest()(_shared(60, "x")) != ContentDigest()(_shared(60, "y"))
    assert ContentDigest()((1, 23)) != ContentDigest()((12, 3))
    deep = ("on", _shared(60, "x"), "is_cuda", True, None, 3)  # a device test keeps its line in the value
    summary = ModuleSummary(path="m.py", module="m", is_package=False, globals={"v": deep}, global_lines={"v": 3})
    mapped = map_lines(summary, lambda line: line + 2)
    assert mapped.globals["v"][5] == 5
    assert mapped.globals["v"][1][1][0] is mapped.globals["v"][1][1][1]  # shared as before
    changed, moved, lines = module_changes(StoredSummary(summary).state(), StoredSummary(mapped).state())
    assert not changed and "p:m:globals:v" in moved and lines == {3: 5}


FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.mark.parametrize("path", sorted(FIXTURES.rglob("*.py")), ids=lambda p: str(p.relative_to(FIXTURES)))
def test_map_lines_moves_every_line_a_summary_records(path: Path) -> None:
    # Three lines inserted at the top: the summary of the new text is the old one with every line
    # moved by three. A line `map_lines` missed would keep an answer's evidence at the old line.
    from sync_lint.project.conventions import local_conventions
    from sync_lint.project.summary import map_lines

    text = path.read_text(encoding="utf-8", errors="replace")
    before, after = summarize(text, "m.py", "m"), summarize("# one\n# two\n\n" + text, "m.py", "m")
    before.conventions, after.conventions = local_conventions(before), local_conventions(after)
    assert repr(map_lines(before, lambda line: line + 3)) == repr(after)


# Facts naming a plain path are found through `fact_files`; a path with a space or a letter
# outside ASCII is looked for in every fact.
@pytest.mark.parametrize("path", ["/p/a.py", "/p/my dir/a.py", "/p/é/a.py"])
def test_moved_lines_keep_the_facts_and_move_their_evidence(store: ProjectStore, path: str) -> None:
    import dataclasses

    at = dataclasses.replace(GPU, reason=f"stored at {path}:4", where=f"{path}:4",
                             via=dataclasses.replace(CPU, where=f"{path}:2"))
    elsewhere = dataclasses.replace(GPU, where=f"/q{path}:4")  # another file whose path ends the same
    unplaced = dataclasses.replace(GPU, where=f"{path}:40")  # a line the summary does not record
    k_at, k_elsewhere, k_unplaced = ("field", "a.A", "other", 6), ("return", "q.f", 6), ("return", "a.h", 6)
    store.update([row(path, "a", A)], [])
    store.put_facts([(k_at, at, frozenset({"m:a"})), (k_elsewhere, elsewhere, frozenset({"m:a"})),
                     (k_unplaced, unplaced, frozenset({"m:a"}))], store.generation())
    store.update([row(path, "a", "# a comment\n" + A, mtime=2)], [])
    moved = store.fact(k_at)
    assert (moved.where, moved.reason, moved.via.where) == (f"{path}:5", f"stored at {path}:5", f"{path}:3")
    assert store.fact(k_elsewhere).where == f"/q{path}:4"
    assert store.fact(k_unplaced) is None
    if path == "/p/a.py":
        assert cached(store) == {
            K_A: True, K_B: True,
            K_C: True,         # read K_A, which holds: only its evidence moved
            K_S: True,
            "/p/a.py": False,  # its text names the old lines
            "/p/b.py": True,
            "/p/c.py": True,
        }


def test_an_edit_above_keeps_what_read_the_parts_below_and_moves_their_evidence(store: ProjectStore) -> None:
    # A function added above `A`: what read `A`'s store keeps its value, cited two lines lower; what
    # read the list of the module's functions is solved again.
    import dataclasses

    at = dataclasses.replace(GPU, where="/p/a.py:4")
    k_store, k_functions = ("field", "a.A", "lens", 5), ("return", "a.anything", 6)
    store.put_facts([(k_store, at, frozenset({READ_A})), (k_functions, GPU, frozenset({"p:a:functions"}))],
                    store.generation())
    store.update([row("/p/a.py", "a", A.replace("class A:", "def h():\n    return 1\nclass A:"), mtime=2)], [])
    assert store.fact(k_store).where == "/p/a.py:6"
    assert store.fact(k_functions) is None
    assert store.fact(K_A) is not None and store.fact(K_C) is not None  # K_C used K_A, which holds
    assert store.result("/p/a.py", "ka") is None  # the file's own result names its old lines


def test_a_move_keeps_the_results_that_hold_none_of_the_moved_lines(store: ProjectStore) -> None:
    # Lines inserted at the top of `a.py`: what read it keeps its value. A result whose text names
    # the file (evidence at `a.py:4`), and the call edges of `a`'s own functions (each holds a line of
    # `a.py`), are solved again; the rest stay.
    store.put_results([("/p/b.py", "kb2", "`x` is on the GPU: stored at a.py:4", {READ_A}),
                       ("/p/c.py", "kc2", "`y` is on the GPU: a parameter of c.g", {READ_A}),
                       ("<call-graph:3>a.A.__init__", "edges", "a call at line 4", {READ_A}),
                       ("<call-graph:3>c.g", "edges", "a call at line 3 of c.py", {READ_A})], store.generation())
    store.update([row("/p/a.py", "a", "# a comment\n\n" + A, mtime=2)], [])
    assert store.result("/p/b.py", "kb2") is None
    assert store.result("/p/c.py", "kc2") == "`y` is on the GPU: a parameter of c.g"
    assert store.result("<call-graph:3>a.A.__init__", "edges") is None
    assert store.result("<call-graph:3>c.g", "edges") == "a call at line 3 of c.py"
    # A change that is not a move drops everything that read the file, as before.
    store.update([row("/p/a.py", "a", "# a comment\n\n" + A.replace("'cuda'", "'cpu'"), mtime=3)], [])
    assert store.result("/p/c.py", "kc2") is None and store.result("<call-graph:3>c.g", "edges") is None


def test_a_summary_sent_from_a_worker_is_the_same_summary(tmp_path: Path) -> None:
    # A summary made in a worker process reaches the cache through a pickle round trip, which
    # shares its objects differently, so its pickle has other bytes than a summary of the same
    # text made in this process (a one-file check after an edit). An edit that leaves the
    # summary alone must not drop what read it.
    import pickle
    from dataclasses import replace

    source = B + "class Cfg:\n    def __init__(self):\n        self.lens = torch.zeros(3, device='cuda')\n" * 3
    fresh = summarize(source, "b.py", "b")
    sent = pickle.loads(pickle.dumps(fresh, protocol=5))
    assert pickle.dumps(replace(sent, calls=[]), protocol=5) != pickle.dumps(replace(fresh, calls=[]), protocol=5)
    db = ProjectStore(tmp_path / "index.sqlite")
    db.update([("/p/b.py", 1, 1, "sha1", sent)], [])
    db.put_facts([(K_A, Fact(Device.GPU), frozenset({"p:b:globals"}))], db.generation())
    db.update([("/p/b.py", 2, 2, "sha2", fresh)], [])
    assert db.fact(K_A) is not None
    changed = summarize(source + "x = 1\n", "b.py", "b")
    db.update([("/p/b.py", 3, 3, "sha3", changed)], [])
    assert db.fact(K_A) is None
    db.close()


def test_a_summary_prints_the_same_in_every_process() -> None:
    # Line moves and unchanged summaries are recognised by the summary's text (`ModuleState`), and a
    # cached summary is compared with one made in another process, whose string hashes are seeded
    # differently. A set in a summary prints in hash order: the text then differs although nothing
    # changed, and an edit that only moved lines dropped the answers it should keep.
    import subprocess
    import sys

    script = (
        "import hashlib, pathlib, sys\n"
        "from sync_lint.project.summary import summarize\n"
        "digest = hashlib.sha256()\n"
        "for path in sorted(pathlib.Path(sys.argv[1]).rglob('*.py')):\n"
        "    digest.update(repr(summarize(path.read_text(errors='replace'), 'm.py', 'm')).encode())\n"
        "print(digest.hexdigest())\n")
    printed = {subprocess.run([sys.executable, "-c", script, str(FIXTURES)], capture_output=True, text=True,
                              check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
               for seed in ("1", "2", "3")}
    assert len(printed) == 1


def test_an_answer_solved_again_after_a_drop_stores_what_it_reads_now(store: ProjectStore) -> None:
    # The reads of a dropped answer stay in the cache (they can only make it drop more); a node
    # solved again with other reads must still have those stored, or an edit of what it reads
    # now would leave the answers that used it standing.
    node = ("node", "callers", "b.f")
    key = ("param", "b.f", "x", 6)
    store.put_facts([(node, None, frozenset({"p:b:functions"})), (key, GPU, frozenset({node}))], store.generation())
    store.update([row("/p/b.py", "b", B + "\ndef h():\n    return 1\n", mtime=2)], [])
    assert store.fact(key) is None
    store.put_facts([(node, None, frozenset({"p:c:functions"})), (key, GPU, frozenset({node}))], store.generation())
    assert store.fact(key) is not None
    store.update([row("/p/c.py", "c", C + "\ndef k():\n    return 2\n", mtime=2)], [])
    assert store.fact(key) is None


def test_corrupt_database_is_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    db = ProjectStore(path)
    db.update([row("/p/b.py", "b", B)], [])
    assert db.modules() == ["b"]
    db.close()


def test_a_run_opening_a_cache_another_run_is_switching_waits_instead_of_deleting_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two cold runs start together: while one switches the new file to WAL, SQLite answers the other's
    # switch "database is locked" at once, without waiting on the busy timeout. That was taken for a
    # corrupt file, and the first run's cache was deleted under it ("no such table: files" in one of
    # two concurrent cold runs, about one time in six).
    import sqlite3

    path = tmp_path / "index.sqlite"
    made = ProjectStore(path)  # the other run's cache
    made._db.execute("INSERT INTO meta VALUES ('made-by', 'the other run')")
    made.close()
    connect = sqlite3.connect
    refusals = []

    class Switching:  # a connection that finds the other run switching the journal twice
        def __init__(self, *args, **kwargs) -> None:
            self._db = connect(*args, **kwargs)

        def execute(self, sql, *args):  # type: ignore[no-untyped-def]
            if sql == "PRAGMA journal_mode=WAL" and len(refusals) < 2:
                refusals.append(sql)
                raise sqlite3.OperationalError("database is locked")
            return self._db.execute(sql, *args)

        def __getattr__(self, name):  # type: ignore[no-untyped-def]
            return getattr(self._db, name)

    monkeypatch.setattr(sqlite3, "connect", Switching)
    opened = ProjectStore(path)
    try:
        assert len(refusals) == 2  # it waited
        assert opened._meta("made-by") == "the other run"  # and kept the other run's cache
    finally:
        opened.close()


def test_database_of_another_format_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "index.sqlite"
    db = ProjectStore(path)
    db.update([row("/p/b.py", "b", B)], [])
    db.close()
    monkeypatch.setattr(store_module, "summary_fingerprint", lambda: "another format")
    db = ProjectStore(path)
    assert db.modules() == []
    db.close()


def test_cache_folder_ignores_itself(tmp_path: Path) -> None:
    folder = tmp_path / ".sync-lint-cache"
    prepare_cache_dir(folder)
    assert (folder / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (folder / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")


def test_a_node_carries_its_reads_to_every_answer_that_used_it(store: ProjectStore) -> None:
    # A memoised helper read the functions of module b; an answer and a result that used it read only its node.
    node = ("node", "callers", "b.f")
    key = ("param", "b.f", "x", 6)
    generation = store.generation()
    assert store.put_facts([(node, None, frozenset({"p:b:functions", "n:calls:f"})), (key, GPU, frozenset({node}))], generation)
    assert store.put_result("/p/a.py", "ka2", "result-a2", {node}, generation)
    assert store.fact(node) is None  # a node has no value
    # Stored again by another process: its reads are not duplicated.
    assert store.put_facts([(node, None, frozenset({"p:b:functions", "n:calls:f"}))], generation)
    store.merge_reads()
    assert store._db.execute("SELECT COUNT(*) FROM fact_reads WHERE fact = ?",
                             (store_module.dep_id(node),)).fetchone()[0] == 2
    store.update([row("/p/b.py", "b", B + "\ndef h():\n    return 1\n", mtime=2)], [])
    assert store.fact(key) is None
    assert store.result("/p/a.py", "ka2") is None
    assert store.fact(K_A) is not None  # it read only module a



def test_a_new_cache_is_created_in_one_transaction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Another run opening the cache meanwhile must not see tables without the format row: it would take
    # the database for one of another format and start it over under this run.
    import sqlite3

    path = tmp_path / "index.sqlite"
    real_connect = sqlite3.connect
    seen: list[list[str]] = []

    def connect(*args, **kwargs):  # type: ignore[no-untyped-def]
        db = real_connect(*args, **kwargs)

        def look(statement: str) -> None:
            if "'format'" in statement and statement.lstrip().upper().startswith("INSERT"):
                other = real_connect(path)
                seen.append([r[0] for r in other.execute("SELECT name FROM sqlite_master WHERE type = 'table'")])
                other.close()

        db.set_trace_callback(look)
        return db

    monkeypatch.setattr(store_module.sqlite3, "connect", connect)
    db = ProjectStore(path)
    db.close()
    assert seen == [[]]  # while the format row was written, another connection saw no table yet


def test_only_the_newest_results_under_a_prefix_are_kept(store: ProjectStore) -> None:
    generation = store.generation()
    for name in ("<hot-paths:a>", "/p/a.py", "<hot-paths:b>", "<hot-paths;>", "<hot-paths:c>", "<hot-paths>"):
        store.put_results([(name, "k", name, ())], generation)
    store.put_results([("<hot-paths:a>", "k2", "again", ())], generation)  # stored anew: now the newest

    store.keep_newest_results("<hot-paths:", 2)

    kept = store.results({name: key for name, key in [("<hot-paths:a>", "k2"), ("<hot-paths:b>", "k"),
                                                      ("<hot-paths:c>", "k"), ("/p/a.py", "k"),
                                                      ("<hot-paths;>", "k"), ("<hot-paths>", "k")]})
    # Of the three under the prefix, the oldest is gone; names beside the prefix are not under it.
    assert set(kept) == {"<hot-paths:a>", "<hot-paths:c>", "/p/a.py", "<hot-paths;>", "<hot-paths>"}
    assert kept["<hot-paths:a>"] == "again"


def test_a_summary_stored_from_a_worker_is_the_summary_stored_here(tmp_path: Path) -> None:
    import pickle

    from sync_lint.project.index import table_rows
    from sync_lint.project.store import StoredSummary, StoreTables

    source = textwrap.dedent("""\
        import torch
        class A:
            def __init__(self):
                self.lens = torch.zeros(3, device='cuda')
        def f(a):
            g(a.lens); h(a); g(1)
            return torch.ones(2).cuda()
        """)
    summary = summarize(source, "m.py", "m")
    sent = pickle.loads(pickle.dumps(StoredSummary(summary)))  # as a worker of the pool hands it back
    # Stored in place (its sites from memory) and received (its sites from their pickles): one state.
    direct, received = StoredSummary(summary).state(), sent.state()
    assert direct.rows == set(table_rows(summary))
    assert (received.rows, received.counts, received.header) == (direct.rows, direct.counts, direct.header)
    assert received.call_sites() == direct.call_sites() and received.digest == direct.digest

    tables = []
    for name, item in (("here", summary), ("worker", sent)):
        (tmp_path / name).mkdir()
        db = ProjectStore(tmp_path / name / "index.sqlite")
        db.update([("/p/m.py", 1, len(source), content_hash(source.encode()), item)], [])
        read = StoreTables(db)
        tables.append((db.summary("m"), read.module_calls("m"), read.call_sites("g"), read.conventions("lens")))
        db.close()
    assert tables[0] == tables[1] and tables[0][2]


def test_the_write_ahead_log_is_cut_back_after_the_merge(store: ProjectStore) -> None:
    # A run ends without closing its connection: the log its largest transaction (the merge of the
    # dependency rows) grew must not stay behind in the cache folder at full size.
    log = Path(f"{store.path}-wal")
    generation = store.generation()
    store.merge_reads()  # the fixture's own rows
    before = store._db.execute("SELECT COUNT(*) FROM fact_reads").fetchone()[0]
    rows = [(("param", f"m.f{i}", "x", 6), GPU, frozenset({f"m:mod{i}", f"n:calls:f{i}", f"c:lens{i}"}))
            for i in range(20_000)]
    assert store.put_facts(rows, generation)
    grown = log.stat().st_size
    store.merge_reads()
    assert grown > 1 << 20 and log.stat().st_size == 0
    assert store._db.execute("SELECT COUNT(*) FROM fact_reads").fetchone()[0] == before + 60_000
    # The merge's sort may use a helper thread; no other statement of the connection does.
    assert store._db.execute("PRAGMA threads").fetchone()[0] == 0


def test_the_log_is_left_to_the_next_write_while_another_process_reads(store: ProjectStore) -> None:
    import sqlite3

    generation = store.generation()
    store.merge_reads()  # the fixture's own rows
    before = store._db.execute("SELECT COUNT(*) FROM fact_reads").fetchone()[0]
    assert store.put_facts([(("param", "m.f", "x", 6), GPU, frozenset({"m:mod"}))], generation)
    reader = sqlite3.connect(store.path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM facts").fetchone()  # holds a snapshot of the log
    try:
        started = time.perf_counter()
        store.merge_reads()  # must not wait for the reader (the store's timeout is minutes)
        assert time.perf_counter() - started < 5
    finally:
        reader.execute("COMMIT")
        reader.close()
    assert store._db.execute("SELECT COUNT(*) FROM fact_reads").fetchone()[0] == before + 1
