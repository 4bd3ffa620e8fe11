"""Whether Qt can open a window here, asked before Qt is loaded.

Qt aborts the whole process (SIGABRT, "could not load the Qt platform plugin xcb") when the X11
libraries its xcb plugin links against are missing or the display cannot be reached. That says
nothing a user can act on, so on Linux we look first: the plugin's missing libraries (as the
dynamic loader sees them, through ``ldd``) become package names to install, and an X server that
does not answer becomes a sentence about the screen.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# Debian/Ubuntu package names that do not follow the soname rule of :func:`debian_package`.
_DEBIAN_EXCEPTIONS = {
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libz.so.1": "zlib1g",
    "libGLdispatch.so.0": "libglvnd0",
}
# Fedora packages of the X11 libraries most often missing on a minimal system.
_FEDORA = {
    "libxcb-cursor.so.0": "xcb-util-cursor",
    "libxcb-icccm.so.4": "xcb-util-wm",
    "libxcb-keysyms.so.1": "xcb-util-keysyms",
    "libxcb-image.so.0": "xcb-util-image",
    "libxcb-render-util.so.0": "xcb-util-renderutil",
    "libxcb-util.so.1": "xcb-util",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11",
    "libxkbcommon.so.0": "libxkbcommon",
}
_NOT_FOUND = re.compile(r"^\s*(\S+)\s*=>\s*not found", re.MULTILINE)


def debian_package(soname: str) -> str:
    """The Debian/Ubuntu package that ships ``soname`` (Debian's library packaging policy).

    ``libfoo.so.N`` is in ``libfooN``, or ``libfoo-N`` when the name ends in a digit.
    """
    if soname in _DEBIAN_EXCEPTIONS:
        return _DEBIAN_EXCEPTIONS[soname]
    stem, _, version = soname.partition(".so.")
    stem = stem.lower()
    version = version.split(".")[0]
    return f"{stem}-{version}" if stem[-1:].isdigit() else f"{stem}{version}"


def xcb_plugin() -> Path | None:
    """PySide6's X11 platform plugin, found without importing Qt."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    plugin = Path(next(iter(spec.submodule_search_locations))) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return plugin if plugin.is_file() else None


def parse_ldd_missing(ldd_output: str) -> list[str]:
    """The sonames that ``ldd`` reports as ``not found``, each once, in order."""
    return list(dict.fromkeys(_NOT_FOUND.findall(ldd_output)))


def missing_qt_libraries(plugin: Path | None = None) -> list[str]:
    """Sonames the X11 plugin needs that the loader cannot find; empty when none or unknown."""
    plugin = plugin or xcb_plugin()
    ldd = shutil.which("ldd")
    if plugin is None or ldd is None:
        return []
    try:
        out = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_ldd_missing(out.stdout)


def missing_libraries_message(sonames: list[str]) -> str:
    """One line that names the libraries and the command that installs them."""
    debian = " ".join(dict.fromkeys(debian_package(s) for s in sonames))
    fedora = " ".join(dict.fromkeys(_FEDORA.get(s, s) for s in sonames))
    return (f"Qt cannot open a window: the system libraries {', '.join(sonames)} are missing. Install them "
            f"(Debian/Ubuntu: `sudo apt install {debian}`; Fedora: `sudo dnf install {fedora}`) "
            "and start Chaoyang Desktop again.")


def x_server_answers() -> bool | None:
    """Whether the X server named by ``DISPLAY`` accepts a connection; None when libxcb is absent."""
    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError:
        return None
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    conn = xcb.xcb_connect(None, None)  # always returns a connection object, maybe in error
    try:
        return int(xcb.xcb_connection_has_error(conn)) == 0
    finally:
        xcb.xcb_disconnect(conn)


def display_problem() -> str | None:
    """Why Qt could not open a window on this Linux machine, or None when it can (or we cannot tell)."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return None
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return ("No screen to show the window on (neither DISPLAY nor WAYLAND_DISPLAY is set). Start Chaoyang "
                "Desktop from a desktop session; on a server, use `chaoyang-desktop analyze` or "
                "`chaoyang-desktop view PATH --screenshot FILE.png`, or run the app under xvfb-run.")
    if os.environ.get("WAYLAND_DISPLAY"):
        return None  # Qt's Wayland plugin needs none of the X11 libraries
    missing = missing_qt_libraries()
    if missing:
        return missing_libraries_message(missing)
    if x_server_answers() is False:
        return (f"The screen DISPLAY={os.environ['DISPLAY']} does not answer (the X server is not running, or "
                "this user may not use it). Start Chaoyang Desktop from the desktop session itself, or fix DISPLAY.")
    return None
