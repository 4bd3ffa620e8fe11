"""The patch gallery as a user meets it: folders as the truth, elided names, thumbnail size, a patch opened large."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtGui import QFontMetrics, QImage, QPainter
from PySide6.QtWidgets import QStyleOptionViewItem

from chaoyang_desktop.gui.gallery import (
    FILTER_ALL,
    FILTER_MISMATCH,
    FolderRole,
    MatchRole,
    PatchGallery,
    PathRole,
    THUMB_MAX,
)
from chaoyang_desktop.gui.patch_viewer import MARK_RIGHT, MARK_WRONG

#: Class folders as people name them: any case. Each holds copies of the same patches, so a patch
#: can be right in at most one of them and both marks appear whatever the random model says.
CLASS_FOLDERS = ("Normal", "serrated", "ADENOCARCINOMA", "Adenoma")


@pytest.fixture
def class_folders(test_data: Path, tmp_path: Path) -> Path:
    crc9 = test_data / "patches" / "crc9"
    root = tmp_path / "patches"
    tissue = [crc9 / "TUM" / "CRC-VAL-HE-7K__TUM-TCGA-DRHQMTQA.png", crc9 / "NORM" / "NCT-CRC-HE-100K__NORM-AAAWMSFI.tif"]
    for name in CLASS_FOLDERS:
        (root / name).mkdir(parents=True)
        for src in tissue:
            shutil.copy(src, root / name / src.name)
    # Quality control leaves this one out: no mark, though its folder names a class.
    shutil.copy(crc9 / "BACK" / "NCT-CRC-HE-100K__BACK-AAQSHYMA.tif", root / "Normal" / "background.tif")
    # A folder that names no class: shown, never marked.
    (root / "LYM").mkdir()
    shutil.copy(crc9 / "LYM" / "CRC-VAL-HE-7K__LYM-TCGA-FTVCYFDV.png", root / "LYM" / "lym.png")
    return root


def open_classified(qtbot, window, folder: Path) -> PatchGallery:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(window.analysis_finished, timeout=60000) as blocker:
        window.open_paths([str(folder)], auto_classify=True)
    assert blocker.args == ["done"]
    gallery: PatchGallery = window.gallery
    qtbot.waitUntil(lambda: gallery.reader.pending() == 0, timeout=10000)
    return gallery


def proxy_index(gallery: PatchGallery, path: str):  # type: ignore[no-untyped-def]
    for r in range(gallery.proxy.rowCount()):
        idx = gallery.proxy.index(r, 0)
        if idx.data(PathRole) == path:
            return idx
    raise AssertionError(f"{path} is not shown")


def mark_pixels(gallery: PatchGallery, path: str) -> tuple[int, int]:
    """Pixels of the right and of the wrong mark's colour painted in ``path``'s cell."""
    image = gallery.view.viewport().grab().toImage()
    rect = gallery.view.visualRect(proxy_index(gallery, path))
    right = wrong = 0
    for y in range(rect.top(), rect.bottom()):
        for x in range(rect.left(), rect.right()):
            c = image.pixelColor(x, y)
            right += c == MARK_RIGHT
            wrong += c == MARK_WRONG
    return right, wrong


def qimage_rgb(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h = image.width(), image.height()
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(h, image.bytesPerLine())
    return rows[:, : 3 * w].reshape(h, w, 3).copy()


def test_class_folders_are_the_truth_marked_right_or_wrong(qtbot, window, class_folders: Path) -> None:  # type: ignore[no-untyped-def]
    gallery = open_classified(qtbot, window, class_folders)
    records = {r.path: r for r in gallery.results()}
    keys = {n.casefold(): n for n in gallery.class_names}
    right = judged = 0
    seen = {True: 0, False: 0}
    for path, r in records.items():
        folder = Path(path).parent.name
        idx = proxy_index(gallery, path)
        assert idx.data(FolderRole) == folder
        # The reference: the folder's name against the record's label, here and now.
        expected = None
        if folder.casefold() in keys and r.classified:
            expected = r.label == keys[folder.casefold()]
            right += expected
            judged += 1
        assert idx.data(MatchRole) is expected, path
        tip = idx.data(Qt.ItemDataRole.ToolTipRole)
        assert tip.startswith(path) and f"Folder: {folder}" in tip
        # Painted: a green or a red disc on the marked ones, nothing of either on the others.
        green, red = mark_pixels(gallery, path)
        if expected is None:
            assert green < 20 and red < 20, path
        else:
            seen[expected] += 1
            assert (green > 150 and red < 20) if expected else (red > 150 and green < 20), path
    background = str(class_folders / "Normal" / "background.tif")
    assert records[background].qc_flagged and proxy_index(gallery, background).data(MatchRole) is None
    assert proxy_index(gallery, str(class_folders / "LYM" / "lym.png")).data(MatchRole) is None
    assert judged == 2 * len(CLASS_FOLDERS) and seen[True] >= 1 and seen[False] >= 1
    counts = gallery.counts.text().replace("&nbsp;", " ")
    assert f"{right} of {judged} match their folder" in counts
    assert gallery.folder_agreement() == (right, judged)
    # The patches to look at again: those that disagree with their folder.
    gallery.set_filter(FILTER_MISMATCH)
    assert sorted(gallery.visible_paths()) == sorted(
        p for p, r in records.items()
        if r.classified and Path(p).parent.name.casefold() in keys and r.label != keys[Path(p).parent.name.casefold()])
    gallery.set_filter(FILTER_ALL)
    # The details say it too.
    wrong = next(p for p in records if proxy_index(gallery, p).data(MatchRole) is False)
    gallery.select_path(wrong)
    assert f"Folder: {Path(wrong).parent.name} \u2717" in gallery.detail_path.text()


def test_folders_that_name_no_class_are_shown_without_marks(qtbot, test_data: Path) -> None:  # type: ignore[no-untyped-def]
    crc9 = test_data / "patches" / "crc9"
    paths = sorted(str(p) for p in crc9.rglob("*") if p.is_file())
    gallery = PatchGallery()
    qtbot.addWidget(gallery)
    gallery.set_patches(paths)
    assert {proxy_index(gallery, p).data(FolderRole) for p in paths} == {d.name for d in crc9.iterdir()}
    assert all(proxy_index(gallery, p).data(MatchRole) is None for p in paths)
    assert gallery.filter_combo.findData(FILTER_MISMATCH) < 0 and "match their folder" not in gallery.counts.text()
    # One flat folder: its name is no news, so no folder line (and a shorter cell).
    tall = gallery.cell_size().height()
    gallery.set_patches([p for p in paths if Path(p).parent.name == "TUM"])
    assert proxy_index(gallery, gallery.paths[0]).data(FolderRole) == "" and gallery.cell_size().height() < tall
    gallery.shutdown()


class RecordingPainter(QPainter):
    """Records what the delegate writes (its paint() calls drawText on the painter it is given)."""

    def __init__(self, device: QImage) -> None:
        super().__init__(device)
        self.texts: list[str] = []

    def drawText(self, *args) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        self.texts.append(str(args[-1]))
        super().drawText(*args)


def test_long_file_names_are_cut_at_the_end(qtbot, test_data: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = test_data / "patches" / "crc9" / "TUM" / "CRC-VAL-HE-7K__TUM-TCGA-DRHQMTQA.png"
    long_name = "slide_2023-11-04_region_0042_patch_x18432_y20480_" + src.name
    (tmp_path / "a").mkdir()
    shutil.copy(src, tmp_path / "a" / long_name)
    shutil.copy(src, tmp_path / "a" / "short.png")
    gallery = PatchGallery()
    qtbot.addWidget(gallery)
    gallery.set_patches([str(tmp_path / "a" / long_name), str(tmp_path / "a" / "short.png")])
    delegate = gallery.view.itemDelegate()
    font = gallery.view.font()

    def painted(path: Path) -> list[str]:
        canvas = QImage(gallery.cell_size(), QImage.Format.Format_RGB32)
        option = QStyleOptionViewItem()
        option.rect = QRect(QPoint(0, 0), gallery.cell_size())
        option.font = font
        option.palette = gallery.view.palette()
        p = RecordingPainter(canvas)
        delegate.paint(p, option, proxy_index(gallery, str(path)))
        p.end()
        return p.texts

    texts = painted(tmp_path / "a" / long_name)
    name = next(t for t in texts if t.endswith("\u2026"))
    assert long_name.startswith(name[:-1]) and len(name) > 10  # the start kept, the end cut
    assert QFontMetrics(font).horizontalAdvance(name) <= gallery.cell_size().width() - 8
    assert "short.png" in painted(tmp_path / "a" / "short.png")
    # The whole path is in the tooltip.
    tip = proxy_index(gallery, str(tmp_path / "a" / long_name)).data(Qt.ItemDataRole.ToolTipRole)
    assert tip.splitlines()[0] == str(tmp_path / "a" / long_name)
    gallery.shutdown()


def test_the_size_slider_sizes_thumbnails_and_is_remembered(qtbot, test_data: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(PatchGallery, "remembered_side", PatchGallery.remembered_side)
    paths = sorted(str(p) for p in (test_data / "patches" / "crc9" / "TUM").iterdir())
    gallery = PatchGallery()
    qtbot.addWidget(gallery)
    gallery.resize(1200, 800)
    gallery.show()
    qtbot.waitExposed(gallery)
    gallery.set_patches(paths)
    first = paths[0]
    qtbot.waitUntil(lambda: gallery.reader.has_thumbnail(first), timeout=10000)
    before = gallery.view.visualRect(proxy_index(gallery, first)).size()
    assert gallery.view.iconSize() == QSize(128, 128)
    gallery.size_slider.setValue(256)
    assert gallery.view.iconSize() == QSize(256, 256)
    after = gallery.view.visualRect(proxy_index(gallery, first)).size()
    assert after.width() > 256 + 12 > before.width() and after.height() == before.height() + 128
    # Read again for the larger size once the slider rests (these 224 px patches: whole).
    qtbot.waitUntil(lambda: gallery.reader.side == 256 and gallery.reader.has_thumbnail(first), timeout=10000)
    thumb = gallery.reader.thumbnail(first)
    assert thumb is not None and max(thumb.width(), thumb.height()) == 224
    # The keyboard moves it too.
    gallery.size_slider.setFocus()
    qtbot.keyClick(gallery.size_slider, Qt.Key.Key_End)
    assert gallery.thumb_side == THUMB_MAX and gallery.view.iconSize() == QSize(THUMB_MAX, THUMB_MAX)
    # A gallery made later in this run starts at the size chosen last.
    other = PatchGallery()
    qtbot.addWidget(other)
    assert other.thumb_side == THUMB_MAX and other.size_slider.value() == THUMB_MAX
    gallery.shutdown()
    other.shutdown()


def test_double_click_or_enter_opens_the_patch_large(qtbot, window, class_folders: Path) -> None:  # type: ignore[no-untyped-def]
    from chaoyang_desktop.core.slide.imageio import decode_image

    gallery = open_classified(qtbot, window, class_folders)
    records = {r.path: r for r in gallery.results()}
    target = next(p for p in gallery.visible_paths() if records[p].classified and proxy_index(gallery, p).data(MatchRole) is False)
    idx = proxy_index(gallery, target)
    gallery.view.scrollTo(idx)
    centre = gallery.view.visualRect(idx).center()
    # As a mouse does it: the first click of the two selects (QTest's double-click alone presses nothing).
    qtbot.mouseClick(gallery.view.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    assert gallery.viewer is None  # one click only selects
    qtbot.mouseDClick(gallery.view.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    viewer = gallery.viewer
    assert viewer is not None and viewer.isVisible() and viewer.path == target
    # The right image, whole, not the thumbnail.
    expected = decode_image(target)
    qtbot.waitUntil(lambda: viewer.picture.image is not None
                    and viewer.picture.image.size() == QSize(expected.shape[1], expected.shape[0]), timeout=10000)
    assert np.array_equal(qimage_rgb(viewer.picture.image), expected)
    # Drawn as large as the dialog allows (a 224 px patch is scaled up), aspect kept.
    shown = viewer.picture.image_rect()
    assert shown.width() > expected.shape[1] and abs(shown.width() - shown.height()) <= 1
    # The right class and the numbers.
    r = records[target]
    assert r.label in viewer.class_label.text() and f"{100 * r.confidence:.1f}%" in viewer.class_label.text()
    assert viewer.chart.values == pytest.approx(r.probabilities) and viewer.chart.isVisible()
    assert f"Margin {r.margin:.2f}" in viewer.notes_label.text() and f"entropy {r.entropy:.2f}" in viewer.notes_label.text()
    assert Path(target).parent.name in viewer.folder_label.text() and "\u2717" in viewer.folder_label.text()
    # Right arrow: the next patch of the gallery, as shown; the gallery follows.
    order = gallery.visible_paths()
    qtbot.keyClick(viewer, Qt.Key.Key_Right)
    assert viewer.path == order[order.index(target) + 1] and gallery.view.currentIndex().data(PathRole) == viewer.path
    # Esc closes it.
    qtbot.keyClick(viewer, Qt.Key.Key_Escape)
    assert not viewer.isVisible()
    # Enter on the selected patch opens it; a QC-flagged one says why it has no class.
    background = str(class_folders / "Normal" / "background.tif")
    gallery.select_path(background)
    gallery.view.setFocus()
    qtbot.keyClick(gallery.view, Qt.Key.Key_Return)
    assert viewer.isVisible() and viewer.path == background
    assert "Not classified: glass or background" in viewer.class_label.text() and not viewer.chart.isVisible()
    assert "\u2713" not in viewer.folder_label.text() and "\u2717" not in viewer.folder_label.text()
    viewer.reject()
