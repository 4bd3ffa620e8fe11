"""The real test files are in the repository, whole: each listed file exists with its checksum."""

from __future__ import annotations

import hashlib

from tests.conftest import REPO_ROOT, TEST_DATA


def _listed() -> dict[str, str]:
    lines = (TEST_DATA / "SHA256SUMS").read_text().splitlines()
    return {name.removeprefix("./"): digest for digest, name in (line.split(maxsplit=1) for line in lines if line)}


def test_every_listed_file_is_there_and_unchanged() -> None:
    listed = _listed()
    # The files the suite relies on by name: three slides, the full-region image, both patch sets.
    for name in ("slides/CMU-1-Small-Region.svs", "slides/CMU-1-Small-Region_generic-pyramid.tiff",
                 "slides/Hamamatsu-test3-DAPI-2-387.ndpi", "images/CMU-1-Small-Region_full.jpg"):
        assert name in listed
    assert sum(n.startswith("patches/crc9/") for n in listed) == 25
    assert sum(n.startswith("patches/kather2016/") for n in listed) == 16
    for name, digest in listed.items():
        path = TEST_DATA / name
        assert path.is_file(), f"{name} is missing"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, f"{name} differs from its checksum"


def test_no_unlisted_files_and_every_file_has_its_provenance() -> None:
    listed = set(_listed())
    present = {p.relative_to(TEST_DATA).as_posix() for p in TEST_DATA.rglob("*") if p.is_file()}
    assert present - {"README.md", "SHA256SUMS"} == listed
    readme = (TEST_DATA / "README.md").read_text()
    for name in listed:
        assert f"`{name}`" in readme, f"{name} has no provenance row in tests/data/README.md"


def test_the_suite_reads_nothing_outside_the_repository() -> None:
    # Spelled in pieces so that this file does not match its own search.
    outside = ("CHAOYANG_" + "SHARED_DATA", "../" + "shared", '"shared" ' + '/ "data"', "parent / " + '"shared"')
    for path in (REPO_ROOT / "tests").rglob("*.py"):
        text = path.read_text()
        assert not [word for word in outside if word in text], path
