"""Configuration: `[tool.sync-lint]` in pyproject.toml, or a `sync-lint.toml`.

Every key is declared once in `OPTIONS` with its type and default; loading
validates against that table, so an unknown key or a bad value is an error that
names the key (the CLI exits 2). Command-line flags override the file.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from sync_lint.analysis.conventions import CPU_NAMES_DEFAULT, GPU_NAMES_DEFAULT, DeviceSettings
from sync_lint.formats import OUTPUT_FORMATS

CONFIG_FILENAMES = ("sync-lint.toml", ".sync-lint.toml")


class ConfigError(Exception):
    """A configuration problem; the message names the file and key."""


@dataclass(frozen=True)
class Option:
    key: str  # the TOML key, kebab-case
    kind: str  # "str-list" | "str" | "bool" | "int" | "float" | "glob-map" | "str-map"
    help: str


OPTIONS: tuple[Option, ...] = (
    Option("select", "str-list", "Rule codes or prefixes to enable (`SL1`, `SL101`, `ALL`)."),
    Option("extend-select", "str-list", "Codes or prefixes to enable on top of `select`."),
    Option("ignore", "str-list", "Codes or prefixes to disable."),
    Option("per-file-ignores", "glob-map", "Glob -> codes ignored in matching files."),
    Option("exclude", "str-list", "Gitignore-style patterns replacing the default excludes."),
    Option("extend-exclude", "str-list", "Gitignore-style patterns excluded on top of `exclude`."),
    Option("respect-gitignore", "bool", "Skip files matched by .gitignore files."),
    Option("allowed-sync-contexts", "str-list", "Context managers whose `with` blocks are intentional syncs."),
    Option("strict", "bool", "Also report values that look like tensors of unknown device."),
    Option("target-torch-version", "str", "Torch version to lint for (default: installed, else newest known)."),
    Option("cpu-name-patterns", "str-list", "Regexes: names matching them hold CPU tensors."),
    Option("gpu-name-patterns", "str-list", "Regexes: names matching them hold GPU tensors."),
    Option("gpu-attributes", "str-list", "Attribute names known to hold GPU tensors (e.g. `seq_lens`)."),
    Option("cpu-attributes", "str-list", "Attribute names known to hold CPU tensors."),
    Option("sync-prone-attributes", "str-map", "Attribute name -> hint, for SL501."),
    Option("sync-prone-calls", "str-map", "Qualified call (`pkg.mod.Class.method`, `pkg.mod.function`) -> hint, "
           "for SL502 (besides its built-in FlashInfer table)."),
    Option("nonzero-static-size", "str", "Expression used as `size=` when rewriting nonzero (SL201 fix)."),
    Option("one-hot-num-classes", "str", "Expression used as `num_classes=` in F.one_hot (SL206 fix)."),
    Option("output-format", "str", "Default output format."),
    Option("jobs", "int", "Worker processes (default: all cores)."),
    Option("project-roots", "str-list", "Project roots (relative to the config file); a file belongs to the deepest "
           "one holding it. Default: the nearest folder with pyproject.toml, setup.py, setup.cfg or .git."),
    Option("extend-project", "str-list", "Folders outside the project whose code the project index also reads "
           "(a sibling package, vendored code)."),
    Option("convention-share", "float", "Share of sites that must agree before a convention learned from the "
           "repository counts (an attribute stored from GPU tensors at 80% of its sites, ...)."),
    Option("convention-sites", "int", "Fewest sites a learned convention needs."),
)
_OPTION_BY_KEY = {o.key: o for o in OPTIONS}

DEFAULT_EXCLUDE = (
    ".git", ".hg", ".svn", ".bzr", ".venv", "venv", ".env", "env", "build", "dist", "__pycache__",
    "node_modules", ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".eggs",
    "*.egg-info", "site-packages", "_build", "buck-out", ".ipynb_checkpoints",
)
DEFAULT_SYNC_PRONE = {
    "num_computed_tokens_cpu": (
        "vLLM's deprecated `num_computed_tokens_cpu` is computed from `seq_lens` (a device-to-host "
        "copy) on first use; derive it on the device as `seq_lens - (query_start_loc[1:] - "
        "query_start_loc[:-1])`, or from `seq_lens_cpu_upper_bound` and `query_start_loc_cpu`."
    ),
}


@dataclass(frozen=True)
class Settings:
    select: tuple[str, ...] = ("ALL",)
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    extend_exclude: tuple[str, ...] = ()
    respect_gitignore: bool = True
    allowed_sync_contexts: tuple[str, ...] = ("gpu_sync_allowed",)
    strict: bool = False
    target_torch_version: str | None = None
    cpu_name_patterns: tuple[str, ...] = CPU_NAMES_DEFAULT
    gpu_name_patterns: tuple[str, ...] = GPU_NAMES_DEFAULT
    gpu_attributes: tuple[str, ...] = ()
    cpu_attributes: tuple[str, ...] = ()
    sync_prone_attributes: tuple[tuple[str, str], ...] = tuple(DEFAULT_SYNC_PRONE.items())
    sync_prone_calls: tuple[tuple[str, str], ...] = ()
    nonzero_static_size: str | None = None
    one_hot_num_classes: str | None = None
    output_format: str = "full"
    jobs: int | None = None
    project_roots: tuple[str, ...] = ()
    extend_project: tuple[str, ...] = ()
    convention_share: float = 0.8
    convention_sites: int = 3
    # Where the configuration came from; relative patterns are anchored here.
    root: Path = field(default_factory=Path.cwd)
    config_path: Path | None = None

    def device_settings(self) -> DeviceSettings:
        return DeviceSettings(
            cpu_name_patterns=self.cpu_name_patterns,
            gpu_name_patterns=self.gpu_name_patterns,
            gpu_attributes=frozenset(self.gpu_attributes),
            cpu_attributes=frozenset(self.cpu_attributes),
        )

    def override(self, **changes: Any) -> "Settings":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _field_name(key: str) -> str:
    return key.replace("-", "_")


def _validate(key: str, value: Any, where: str) -> Any:
    option = _OPTION_BY_KEY.get(key)
    if option is None:
        known = ", ".join(sorted(_OPTION_BY_KEY))
        raise ConfigError(f"{where}: unknown key `{key}` (known keys: {known})")
    kind = option.kind
    bad = f"{where}: `{key}` must be "
    if kind == "str-list":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(bad + "a list of strings")
        if key.endswith("name-patterns"):
            for pattern in value:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ConfigError(f"{where}: `{key}` has an invalid regex {pattern!r}: {exc}") from None
        if key.endswith("exclude"):
            _check_globs(key, value, where)
        return tuple(value)
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(bad + "a string")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(bad + "true or false")
        return value
    if kind == "int":
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(bad + "a positive integer")
        return value
    if kind == "float":
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value <= 1:
            raise ConfigError(bad + "a number in (0, 1]")
        return float(value)
    if kind == "glob-map":
        if not isinstance(value, dict) or not all(
            isinstance(v, list) and all(isinstance(c, str) for c in v) for v in value.values()
        ):
            raise ConfigError(bad + "a table of glob = [codes]")
        _check_globs(key, value, where)
        return tuple((glob, tuple(codes)) for glob, codes in value.items())
    if kind == "str-map":
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ConfigError(bad + "a table of name = \"hint\"")
        return tuple(value.items())
    raise AssertionError(kind)  # every kind in OPTIONS is handled above


def _check_globs(key: str, patterns: Any, where: str) -> None:
    """Gitignore-style patterns must compile: a bad one is a config error, not a crash mid-run."""
    import pathspec

    for pattern in patterns:
        try:
            pathspec.GitIgnoreSpec.from_lines([pattern])
        except Exception as exc:  # pathspec raises re.error, ValueError, TypeError...
            raise ConfigError(f"{where}: `{key}` has an invalid pattern {pattern!r}: {exc}") from None


def settings_from_table(table: dict[str, Any], where: str, root: Path, path: Path | None) -> Settings:
    values: dict[str, Any] = {}
    for key, value in table.items():
        values[_field_name(key)] = _validate(key, value, where)
    if "sync_prone_attributes" in values:
        # User entries add to the built-in ones rather than silently dropping them.
        merged = dict(DEFAULT_SYNC_PRONE)
        merged.update(dict(values["sync_prone_attributes"]))
        values["sync_prone_attributes"] = tuple(merged.items())
    if "output_format" in values:
        if values["output_format"] not in OUTPUT_FORMATS:
            raise ConfigError(f"{where}: `output-format` must be one of {', '.join(OUTPUT_FORMATS)}")
    known = {f.name for f in fields(Settings)}
    assert set(values) <= known
    return Settings(**values, root=root, config_path=path)


def load_config_file(path: Path) -> Settings:
    """Load one file: a sync-lint.toml (top-level keys) or pyproject.toml ([tool.sync-lint])."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    if path.name == "pyproject.toml":
        tool = data.get("tool", {})
        table = tool.get("sync-lint", {}) if isinstance(tool, dict) else {}
        where = f"{path} [tool.sync-lint]"
    else:
        table = data
        where = str(path)
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    return settings_from_table(table, where, path.parent.resolve(), path.resolve())


