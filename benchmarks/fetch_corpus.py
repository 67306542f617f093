#!/usr/bin/env python3
"""Fetch the real-world benchmark corpora: the Python sources of pinned PyPI wheels.

Each corpus is one wheel, downloaded with `pip download --no-deps` and unpacked into
`benchmarks/corpus/<name>-<version>/`, keeping only `.py` and `.pyi` members. The
wheels themselves are kept in `benchmarks/corpus/_wheels/` so a re-run does not
download again. `benchmarks/corpus/` is git-ignored: third-party code is never
committed.

Idempotent: a corpus whose directory carries a `.complete` marker is skipped
(pass `--force` to unpack again). Versions, file and line counts are written to
`benchmarks/results/corpus.json`.

    python benchmarks/fetch_corpus.py            # all corpora
    python benchmarks/fetch_corpus.py vllm       # just one
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath

HERE = Path(__file__).resolve().parent
CORPUS_DIR = HERE / "corpus"
WHEEL_DIR = CORPUS_DIR / "_wheels"
RESULTS_DIR = HERE / "results"
CORPUS_JSON = RESULTS_DIR / "corpus.json"
MARKER = ".complete"
SUFFIXES = (".py", ".pyi")

# Pinned: the newest release on PyPI when the benchmark was set up. Changing a pin
# changes every number in results/, so bump deliberately.
CORPORA: dict[str, str] = {
    "vllm": "0.33.0",
    "transformers": "5.23.0",
}


def corpus_path(name: str, version: str) -> Path:
    return CORPUS_DIR / f"{name}-{version}"


def count_lines(data: bytes) -> int:
    """Lines as `wc -l` counts them: newline characters."""
    return data.count(b"\n")


def find_wheel(name: str, version: str) -> Path | None:
    prefix = f"{name.replace('-', '_')}-{version}-".lower()
    for wheel in sorted(WHEEL_DIR.glob("*.whl")):
        if wheel.name.lower().startswith(prefix):
            return wheel
    return None


def download_wheel(name: str, version: str) -> Path:
    wheel = find_wheel(name, version)
    if wheel is not None:
        return wheel
    WHEEL_DIR.mkdir(parents=True, exist_ok=True)
    base = [sys.executable, "-m", "pip", "download", f"{name}=={version}", "--no-deps",
            "--only-binary=:all:", "--disable-pip-version-check", "-d", str(WHEEL_DIR)]
    attempts = [
        base,
        # No wheel for this interpreter/platform: any manylinux x86_64 CPython 3.12 wheel
        # has the same Python sources.
        [*base, "--platform", "manylinux_2_28_x86_64", "--python-version", "3.12", "--implementation", "cp"],
    ]
    last = None
    for command in attempts:
        print(f"fetch: {' '.join(command[2:])}", file=sys.stderr)
        last = subprocess.run(command, capture_output=True, text=True)
        wheel = find_wheel(name, version)
        if last.returncode == 0 and wheel is not None:
            return wheel
    assert last is not None
    sys.stderr.write(last.stdout + last.stderr)
    raise SystemExit(f"fetch: could not download {name}=={version}")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def safe_member(name: str) -> PurePosixPath | None:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        return None
    return path


def unpack(wheel: Path, dest: Path) -> None:
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            if info.is_dir() or not info.filename.endswith(SUFFIXES):
                continue
            member = safe_member(info.filename)
            if member is None:
                continue
            target = tmp.joinpath(*member.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(info))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)


def measure(dest: Path) -> dict[str, int]:
    counts = {"files": 0, "py_files": 0, "pyi_files": 0, "lines": 0, "py_lines": 0}
    for path in dest.rglob("*"):
        if not path.is_file() or not path.name.endswith(SUFFIXES):
            continue
        lines = count_lines(path.read_bytes())
        counts["files"] += 1
        counts["lines"] += lines
        if path.suffix == ".py":
            counts["py_files"] += 1
            counts["py_lines"] += lines
        else:
            counts["pyi_files"] += 1
    return counts


def fetch(name: str, version: str, force: bool) -> dict[str, object]:
    dest = corpus_path(name, version)
    wheel = find_wheel(name, version)
    if force or not (dest / MARKER).is_file():
        wheel = download_wheel(name, version)
        print(f"fetch: unpacking {wheel.name} -> {dest.relative_to(HERE.parent)}", file=sys.stderr)
        unpack(wheel, dest)
        (dest / MARKER).write_text(f"{wheel.name}\n", encoding="utf-8")
    else:
        print(f"fetch: {dest.relative_to(HERE.parent)} present, skipped", file=sys.stderr)
    wheel_name = (dest / MARKER).read_text(encoding="utf-8").strip()
    wheel = WHEEL_DIR / wheel_name
    entry: dict[str, object] = {
        "name": name,
        "version": version,
        "dir": str(dest.relative_to(HERE.parent)),
        "wheel": wheel_name,
        "wheel_sha256": sha256(wheel) if wheel.is_file() else None,
        "wheel_bytes": wheel.stat().st_size if wheel.is_file() else None,
    }
    entry.update(measure(dest))
    return entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"corpora to fetch (default: all of {', '.join(CORPORA)})")
    parser.add_argument("--force", action="store_true", help="unpack again even if present")
    args = parser.parse_args(argv)
    names = args.names or list(CORPORA)
    unknown = [n for n in names if n not in CORPORA]
    if unknown:
        parser.error(f"unknown corpus: {', '.join(unknown)} (known: {', '.join(CORPORA)})")

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    summary: dict[str, object] = {}
    if CORPUS_JSON.is_file():
        try:
            summary = json.loads(CORPUS_JSON.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            summary = {}
    corpora = dict(summary.get("corpora", {}))  # type: ignore[arg-type]
    # Drop entries whose pin changed.
    corpora = {k: v for k, v in corpora.items() if k in CORPORA and v.get("version") == CORPORA[k]}
    for name in names:
        corpora[name] = fetch(name, CORPORA[name], args.force)
        entry = corpora[name]
        print(f"fetch: {name} {entry['version']}: {entry['files']} files, {entry['lines']} lines", file=sys.stderr)
    summary = {"corpora": {k: corpora[k] for k in CORPORA if k in corpora}}
    CORPUS_JSON.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
