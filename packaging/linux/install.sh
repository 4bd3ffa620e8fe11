#!/usr/bin/env bash
# Install Chaoyang Desktop's desktop entry, icons and slide file types for the current user.
#
#   packaging/linux/install.sh [--exec /path/to/chaoyang-desktop]
#
# --exec: the program the desktop entry runs (default: `chaoyang-desktop` found on PATH, or the
# bundle's executable when this script runs from an unpacked bundle). Undo with uninstall.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# Resources sit at ../../resources in a checkout and at ../resources inside a bundle.
res="$here/../../resources"; [ -d "$res/icons" ] || res="$here/../resources"
[ -d "$res/icons" ] || { echo "error: resources folder not found next to $0" >&2; exit 1; }
exec_path=""
while [ $# -gt 0 ]; do
  case "$1" in
    --exec) exec_path="$2"; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$exec_path" ]; then
  if [ -x "$here/../chaoyang-desktop" ]; then exec_path="$(cd "$here/.." && pwd)/chaoyang-desktop"
  elif command -v chaoyang-desktop >/dev/null 2>&1; then exec_path="$(command -v chaoyang-desktop)"
  else echo "error: chaoyang-desktop is not on PATH; give it with --exec /path/to/chaoyang-desktop" >&2; exit 1
  fi
fi
data="${XDG_DATA_HOME:-$HOME/.local/share}"
mkdir -p "$data/applications" "$data/mime/packages"
for n in 16 24 32 48 64 128 256 512; do
  mkdir -p "$data/icons/hicolor/${n}x${n}/apps"
  cp "$res/icons/chaoyang-desktop-$n.png" "$data/icons/hicolor/${n}x${n}/apps/chaoyang-desktop.png"
done
# The desktop entry runs the chosen executable; quote it for paths with spaces.
sed -e "s|^Exec=.*|Exec=\"$exec_path\" %F|" -e "s|^TryExec=.*|TryExec=$exec_path|" \
  "$res/linux/chaoyang-desktop.desktop" > "$data/applications/chaoyang-desktop.desktop"
cp "$res/linux/chaoyang-desktop-mime.xml" "$data/mime/packages/chaoyang-desktop.xml"
command -v update-mime-database >/dev/null && update-mime-database "$data/mime" || true
command -v update-desktop-database >/dev/null && update-desktop-database "$data/applications" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$data/icons/hicolor" || true
if command -v xdg-mime >/dev/null; then
  for t in image/x-aperio-svs image/x-hamamatsu-ndpi image/x-mirax-mrxs image/x-leica-scn image/x-ventana-bif \
           image/x-hamamatsu-vms image/x-hamamatsu-vmu image/x-sakura-svslide; do
    xdg-mime default chaoyang-desktop.desktop "$t" || true
  done
fi
echo "Installed Chaoyang Desktop for ${USER:-$(id -un)}: $data/applications/chaoyang-desktop.desktop -> $exec_path"
