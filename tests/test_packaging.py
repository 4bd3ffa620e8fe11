"""Desktop integration files are valid, and a built bundle (when present) starts and exits cleanly."""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DESKTOP = ROOT / "resources" / "linux" / "chaoyang-desktop.desktop"
SLIDE_EXTENSIONS = ("svs", "ndpi", "mrxs", "scn", "bif", "vms", "vmu", "svslide", "tif", "tiff")


# The keys a desktop entry of Type=Application must or may carry, and the categories we may use
# (freedesktop Desktop Entry Specification 1.5 and its Menu Specification's category list).
_REQUIRED_KEYS = {"Type", "Name", "Exec"}
_KNOWN_KEYS = _REQUIRED_KEYS | {"Version", "GenericName", "Comment", "TryExec", "Icon", "Terminal", "Categories",
                                "Keywords", "MimeType", "StartupNotify", "StartupWMClass", "NoDisplay", "Hidden"}
_MAIN_CATEGORIES = {"AudioVideo", "Audio", "Video", "Development", "Education", "Game", "Graphics", "Network",
                    "Office", "Science", "Settings", "System", "Utility"}
_ADDITIONAL_CATEGORIES = {"Viewer", "MedicalSoftware", "2DGraphics", "RasterGraphics", "Biology", "ImageProcessing"}


def _desktop_entry(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "[Desktop Entry]"
    entry = dict(line.split("=", 1) for line in lines[1:])
    assert len(entry) == len(lines) - 1, "a key appears twice"
    return entry


def test_desktop_entry_validates() -> None:
    entry = _desktop_entry(DESKTOP)
    assert _REQUIRED_KEYS <= set(entry) <= _KNOWN_KEYS, set(entry) ^ _KNOWN_KEYS
    assert entry["Type"] == "Application" and entry["Terminal"] in ("true", "false")
    assert entry["Exec"].endswith(" %F")  # files and folders, several at once
    for key in ("Categories", "Keywords", "MimeType"):
        assert entry[key].endswith(";"), f"{key} must end with a semicolon"
    categories = set(entry["Categories"].strip(";").split(";"))
    assert categories & _MAIN_CATEGORIES and categories <= _MAIN_CATEGORIES | _ADDITIONAL_CATEGORIES
    # Where freedesktop's own validator is installed, it has the last word.
    if shutil.which("desktop-file-validate"):
        out = subprocess.run(["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True)
        assert out.returncode == 0 and "error" not in out.stdout, out.stdout + out.stderr


def test_every_slide_type_is_associated_everywhere() -> None:
    import xml.etree.ElementTree as ET

    ns = {"m": "http://www.freedesktop.org/standards/shared-mime-info"}
    mime = ET.parse(ROOT / "resources" / "linux" / "chaoyang-desktop-mime.xml")
    globs = {g.get("pattern") for g in mime.iterfind(".//m:glob", ns)}
    desktop_types = next(line for line in DESKTOP.read_text().splitlines() if line.startswith("MimeType=")).split("=")[1]
    declared = {t.get("type") for t in mime.iterfind("m:mime-type", ns)}
    assert declared <= set(desktop_types.strip(";").split(";"))
    assert "image/tiff" in desktop_types  # .tif/.tiff use the system's type
    iss = (ROOT / "packaging" / "windows" / "chaoyang-desktop.iss").read_text()
    plist = plistlib.loads((ROOT / "packaging" / "macos" / "Info.plist").read_bytes())
    mac_exts = set(plist["CFBundleDocumentTypes"][0]["CFBundleTypeExtensions"])
    for ext in SLIDE_EXTENSIONS:
        if ext not in ("tif", "tiff"):
            assert f"*.{ext}" in globs
        assert f"\\.{ext}\\OpenWithProgids" in iss
        assert ext in mac_exts


def test_icons_at_standard_sizes() -> None:
    from PIL import Image

    for n in (16, 24, 32, 48, 64, 128, 256, 512):
        with Image.open(ROOT / "resources" / "icons" / f"chaoyang-desktop-{n}.png") as im:
            assert im.size == (n, n)


def test_install_and_uninstall_for_current_user(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "share")}
    script = ROOT / "packaging" / "linux" / "install.sh"
    out = subprocess.run(["bash", str(script), "--exec", "/opt/Chaoyang Desktop/chaoyang-desktop"], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    entry = (tmp_path / "share" / "applications" / "chaoyang-desktop.desktop").read_text()
    assert 'Exec="/opt/Chaoyang Desktop/chaoyang-desktop" %F' in entry
    assert (tmp_path / "share" / "icons" / "hicolor" / "48x48" / "apps" / "chaoyang-desktop.png").is_file()
    installed_mime = tmp_path / "share" / "mime" / "packages" / "chaoyang-desktop.xml"
    assert installed_mime.read_bytes() == (ROOT / "resources" / "linux" / "chaoyang-desktop-mime.xml").read_bytes()
    if shutil.which("update-mime-database"):  # the script builds the MIME database where it can
        globs2 = tmp_path / "share" / "mime" / "globs2"
        assert globs2.is_file() and "image/x-hamamatsu-ndpi:*.ndpi" in globs2.read_text()
    if shutil.which("desktop-file-validate"):
        assert subprocess.run(["desktop-file-validate", str(tmp_path / "share" / "applications" / "chaoyang-desktop.desktop")]).returncode == 0
    out = subprocess.run(["bash", str(ROOT / "packaging" / "linux" / "uninstall.sh")], env=env, capture_output=True, text=True)
    assert out.returncode == 0
    assert not (tmp_path / "share" / "applications" / "chaoyang-desktop.desktop").exists()


def _bundle() -> Path | None:
    for base in (os.environ.get("CHAOYANG_BUNDLE"), ROOT / "dist" / "Chaoyang Desktop"):
        if base:
            exe = Path(base) / ("chaoyang-desktop.exe" if os.name == "nt" else "chaoyang-desktop")
            if exe.is_file():
                return exe
    return None


@pytest.mark.skipif(_bundle() is None, reason="no built bundle (build with packaging/README.md, or set CHAOYANG_BUNDLE)")
def test_built_bundle_smoke_test(tmp_path: Path) -> None:
    exe = _bundle()
    assert exe is not None
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "CHAOYANG_DATA_DIR": str(tmp_path)}
    out = subprocess.run([str(exe), "--smoke-test"], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
