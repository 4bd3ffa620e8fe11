"""The viewing tools: label and macro images, magnification presets, image type, shortcuts and guide."""

from __future__ import annotations

from pathlib import Path

import openslide
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest

from chaoyang_desktop.core.analysis.domain import DomainCheck, Finding, check_domain
from chaoyang_desktop.core.slide.reader import open_slide
from chaoyang_desktop.gui.associated_images import AssociatedImageDialog
from chaoyang_desktop.gui.help_dialogs import ShortcutsDialog, UserGuideDialog, user_guide_text
from chaoyang_desktop.gui.properties_panel import image_type
from tests.conftest import REPO_ROOT

SLIDES = "slides"


def _openslide_sizes(path: Path) -> dict[str, tuple[int, int]]:
    with openslide.OpenSlide(path) as osr:
        return {n: image.size for n, image in osr.associated_images.items()}


# ----- label and macro ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name, label, macro", [
    ("CMU-1-Small-Region.svs", True, True),
    ("Hamamatsu-test3-DAPI-2-387.ndpi", False, True),
    ("CMU-1-Small-Region_generic-pyramid.tiff", False, False),
])
def test_label_and_macro_follow_the_slide(qtbot, window, test_data: Path, name: str, label: bool,
                                          macro: bool) -> None:  # type: ignore[no-untyped-def]
    assert not window.act_label_image.isEnabled() and not window.act_macro_image.isEnabled()
    path = test_data / SLIDES / name
    assert window.open_paths([str(path)])
    assert window.act_label_image.isEnabled() is label
    assert window.act_macro_image.isEnabled() is macro
    panel = window.properties_panel
    assert sorted(panel.previews) == sorted(n for n, on in (("label", label), ("macro", macro)) if on)
    if not (label or macro):
        assert "no label or macro" in panel.associated_note.text()
    sizes = _openslide_sizes(path)
    for kind, act in (("label", window.act_label_image), ("macro", window.act_macro_image)):
        if not act.isEnabled():
            continue
        act.trigger()
        dialogs = [d for d in window.findChildren(AssociatedImageDialog) if d.isVisible() and d.name == kind]
        assert len(dialogs) == 1
        image = dialogs[0].picture.image
        assert (image.width(), image.height()) == sizes[kind]
        assert path.name in dialogs[0].windowTitle()
        # Scaled to fit, proportions kept: the drawn picture lies inside the widget.
        rect = dialogs[0].picture.drawn_rect()
        assert rect.width() <= dialogs[0].picture.width() + 0.5 and rect.height() <= dialogs[0].picture.height() + 0.5
        assert rect.width() / rect.height() == pytest.approx(sizes[kind][0] / sizes[kind][1], rel=1e-6)
    window.close_current()
    assert not window.act_label_image.isEnabled() and not window.act_macro_image.isEnabled()
    assert not [d for d in window.findChildren(AssociatedImageDialog) if d.isVisible()]


def test_a_preview_click_opens_the_picture_and_another_slide_closes_it(qtbot, window, test_data: Path) -> None:  # type: ignore[no-untyped-def]
    svs = test_data / SLIDES / "CMU-1-Small-Region.svs"
    assert window.open_paths([str(svs)])
    window.properties_panel.previews["macro"].click()
    shown = [d for d in window.findChildren(AssociatedImageDialog) if d.isVisible()]
    assert [d.name for d in shown] == ["macro"]
    window.properties_panel.previews["macro"].click()  # the same picture again: the same window
    assert [d for d in window.findChildren(AssociatedImageDialog) if d.isVisible()] == shown
    assert window.open_paths([str(test_data / SLIDES / "Hamamatsu-test3-DAPI-2-387.ndpi")])
    assert not [d for d in window.findChildren(AssociatedImageDialog) if d.isVisible()]  # not the NDPI's macro


# ----- magnification presets ---------------------------------------------------------------------------------
def _objective(path: Path) -> float | None:
    with openslide.OpenSlide(path) as osr:
        value = osr.properties.get(openslide.PROPERTY_NAME_OBJECTIVE_POWER)
    return float(value) if value else None


def _mpp(path: Path) -> float:
    with openslide.OpenSlide(path) as osr:
        return float(osr.properties[openslide.PROPERTY_NAME_MPP_X])


@pytest.mark.parametrize("name", ["CMU-1-Small-Region.svs", "Hamamatsu-test3-DAPI-2-387.ndpi",
                                  "CMU-1-Small-Region_generic-pyramid.tiff"])
