"""Jobs have handles: each job's messages reach its own handle, in order, and end with ``ended``."""

from __future__ import annotations

from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import QCoreApplication, QEvent

from chaoyang_desktop.gui.analysis_worker import AnalysisRequest, PlanReady, SlideJob, WorkerHost


@pytest.fixture
def host(qapp):  # type: ignore[no-untyped-def]
    h = WorkerHost()
    yield h
    assert h.shutdown(30000)
    # Deleted here, on the GUI thread, not whenever Python's collector gets to it (on any thread).
    h.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert not shiboken6.isValid(h)


def job(cmu_slide: Path, app_settings, tiny_model: Path, **kw: object) -> SlideJob:  # type: ignore[no-untyped-def]
    app_settings.set("engine/device", "cpu")
    return SlideJob(str(cmu_slide), None, app_settings.model_request(str(tiny_model)),
                    AnalysisRequest(tile_um=64.0), **kw)  # type: ignore[arg-type]


def record(handle) -> list[str]:  # type: ignore[no-untyped-def]
    seen: list[str] = []
    handle.started.connect(lambda: seen.append("started"))
    handle.plan_ready.connect(lambda ready: seen.append("plan" if isinstance(ready, PlanReady) else "?"))
    handle.batch_ready.connect(lambda u: seen.append("batch") if not seen or seen[-1] != "batch" else None)
    handle.replaced.connect(lambda: seen.append("replaced"))
    handle.finished.connect(lambda status, payload: seen.append(f"finished:{status}"))
    handle.failed.connect(lambda m, d: seen.append("failed"))
    handle.ended.connect(lambda: seen.append("ended"))
    return seen


def test_a_preview_reports_its_plan_then_ends_and_its_handle_goes(qtbot, host, cmu_slide, app_settings,
                                                                  tiny_model) -> None:  # type: ignore[no-untyped-def]
    handle = host.submit(job(cmu_slide, app_settings, tiny_model, preview_only=True))
    seen = record(handle)
    with qtbot.waitSignal(handle.ended, timeout=30000):
        pass
    assert seen == ["started", "plan", "finished:done", "ended"]
    assert handle.outcome == "done" and not handle.running and not host.is_busy()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert not shiboken6.isValid(handle)  # the host deleted it, on this thread, after its last message


def test_a_detached_handle_hears_only_its_end(qtbot, host, cmu_slide, app_settings,
                                              tiny_model) -> None:  # type: ignore[no-untyped-def]
    handle = host.submit(job(cmu_slide, app_settings, tiny_model, preview_only=True))
    seen = record(handle)
    handle.detach()
    with qtbot.waitSignal(handle.ended, timeout=30000):
        pass
    assert seen == ["ended"] and handle.outcome == "done"


def test_a_new_job_replaces_the_running_one_unless_it_runs_in_the_background(
        qtbot, host, cmu_slide, app_settings, tiny_model, slow_model) -> None:  # type: ignore[no-untyped-def]
    first = host.submit(job(cmu_slide, app_settings, tiny_model, fresh=True))
    first_seen = record(first)
    with qtbot.waitSignal(first.batch_ready, timeout=30000):
        pass
    second = host.submit(job(cmu_slide, app_settings, tiny_model, preview_only=True))
    second_seen = record(second)
    with qtbot.waitSignal(second.ended, timeout=30000):
        pass
    # The first was told at once, stopped at its next check, and said how it ended.
    assert first_seen[:4] == ["started", "plan", "batch", "replaced"] and first_seen[-2:] == ["finished:cancelled", "ended"]
    assert first.outcome == "cancelled" and second.outcome == "done" and second_seen[-1] == "ended"
    # Moved to the background, a run is not cancelled by the next job, which waits behind it.
    third = host.submit(job(cmu_slide, app_settings, tiny_model, fresh=True))
    with qtbot.waitSignal(third.batch_ready, timeout=30000):
        pass
    third.background = True
    fourth = host.submit(job(cmu_slide, app_settings, tiny_model, preview_only=True))
    order: list[str] = []
    third.ended.connect(lambda: order.append("third"))
    fourth.ended.connect(lambda: order.append("fourth"))
    qtbot.waitUntil(lambda: len(order) == 2, timeout=120000)
    assert order == ["third", "fourth"] and third.outcome == "done" and not third.cancelled
