"""Shared test setup: headless Qt, isolated user settings and caches, the real test data in ``tests/data``."""

from __future__ import annotations

import os
from pathlib import Path

# Before any Qt import anywhere in the test session.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Never touch the network or the user's Hugging Face cache from tests.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# Real slides, images and labelled patches, in the repository (tests/data/README.md has their licences).
TEST_DATA = REPO_ROOT / "tests" / "data"


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point every per-user location (HF cache, our cache, settings, logs) into a temp folder."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("CHAOYANG_DATA_DIR", str(home / "chaoyang"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))


@pytest.fixture(scope="session")
def test_data() -> Path:
    """The folder of real test files; missing data fails the test, it never skips it."""
    if not (TEST_DATA / "SHA256SUMS").is_file():
        pytest.fail(f"the test data is missing from {TEST_DATA}: check out the whole repository")
    return TEST_DATA


@pytest.fixture(scope="session")
def local_ray() -> object:
    """A local Ray cluster with 2 CPUs, started once for the session and stopped at its end.

    Ray is part of the dev install (the ``cluster`` extra), so a missing Ray fails the tests
    that need it instead of skipping them.
    """
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()