def test_magnification_presets_set_the_scale(qtbot, window, test_data: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    path = test_data / SLIDES / name
    assert window.open_paths([str(path)])
    objective = _objective(path)
    # Screen pixels per level-0 pixel at 10x: 10 / objective, or 20x = 0.5 um/px without one.
    native = objective if objective is not None else 20.0 * 0.5 / _mpp(path)
    for mag in (5.0, 10.0, 20.0):  # 1.25x of these small test slides is smaller than the view lets one zoom out
        window.act_magnifications[mag].trigger()
        assert window.slide_view.state.scale == pytest.approx(mag / native, rel=1e-9)
    assert f"{20:g}\u00d7" in window.statusBar().currentMessage()
    for mag, act in window.act_magnifications.items():
        assert act.isEnabled() is (mag / native <= 2.0 * 1.05), mag


def test_digital_zoom_stops_at_twice_the_scan(qtbot, window, test_data: Path) -> None:  # type: ignore[no-untyped-def]
    # A plain image given 2 um/px is a 5x scan (0.5 um/px is 20x): 10x is 2x digital zoom, 20x is not offered.
    assert window.open_slide_file(str(test_data / "images" / "CMU-1-Small-Region_full.jpg"), mpp=2.0)
    enabled = {mag: act.isEnabled() for mag, act in window.act_magnifications.items()}
    assert enabled == {1.25: True, 2.5: True, 5.0: True, 10.0: True, 20.0: False, 40.0: False}
    window.act_magnifications[10.0].trigger()
    assert window.slide_view.state.scale == pytest.approx(2.0)
    window.act_magnifications[40.0].trigger()  # disabled: nothing happens
    assert window.slide_view.state.scale == pytest.approx(2.0)


def test_preset_keys_reach_the_preset_and_1_stays_full_resolution(qtbot, window, cmu_slide: Path) -> None:  # type: ignore[no-untyped-def]
    assert window.open_paths([str(cmu_slide)])
    window.activateWindow()
    qtbot.waitUntil(lambda: window.isActiveWindow(), timeout=5000)
    window.slide_view.setFocus()
    QTest.keyClick(window.slide_view, Qt.Key.Key_4, Qt.KeyboardModifier.ControlModifier)
    assert window.slide_view.state.scale == pytest.approx(10.0 / 20.0)  # CMU-1 is a 20x scan
    QTest.keyClick(window.slide_view, Qt.Key.Key_1)
    assert window.slide_view.state.scale == pytest.approx(1.0 / window.slide_view.devicePixelRatioF())


# ----- image type ---------------------------------------------------------------------------------------------
def test_image_type_from_the_domain_check_of_real_slides(test_data: Path) -> None:
    assert image_type(None)[0] == "not checked yet"
    for name, expected in (("CMU-1-Small-Region.svs", "H&E brightfield"),
                           ("Hamamatsu-test3-DAPI-2-387.ndpi", "fluorescence")):  # a DAPI scan
        with open_slide(test_data / SLIDES / name) as slide:
            check = check_domain(slide.thumbnail(1024), slide.require_mpp(), 0.5)
        assert image_type(check)[0] == expected
        assert image_type(check.to_dict())[0] == expected  # as a result's provenance keeps it
    grey = DomainCheck((Finding("grayscale", "The slide is grayscale."),), {"coloured_share": 0.001})
    assert image_type(grey) == ("other (grayscale)", "The slide is grayscale.")
    dab = DomainCheck((Finding("stain", "brown"), Finding("resolution", "coarse")), {"he_hue_share": 0.2})
    assert image_type(dab)[0] == "other (not H&E)"
    coarse_he = DomainCheck((Finding("resolution", "coarse"),), {"he_hue_share": 0.9})
    assert image_type(coarse_he)[0] == "H&E brightfield"


def test_properties_show_the_image_type_once_the_preview_checked_it(qtbot, window, cmu_slide: Path) -> None:  # type: ignore[no-untyped-def]
    assert window.open_paths([str(cmu_slide)])
    label = window.properties_panel.image_type_label
    assert label.text() == "not checked yet"
    # Opening looks for a stored analysis: that plan carries the domain check.
    qtbot.waitUntil(lambda: label.text() != "not checked yet", timeout=60000)
    assert label.text() == "H&E brightfield"
    assert "H&E" in label.toolTip()


# ----- help -----------------------------------------------------------------------------------------------------
def test_shortcuts_dialog_lists_the_actions_keys(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    window.act_shortcuts.trigger()
    dialogs = [d for d in window.findChildren(ShortcutsDialog) if d.isVisible()]
    assert len(dialogs) == 1
    dialog = dialogs[0]
    table = dialog.table
    rows = {table.item(i, 1).text(): table.item(i, 0).text() for i in range(table.rowCount())}
    for act, command in ((window.act_analyze, "Analyze"), (window.act_magnifications[10.0], "10\u00d7"),
                         (window.annotation_ctl.act_rect, "Rectangle")):
        keys = act.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        assert keys and keys in rows[command]
    # No key is given to two actions: Qt would then run neither.
    keys = [k for row in dialog.rows for k in row.keys]
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)
    dialog.filter.setText("ctrl+4")
    assert dialog.shown_commands() == ["10\u00d7"]


def test_user_guide_opens_and_is_the_repository_file(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    assert user_guide_text() == (REPO_ROOT / "resources" / "user-guide.md").read_text(encoding="utf-8")
    window.act_user_guide.trigger()
    dialogs = [d for d in window.findChildren(UserGuideDialog) if d.isVisible()]
    assert len(dialogs) == 1
    text = dialogs[0].browser.toPlainText()
    for words in ("Open a slide", "Cancel", "Keep Running in Background", "Uncertainty", "Dark grey tiles",
                  "Annotations", "Export Report (PDF)", "Evaluate Labelled Folder", "Fit Temperature"):
        assert words in text, words
    window.act_user_guide.trigger()  # raised, not opened twice
    assert len([d for d in window.findChildren(UserGuideDialog) if d.isVisible()]) == 1
