"""The layers stay apart: core knows no front end, export knows no GUI or CLI, and none of them loads Qt.

The import graph is checked by import-linter against the contracts in ``pyproject.toml``
(``[tool.importlinter]``), static and whole: also imports inside functions.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT


def _lint(config: Path) -> subprocess.CompletedProcess[str]:
    code = ("import sys\nfrom importlinter.cli import lint_imports\n"
            f"sys.exit(lint_imports(config_filename={str(config)!r}, no_cache=True, no_logo=True))\n")
    return subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=240)


def test_import_contracts_are_kept() -> None:
    out = _lint(REPO_ROOT / "pyproject.toml")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "6 kept, 0 broken" in out.stdout


def test_a_broken_contract_is_reported(tmp_path: Path) -> None:
    # The same linter on a contract the code breaks (gui imports core): it must say so.
    config = tmp_path / "contracts.toml"
    config.write_text(
        '[tool.importlinter]\nroot_package = "chaoyang_desktop"\n\n'
        '[[tool.importlinter.contracts]]\nname = "gui without core"\ntype = "forbidden"\n'
        'source_modules = ["chaoyang_desktop.gui"]\nforbidden_modules = ["chaoyang_desktop.core"]\n')
    out = _lint(config)
    assert out.returncode != 0 and "BROKEN" in out.stdout.upper()


def test_core_and_export_do_not_import_qt() -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        "import chaoyang_desktop.core as c, chaoyang_desktop.export as e\n"
        "for pkg in (c, e):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(m.name)\n"
        "import chaoyang_desktop.cli\n"
        "assert not any(k.startswith('PySide6') for k in sys.modules), 'PySide6 imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_ray_loads_only_for_a_cluster_run() -> None:
    # Ray is an optional extra: the app, the CLI and a cohort's events must work without loading it.
    code = (
        "import sys\n"
        "import chaoyang_desktop.cli, chaoyang_desktop.commands.analyze\n"
        "import chaoyang_desktop.core.analysis.cohort, chaoyang_desktop.core.analysis.run\n"
        "import chaoyang_desktop.core.cluster.events, chaoyang_desktop.core.cluster.availability\n"
        "import chaoyang_desktop.gui.main_window\n"
        "assert 'ray' not in sys.modules, 'ray imported'\n"
        "import chaoyang_desktop.core.cluster.ray_cohort\n"
        "assert 'ray' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
