"""The house's limits, checked on every run: no module over 350 lines, no class over 150, no
function over 60, every importable module under the one package name, and imports that only
flow down the layers `docs/architecture.md` draws."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
# The repository's folders and the package each becomes (pyproject.toml's package-dir).
PACKAGES = {
    "pipelines": "kore_sessions",
    "sources/kore_sessions": "kore_sessions.source",
    "sandbox": "kore_sessions.sandbox",
    "sql": "kore_sessions.sql",
}
MAX_MODULE_LINES = 350
MAX_CLASS_LINES = 150
MAX_FUNCTION_LINES = 60
# Each layer, and the layers it may import (the source's own layers: api below the source's
# top modules, below each resource's package, below the source's wiring).
LAYERS: dict[str, set[str]] = {
    "source.api": set(),
    "source.top": {"source.api"},
    "source.sessions": {"source.api", "source.top"},
    "source.messages": {"source.api", "source.top"},
    "source": {"source.api", "source.top", "source.sessions", "source.messages"},
    "output": {"source"},
    "warehouse": {"output", "source", "source.sessions", "source.messages", "source.api", "source.top"},
    "report": {"warehouse", "output"},
    "runtime": {
        "warehouse", "output", "source", "source.api", "source.top", "source.sessions", "source.messages",
    },
    "orchestration": {
        "runtime", "warehouse", "output", "source", "source.api", "source.top", "source.messages",
    },
    "cli": {
        "orchestration", "runtime", "report", "warehouse", "output", "sandbox",
        "source", "source.api", "source.top", "source.sessions", "source.messages",
    },
    "sandbox": set(),
}


def modules() -> list[tuple[str, Path]]:
    """(module name, file) of every Python file the package installs."""
    found = []
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            name = ".".join([package, *parts]).removesuffix(".__init__")
            found.append((name, path))
    return found


def layer(module: str) -> str:
    """The layer of a module of the package."""
    parts = module.split(".")
    if len(parts) == 1:
        return "root"
    if parts[1] == "source" and len(parts) > 2:
        return f"source.{parts[2]}" if parts[2] in ("api", "sessions", "messages") else "source.top"
    return parts[1]


def test_no_module_class_or_function_over_its_limit() -> None:
    too_long = []
    for name, path in modules():
        source = path.read_text(encoding="utf-8")
        lines = len(source.splitlines())
        if lines > MAX_MODULE_LINES:
            too_long.append(f"module {name}: {lines} lines")
        for node in ast.walk(ast.parse(source)):
            span = (node.end_lineno or node.lineno) - node.lineno + 1 if hasattr(node, "lineno") else 0
            if isinstance(node, ast.ClassDef) and span > MAX_CLASS_LINES:
                too_long.append(f"class {name}.{node.name}: {span} lines")
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and span > MAX_FUNCTION_LINES:
                too_long.append(f"function {name}.{node.name}: {span} lines")
    assert not too_long, "\n".join(too_long)


def test_imports_flow_down_the_layers() -> None:
    upward = []
    for name, path in modules():
        here = layer(name)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kore_sessions."):
                there = layer(node.module)
                if there != here and there not in LAYERS.get(here, set()):
                    upward.append(f"{name} ({here}) imports {node.module} ({there})")
            elif isinstance(node, ast.ImportFrom) and node.level:
                upward.append(f"{name}: relative import (write the package's name)")
            elif isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                generic = [n for n in names if n.split(".")[0] in ("pipelines", "sources", "sandbox")]
                assert not generic, f"{name} imports {generic}: the installed package is kore_sessions"
    assert not upward, "\n".join(upward)


def test_no_two_modules_of_the_pipeline_or_the_source_share_a_name() -> None:
    seen: dict[str, str] = {}
    shared = []
    for name, path in modules():
        if name.startswith(("kore_sessions.sandbox", "kore_sessions.sql")) or path.stem.startswith("__"):
            continue
        if path.stem in seen:
            shared.append(f"{seen[path.stem]} and {name}")
        seen[path.stem] = name
    assert not shared, "\n".join(shared)
