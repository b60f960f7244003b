"""The house keeps its shape: the code map lists exactly the packages there are, imports run down the
floors it draws (no cycle, and only the upward import docs/decisions.md gives a reason for), modules
and functions stay a readable size, and the lint rules pyproject.toml names pass."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "hebrew_lm"

# (importer, imported) pairs that run up a floor, each with its reason in docs/decisions.md
UPWARD = {("hebrew_lm.report.stage", "hebrew_lm.stages")}
# Longer than the limits below, each with its reason in docs/decisions.md ("The house after the decoder track")
LONG_FUNCTIONS = {"engine/loop.py:train"}
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 510, 85  # "about 500" and "about 80"


def floors() -> dict[str, int]:
    """{top-level name: floor} read off docs/code-map.md's drawing."""
    text = (REPO / "docs" / "code-map.md").read_text(encoding="utf-8")
    found, floor = {}, None
    for line in text.split("```")[1].splitlines():
        m = re.match(r"(?:floor (\d+))?\s+(\S+?)(?:\.py|/)\s", line + " ")
        if not m:
            continue
        floor = int(m.group(1)) if m.group(1) else floor
        found[m.group(2)] = floor
    return found


def modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Our modules that `name` imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("hebrew_lm"):
            found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("hebrew_lm.")}
    return {m for m in found if m in known and m != name}


def top(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_the_code_map_lists_every_package_and_nothing_that_is_gone():
    listed = set(floors())
    there = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    there |= {p.stem for p in SRC.glob("*.py")}
    assert listed == there, f"missing from docs/code-map.md: {sorted(there - listed)}; gone: {sorted(listed - there)}"


def test_imports_run_down_the_floors_with_no_cycle():
    known, level = modules(), floors()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    upward = {(a, b) for a, deps in graph.items() for b in deps
              if top(a) != top(b) and level[top(b)] > level[top(a)]}
    assert upward == UPWARD, f"imports running up a floor: {sorted(upward - UPWARD)}"
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:  # depth-first: a node met again on the trail is a cycle
        state[node] = 1
        for dep in sorted(graph[node]):
            assert state.get(dep) != 1, f"import cycle: {' -> '.join(trail[trail.index(dep):] + [dep])}"
            if dep not in state:
                visit(dep, trail + [dep])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_modules_and_functions_stay_a_readable_size():
    for path in SRC.rglob("*.py"):
        rel = str(path.relative_to(SRC))
        text = path.read_text(encoding="utf-8")
        assert text.count("\n") <= MAX_MODULE_LINES, f"{rel} has {text.count(chr(10))} lines"
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and f"{rel}:{node.name}" not in LONG_FUNCTIONS:
                lines = node.end_lineno - node.lineno + 1
                assert lines <= MAX_FUNCTION_LINES, f"{rel}:{node.name} has {lines} lines"


def test_the_lint_rules_pass():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "src", "tests", "bench", "scripts"], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]
