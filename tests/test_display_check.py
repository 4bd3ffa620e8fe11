"""The app says which system libraries to install, or that the screen does not answer, before Qt can abort."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chaoyang_desktop import display_check
from chaoyang_desktop.display_check import debian_package, missing_libraries_message, parse_ldd_missing

# What ldd printed for PySide6 6.10's libqxcb.so on a Debian 12 machine without two xcb-util packages.
LDD_OUTPUT = """\
\tlinux-vdso.so.1 (0x00007f108f88c000)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f108ebb3000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxkbcommon-x11.so.0 => /lib/x86_64-linux-gnu/libxkbcommon-x11.so.0 (0x00007f108f721000)
\tlibxcb-icccm.so.4 => not found
\t/lib64/ld-linux-x86-64.so.2 (0x00007f108f88e000)
"""


def test_ldd_output_gives_each_missing_library_once() -> None:
    assert parse_ldd_missing(LDD_OUTPUT) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert parse_ldd_missing("\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x0)\n") == []


@pytest.mark.parametrize(("soname", "package"), [
    # Debian 12 / Ubuntu 24.04 package names, as `dpkg -S` reports them.
    ("libxcb-cursor.so.0", "libxcb-cursor0"),
    ("libxcb-icccm.so.4", "libxcb-icccm4"),
    ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
    ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
    ("libX11-xcb.so.1", "libx11-xcb1"),
    ("libEGL.so.1", "libegl1"),
    ("libglib-2.0.so.0", "libglib2.0-0"),
])
def test_debian_package_names(soname: str, package: str) -> None:
    assert debian_package(soname) == package


def test_message_is_one_line_with_the_install_commands() -> None:
    msg = missing_libraries_message(["libxcb-icccm.so.4", "libxcb-keysyms.so.1"])
    assert "\n" not in msg
    assert "sudo apt install libxcb-icccm4 libxcb-keysyms1" in msg
    assert "sudo dnf install xcb-util-wm xcb-util-keysyms" in msg


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only: the X11 plugin exists only there")
def test_reported_libraries_are_exactly_those_the_loader_cannot_open() -> None:
    plugin = display_check.xcb_plugin()
    assert plugin is not None and plugin.is_file()
    missing = display_check.missing_qt_libraries(plugin)
    for soname in missing:
        with pytest.raises(OSError):
            ctypes.CDLL(soname)
    for soname in ("libxcb.so.1", "libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-cursor.so.0"):
        if soname not in missing:
            ctypes.CDLL(soname)  # present: the dynamic loader opens it


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only: elsewhere Qt needs no X11 libraries")
def test_unusable_screen_gives_a_clear_message_not_an_abort(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(DISPLAY=":987", CHAOYANG_DATA_DIR=str(tmp_path))  # no X server listens there
    out = subprocess.run([sys.executable, "-m", "chaoyang_desktop"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out.stderr  # not -6 (SIGABRT)
    line = out.stderr.strip()
    assert "\n" not in line and line.startswith("error: ")
    if display_check.missing_qt_libraries():
        assert "sudo apt install" in line
    else:
        assert "DISPLAY=:987 does not answer" in line


def test_screen_check_is_skipped_where_it_does_not_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(display_check, "missing_qt_libraries", lambda plugin=None: ["libxcb-icccm.so.4"])
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert display_check.display_problem() is None
    monkeypatch.delenv("QT_QPA_PLATFORM")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert display_check.display_problem() is None
    if sys.platform.startswith("linux"):
        monkeypatch.delenv("WAYLAND_DISPLAY")
        monkeypatch.setenv("DISPLAY", ":0")
        assert "libxcb-icccm4" in (display_check.display_problem() or "")
