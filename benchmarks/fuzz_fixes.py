#!/usr/bin/env python3
"""The long fuzz run of the fixer: the bounded test's properties over many more examples.

Four sources of inputs, each `--examples` examples (random, not derandomized):

- `programs`: modules generated around the rules' patterns, under every way of
  binding torch (tests/fuzz_support.py);
- `fixtures`: the fixture files, mutated (aliased torch, lazy or TYPE_CHECKING
  imports, nested definitions, comments in spans, tabs, CRLF);
- `grammar`: a generated program followed by hypothesmith's grammar-generated code;
- `corpus`: corpus files that hold a fix trigger, mutated the same way (with
  `--corpus DIR`; `--corpus-files` of them, drawn with `--seed`).

Each input is fixed with every built-in rule, unsafe fixes too, and checked
(tests/fix_properties.py): no crash, the fixed text compiles, no changed line off
the reported fix edits, a second fix changes nothing, no name read that is not
bound at run time, a lazy module stays lazy. The fixer's refusals are counted apart:
they are the fixer declining, not damage. Failing inputs are saved under `--save`.

    python benchmarks/fuzz_fixes.py --examples 500
    python benchmarks/fuzz_fixes.py --examples 200 --corpus benchmarks/corpus/vllm-0.33.0 --corpus-files 300

Writes `benchmarks/results/fuzz_fixes.json` and `.md` (needs hypothesis and hypothesmith).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fix_properties import check_text  # noqa: E402
from fuzz_support import mutations, programs  # noqa: E402

TRIGGERS = ("tensor(", ".item()", "] = ", ".to(", "nonzero", ".tolist()", "bincount", "repeat_interleave")


class Tally:
    """What one source of inputs gave: examples, fixes applied, failures and refusals by kind."""

    def __init__(self, save: Path | None, name: str) -> None:
        self.examples = 0
        self.applied = 0
        self.changed = 0
        self.failures: Counter = Counter()
        self.refusals: Counter = Counter()
        self.save = save
        self.name = name
        self.seconds = 0.0

    def check(self, text: str, label: str = "") -> None:
        verdict = check_text(text)
        self.examples += 1
        self.applied += verdict.applied
        self.changed += verdict.fixed != text
        for failure in verdict.failures:
            self.failures[failure.split(":")[0]] += 1
            self._keep(text, failure, label)
        for refusal in verdict.refusals:
            self.refusals[_kind(refusal)] += 1
            self._keep(text, refusal, label)

    def _keep(self, text: str, why: str, label: str) -> None:
        if self.save is None:
            return
        self.save.mkdir(parents=True, exist_ok=True)
        index = sum(self.failures.values()) + sum(self.refusals.values())
        (self.save / f"{self.name}-{index:04d}.py").write_text(f"# {why}\n# {label}\n{text}", encoding="utf-8")

    def as_json(self) -> dict:
        return {"examples": self.examples, "fixes_applied": self.applied, "inputs_changed": self.changed,
                "failures": dict(self.failures), "refusals": dict(self.refusals), "seconds": round(self.seconds, 1)}


def _kind(message: str) -> str:
    if "self-check" in message:
        return "refused by the self-check: " + message.split("self-check: ")[-1].split(" (")[0].split(":")[0]
    if "does not parse" in message:
        return "refused: output does not parse"
    if "Python's own parser" in message:
        return "not fixed: Python's parser rejects the input"
    if message.startswith("internal error in the"):
        return "rolled back: " + message.split(": ", 1)[-1].split(" at line")[0]
    return message[:80]


def run_source(name: str, strategy: st.SearchStrategy, examples: int, save: Path | None) -> Tally:
    tally = Tally(save, name)

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def fuzz(case: object) -> None:
        text, label = case if isinstance(case, tuple) else (case, "")
        tally.check(text, str(label))

    start = time.perf_counter()
    fuzz()
    tally.seconds = time.perf_counter() - start
    return tally


def corpus_sources(root: Path, count: int, seed: int, max_lines: int = 3000) -> list[str]:
    """Up to `count` corpus files (of at most `max_lines` lines) whose text holds a fix trigger."""
    files = sorted(root.rglob("*.py"))
    random.Random(seed).shuffle(files)
    out = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if text.count("\n") <= max_lines and any(t in text for t in TRIGGERS):
            out.append(text)
            if len(out) == count:
                break
    return out


def fixture_sources() -> list[str]:
    fixtures = REPO / "fixtures"
    return [p.read_text(encoding="utf-8") for p in sorted(fixtures.rglob("*.py"))
            if p.name == "positive.py" or p.parent.name == "realistic"]


def grammar_programs() -> st.SearchStrategy:
    import hypothesmith

    return st.tuples(programs(), hypothesmith.from_grammar()).map(lambda pair: pair[0] + "\n" + pair[1])


def render(meta: dict, tallies: dict[str, dict]) -> str:
    lines = [
        "# Fuzzing the fixer",
        "",
        f"sync-lint commit `{meta['commit']}`, {meta['date']}, Python {meta['python']}, hypothesis "
        f"{meta['hypothesis']}, hypothesmith {meta['hypothesmith']}. Command:",
        "",
        "```sh",
        meta["command"],
        "```",
        "",
        "| inputs | examples | fixes applied | inputs changed | failures | refusals | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, t in tallies.items():
        lines.append(f"| {name} | {t['examples']} | {t['fixes_applied']} | {t['inputs_changed']} | "
                     f"{sum(t['failures'].values())} | {sum(t['refusals'].values())} | {t['seconds']} |")
    for name, t in tallies.items():
        for label, counts in (("failures", t["failures"]), ("refusals", t["refusals"])):
            if counts:
                lines += ["", f"{name}, {label}:", ""] + [f"- {count} × {kind}" for kind, count in counts.items()]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=300, help="examples per source of inputs")
    parser.add_argument("--corpus", type=Path, action="append", default=[], help="a corpus folder to mutate")
    parser.add_argument("--corpus-files", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--save", type=Path, default=None, help="where to save failing inputs")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "fuzz_fixes")
    args = parser.parse_args()
    sources: dict[str, st.SearchStrategy] = {
        "programs": programs(),
        "fixtures": mutations(fixture_sources()),
        "grammar": grammar_programs(),
    }
    for root in args.corpus:
        texts = corpus_sources(root, args.corpus_files, args.seed)
        if texts:
            sources[f"corpus {root.name} ({len(texts)} files)"] = mutations(texts)
    tallies = {}
    for name, strategy in sources.items():
        print(f"{name}: {args.examples} examples ...", file=sys.stderr, flush=True)
        tally = run_source(name.split()[0], strategy, args.examples, args.save)
        tallies[name] = tally.as_json()
        print(f"  {tallies[name]}", file=sys.stderr, flush=True)
    import hypothesis
    import hypothesmith

    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    meta = {
        "commit": commit,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "hypothesis": hypothesis.__version__,
        "hypothesmith": getattr(hypothesmith, "__version__", "?"),
        "command": "python " + " ".join([str(Path(sys.argv[0]).relative_to(REPO)) if Path(sys.argv[0]).is_absolute()
                                         else sys.argv[0], *sys.argv[1:]]),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".json").write_text(json.dumps({"meta": meta, "sources": tallies}, indent=2) + "\n")
    args.output.with_suffix(".md").write_text(render(meta, tallies))
    failures = sum(sum(t["failures"].values()) for t in tallies.values())
    print(f"{sum(t['examples'] for t in tallies.values())} examples, {failures} failures", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
