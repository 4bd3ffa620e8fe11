#!/usr/bin/env bash
# Regenerates the screenshots of the README with `chaoyang-desktop view --screenshot`.
#
#   docs/screenshots/make-screenshots.sh MODEL_DIR [DATA_DIR]
#
# MODEL_DIR: a model folder (config.json + weights). The published screenshots used a tiny
# random-weight ViT made with tests/model_factory.py (seed 6), so their classes are arbitrary.
# DATA_DIR: the shared test data (default ../shared/data). Settings and caches go to a temporary
# folder, so your own settings and results cache are neither used nor changed. PNGs are reduced
# to 256 colours to keep each under ~400 KB.
set -euo pipefail
cd "$(dirname "$0")/../.."
model=${1:?usage: $0 MODEL_DIR [DATA_DIR]}
data=${2:-../shared/data}
out=docs/screenshots
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export CHAOYANG_DATA_DIR="$tmp/data" XDG_CONFIG_HOME="$tmp/config" QT_QPA_PLATFORM=offscreen
view() { python3 -m chaoyang_desktop view "$@" --model "$model" --device cpu --size 1400x900; }

view "$data/slides/CMU-1-Small-Region.svs" --analyze --tile-um 128 --screenshot "$out/slide-heatmap.png"
view "$data/patches" --analyze --screenshot "$out/patch-gallery.png"
view "$data/slides" --screenshot "$out/slide-list.png"

python3 - "$out"/*.png <<'PY'
import sys
from PIL import Image
for path in sys.argv[1:]:
    Image.open(path).convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(path, optimize=True)
PY
ls -l "$out"/*.png
