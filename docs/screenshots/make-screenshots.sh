#!/usr/bin/env bash
# Regenerates the screenshots of the README with `chaoyang-desktop view --screenshot`.
#
#   docs/screenshots/make-screenshots.sh MODEL_DIR [DATA_DIR]
#
# MODEL_DIR: a model folder (config.json + weights). The published screenshots used a tiny
# random-weight ViT made with tests/model_factory.py (seed 6), so their classes are arbitrary.
# DATA_DIR: the real test data (default tests/data). Settings and caches go to a temporary
# folder, so your own settings and results cache are neither used nor changed. PNGs are reduced
# to 256 colours to keep each under ~400 KB.
set -euo pipefail
cd "$(dirname "$0")/../.."
model=${1:?usage: $0 MODEL_DIR [DATA_DIR]}
data=${2:-tests/data}
out=docs/screenshots
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export CHAOYANG_DATA_DIR="$tmp/data" XDG_CONFIG_HOME="$tmp/config" QT_QPA_PLATFORM=offscreen
view() { python3 -m chaoyang_desktop view "$@" --model "$model" --device cpu --size 1400x900; }

view "$data/slides/CMU-1-Small-Region.svs" --analyze --tile-um 128 --screenshot "$out/slide-heatmap.png"
view "$data/patches" --analyze --screenshot "$out/patch-gallery.png"
view "$data/slides" --screenshot "$out/slide-list.png"

# Analysis > Evaluate Labelled Folder on a few real patches (crc9 NORM and kather2016 MUCOSA as
# Normal, TUM and TUMOR as Adenocarcinoma, COMPLEX as Serrated: only to fill the table).
python3 - "$model" "$data" "$tmp" "$out/evaluation-view.png" <<'PY'
import shutil, sys, time
from pathlib import Path
model, data, tmp, png = sys.argv[1], Path(sys.argv[2]) / "patches", Path(sys.argv[3]), sys.argv[4]
labelled = tmp / "labelled"
for cls, srcs in (("Normal", ["crc9/NORM", "kather2016/06_MUCOSA"]), ("Adenocarcinoma", ["crc9/TUM", "kather2016/01_TUMOR"]),
                  ("Serrated", ["kather2016/03_COMPLEX"])):
    (labelled / cls).mkdir(parents=True)
    for src in srcs:
        for f in (data / src).iterdir():
            shutil.copy(f, labelled / cls / f.name)
from PySide6.QtCore import QSettings
from chaoyang_desktop.app import make_application
from chaoyang_desktop.gui.main_window import MainWindow
from chaoyang_desktop.gui.settings import AppSettings
app = make_application()
settings = AppSettings(QSettings(str(tmp / "eval-settings.ini"), QSettings.Format.IniFormat))
settings.set("engine/device", "cpu")
window = MainWindow(settings, model=model)
ended = []
window.evaluator.evaluation_finished.connect(ended.append)
window.evaluator.start(str(labelled))
deadline = time.monotonic() + 300
while not ended and time.monotonic() < deadline:
    app.processEvents()
    time.sleep(0.01)
assert ended == ["done"], ended
window.evaluator.view.grab().save(png)
window.close()
PY

# Annotations: three classified shapes on the analysed sample, one selected, the Annotations tab up.
python3 - "$model" "$data" "$tmp" "$out/annotations.png" <<'PY'
import sys, time
from pathlib import Path
import numpy as np
model, data, tmp, png = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
from PySide6.QtCore import QSettings
from chaoyang_desktop.app import make_application
from chaoyang_desktop.core.slide.annotations import PathClass
from chaoyang_desktop.gui.main_window import MainWindow
from chaoyang_desktop.gui.settings import AppSettings
app = make_application()
settings = AppSettings(QSettings(str(tmp / "ann-settings.ini"), QSettings.Format.IniFormat))
settings.set("engine/device", "cpu")
settings.set("ui/confirm_analysis", False)
window = MainWindow(settings, model=model, analysis_overrides={"tile_um": 128.0})
window.resize(1400, 900)
window.show()
def spin(until, timeout=120.0):
    end = time.monotonic() + timeout
    while not until() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)
