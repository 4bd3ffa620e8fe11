"""``chaoyang-desktop --smoke-test``: what the installers and the frozen bundle run to check an installation."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(CHAOYANG_DATA_DIR=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "config"),
               XDG_CACHE_HOME=str(tmp_path / "cache"), XDG_DATA_HOME=str(tmp_path / "share"),
               HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1", HOME=str(tmp_path / "home"))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def test_smoke_test_opens_the_sample_and_exits_0(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    out = subprocess.run([sys.executable, "-m", "chaoyang_desktop", "--smoke-test"], env=_env(tmp_path),
                         cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1 and "smoke test OK" in lines[0] and "CMU-1-Small-Region.svs" in lines[0]
    assert "full-resolution tiles" in lines[0] and "device" in lines[0]
    assert "FAILED" not in out.stderr
    # The log went to the (temporary) user data folder; the user's settings were not written.
    assert list((tmp_path / "data").rglob("chaoyang-desktop.log"))
    assert not list(tmp_path.rglob("*.ini")) and not list(tmp_path.rglob("*.conf"))


def test_smoke_test_fails_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from chaoyang_desktop import app

    assert app.run_smoke_test(str(tmp_path / "missing.svs")) == 1
    assert "missing.svs" in capsys.readouterr().err
    bad = tmp_path / "broken.svs"
    bad.write_bytes(b"not a slide at all")
    try:
        assert app.run_smoke_test(str(bad), timeout_s=20) == 1
    finally:
        if app._log_handler is not None:
            logging.getLogger().removeHandler(app._log_handler)
            app._log_handler.close()
            app._log_handler = None
    err = capsys.readouterr().err
    assert "smoke test FAILED" in err and "broken.svs" in err


def test_smoke_test_is_a_top_level_option() -> None:
    from chaoyang_desktop.cli import _normalise_argv, build_parser

    args = build_parser().parse_args(_normalise_argv(["--smoke-test"]))
    assert args.smoke_test and args.command is None
    assert "--smoke-test" in build_parser().format_help()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only: elsewhere there is always a screen")
def test_no_screen_gives_a_clear_message_not_an_abort(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["CHAOYANG_DATA_DIR"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-m", "chaoyang_desktop"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "No screen" in out.stderr and "xvfb-run" in out.stderr
