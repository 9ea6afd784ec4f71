"""The ground every bench module stands on: this checkout's s3lb (and ``tests``) on
``sys.path`` here and in every subprocess, and the constants of the machine."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
# The s3lb of this checkout, here and in every subprocess (ahead of an editable install
# of another checkout).
sys.path.insert(0, str(REPO))
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
)

PYTHON = sys.executable
CORES = os.cpu_count() or 1
CLK_TCK = os.sysconf("SC_CLK_TCK")

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def load_by_path(name: str, path: Path) -> ModuleType:
    """Import a module from a file (``tests/opensearch_node.py``)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