assert window.open_paths([str(data / "slides" / "CMU-1-Small-Region.svs")])
spin(window.slide_view.is_idle)
ended = []
window.analysis_finished.connect(ended.append)
window.run_analysis(fresh=True)
spin(lambda: ended)
ctl, s = window.annotation_ctl, window.session
ctl.draw("ellipse", [[450, 700], [1150, 1350]])
ctl.draw("polygon", [[1250, 900], [1900, 1000], [1800, 1750], [1300, 1600]])
ctl.draw("rectangle", [[500, 1900], [1400, 2500]])
for ann, (name, cls) in zip(s.annotation_list(), (("Crypts", PathClass("Normal", (76, 175, 80))),
                                                   ("Front", PathClass("Tumor", (200, 0, 0))),
                                                   ("Stroma band", PathClass("Stroma", (150, 200, 150))))):
    s.edit(lambda h, ann=ann, name=name, cls=cls: h.replace(ann.renamed(name).classified(cls), "Set"))
ctl.select([s.annotation_list()[1].uid])
window.annotations_dock.raise_()
spin(window.slide_view.is_idle)
for _ in range(30):
    app.processEvents()
    time.sleep(0.02)
window.grab().save(png)
window.close()
PY

# The cohort window half-way through Analyze All: four crops of the sample (written as pyramidal
# TIFFs with the tests' writer), the fluorescence scan (refused) and a broken file (failed).
python3 - "$model" "$data" "$tmp" "$out/cohort-window.png" <<'PY'
import shutil, sys, time
from pathlib import Path
import numpy as np
from PIL import Image
model, data, tmp, png = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
from tests.synthetic import write_pyramid_tiff
folder = tmp / "cohort"
folder.mkdir()
rgb = np.asarray(Image.open(data / "images" / "CMU-1-Small-Region_full.jpg").convert("RGB"))
for name, x, y, w, h in (("S21-0412-A1.tiff", 0, 0, 2220, 1500), ("S21-0412-B3.tiff", 0, 1400, 2220, 1567),
                         ("S21-0577-A2.tiff", 600, 500, 1600, 1800), ("S22-0103-C1.tiff", 0, 900, 1200, 1400)):
    write_pyramid_tiff(folder / name, np.ascontiguousarray(rgb[y:y + h, x:x + w]), mpp=0.499, levels=3)
shutil.copy(data / "slides" / "Hamamatsu-test3-DAPI-2-387.ndpi", folder / "S22-0200-DAPI.ndpi")
(folder / "S22-0311-X.svs").write_bytes(b"truncated upload " * 200)
from PySide6.QtCore import QSettings
from chaoyang_desktop.app import make_application
from chaoyang_desktop.core.analysis.cohort import SLIDE_RUNNING
from chaoyang_desktop.gui.main_window import MainWindow
from chaoyang_desktop.gui.settings import AppSettings
app = make_application()
settings = AppSettings(QSettings(str(tmp / "cohort-settings.ini"), QSettings.Format.IniFormat))
settings.set("engine/device", "cpu")
settings.set("engine/batch_size", 2)  # small steps, so the grab finds a slide half done
settings.set("analysis/tile_um", 128.0)
settings.set("analysis/stride_um", 64.0)
window = MainWindow(settings, model=model)
window.show()
def spin(until, timeout=300.0):
    end = time.monotonic() + timeout
    while not until() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.005)
    assert until(), "timed out"
assert window.open_paths([str(folder)])
cohort, runner = window.cohort_window, window.cohort
cohort.resize(1200, 330)
spin(window.slide_view.is_idle)
cohort.analyze_all()
spin(lambda: runner.model.finished() >= 3 and any(r.status == SLIDE_RUNNING and r.fraction >= 0.5
                                                   for r in runner.model.rows))
cohort.grab().save(png)
runner.cancel()
window.close()
PY

python3 - "$out"/*.png <<'PY'
import sys
from PIL import Image
for path in sys.argv[1:]:
    Image.open(path).convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(path, optimize=True)
PY
ls -l "$out"/*.png
