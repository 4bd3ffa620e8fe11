"""No Qt object is left for Python's cyclic collector, so none can be freed off the GUI thread.

Python collects reference cycles on whichever thread allocates when a threshold is crossed. A
Qt object in such a cycle can then be destroyed on a worker thread, and Qt crashes. The probe
runs the app's main paths (open, analyse, export, annotate and analyse a region, evaluate,
patches, switch slides, close) with ``gc.DEBUG_SAVEALL``, so every object the collector finds is
kept for inspection instead of freed, and asserts that none of them wraps a Qt object. It runs
in a process of its own, so the collector's state of the test session is not touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

PROBE = r'''
import gc, json, sys, time, weakref
gc.collect()
gc.set_debug(gc.DEBUG_SAVEALL)  # from here on, what the collector finds is kept, not freed
from PySide6.QtCore import QEvent, QSettings
from PySide6.QtWidgets import QApplication
import shiboken6

model, slide, other, patches, labelled, out, slides = sys.argv[1:8]
app = QApplication([])
from chaoyang_desktop.gui.analysis_worker import EXPORT_CSV, EXPORT_REPORT
from chaoyang_desktop.gui.main_window import MainWindow
from chaoyang_desktop.gui.settings import AppSettings


def spin(until, timeout=60.0):
    end = time.time() + timeout
    while not until():
        if time.time() > end:
            raise SystemExit("probe: timed out")
        app.processEvents()
        time.sleep(0.005)


windows = []
for cycle in range(2):
    settings = AppSettings(QSettings(out + f"/settings{cycle}.ini", QSettings.Format.IniFormat))
    settings.set("ui/confirm_analysis", False)
    settings.set("engine/device", "cpu")
    w = MainWindow(settings, model=model)
    w.show()
    done = []
    w.analysis_finished.connect(done.append)
    assert w.open_paths([slide])
    spin(w.slide_view.is_idle)
    w.run_analysis(fresh=True)
    spin(lambda: done)
    exported = []
    w.exporter.export_finished.connect(lambda *a: exported.append(a))
    for kind, name in ((EXPORT_CSV, "tiles.csv"), (EXPORT_REPORT, "report.pdf")):
        w.exporter.export(kind, out + f"/{cycle}-{name}")
        spin(lambda: len(exported) == (1 if kind == EXPORT_CSV else 2))
    # Annotations: drawn, selected, edited, undone; a region of them analysed.
    w.annotation_ctl.draw("rectangle", [[600, 900], [1500, 1900]])
    w.annotation_ctl.draw("polygon", [[300, 300], [900, 320], [600, 800]])
    w.annotation_ctl.delete_selected()
    w.annotation_ctl.undo()
    w.annotation_ctl.select([a.uid for a in w.session.annotation_list()])
    done.clear()
    w.analyze(confirm=False)
    spin(lambda: done)
    evaluated = []
    w.evaluator.evaluation_finished.connect(evaluated.append)
    w.evaluator.start(labelled)
    spin(lambda: evaluated)
    # A folder of slides in the cohort window: all analysed in one run, a finished one opened from it.
    assert w.open_paths([slides])
    spin(w.slide_view.is_idle)
    cohort_ended = []
    w.cohort.finished.connect(lambda: cohort_ended.append(True))
    w.cohort_window.analyze_all()
    spin(lambda: cohort_ended, timeout=120.0)
    w.open_cohort_slide(w.cohort.model.rows[0].path)
    spin(lambda: w.result is not None and not w.host.is_busy())
    assert w.open_paths([other])  # another slide; a run, then a switch to the patch gallery
    spin(w.slide_view.is_idle)
    assert w.open_paths([patches], auto_classify=True)
    spin(lambda: w.gallery.is_complete())
    w.close()
    w.deleteLater()
    windows.append(weakref.ref(w))
    del w, settings
    # What the event loop does after a window closes (processEvents alone never deletes).
    app.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    app.processEvents()

gc.collect()
qt = [type(o).__name__ for o in gc.garbage if isinstance(o, shiboken6.Shiboken.Object)]
alive = sum(ref() is not None for ref in windows)  # kept by a cycle (saved above) or by a leak
print(json.dumps({"garbage": len(gc.garbage), "qt": qt, "windows_alive": alive}))
'''


def test_no_qt_object_is_left_in_a_reference_cycle(tiny_model: Path, test_data: Path, tmp_path: Path) -> None:
    labelled = tmp_path / "labelled"
    for cls, src in (("Normal", "NORM"), ("Adenocarcinoma", "TUM")):
        (labelled / cls).mkdir(parents=True)
        for f in sorted((test_data / "patches" / "crc9" / src).iterdir())[:2]:
            shutil.copy(f, labelled / cls / f.name)
    other = tmp_path / "other.tiff"
    shutil.copy(test_data / "slides" / "CMU-1-Small-Region_generic-pyramid.tiff", other)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "CHAOYANG_DATA_DIR": str(tmp_path / "data"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "HF_HUB_OFFLINE": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    args = [str(tiny_model), str(test_data / "slides" / "CMU-1-Small-Region.svs"), str(other),
            str(test_data / "patches" / "kather2016" / "01_TUMOR"), str(labelled), str(tmp_path),
            str(test_data / "slides")]
    out = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["garbage"] > 0  # the probe saw the collector work, so an empty list means something
    assert found["qt"] == [], f"Qt objects left in reference cycles: {found['qt']}"
    # Each closed window was freed when its last reference went, on the GUI thread: neither left
    # to the collector nor leaked (a leaked window would be collected some day, anywhere).
    assert found["windows_alive"] == 0
    assert (tmp_path / "1-report.pdf").is_file() and (tmp_path / "1-tiles.csv").is_file()
