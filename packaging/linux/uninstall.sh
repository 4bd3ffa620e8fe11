#!/usr/bin/env bash
# Remove what install.sh added for the current user (the app itself is not touched).
set -euo pipefail
data="${XDG_DATA_HOME:-$HOME/.local/share}"
rm -f "$data/applications/chaoyang-desktop.desktop" "$data/mime/packages/chaoyang-desktop.xml"
for n in 16 24 32 48 64 128 256 512; do rm -f "$data/icons/hicolor/${n}x${n}/apps/chaoyang-desktop.png"; done
command -v update-mime-database >/dev/null && update-mime-database "$data/mime" || true
command -v update-desktop-database >/dev/null && update-desktop-database "$data/applications" || true
echo "Removed Chaoyang Desktop's desktop entry, icons and file types for ${USER:-$(id -un)}."
