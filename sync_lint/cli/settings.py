"""`check --show-settings`: the settings a run would use, and where they came from."""

from __future__ import annotations

from dataclasses import fields

from sync_lint.api import Plan
from sync_lint.config import Settings


def render_settings(plan: Plan) -> str:
    settings = plan.settings
    default = Settings(root=settings.root)
    config = str(settings.config_path) if settings.config_path else "none (defaults)"
    lines = [
        f"Configuration file: {config}",
        f"Project root (relative patterns): {settings.root}",
        f"Target torch: {settings.target_torch_version} (from {settings.target_torch_source})",
        "Project index: " + ("off (--isolated)" if plan.project is None else
                             f"on (cache: {plan.project.cache_dir or '.sync-lint-cache/ at each project root'}"
                             f"{', temporary' if plan.project.temporary else ''})"),
        f"Enabled rules ({len(plan.rules)}): {', '.join(r.code for r in plan.rules)}",
        "",
        "Settings:",
    ]
    for item in fields(Settings):
        if item.name in ("root", "config_path", "target_torch_source"):
            continue
        value = getattr(settings, item.name)
        marker = "" if value == getattr(default, item.name) else "   (set)"
        lines.append(f"  {item.name.replace('_', '-')} = {_show(value)}{marker}")
    return "\n".join(lines) + "\n"


def _show(value: object) -> str:
    if isinstance(value, tuple) and value and all(isinstance(v, tuple) and len(v) == 2 for v in value):
        return "{" + ", ".join(f"{k!r}: {_show(v)}" for k, v in value) + "}"
    if isinstance(value, tuple):
        return "[" + ", ".join(repr(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "(unset)"
    return repr(value) if isinstance(value, str) else str(value)
