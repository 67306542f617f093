"""Configuration: `[tool.sync-lint]` in pyproject.toml, or a `sync-lint.toml`.

Every key is declared once in `OPTIONS` with its type and default; loading
validates against that table, so an unknown key or a bad value is an error that
names the key (the CLI exits 2). Command-line flags override the file.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from sync_lint.analysis.conventions import CPU_NAMES_DEFAULT, GPU_NAMES_DEFAULT, DeviceSettings, path_matches
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
    Option("force-exclude", "bool", "Apply `exclude` and `extend-exclude` to files named on the command line too "
           "(what pre-commit passes); `--force-exclude` on the command line."),
    Option("respect-gitignore", "bool", "Skip files matched by .gitignore files."),
    Option("lint-templates", "bool", "Check template files in a directory walk: a file that another file in its "
           "folder says it was generated from (transformers' `modular_*.py`). Off: their code is checked in the "
           "generated file, which is what runs; a template named on the command line is always checked."),
    Option("allowed-sync-contexts", "str-list", "Context managers whose `with` blocks are intentional syncs."),
    Option("strict", "bool", "Also report values that look like tensors of unknown device."),
    Option("target-torch-version", "str", "Torch version to lint for. Default: the torch the project pins "
           "(`torch==X.Y[.Z]` or `~=` in `pyproject.toml`'s dependencies, else in `requirements*.txt` at its "
           "root), else 2.11, the newest the measurements cover; never the installed torch, so every "
           "environment gets the same findings."),
    Option("cpu-name-patterns", "str-list", "Regexes: names matching them hold CPU tensors."),
    Option("gpu-name-patterns", "str-list", "Regexes: names matching them hold GPU tensors."),
    Option("gpu-attributes", "str-list", "Attribute names known to hold GPU tensors (e.g. `seq_lens`)."),
    Option("cpu-attributes", "str-list", "Attribute names known to hold CPU tensors."),
    Option("sync-prone-attributes", "str-map", "Attribute name -> hint, for SL501."),
    Option("sync-prone-calls", "str-map", "Qualified call (`pkg.mod.Class.method`, `pkg.mod.function`) -> hint, "
           "for SL502 (besides its built-in FlashInfer table)."),
    Option("cpu-side-bases", "str-list", "Base classes, by name, of classes whose code runs on the CPU unless a "
           "device is passed (data processors: feature extractors, image processors, tokenizers). In their "
           "methods (and in the module-level functions of a module defining such a class and no model), a tensor "
           "taken for a GPU tensor only by convention is not reported."),
    Option("cpu-modules", "str-list", "Regexes on a file's path within its project (`/`-separated): modules "
           "written for the CPU platform (a CPU attention backend, `ops/cpu/`), whose tensors are on the CPU "
           "whatever the shared types they read say elsewhere; their findings are reported only with `--strict`. "
           "The default matches a module or package named `cpu`, `cpu_*`, `*_cpu` or `*_cpu_*`, unless the path "
           "mentions offload, gpu, cuda, connector, transfer or swap (code that moves data between host and "
           "device)."),
    Option("other-platform-modules", "str-list", "Regexes on a file's path within its project (`/`-separated): "
           "modules written for an accelerator other than CUDA (Ascend NPU and MindSpore, Intel XPU, Apple MLX and "
           "MPS, Habana HPU, Moore Threads MUSA, TPU, Cambricon MLU, MetaX MACA, DeepLink's dlinfer), whose waits "
           "are that accelerator's, which this linter has not measured; their findings are reported only with "
           "`--strict`. The default matches a module or package named `npu`, `ascend`, `mindspore`, `xpu`, `mlx`, "
           "`mps`, `hpu`, `musa`, `tpu`, `mlu`, `camb`, `maca` or `dlinfer` (alone, or before or after an "
           "underscore), unless the path mentions cuda or gpu."),
    Option("cpu-functions", "str-list", "Names of functions written for the CPU platform: the `forward_cpu` that a "
           "platform-dispatched operator (vLLM's `CustomOp`, SGLang's `MultiPlatformOp`) runs on a CPU machine, "
           "whose tensors are on the CPU whatever the shared types it reads say elsewhere. Findings in their "
           "bodies (and in functions nested in them) are reported only with `--strict`, and their calls are "
           "calls made off CUDA: no SL601 chain starts there, and a function only they call is reported "
           "only with `--strict`."),
    Option("report-unreferenced", "bool", "Report findings whose GPU is only a naming convention in a module-level "
           "function that no code that runs mentions: its module is imported, but nothing in the project calls "
           "the function, refers to it or names it in a string, except other such functions. Off (the default): "
           "they are reported only with `--strict`. Turn it on for a library whose users call functions that its "
           "own code and tests never name."),
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
    Option("hot-paths", "str-list", "Hot-path roots, `pkg.mod:Class.method` or `pkg.mod:function`: functions that run "
           "per step, batch or request (see docs/hot-paths.md)."),
    Option("hot-path-defaults", "str-list", "Built-in hot-path roots to use: `module-forward` (`forward` of "
           "`torch.nn.Module` subclasses), `compiled` (`torch.compile`d or graphed functions), `cuda-graph` "
           "(calls captured in `with torch.cuda.graph(...)`); `[]` switches them off."),
)
_OPTION_BY_KEY = {o.key: o for o in OPTIONS}

DEFAULT_EXCLUDE = (
    ".git", ".hg", ".svn", ".bzr", ".venv", "venv", ".env", "env", "build", "dist", "__pycache__",
    "node_modules", ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".sync-lint-cache", ".eggs",
    "*.egg-info", "site-packages", "_build", "buck-out", ".ipynb_checkpoints",
)
# transformers' data-processing bases (also what vLLM's own processors derive from): their tensors
# come from NumPy or PIL on the CPU, and move to a GPU only when the caller passes `device=`.
# The names are matched along project bases and, for a library base, by the name a file spells
# (vLLM's processors derive from `SequenceFeatureExtractor`, `BaseImageProcessor`, ...).
CPU_SIDE_BASES_DEFAULT = ("FeatureExtractionMixin", "SequenceFeatureExtractor", "ImageProcessingMixin",
                          "BaseImageProcessor", "BaseImageProcessorFast", "TorchvisionBackend", "PilBackend",
                          "ProcessorMixin", "BaseVideoProcessor", "PreTrainedTokenizerBase",
                          "PreTrainedTokenizer", "PreTrainedTokenizerFast")
# A module or package named for the CPU is a CPU backend (vLLM's `cpu_attn.py`, `mla/prefill/cpu_sdpa.py`,
# `mamba/ops/cpu/`, SGLang's `cpu_graph_runner.py`): the platform picks it only when there is no GPU.
# Paths that also name the other side are the code that moves data between them (`kv_offload/cpu/`,
# `ec_connector/cpu/`, `simple_cpu_offload_connector.py`), where the syncs are real.
CPU_MODULES_DEFAULT = (r"^(?!.*(offload|gpu|cuda|connector|transfer|swap)).*(^|/)([^/]*_)?cpu(_[^/]*)?(/|\.py$)",)
# The same for other accelerators' backends (SGLang's `hardware_backend/npu/`, `xpu_backend.py`,
# `hardware_backend/mlx/`; vLLM's `xpu_worker.py`, `punica_xpu.py`; LMDeploy's `backends/dlinfer/camb/` and
# `maca/`, DeepLink's engine for Cambricon MLU and MetaX MACA chips): a CUDA deployment never runs them.
OTHER_PLATFORM_MODULES_DEFAULT = (
    r"^(?!.*(cuda|gpu)).*(^|/)([^/]*_)?(npu|ascend|mindspore|xpu|mlx|mps|hpu|musa|tpu|mlu|camb|maca|dlinfer)"
    r"(_[^/]*)?(/|\.py$)",)
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
    force_exclude: bool = False
    respect_gitignore: bool = True
    lint_templates: bool = False
    allowed_sync_contexts: tuple[str, ...] = ("gpu_sync_allowed",)
    strict: bool = False
    target_torch_version: str | None = None
    cpu_name_patterns: tuple[str, ...] = CPU_NAMES_DEFAULT
    gpu_name_patterns: tuple[str, ...] = GPU_NAMES_DEFAULT
    gpu_attributes: tuple[str, ...] = ()
    cpu_attributes: tuple[str, ...] = ()
    sync_prone_attributes: tuple[tuple[str, str], ...] = tuple(DEFAULT_SYNC_PRONE.items())
    sync_prone_calls: tuple[tuple[str, str], ...] = ()
    cpu_side_bases: tuple[str, ...] = CPU_SIDE_BASES_DEFAULT
    cpu_modules: tuple[str, ...] = CPU_MODULES_DEFAULT
    other_platform_modules: tuple[str, ...] = OTHER_PLATFORM_MODULES_DEFAULT
    cpu_functions: tuple[str, ...] = ("forward_cpu",)
    report_unreferenced: bool = False
    nonzero_static_size: str | None = None
    one_hot_num_classes: str | None = None
    output_format: str = "full"
    jobs: int | None = None
    project_roots: tuple[str, ...] = ()
    extend_project: tuple[str, ...] = ()
    convention_share: float = 0.8
    convention_sites: int = 3
    hot_paths: tuple[str, ...] = ()
    hot_path_defaults: tuple[str, ...] = ("module-forward", "compiled", "cuda-graph")
    # Where the configuration came from; relative patterns are anchored here.
    root: Path = field(default_factory=Path.cwd)
    config_path: Path | None = None
    # Where `target-torch-version` came from (shown by `--show-settings`).
    target_torch_source: str = "default"

    def device_settings(self) -> DeviceSettings:
        return DeviceSettings(
            cpu_name_patterns=self.cpu_name_patterns,
            gpu_name_patterns=self.gpu_name_patterns,
            gpu_attributes=frozenset(self.gpu_attributes),
            cpu_attributes=frozenset(self.cpu_attributes),
            cpu_functions=self.cpu_functions,
            off_cuda_modules=(*self.cpu_modules, *self.other_platform_modules),
        )

    def override(self, **changes: Any) -> "Settings":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def cpu_module(self, path: str) -> bool:
        """Whether the file at `path` (within its project, `/`-separated) is CPU-platform code (`cpu-modules`)."""
        return path_matches(path, self.cpu_modules)

    def other_platform_module(self, path: str) -> bool:
        """Whether the file at `path` (within its project, `/`-separated) is written for an accelerator other
        than CUDA (`other-platform-modules`)."""
        return path_matches(path, self.other_platform_modules)

    def off_cuda_module(self, path: str) -> bool:
        """Whether the file at `path` (within its project, `/`-separated) is written for another platform
        than CUDA (`cpu-modules`, `other-platform-modules`): checked only with `--strict`."""
        return self.cpu_module(path) or self.other_platform_module(path)


def within_project(path: str, root: str | os.PathLike[str]) -> str:
    """`path` within `root`, `/`-separated; only the file's name when it lies outside (the folders above
    a project say nothing of its code), as `cpu-modules` and `other-platform-modules` read it."""
    relative = os.path.relpath(os.path.abspath(path), root)
    if relative.startswith(os.pardir):
        relative = os.path.basename(path)
    return relative.replace(os.sep, "/")


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
        if key.endswith("name-patterns") or key in ("cpu-modules", "other-platform-modules"):
            for pattern in value:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ConfigError(f"{where}: `{key}` has an invalid regex {pattern!r}: {exc}") from None
        if key.endswith("exclude"):
            _check_globs(key, value, where)
        if key == "hot-path-defaults":
            unknown = [v for v in value if v not in ("module-forward", "compiled", "cuda-graph")]
            if unknown:
                raise ConfigError(f"{where}: `{key}` has an unknown kind {unknown[0]!r} (known: module-forward, "
                                  "compiled, cuda-graph)")
        if key == "hot-paths":
            for spec in value:
                if not re.fullmatch(r"[\w.]+(:[\w.]+)?", spec.strip()):
                    raise ConfigError(f"{where}: `{key}` entry {spec!r} is not `pkg.module:Qualname`")
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
    if "target_torch_version" in values:
        values["target_torch_source"] = where
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


def parse_override(text: str) -> dict[str, Any]:
    """A `--config KEY=VALUE` override (`strict = true`, `select = ["SL1"]`) as a one-key table."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config {text!r}: not a file, nor a valid `KEY = VALUE` TOML override: {exc}") from None
    if len(table) != 1:
        raise ConfigError(f"--config {text!r}: an override sets exactly one key")
    key, value = next(iter(table.items()))
    _validate(key, value, f"--config {text!r}")
    return table


