"""Which model and device run is always visible, in GUI words; choosing a model leads to the preview."""

from __future__ import annotations

import hashlib
from pathlib import Path

from chaoyang_desktop.gui.model_dialog import ModelDialog, gui_words
from tests.gui.test_analysis_gui import analyse, open_slide_in


def test_engine_advice_becomes_gui_words() -> None:
    message = ("The model Snarci/x is not in the local cache. Download it once with `chaoyang-desktop models "
               "download Snarci/x` while online, or give a local copy with `--model DIR` (a folder). Nothing else.")
    assert gui_words(message) == "The model Snarci/x is not in the local cache. Nothing else."


def test_status_bar_names_the_model_weights_device_and_precision(qtbot, make_window, cmu_slide: Path,  # type: ignore[no-untyped-def]
                                                                  tiny_model: Path) -> None:
    window = make_window()
    open_slide_in(qtbot, window, cmu_slide)
    assert analyse(qtbot, window) == "done"
    label = window.device_label
    weights = next(p for p in tiny_model.iterdir() if p.suffix in (".bin", ".safetensors"))
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()  # the reference, from the file itself
    assert sha[:8] in label.text() and tiny_model.name in label.text()
    assert "CPU" in label.text() and "fp32" in label.text()
    assert sha in label.toolTip() and "local folder" in label.toolTip()


def test_choose_model_with_a_model_loaded_does_not_call_it_missing(qtbot, make_window, cmu_slide: Path) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    open_slide_in(qtbot, window, cmu_slide)
    assert analyse(qtbot, window) == "done"
    window.show_model_dialog("Choose where the model comes from.")
    dialog = window.model_dialog
    assert isinstance(dialog, ModelDialog)
    texts = " ".join(w.text() for w in dialog.findChildren(type(dialog.status)))
    assert "Model in use" in texts and "not on this computer" not in texts
    dialog.reject()


def test_choosing_a_model_leads_to_the_preview_not_a_run(qtbot, make_window, cmu_slide: Path,  # type: ignore[no-untyped-def]
                                                         tiny_model: Path) -> None:
    window = make_window()
    window.interactive = True  # the preview banner is what an interactive user gets
    window.settings.set("ui/confirm_analysis", True)
    open_slide_in(qtbot, window, cmu_slide)
    window._pending_after_model = "slide"  # noqa: SLF001  (a run asked for, then the model dialog)
    started: list[object] = []
    window.analysis.run_planned.connect(started.append)
    window._on_model_chosen(str(tiny_model))  # noqa: SLF001
    qtbot.waitUntil(lambda: window.banner.run_button.isEnabled(), timeout=20000)
    assert window.banner.isVisible() and not started and not window.analysis.running


def test_fast_cpu_mode_is_offered_in_the_preview_where_the_cpu_has_bf16(qtbot, make_window, cmu_slide: Path) -> None:  # type: ignore[no-untyped-def]
    from chaoyang_desktop.gui.analysis_worker import DeviceInfo

    window = make_window()
    window.interactive = True
    window.settings.set("ui/confirm_analysis", True)
    open_slide_in(qtbot, window, cmu_slide)
    window._on_device(DeviceInfo("CPU (1 threads)", False, False, "", "fp32", fast_cpu_mode=True))  # noqa: SLF001
    window.analyze()
    qtbot.waitUntil(lambda: window.banner.run_button.isEnabled(), timeout=20000)
    assert window.banner.fast_button.isVisible() and "4.3" in window.banner.fast_button.toolTip()
    window.banner.fast_button.click()
    assert window.settings.get("engine/precision") == "bf16" and not window.banner.fast_button.isVisible()
    # Not offered once bf16 is chosen, nor on a CPU without bf16 hardware.
    assert not window._fast_mode_worth_offering()  # noqa: SLF001
    window.settings.set("engine/precision", "auto")
    window._on_device(DeviceInfo("CPU (1 threads)", False, False, "", "fp32", fast_cpu_mode=False))  # noqa: SLF001
    assert not window._fast_mode_worth_offering()  # noqa: SLF001


def test_the_preview_offers_50_percent_overlap_with_its_tiles_and_time(qtbot, make_window, cmu_slide: Path) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    window.interactive = True
    window.settings.set("ui/confirm_analysis", True)
    open_slide_in(qtbot, window, cmu_slide)
    window.analysis.seconds_per_tile = 2.0  # as if the last run took 2 s a tile
    window.analyze()
    qtbot.waitUntil(lambda: window.banner.run_button.isEnabled() and window.preview_plan is not None, timeout=20000)
    plain = window.preview_plan
    assert "About" in window.banner.label.text()
    window.banner.overlap_combo.setCurrentIndex(1)
    qtbot.waitUntil(lambda: window.preview_plan is not None and window.preview_plan is not plain, timeout=20000)
    half = window.preview_plan
    # Reference: half the stride of the same tile (grid facts, not the code's arithmetic).
    assert half.grid.k == 2 and abs(half.grid.l0_tile - plain.grid.l0_tile) <= 1  # the stride rounds to whole px
    assert half.n_tiles > 2 * plain.n_tiles
    assert f"{half.n_tiles:,} tissue tiles" in window.banner.label.text()
