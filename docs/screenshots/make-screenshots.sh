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

python3 - "$out"/*.png <<'PY'
import sys
from PIL import Image
for path in sys.argv[1:]:
    Image.open(path).convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(path, optimize=True)
PY
ls -l "$out"/*.png
