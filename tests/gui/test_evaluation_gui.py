"""Analysis > Evaluate Labelled Folder: the same table and confusion matrix as the engine, on the worker."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def labelled(tmp_path: Path, test_data: Path) -> Path:
    """Two class folders named like two model classes (any case), with real patches copied in."""
    root = tmp_path / "labelled"
    for name, src in (("normal", "NORM"), ("adenoma", "TUM")):
        (root / name).mkdir(parents=True)
        for f in sorted((test_data / "patches" / "crc9" / src).iterdir()):
            shutil.copy(f, root / name / f.name)
    return root


def evaluate(qtbot, window, folder: Path, class_map: Path | None = None) -> str:  # type: ignore[no-untyped-def]
    ev = window.evaluator
    ev.ask()  # the dialog, filled in as a user would
    dialog = ev.dialog
    dialog.folder.setText(str(folder))
    if class_map is not None:
        dialog.use_map.setChecked(True)
        dialog.class_map.setText(str(class_map))
    assert dialog.ok.isEnabled()
    with qtbot.waitSignal(ev.evaluation_finished, timeout=30000) as blocker:
        dialog.accept()
    return str(blocker.args[0])


def test_evaluation_shows_the_engines_table_and_confusion(qtbot, window, labelled: Path, tiny_model: Path,
                                                         tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from chaoyang_desktop.core.learn.datasets import load_labelled_dataset
    from chaoyang_desktop.core.learn.evaluate import evaluate_dataset
    from chaoyang_desktop.core.model.inference import Classifier, EngineSettings
    from chaoyang_desktop.export.evaluation_report import EVALUATION_FILES

    assert window.evaluator.act_evaluate.isEnabled()
    assert evaluate(qtbot, window, labelled) == "done"
    view = window.evaluator.view
    assert view is not None and view.isVisible()

    clf = Classifier.load(str(tiny_model), EngineSettings(device="cpu", batch_size=8))
    direct = evaluate_dataset(clf, load_labelled_dataset(labelled, clf.profile.class_names))
    assert view.accuracy_text() == f"{direct.accuracy:.3f}"
    shown = [[view.scores.item(r, c).text() for c in range(5)] for r in range(view.scores.rowCount())]
    assert shown == [list(row) for row in direct.table_rows()]
    # Confusion matrix: rows true, columns predicted; counts as the engine's, summing to the images.
    k = len(direct.class_names)
    counts = np.array([[int(view.confusion_table.item(i, j).text().split()[0]) for j in range(k)] for i in range(k)])
    np.testing.assert_array_equal(counts, direct.confusion)
    assert counts.sum() == 6 == direct.n
    assert view.confusion_table.verticalHeaderItem(0).text() == direct.class_names[0]
    assert view.mis_table.rowCount() == len(direct.misclassified())
    assert "ECE" in view.facts.text() or "calibration error" in view.facts.text()
    assert f"{direct.calibration.ece:.3f}" in view.facts.text()
    # Save Report writes what `evaluate --out` writes.
    out = tmp_path / "eval"
    assert view.save_to(str(out))
    assert sorted(p.name for p in out.iterdir()) == sorted(EVALUATION_FILES)
    assert json.loads((out / "metrics.json").read_text())["accuracy"] == pytest.approx(direct.accuracy)
    assert not window.progress.isVisible() and "accuracy" in window.statusBar().currentMessage()


def test_class_map_and_errors(qtbot, window, labelled: Path, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    shown: list[str] = []
    monkeypatch.setattr("chaoyang_desktop.gui.main_window.show_error",
                        lambda parent, title, message, details="": shown.append(message))
    (labelled / "XYZ").mkdir()
    shutil.copy(next((labelled / "normal").iterdir()), labelled / "XYZ" / "a.png")
    assert evaluate(qtbot, window, labelled) == "failed"
    assert "'XYZ'" in shown[-1] and "class" in shown[-1]  # the engine's message, in a dialog
    cmap = tmp_path / "map.json"
    cmap.write_text(json.dumps({"XYZ": None, "adenoma": "Adenocarcinoma"}))
    assert evaluate(qtbot, window, labelled, cmap) == "done"
    report = window.evaluator.view.report
    assert report.n == 6 and report.y_true.tolist().count(report.class_names.index("Adenocarcinoma")) == 3


def test_evaluation_can_be_cancelled(qtbot, window, labelled: Path) -> None:  # type: ignore[no-untyped-def]
    ev = window.evaluator
    with qtbot.waitSignal(ev.evaluation_finished, timeout=30000) as blocker:
        assert ev.start(str(labelled))
        assert window.act_cancel.isEnabled() and not ev.act_evaluate.isEnabled()
        window.cancel_job()
    assert blocker.args == ["cancelled"]
    assert ev.view is None and ev.act_evaluate.isEnabled() and not window.act_cancel.isEnabled()


def test_evaluation_without_a_model_offers_the_model_dialog(qtbot, make_window, labelled: Path) -> None:  # type: ignore[no-untyped-def]
    window = make_window(model="nobody/no-such-model")
    with qtbot.waitSignal(window.evaluator.evaluation_finished, timeout=20000) as blocker:
        window.evaluator.start(str(labelled))
    assert blocker.args == ["model-missing"]
    assert window.model_dialog is not None and window.model_dialog.isVisible()
    assert window._pending_after_model == "evaluate"  # a model chosen there runs the evaluation
    window.model_dialog.reject()


def _over_confident_report(n: int = 300, seed: int = 2):  # type: ignore[no-untyped-def]
    """A report of a model right about 70 % of the time that claims far more (a softening temperature fits)."""
    from chaoyang_desktop.core.learn.evaluate import build_report

    names = ("Normal", "Serrated", "Adenocarcinoma", "Adenoma")
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    logits = rng.normal(0, 1, (n, 4))
    logits[np.arange(n), y] += 1.2
    logits *= 4.0
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    return build_report(names, [f"/data/p{i}.png" for i in range(n)], y, probs,
                        model={"model_id": "local/model", "weights_sha256": "ab" * 32, "channel_order": "bgr",
                               "resize": "linear", "temperature": 1.0},
                        data={"source": "/data/labelled", "kind": "folders"})


def test_fit_temperature_shows_before_after_saves_and_offers_it(qtbot, window, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from chaoyang_desktop.core.learn.evaluate import fit_report_temperature
    from chaoyang_desktop.core.model.temperature import TemperatureFile
    from chaoyang_desktop.export.evaluation_report import CALIBRATION_FILE, EVALUATION_FILES
    from chaoyang_desktop.gui.analysis_worker import EvaluationOutcome

    errors: list[str] = []
    report = _over_confident_report()
    view = window.evaluator.show_report(EvaluationOutcome(report, (), "300 labelled images"))
    view._on_error = lambda title, message: errors.append(message)  # noqa: SLF001
    assert not view.calibration_box.isVisible() and not view.save_calibration_button.isEnabled()
    assert not view.use_calibration_button.isEnabled()

    chosen = tmp_path / "cal" / "calibration.json"
    chosen.parent.mkdir()
    asked: list[str] = []

    def fake_save(parent, caption, start, filters):  # type: ignore[no-untyped-def]
        asked.append(start)
        return str(chosen), filters

    monkeypatch.setattr("chaoyang_desktop.gui.evaluation_view.QFileDialog.getSaveFileName", fake_save)
    view.fit_button.click()  # fits, shows before/after, asks where to save
    assert not errors
    expected_file, expected = fit_report_temperature(report)  # the same numbers as `evaluate --fit-temperature`
    fit = expected.calibration_fit
    assert view.calibration_box.isVisible() and not view.fit_button.isEnabled()
    text = view.fit_text.text()
    assert f"{fit.before.ece:.3f} \u2192 {fit.after.ece:.3f}" in text and f"{expected_file.temperature:.3f}" in text
    assert fit.after.ece < fit.before.ece
    assert view.fit_diagram.pixmap() is not None and not view.fit_diagram.pixmap().isNull()
    assert asked and asked[0].endswith("calibration.json")
    saved = TemperatureFile.load(chosen)
    assert saved.temperature == pytest.approx(expected_file.temperature, rel=1e-12) and saved.weights_sha256 == "ab" * 32
    assert view.use_calibration_button.isEnabled()

    # "Use This Calibration" hands the path on; the evaluator forwards it to the window's wiring.
    with qtbot.waitSignal(window.evaluator.calibration_saved, timeout=2000) as blocker:
        view.use_calibration_button.click()
    assert blocker.args == [str(chosen)]
    assert not view.use_calibration_button.isEnabled()

    # The saved report carries the fit: before/after in metrics.json and the calibration file with it.
    out = tmp_path / "eval"
    assert view.save_to(str(out))
    assert sorted(p.name for p in out.iterdir()) == sorted([*EVALUATION_FILES, CALIBRATION_FILE])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["temperature_scaling"]["ece_after"] == pytest.approx(fit.after.ece)
    assert TemperatureFile.load(out / CALIBRATION_FILE).temperature == pytest.approx(saved.temperature, rel=1e-12)


def test_fit_temperature_on_too_few_patches_says_why(qtbot, window, labelled: Path,  # type: ignore[no-untyped-def]
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[str] = []
    monkeypatch.setattr("chaoyang_desktop.gui.main_window.show_error",
                        lambda parent, title, message, details="": shown.append(message))
    monkeypatch.setattr("chaoyang_desktop.gui.evaluation_view.QFileDialog.getSaveFileName",
                        lambda *a: pytest.fail("no save dialog after a refused fit"))
    assert evaluate(qtbot, window, labelled) == "done"
    view = window.evaluator.view
    assert view.report.model["weights_sha256"] and view.report.model["temperature"] == 1.0
    view.fit_button.click()
    assert shown and "at least 20 labelled patches (got 6)" in shown[-1]
    assert not view.calibration_box.isVisible() and view.fit_button.isEnabled()
    assert not view.save_calibration_button.isEnabled() and view.calibration_file is None
