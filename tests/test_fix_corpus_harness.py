"""benchmarks/fix_corpus.py, the fixer's corpus harness: it finds damage, and a clean fix shows none.

The full corpora take hours on a small machine; here the harness runs on a corpus of
three files, and its comparisons are fed trees with planted damage.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

import fix_corpus  # noqa: E402

FIXABLE = '''\
import torch


def write_scores(n: int):
    scores = torch.zeros(8, device="cuda")
    scores[0] = 1.5
    return scores
'''

CLEAN = '''\
def add(a, b):
    return a + b
'''


def _state(text: str, mode: int = 0o644) -> fix_corpus.FileState:
    return fix_corpus.FileState(text.encode(), mode)


def test_compare_reports_planted_damage():
    report = fix_corpus.CorpusReport("planted", "-")
    before = {"a.py": _state(FIXABLE), "b.py": _state(CLEAN), "c.py": _state(CLEAN)}
    after = {
        # the fix edit's row (6) changed, and so did an unrelated one (2)
        "a.py": _state(FIXABLE.replace("\n\n\ndef", "\n\n\n# moved\ndef").replace("scores[0] = 1.5",
                                                                                   "scores[0].fill_(1.5)")),
        "b.py": _state(CLEAN.replace("a + b", "a +")),  # no fixable finding, and it no longer compiles
        "c.py": _state(CLEAN, 0o755),  # unchanged bytes, other mode
        "c.py.tmp": _state(CLEAN),  # a temporary file left behind
    }
    fix_corpus.compare(report, before, after, {"a.py": [(6, 6)]})
    counts = {k: len(v) for k, v in report.defects.items() if v}
    assert counts == {"changed_without_fixable_finding": 1, "not_compiling_after": 1, "non_local_edits": 2,
                      "preservation_violations": 1, "temporary_files_left": 1}
    assert report.files_changed == 2


def test_compare_reports_lost_file_shapes():
    report = fix_corpus.CorpusReport("shapes", "-")
    crlf = FIXABLE.replace("\n", "\r\n").encode()
    before = {"a.py": fix_corpus.FileState(fix_corpus.BOM + crlf, 0o640)}
    fixed = crlf.replace(b"scores[0] = 1.5", b"scores[0].fill_(1.5)").replace(b"\r\n    return", b"\n    return")
    after = {"a.py": fix_corpus.FileState(fixed, 0o644)}
    fix_corpus.compare(report, before, after, {"a.py": [(6, 6)]})
    problems = " ".join(report.defects["preservation_violations"])
    assert "BOM changed" in problems and "newline kinds added" in problems and "mode 640 -> 644" in problems


@pytest.mark.parametrize("isolated", [True, False])
def test_a_small_corpus_is_fixed_without_defects(tmp_path, isolated):
    corpus = tmp_path / "corpus"
    (corpus / "pkg").mkdir(parents=True)
    (corpus / "pkg" / "__init__.py").write_text("")
    (corpus / "pkg" / "scores.py").write_text(FIXABLE)
    (corpus / "pkg" / "clean.py").write_text(CLEAN)
    originals = {p: p.read_bytes() for p in corpus.rglob("*") if p.is_file()}
    report = fix_corpus.fix_corpus("small", corpus, jobs=1, isolated=isolated, variants=True, concurrent=False,
                                   second_fix_all=not isolated)
    assert {k: v for k, v in report.defects.items() if v} == {}
    assert report.files_changed == 1 and report.fixes_applied["SL301"] == 1
    assert report.files_with_fixable_findings == 1
    assert {p: p.read_bytes() for p in corpus.rglob("*") if p.is_file()} == originals  # the corpus is never written
