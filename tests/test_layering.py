"""The Qt-free layers stay Qt-free: importing them never loads PySide6."""

from __future__ import annotations

import subprocess
import sys


def test_core_and_export_do_not_import_qt() -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        "import chaoyang_desktop.core as c, chaoyang_desktop.export as e\n"
        "for pkg in (c, e):\n"
        "    for m in pkgutil.iter_modules(pkg.__path__):\n"
        "        importlib.import_module(pkg.__name__ + '.' + m.name)\n"
        "import chaoyang_desktop.cli\n"
        "assert not any(k.startswith('PySide6') for k in sys.modules), 'PySide6 imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
