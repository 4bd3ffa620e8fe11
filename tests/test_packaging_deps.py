"""Every third-party module the app imports is a runtime dependency, not only a dev one."""

from __future__ import annotations

import ast
import re
import sys
import tomllib

from tests.conftest import REPO_ROOT

# Import name -> distribution name, where they differ.
DISTRIBUTIONS = {"PIL": "pillow", "cv2": "opencv-python-headless", "PySide6": "pyside6-essentials",
                 "huggingface_hub": "huggingface-hub", "openslide": "openslide-python", "yaml": "pyyaml"}
# Imported only where a feature that needs an extra runs (and the import is guarded there).
OPTIONAL = {"ray", "psutil", "onnx", "onnxruntime", "onnxscript", "openvino", "transformers", "pytest"}


def _top_level_imports() -> set[str]:
    names: set[str] = set()
    for path in (REPO_ROOT / "chaoyang_desktop").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_every_imported_package_is_a_runtime_dependency() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    declared = {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}
    stdlib = set(sys.stdlib_module_names)
    third_party = {n for n in _top_level_imports() if n not in stdlib and n != "chaoyang_desktop"} - OPTIONAL
    missing = sorted(n for n in third_party if DISTRIBUTIONS.get(n, n).lower().replace("_", "-") not in
                     {d.replace("_", "-") for d in declared})
    assert missing == [], f"imported by the app but not in [project] dependencies: {missing}"
