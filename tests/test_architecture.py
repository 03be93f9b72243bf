"""The rooms keep to themselves: no import cycles, storage never imports the platforms,
and release states are read only by the release policy (and storage, which owns them)."""

from __future__ import annotations

import ast
from pathlib import Path

from storage.states import ReleaseState

REPO = Path(__file__).parents[1]
ROOMS = ("handlers", "platforms", "storage")


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for room in ROOMS:
        for path in (REPO / room).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imports(path: Path, name: str, known: dict[str, Path]) -> set[str]:
    """Every project module ``path`` imports, at any depth (TYPE_CHECKING included)."""
    out: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for target in targets:
            if target in known and target != name:
                out.add(target)
    return out


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {name: _imports(path, name, known) for name, path in known.items()}


def test_storage_does_not_import_the_platforms() -> None:
    for name, deps in _graph().items():
        if name.startswith("storage"):
            assert not [d for d in deps if d.startswith("platforms")], name


def test_no_import_cycles() -> None:
    """Between modules; a package's own __init__ re-exporting its modules is not a cycle."""
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if node.startswith(dep + ".") or dep.startswith(node + "."):
                continue  # a package and its own modules
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles


def test_release_states_are_read_only_by_the_policy() -> None:
    """Outside handlers/policy.py (and storage/), no code names a release state: it asks
    the policy what may happen and what a state is called."""
    members = {state.name for state in ReleaseState}  # a new state is covered too
    offenders = []
    for path in [*(REPO / "handlers").rglob("*.py"), REPO / "bot.py"]:
        if path.name == "policy.py":
            continue
        tree = ast.parse(path.read_text())
        aliases = {"ReleaseState"}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Name)
                and node.value.id == "ReleaseState"
            ):
                aliases |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr in members
            ):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno} {node.attr}")
    assert not offenders
