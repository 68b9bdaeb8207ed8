"""The one place the project imports DGL; every other module does `from helpers.dgl_import import dgl`.

DGL's newest PyPI wheel (2.1.0) was built for PyTorch <= 2.2.1. On newer PyTorch only its GraphBolt
sub-package fails to load (its compiled library for this PyTorch is missing), and `import dgl` imports
GraphBolt eagerly. We register an empty placeholder for `dgl.graphbolt` before the first `import dgl`;
everything this project uses (heterographs, `dgl.sampling`, `dgl.to_block`, `dgl.function`, data
loaders) does not need GraphBolt. `dgl.sparse` and GraphBolt itself are unavailable.
"""
from __future__ import annotations

import os
import sys
import types

os.environ.setdefault("DGLBACKEND", "pytorch")

if "dgl" not in sys.modules and "dgl.graphbolt" not in sys.modules:
    _placeholder = types.ModuleType("dgl.graphbolt")
    _placeholder.__doc__ = "Placeholder: GraphBolt is not available with this PyTorch (see helpers/dgl_import.py)."
    sys.modules["dgl.graphbolt"] = _placeholder

import dgl

__all__ = ["dgl"]