def find_config(start: Path) -> Path | None:
    """Walk up from `start` to the first sync-lint.toml or pyproject.toml with our table."""
    start = start.resolve()
    directory = start if start.is_dir() else start.parent
    for candidate_dir in (directory, *directory.parents):
        for name in CONFIG_FILENAMES:
            candidate = candidate_dir / name
            if candidate.is_file():
                return candidate
        pyproject = candidate_dir / "pyproject.toml"
        if pyproject.is_file():
            try:
                text = pyproject.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            try:
                data = tomllib.loads(text)
            except tomllib.TOMLDecodeError as exc:
                if "sync-lint" in text:
                    # It (probably) holds our table: silently dropping the user's
                    # configuration would be worse than stopping.
                    raise ConfigError(f"{pyproject}: invalid TOML: {exc}") from None
                # A broken pyproject that is not ours is not our error; keep looking.
                continue
            tool = data.get("tool")
            if isinstance(tool, dict) and "sync-lint" in tool:
                return pyproject
    return None


def resolve_settings(paths: list[Path], config: Path | None) -> Settings:
    if config is not None:
        return load_config_file(config)
    anchor = _common_parent(paths) if paths else Path.cwd()
    found = find_config(anchor)
    if found is None:
        return Settings(root=Path.cwd().resolve())
    return load_config_file(found)


def _common_parent(paths: list[Path]) -> Path:
    resolved = [p.resolve() for p in paths]
    try:
        import os

        return Path(os.path.commonpath([str(p) for p in resolved]))
    except ValueError:
        return Path.cwd()


def installed_torch_version() -> str | None:
    """The installed torch's version, read from package metadata (torch is never imported)."""
    from importlib import metadata

    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None
