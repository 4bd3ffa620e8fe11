"""Screenshots of tile quality control and the Uncertainty overlay (docs/quality-control.md).

    python3 docs/screenshots/make-quality-shots.py

CMU-1-Small-Region analysed with 64 um tiles by a tiny random-weight model (seed 6, classes
arbitrary): the teal marking dye on its edges is left out by quality control. Settings, caches and
the model live in a temporary folder. Writes quality-control.jpg and uncertainty.jpg here.
"""
import os, sys, time, tempfile
from pathlib import Path
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
tmp = Path(tempfile.mkdtemp())
for var, sub in (("CHAOYANG_DATA_DIR", "data"), ("XDG_CONFIG_HOME", "config"), ("XDG_CACHE_HOME", "cache")):
    os.environ[var] = str(tmp / sub)
sys.path.insert(0, str(REPO))
from tests.model_factory import write_checkpoint, TINY_CONFIG
model, _ = write_checkpoint(tmp / "m", TINY_CONFIG, seed=6)
from PySide6.QtCore import QSettings
from chaoyang_desktop.app import make_application
from chaoyang_desktop.gui.main_window import MainWindow
from chaoyang_desktop.gui.settings import AppSettings
from chaoyang_desktop.core.analysis.results import TILE_QC
app = make_application()
settings = AppSettings(QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat))
settings.set("engine/device", "cpu")
settings.set("ui/confirm_analysis", False)
window = MainWindow(settings, model=str(model), analysis_overrides={"tile_um": 64.0})
window.resize(1400, 900)
window.show()
def spin(until, timeout=120.0):
    end = time.monotonic() + timeout
    while not until() and time.monotonic() < end:
        app.processEvents(); time.sleep(0.01)
window.open_paths([str(REPO / "tests/data/slides/CMU-1-Small-Region.svs")])
spin(window.slide_view.is_idle)
done = []
window.analysis_finished.connect(done.append)
window.run_analysis(fresh=True)
spin(lambda: bool(done))
spin(window.slide_view.is_idle, 5)
r = window.result
qc = [i for i in range(r.n_tiles) if r.status[i] == TILE_QC]
x, y, w, h = r.rects()[qc[0]]
window.slide_view.cursor_moved.emit(float(x + w / 2), float(y + h / 2))
window.inspection.inspect_at(float(x + w / 2), float(y + h / 2))
spin(lambda: False, 1.5)
window.grab().save(str(OUT / "quality-control.jpg"), quality=82)
style = window.overlay_panel.style.replace(mode="uncertainty")
window.overlay_panel.set_style(style)
i = next(i for i in range(r.n_tiles) if r.status[i] == 1)
x, y, w, h = r.rects()[i]
window.slide_view.cursor_moved.emit(float(x + w / 2), float(y + h / 2))
spin(lambda: False, 1.0)
window.grab().save(str(OUT / "uncertainty.jpg"), quality=82)
print("summary:", window.summary_panel.quality.text(), "|", window.summary_panel.quality.toolTip())
print("status:", window.cursor_label.text())
window.close()
