"""The house rules of `helpers/`, checked by parsing the source (about 1 s):

* one total layer order (below): a module imports only modules of its own layer or of layers before it, inside
  functions too, and no two modules import each other, directly or round a loop;
* every module is under `MAX_LINES` lines;
* every module docs/architecture.md names exists, and every module exists in docs/architecture.md.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HELPERS = ROOT / "helpers"
MAX_LINES = 400

# The layers, lowest first: the pipeline's order. A module belongs to the first entry its name starts with.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("helpers.errors", "helpers.config", "helpers.stages", "helpers.artifacts", "helpers.dgl_import",
     "helpers.runtime", "helpers.presets"),
    ("helpers.data",),
    ("helpers.graph",),
    ("helpers.ranking",),
    ("helpers.evaluation",),
    ("helpers.training",),
    ("helpers.sequence",),
    ("helpers.stores",),
    ("helpers.engine",),
    ("helpers.picker", "helpers.serving"),
    ("helpers.plots", "helpers.notebook"),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(HELPERS.rglob("*.py")) if p != HELPERS / "__init__.py"}


def layer_of(module: str) -> int:
    for index, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in tests/test_layout.py")


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Every helpers module `path` imports, at the top or inside functions (`from helpers.data import sample`
    counts as helpers.data.sample)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("helpers"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("helpers") and not node.level:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in known else node.module)
    return {m for m in found if m != "helpers"}


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    known = set(modules)
    return {name: imports_of(path, known) - {name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import loop in `graph` (module -> modules it imports), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (loop := visit(nxt)):
                return loop
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (loop := visit(start)):
            return loop
    return None


def test_the_cycle_finder_finds_a_loop_through_three_modules() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycles() -> None:
    loop = find_cycle(import_graph())
    assert loop is None, "import loop: " + " -> ".join(loop or [])


def test_imports_follow_the_layer_order() -> None:
    wrong = [f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
             for module, targets in import_graph().items() for target in sorted(targets)
             if layer_of(target) > layer_of(module)]
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_every_module_is_in_a_layer_and_importable_by_name() -> None:
    for module in all_modules():
        layer_of(module)


@pytest.mark.parametrize("module", sorted(all_modules()))
def test_module_is_short(module: str) -> None:
    lines = len(all_modules()[module].read_text().splitlines())
    assert lines < MAX_LINES, f"{module} has {lines} lines: split it by job (the limit is {MAX_LINES})"


def documented_modules() -> set[str]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    return set(re.findall(r"`(helpers(?:\.\w+)+)`", text))


def test_architecture_doc_names_only_modules_that_exist() -> None:
    modules = set(all_modules())
    missing = sorted(m for m in documented_modules() if m not in modules and m.rsplit(".", 1)[0] not in modules)
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"


def test_architecture_doc_names_every_module() -> None:
    undocumented = sorted(set(all_modules()) - documented_modules() - {"helpers"})
    assert not undocumented, f"docs/architecture.md's module map leaves out {undocumented}"
