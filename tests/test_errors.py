"""One root error class: every exception class the project defines inherits from `RecsysError`, keeps its
standard base, and is what `helpers/` raises (no bare built-in errors, every one with a message); broad
`except Exception` catches only clean up and re-raise, or are the few listed here with their reason (< 5 s)."""
from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import pkgutil
from pathlib import Path

import helpers
from helpers.errors import RecsysError

HELPERS = Path(helpers.__file__).resolve().parent
BUILTIN_ERRORS = {name for name, value in vars(builtins).items()
                  if isinstance(value, type) and issubclass(value, BaseException)}
# (module path under helpers/, function): why a built-in error is raised there
BUILTIN_RAISES_ALLOWED: dict[tuple[str, str], str] = {}
# (module path under helpers/, function): why it catches every Exception without re-raising
BROAD_CATCHES_ALLOWED = {
    ("picker.py", "search"): "a project error is shown; anything else is shown by type and logged (`_failed`)",
    ("picker.py", "add"): "as search",
    ("picker.py", "recommend"): "as search",
    ("training/loop.py", "_load_state"): "torch.load of a damaged file raises almost anything; it starts afresh",
}


def project_error_classes() -> list[type]:
    found = []
    for info in pkgutil.walk_packages(helpers.__path__, "helpers."):
        module = importlib.import_module(info.name)
        found += [c for _, c in inspect.getmembers(module, inspect.isclass)
                  if issubclass(c, BaseException) and c.__module__ == module.__name__]
    return found


def functions_and_nodes(node_type: type) -> list[tuple[str, str, ast.AST]]:
    """(module path under helpers/, enclosing function, node) for every `node_type` node in helpers/."""
    found = []

    def visit(node: ast.AST, path: str, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            if isinstance(child, node_type):
                found.append((path, function, child))
            visit(child, path, name)

    for file in sorted(HELPERS.rglob("*.py")):
        visit(ast.parse(file.read_text()), file.relative_to(HELPERS).as_posix(), "<module>")
    return found


def raised_name(node: ast.Raise) -> str | None:
    target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
    return target.id if isinstance(target, ast.Name) else None


def test_every_project_error_is_a_recsys_error():
    classes = project_error_classes()
    assert len(classes) >= 16
    assert [c.__qualname__ for c in classes if not issubclass(c, RecsysError)] == []


def test_the_standard_bases_are_kept():
    from helpers.config import ConfigError, UnknownSettingError
    from helpers.data.movielens import DatasetError, DatasetFileError
    from helpers.engine.inputs import RecommendError
    from helpers.plots import PlotError
    from helpers.stores.build import StoresOutOfStepError
    from helpers.training.embeddings import EmbeddingsError
    from helpers.training.loop import TrainingError
    from helpers.training.sampling import SamplingError

    assert issubclass(DatasetError, ValueError) and issubclass(DatasetFileError, FileNotFoundError)
    assert issubclass(RecommendError, ValueError) and issubclass(StoresOutOfStepError, RuntimeError)
    assert all(issubclass(c, ValueError) for c in (SamplingError, EmbeddingsError, PlotError))
    assert issubclass(TrainingError, RuntimeError)
    assert issubclass(UnknownSettingError, ConfigError) and issubclass(UnknownSettingError, TypeError)


def test_every_store_fault_is_a_store_error_that_names_its_store():
    from helpers.stores.build import StoresOutOfStepError
    from helpers.stores.errors import StoreError
    from helpers.stores.milvus_client import VectorStoreError
    from helpers.stores.sql import CatalogError

    assert issubclass(StoreError, RecsysError) and issubclass(StoreError, RuntimeError)
    stores = {cls: cls.store for cls in (VectorStoreError, CatalogError, StoresOutOfStepError)}
    assert all(issubclass(cls, StoreError) for cls in stores)
    assert stores == {VectorStoreError: "milvus", CatalogError: "catalog", StoresOutOfStepError: "stores"}


def test_helpers_raise_no_bare_builtin_error():
    """A built-in error says nothing of what to do and escapes `except RecsysError`: raise the module's own."""
    bare = [f"helpers/{path}:{node.lineno} ({function}) raises {raised_name(node)}"
            for path, function, node in functions_and_nodes(ast.Raise)
            if raised_name(node) in BUILTIN_ERRORS
            and (path, function) not in BUILTIN_RAISES_ALLOWED]
    assert bare == [], "\n".join(bare)


def test_every_project_error_raised_carries_a_message():
    names = {c.__name__ for c in project_error_classes()}
    silent = []
    for path, function, node in functions_and_nodes(ast.Raise):
        if raised_name(node) not in names:
            continue
        args = node.exc.args if isinstance(node.exc, ast.Call) else []
        first = args[0] if args else None
        if first is None or (isinstance(first, ast.Constant) and not str(first.value).strip()):
            silent.append(f"helpers/{path}:{node.lineno} ({function}) raises {raised_name(node)} without a message")
    assert silent == [], "\n".join(silent)


def test_broad_catches_clean_up_and_reraise_or_are_listed():
    def catches_everything(handler: ast.ExceptHandler) -> bool:
        kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        return any(isinstance(k, ast.Name) and k.id in ("Exception", "BaseException") for k in kinds) \
            or handler.type is None

    found = {(path, function): node for path, function, node in functions_and_nodes(ast.ExceptHandler)
             if catches_everything(node)}
    hiding = [f"helpers/{path}:{node.lineno} ({function})" for (path, function), node in found.items()
              if not isinstance(node.body[-1], ast.Raise) and (path, function) not in BROAD_CATCHES_ALLOWED]
    assert hiding == [], "broad catches that neither re-raise nor are listed:\n" + "\n".join(hiding)
    stale = sorted(set(BROAD_CATCHES_ALLOWED) - set(found))
    assert stale == [], f"listed broad catches that are gone: {stale}"
