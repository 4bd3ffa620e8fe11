"""The export package stays importable without Qt or torch (headless servers, the CLI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_export_imports_neither_qt_nor_torch() -> None:
    code = (
        "import sys\n"
        "import chaoyang_desktop.export.bundle, chaoyang_desktop.export.csv_tiles\n"
        "import chaoyang_desktop.export.geojson_tiles, chaoyang_desktop.export.heatmap_image\n"
        "import chaoyang_desktop.core.analysis.result_files\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'torch', 'shiboken6'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)