def apply_overrides(settings: Settings, tables: list[dict[str, Any]]) -> Settings:
    """`settings` with `--config KEY=VALUE` overrides on top (validated like the file's keys)."""
    changes: dict[str, Any] = {}
    for table in tables:
        for key, value in table.items():
            where = f"--config {key}"
            converted = _validate(key, value, where)
            if key == "output-format" and converted not in OUTPUT_FORMATS:
                raise ConfigError(f"{where}: `output-format` must be one of {', '.join(OUTPUT_FORMATS)}")
            if key == "sync-prone-attributes":
                converted = tuple({**dict(settings.sync_prone_attributes), **dict(converted)}.items())
            changes[_field_name(key)] = converted
            if key == "target-torch-version":
                changes["target_torch_source"] = where
    return replace(settings, **changes)


_PIN = re.compile(r"^\s*torch\s*(?:\[[^\]]*\])?\s*(==|===|~=)\s*([0-9]+\.[0-9]+(?:\.[0-9]+)?)")


def declared_torch_version(root: Path) -> tuple[str, str] | None:
    """(version, where) of the torch a project pins: `torch==X.Y[.Z]` (or `~=`) in its
    pyproject.toml dependencies (and optional dependencies), else in requirements*.txt at its root."""
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            data = {}
        project = data.get("project") if isinstance(data.get("project"), dict) else {}
        requirements = list(project.get("dependencies") or [])
        for extra in (project.get("optional-dependencies") or {}).values():
            requirements.extend(extra if isinstance(extra, list) else [])
        for requirement in requirements:
            match = _PIN.match(str(requirement)) if isinstance(requirement, str) else None
            if match:
                return match.group(2), f"{pyproject} (dependency `{requirement.strip()}`)"
    for candidate in sorted(root.glob("requirements*.txt")):
        try:
            lines = candidate.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            match = _PIN.match(line.split("#", 1)[0])
            if match:
                return match.group(2), f"{candidate} (`{line.strip()}`)"
    return None


# The newest torch release the ground-truth measurements cover; the default target
# when torch is not installed.
NEWEST_MEASURED_TORCH = "2.11"


def installed_torch_version() -> str | None:
    """The installed torch's version, read from package metadata (torch is never imported)."""
    from importlib import metadata

    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


def project_torch_target(settings: Settings) -> Settings:
    """The target torch when no configuration names one: the project's pinned torch, else the newest measured.

    Never the installed torch: a developer's venv and the pre-commit hook's environment must agree.
    """
    declared = declared_torch_version(settings.root)
    if declared is None and settings.config_path is None:
        from sync_lint.project.roots import ROOT_MARKERS

        here = Path.cwd().resolve()
        for folder in (here, *here.parents):
            if any((folder / marker).exists() for marker in ROOT_MARKERS):
                declared = declared_torch_version(folder)
                break
    if declared is not None:
        return settings.override(target_torch_version=declared[0], target_torch_source=declared[1])
    return settings.override(target_torch_version=NEWEST_MEASURED_TORCH,
                             target_torch_source="the default: the newest torch the measurements cover")
