"""One root error class: every exception class the project defines inherits from `RecsysError` (< 5 s)."""
from __future__ import annotations

import importlib
import inspect
import pkgutil

import helpers
from helpers.errors import RecsysError


def project_error_classes() -> list[type]:
    found = []
    for info in pkgutil.walk_packages(helpers.__path__, "helpers."):
        module = importlib.import_module(info.name)
        found += [c for _, c in inspect.getmembers(module, inspect.isclass)
                  if issubclass(c, BaseException) and c.__module__ == module.__name__]
    return found


def test_every_project_error_is_a_recsys_error():
    classes = project_error_classes()
    assert len(classes) >= 16
    assert [c.__qualname__ for c in classes if not issubclass(c, RecsysError)] == []


def test_the_standard_bases_are_kept():
    from helpers.data.movielens import DatasetError, DatasetFileError
    from helpers.engine.inputs import RecommendError
    from helpers.stores.build import StoresOutOfStepError

    assert issubclass(DatasetError, ValueError) and issubclass(DatasetFileError, FileNotFoundError)
    assert issubclass(RecommendError, ValueError) and issubclass(StoresOutOfStepError, RuntimeError)
