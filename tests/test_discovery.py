"""Which files get linted: recursion, suffixes, default and configured excludes, .gitignore, explicit files, stdin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sync_lint.cli import main
from sync_lint.config import DEFAULT_EXCLUDE, Settings
from sync_lint.discovery import discover

GPU_SRC = 'x = torch.zeros(3, device="cuda")\nv = x.sum().item()\n'


def invoke(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def write(root: Path, names: list[str], content: str = GPU_SRC) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")


def found(root: Path, *args: str, **settings: object) -> list[str]:
    """discover() on `args` (default: the root), as POSIX paths relative to the root."""
    config = Settings(root=root).override(**settings)
    result = discover([str(root / a) for a in (args or ("",))], config)
    return sorted(Path(f).resolve().relative_to(root.resolve()).as_posix() for f in result.files)


def linted(*args: str) -> list[str]:
    """The files the CLI reports SL101 in (each test file holds exactly one finding)."""
    result = invoke("check", "--select", "SL101", "--jobs", "1", "--output-format", "json", *args)
    assert result.exit_code in (0, 1), result.output
    cwd = Path.cwd().resolve()
    return sorted(Path(d["filename"]).resolve().relative_to(cwd).as_posix() for d in json.loads(result.stdout))


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    monkeypatch.chdir(root)
    return root


# ==========================================================================================
# Files and directories
# ==========================================================================================


def test_directories_recurse_into_py_and_pyi(tree: Path) -> None:
    write(tree, ["a.py", "b.pyi", "pkg/c.py", "pkg/deep/er/d.pyi", "notes.txt", "script", "pkg/e.pyx", "pkg/f.py.bak"])
    assert found(tree) == ["a.py", "b.pyi", "pkg/c.py", "pkg/deep/er/d.pyi"]
    assert linted(".") == ["a.py", "b.pyi", "pkg/c.py", "pkg/deep/er/d.pyi"]


def test_files_and_directories_mixed_and_deduplicated(tree: Path) -> None:
    write(tree, ["a.py", "pkg/c.py", "pkg/d.py", "other/e.py"])
    result = discover(["pkg", "a.py", "pkg/c.py", "a.py"], Settings(root=tree))
    assert result.files == ["pkg/c.py", "pkg/d.py", "a.py"]
    assert result.missing == []
    assert linted("pkg", "a.py", "pkg/c.py") == ["a.py", "pkg/c.py", "pkg/d.py"]


def test_paths_keep_the_spelling_the_user_gave(tree: Path) -> None:
    write(tree, ["pkg/c.py"])
    assert discover(["pkg"], Settings(root=tree)).files == [str(Path("pkg") / "c.py")]
    absolute = discover([str(tree / "pkg")], Settings(root=tree)).files
    assert absolute == [str(tree / "pkg" / "c.py")]


def test_explicit_file_of_any_suffix_is_linted(tree: Path) -> None:
    write(tree, ["script"])
    assert discover(["script"], Settings(root=tree)).files == ["script"]
    assert linted("script") == ["script"]


def test_missing_paths_are_reported(tree: Path) -> None:
    write(tree, ["a.py"])
    result = discover(["a.py", "gone.py", "gone_dir"], Settings(root=tree))
    assert result.files == ["a.py"]
    assert result.missing == ["gone.py", "gone_dir"]


def test_order_does_not_depend_on_creation_order(tree: Path) -> None:
    names = [f"m{i}.py" for i in (5, 1, 9, 3)] + ["z/a.py", "b/z.py", "b/a.py"]
    write(tree / "one", names)
    write(tree / "two", names[::-1])
    one = discover(["one"], Settings(root=tree)).files
    two = discover(["two"], Settings(root=tree)).files
    assert len(one) == len(names)
    assert [Path(f).relative_to("one") for f in one] == [Path(f).relative_to("two") for f in two]
    assert one == discover(["one"], Settings(root=tree)).files


# ==========================================================================================
# Default and configured excludes
# ==========================================================================================

REQUIRED_DEFAULT_EXCLUDES = [".git", ".venv", "venv", "build", "dist", "__pycache__", "node_modules", ".tox"]


@pytest.mark.parametrize("directory", REQUIRED_DEFAULT_EXCLUDES)
def test_default_excludes(tree: Path, directory: str) -> None:
    assert directory in DEFAULT_EXCLUDE
    write(tree, ["keep.py", f"{directory}/skipped.py", f"pkg/{directory}/nested_skipped.py"])
    assert found(tree) == ["keep.py"]
    assert linted(".") == ["keep.py"]


def test_names_that_only_resemble_excludes_are_kept(tree: Path) -> None:
    write(tree, ["builder/a.py", "distance.py", "venvs_tool/b.py", "my_build.py"])
    assert found(tree) == ["builder/a.py", "distance.py", "my_build.py", "venvs_tool/b.py"]


def test_extend_exclude_adds_to_the_defaults(tree: Path) -> None:
    write(tree, ["keep.py", "gen/g.py", "pkg/gen/h.py", "pkg/proto_pb2.py", "build/b.py", "sub/gen.py"])
    (tree / "sync-lint.toml").write_text('extend-exclude = ["gen/", "*_pb2.py"]\n')
    assert linted(".") == ["keep.py", "sub/gen.py"]
    assert found(tree, extend_exclude=("gen/", "*_pb2.py")) == ["keep.py", "sub/gen.py"]


def test_force_exclude_never_drops_the_root_itself(tree: Path) -> None:
    # `.*` (hidden files and folders) must not match the root, which is `./` relative to itself.
    write(tree, ["keep.py", ".hidden/h.py"])
    assert found(tree, extend_exclude=(".*",), force_exclude=True) == ["keep.py"]


def test_exclude_replaces_the_defaults(tree: Path) -> None:
    write(tree, ["keep.py", "gen/g.py", "build/b.py"])
    (tree / "sync-lint.toml").write_text('exclude = ["gen"]\n')
    assert linted(".") == ["build/b.py", "keep.py"]


def test_anchored_exclude_is_relative_to_the_config_directory(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tree, ["src/gen/a.py", "tests/gen/b.py"])
    (tree / "sync-lint.toml").write_text('extend-exclude = ["/src/gen/"]\n')
    monkeypatch.chdir(tree / "src")
    assert linted(".") == []
    monkeypatch.chdir(tree)
    assert linted(".") == ["tests/gen/b.py"]


# ==========================================================================================
# .gitignore
# ==========================================================================================


def test_gitignore_is_respected(tree: Path) -> None:
    (tree / ".git").mkdir()
    write(tree, ["keep.py", "generated/a.py", "tmp_x.py", "pkg/tmp_y.py", "pkg/ok.py"])
    (tree / ".gitignore").write_text("generated/\ntmp_*.py\n")
    assert found(tree) == ["keep.py", "pkg/ok.py"]
    assert linted(".") == ["keep.py", "pkg/ok.py"]


def test_nested_gitignore_and_negation(tree: Path) -> None:
    (tree / ".git").mkdir()
    write(tree, ["keep.py", "pkg/a.py", "pkg/b.py", "pkg/keep_me.py", "other/a.py"])
    (tree / "pkg" / ".gitignore").write_text("*.py\n!keep_me.py\n")
    assert found(tree) == ["keep.py", "other/a.py", "pkg/keep_me.py"]


def test_nested_negation_overrides_a_parent_gitignore(tree: Path) -> None:
    # As in git: the deeper .gitignore wins (`git check-ignore` says sub/gen_keep.py is not ignored).
    (tree / ".git").mkdir()
    write(tree, ["sub/gen_keep.py", "sub/gen_x.py", "sub/ok.py", "gen_top.py"])
    (tree / ".gitignore").write_text("gen_*.py\n")
    (tree / "sub" / ".gitignore").write_text("!gen_keep.py\n")
    assert found(tree) == ["sub/gen_keep.py", "sub/ok.py"]
    assert linted(".") == ["sub/gen_keep.py", "sub/ok.py"]


def test_parent_gitignore_applies_when_linting_a_subdirectory(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tree / ".git").mkdir()
    write(tree, ["pkg/ok.py", "pkg/gen/a.py", "pkg/sub/gen/b.py"])
    (tree / ".gitignore").write_text("gen/\n")
    assert found(tree, "pkg") == ["pkg/ok.py"]
    monkeypatch.chdir(tree / "pkg" / "sub")
    assert linted(".") == []
    monkeypatch.chdir(tree / "pkg")
    assert linted(".") == ["ok.py"]


def test_anchored_gitignore_pattern(tree: Path) -> None:
    (tree / ".git").mkdir()
    write(tree, ["out/a.py", "pkg/out/b.py"])
    (tree / ".gitignore").write_text("/out/\n")
    assert found(tree) == ["pkg/out/b.py"]


def test_git_info_exclude_is_respected(tree: Path) -> None:
    (tree / ".git" / "info").mkdir(parents=True)
    (tree / ".git" / "info" / "exclude").write_text("scratch*.py\n")
    write(tree, ["scratch1.py", "real.py"])
    assert found(tree) == ["real.py"]


def test_respect_gitignore_false(tree: Path) -> None:
    (tree / ".git").mkdir()
    write(tree, ["keep.py", "ignored.py"])
    (tree / ".gitignore").write_text("ignored.py\n")
    assert found(tree) == ["keep.py"]
    assert found(tree, respect_gitignore=False) == ["ignored.py", "keep.py"]
    (tree / "sync-lint.toml").write_text("respect-gitignore = false\n")
    assert linted(".") == ["ignored.py", "keep.py"]


GENERATED_HEADER = (
    "#                \U0001f6a8\U0001f6a8\U0001f6a8\n"
    "#           This file was automatically generated from src/pkg/models/gemma/modular_gemma.py.\n"
    "#               Do NOT edit this file manually as any edits will be overwritten.\n"
)


def test_a_directory_walk_leaves_out_templates_of_generated_files(tree: Path) -> None:
    models = tree / "models"
    write(tree, ["models/modular_gemma.py", "models/modular_llama.py", "models/other.py"])
    write(tree, ["models/modeling_gemma.py"], GENERATED_HEADER + GPU_SRC)
    # Named in code, not in the leading comments, or a template in another folder: not a template.
    write(tree, ["models/notes.py"], '"""Docs."""\n# generated from modular_llama.py\n' + GPU_SRC)
    write(tree, ["elsewhere/modeling_x.py"], GENERATED_HEADER.replace("modular_gemma", "modular_other") + GPU_SRC)
    everything = ["elsewhere/modeling_x.py", "models/modeling_gemma.py", "models/modular_gemma.py",
                  "models/modular_llama.py", "models/notes.py", "models/other.py"]
    assert found(tree) == [p for p in everything if p != "models/modular_gemma.py"]
    result = discover([str(models)], Settings(root=tree))
    assert [Path(p).name for p in result.templates] == ["modular_gemma.py"]
    assert found(tree, lint_templates=True) == everything
    (tree / "sync-lint.toml").write_text("lint-templates = true\n")
    assert "models/modular_gemma.py" in linted(".")


def test_a_template_named_on_the_command_line_is_linted(tree: Path) -> None:
    write(tree, ["models/modular_gemma.py"])
    write(tree, ["models/modeling_gemma.py"], GENERATED_HEADER + GPU_SRC)
    assert linted(".") == ["models/modeling_gemma.py"]
    assert linted("models/modular_gemma.py", ".") == ["models/modeling_gemma.py", "models/modular_gemma.py"]
    assert linted(".", "models/modular_gemma.py") == ["models/modeling_gemma.py", "models/modular_gemma.py"]


# ==========================================================================================
# A file named explicitly is always linted
# ==========================================================================================


def test_explicit_files_are_linted_even_when_excluded_or_ignored(tree: Path) -> None:
    (tree / ".git").mkdir()
    write(tree, ["build/b.py", ".venv/v.py", "gen/g.py", "ignored.py", "custom/c.py"])
    (tree / ".gitignore").write_text("gen/\nignored.py\n")
    (tree / "sync-lint.toml").write_text('extend-exclude = ["custom"]\n')
    assert linted(".") == []
    explicit = ["build/b.py", ".venv/v.py", "gen/g.py", "ignored.py", "custom/c.py"]
    assert linted(*explicit) == sorted(explicit)


# ==========================================================================================
# stdin
# ==========================================================================================


def test_stdin_uses_stdin_filename_in_output(tree: Path) -> None:
    result = invoke("check", "--select", "SL101", "--output-format", "concise", "--stdin-filename", "src/piped.py", "-",
                    input=GPU_SRC)
    assert result.exit_code == 1
    assert "src/piped.py:2:5: SL101" in result.stdout
    as_json = invoke("check", "--select", "SL101", "--output-format", "json", "--stdin-filename", "src/piped.py", "-",
                     input=GPU_SRC)
    (entry,) = json.loads(as_json.stdout)
    assert Path(entry["filename"]).name == "piped.py" and (entry["location"]["row"], entry["code"]) == (2, "SL101")


def test_stdin_and_files_together(tree: Path) -> None:
    write(tree, ["a.py"])
    result = invoke("check", "--select", "SL101", "--output-format", "concise", "--jobs", "1",
                    "--stdin-filename", "piped.py", "-", "a.py", input=GPU_SRC)
    assert result.exit_code == 1
    assert "piped.py:2:5: SL101" in result.stdout and "a.py:2:5: SL101" in result.stdout


def test_stdin_name_gets_per_file_ignores(tree: Path) -> None:
    (tree / "sync-lint.toml").write_text('per-file-ignores = {"tests/**" = ["SL101"]}\n')
    quiet = invoke("check", "--select", "SL101", "--stdin-filename", "tests/t.py", "-", input=GPU_SRC)
    assert quiet.exit_code == 0, quiet.output
    loud = invoke("check", "--select", "SL101", "--stdin-filename", "src/t.py", "-", input=GPU_SRC)
    assert loud.exit_code == 1


def test_explicit_directory_matching_a_default_exclude_is_linted(tmp_path, monkeypatch):
    from sync_lint.config import Settings
    from sync_lint.discovery import discover

    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "gen.py").write_text("x = 1\n")
    (tmp_path / "build" / "__pycache__").mkdir()
    (tmp_path / "build" / "__pycache__" / "c.py").write_text("x = 1\n")
    monkeypatch.chdir(tmp_path)
    settings = Settings(root=tmp_path)
    assert discover(["build"], settings).files == [str(Path("build") / "gen.py")]
    assert discover(["."], settings).files == []


def test_joined_exclude_patterns_match_as_pathspec_does() -> None:
    # Without negations the patterns are joined into one regex; with one, pathspec decides in order.
    import pathspec

    from sync_lint.config import DEFAULT_EXCLUDE
    from sync_lint.discovery import _matcher

    names = ["a.py", "build", "build/", "x/build/", "x/build/y.py", "src/.git/", "env", "envy.py",
             "foo.egg-info/", "x/foo.egg-info/", "tests/", "a/tests/", "b.gen.py", "top.py", "sub/top.py",
             "docs/a/b/x.py", "axb.py", "m/__pycache__/z.py", "buildx/", "_build/", "keep.py", "k/keep.py"]
    for patterns in ([*DEFAULT_EXCLUDE], [*DEFAULT_EXCLUDE, "tests/", "*.gen.py", "/top.py", "docs/**/x.py", "a?b.py"],
                     ["# a comment", "", "build"], ["*.py", "!keep.py"], []):
        spec = pathspec.GitIgnoreSpec.from_lines(patterns)
        matcher = _matcher(patterns)
        assert [matcher(n) for n in names] == [spec.match_file(n) for n in names], patterns


@pytest.mark.parametrize("pattern", [*DEFAULT_EXCLUDE, "*.py", "foo?bar", "a-b", "x.y*z", "~tmp+1"])
def test_plain_name_patterns_match_as_pathspec_would(pattern: str) -> None:
    """Name patterns (all the default excludes) are matched without importing pathspec, by the regex
    pathspec itself builds for them, and so with the same answers."""
    import pathspec

    from sync_lint.discovery import _PLAIN_NAME, _matcher, _plain_name_regex

    assert _PLAIN_NAME.fullmatch(pattern)
    theirs = pathspec.GitIgnoreSpec.from_lines([pattern])
    assert _plain_name_regex(pattern) == theirs.patterns[0].regex.pattern.replace("(?:(?P<ps_d>/)|$)", "(?:/|$)")
    ours = _matcher([pattern])
    for path in ["build", "src/build", "src/build/x.py", "builder.py", "a/b.egg-info/c", "foo-bar", "fooxbar",
                 "x.yabcz", "a-b/c", "pkg/mod.py", "~tmp+1", ".git/config", "deep/.venv/lib/x.py", "venvs/x"]:
        assert ours(path) == theirs.match_file(path), (pattern, path)
