"""GUI responsiveness while an analysis runs: event-loop stalls and pan/zoom frame times.

The real main window (``chaoyang_desktop.gui.main_window.MainWindow``, offscreen by default)
opens a generated slide and runs the analysis on its worker thread, as a user would. Meanwhile:

- a 5 ms ``QTimer`` on the GUI thread measures how late each tick fires: the longest lateness
  is the longest event-loop stall (the worst time the window could not react);
- every 100 ms the view pans or zooms (alternating) and is repainted at once; the time from the
  view change to the end of the paint is the frame time;
- the times the live heatmap is redrawn: the longest gap between two redraws during the run;
- at the end (``--seconds``) the run is cancelled: the time from Cancel to the end of the job, and
  the tiles classified after Cancel.

The same is measured for a few seconds before the analysis (idle baseline). Paint cost depends
on the platform plugin: offscreen renders in software, like a machine without GPU drivers.

Examples::

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_gui.py --model tiny --seconds 30
    python benchmarks/bench_gui.py --model base --precision bf16 --seconds 60
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

try:
    from benchmarks.common import command_line, ensure_model, ensure_slide, fmt, load_avg, machine_facts, print_table, save_json
except ImportError:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.common import command_line, ensure_model, ensure_slide, fmt, load_avg, machine_facts, print_table, save_json

import chaoyang_desktop.core  # noqa: F401  - before torch, as in the app (sets OMP_WAIT_POLICY)

TICK_MS = 5
MOVE_EVERY_S = 0.1


class Probe:
    """Event-loop lateness and frame times, collected on the GUI thread."""

    def __init__(self, window: Any) -> None:
        from PySide6.QtCore import QTimer

        self.window = window
        self.view = window.slide_view
        self.stalls_ms: list[float] = []
        self.frames_ms: list[float] = []
        self._last = time.perf_counter()
        self._last_move = self._last
        self._step = 0
        self.moving = False
        self.timer = QTimer()
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)

    def start(self) -> None:
        self._last = time.perf_counter()
        self.timer.start()

    def reset(self) -> None:
        self.stalls_ms.clear()
        self.frames_ms.clear()
        self._last = time.perf_counter()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.stalls_ms.append(max(0.0, (now - self._last) * 1000 - TICK_MS))
        self._last = now
        if self.moving and now - self._last_move >= MOVE_EVERY_S:
            self._last_move = now
            self._move()
            self._last = time.perf_counter()  # the frame itself is measured separately

    def _move(self) -> None:
        state = self.view.state
        self._step += 1
        t0 = time.perf_counter()
        if self._step % 2:
            w = self.view.width()
            state.pan_screen(w * 0.15 * (1 if (self._step // 8) % 2 else -1), 0.0)
        else:
            state.zoom_by(1.25 if (self._step // 4) % 2 else 0.8)
        self.view.repaint()
        self.frames_ms.append((time.perf_counter() - t0) * 1000)


def wait_ms(ms: int) -> None:
    """Run the event loop for ``ms`` as the app does (``QTest.qWait`` keeps the GIL while it sleeps,
    which starves the analysis worker thread and made the first version of this benchmark report
    a tenth of the real throughput)."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def _summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"n": 0, "median": None, "p95": None, "p99": None, "max": None}
    s = sorted(values)
    return {"n": len(s), "median": statistics.median(s), "p95": s[int(0.95 * (len(s) - 1))],
            "p99": s[int(0.99 * (len(s) - 1))], "max": s[-1]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="tiny", help="tiny (default), base, or a model folder")
    p.add_argument("--slide", type=Path, default=None)
    p.add_argument("--size", type=int, default=10_000, help="side of the generated slide (default 10000)")
    p.add_argument("--precision", default="auto")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--threads", type=int, default=0,
                   help="PyTorch CPU threads (default 0: PyTorch's, every core)")
    p.add_argument("--seconds", type=float, default=30.0, help="measure at most this long while analysing")
    p.add_argument("--idle-seconds", type=float, default=3.0)
    p.add_argument("--no-pan", action="store_true", help="keep the view still (analysis throughput in the GUI)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)

    from PySide6.QtCore import QSettings
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from chaoyang_desktop.gui.main_window import MainWindow
    from chaoyang_desktop.gui.settings import AppSettings

    model_dir = ensure_model(args.model)
    slide = args.slide or ensure_slide(args.size)
    facts = machine_facts()
    print(f"# {command_line()}\n# {facts}\n# Qt platform: {os.environ.get('QT_QPA_PLATFORM')}", flush=True)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    with tempfile.TemporaryDirectory(prefix="gui-bench-") as home:
        # Settings and caches of a throw-away user, so nothing comes from (or goes to) the real one.
        for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "CHAOYANG_DATA_DIR"):
            os.environ[var] = str(Path(home) / var.lower())
        settings = AppSettings(QSettings(str(Path(home) / "settings.ini"), QSettings.Format.IniFormat))
        settings.set("ui/confirm_analysis", False)
        settings.set("engine/device", "cpu")
        settings.set("engine/precision", args.precision)
        settings.set("engine/batch_size", args.batch_size)
        settings.set("analysis/workers", args.workers)
        settings.set("engine/threads", args.threads)
        window = MainWindow(settings, model=str(model_dir))
        window.resize(1400, 900)
        window.show()
        wait_ms(200)
        if not window.open_paths([str(slide)]):
            raise SystemExit(f"could not open {slide}: {window.last_error}")
        deadline = time.monotonic() + 60
        while not window.slide_view.is_idle() and time.monotonic() < deadline:
            wait_ms(10)
        view = window.slide_view
        # Zoomed in to 0.25 (a 10x view on a 20x slide), in the middle: tiles must be read and
        # drawn as the view moves, as when a user looks around during the run.
        view.state.set_scale(0.25)
        view.state.center_on(view.state.l0_width / 2, view.state.l0_height / 2)

        probe = Probe(window)
        probe.start()
        probe.moving = not args.no_pan
        wait_ms(int(args.idle_seconds * 1000))
        idle_stalls, idle_frames = list(probe.stalls_ms), list(probe.frames_ms)

        finished: list[str] = []
        batches: list[Any] = []
        window.analysis_finished.connect(finished.append)
        first_batch_at: list[float] = []

        def on_batch(job: int, update: Any) -> None:
            if not batches:
                first_batch_at.append(time.perf_counter() - t0)
            batches.append(update)

        window.host.batch_ready.connect(on_batch)
        refreshed: list[float] = []
        window.heatmap_refreshed.connect(lambda: refreshed.append(time.perf_counter()))
        probe.reset()
        t0 = time.perf_counter()
        window.run_analysis(fresh=True)
        loop = QEventLoop()
        window.analysis_finished.connect(lambda status: loop.quit())
        QTimer.singleShot(int(args.seconds * 1000), loop.quit)
        loop.exec()
        busy_s = time.perf_counter() - t0
        busy_stalls, busy_frames = list(probe.stalls_ms), list(probe.frames_ms)
        probe.moving = False
        cancel_s: float | None = None
        after_cancel = 0
        if not finished:
            done_at_cancel = batches[-1].done if batches else 0
            t_cancel = time.perf_counter()
            window.cancel_job()
            end = time.monotonic() + 60
            while not finished and time.monotonic() < end:
                wait_ms(5)
            cancel_s = time.perf_counter() - t_cancel
            after_cancel = (batches[-1].done if batches else 0) - done_at_cancel
        probe.timer.stop()
        done = batches[-1].done if batches else 0
        total = batches[-1].total if batches else 0
        # The pipeline's own clock: from the start of the streamed run (after model load and plan).
        run_s = batches[-1].elapsed_s if batches else 0.0
        first_s = next((time_to_first for time_to_first in first_batch_at), None)
        window.close()
        wait_ms(50)
    del app

    rows = []
    for name, stalls, frames in (("idle (no analysis)", idle_stalls, idle_frames),
                                 ("while analysing", busy_stalls, busy_frames)):
        st, fr = _summary(stalls), _summary(frames)
        rows.append({"phase": name, "stall": st, "frame": fr})
    print()
    print(f"GUI responsiveness: {slide.name}, model {args.model} ({args.precision}), batch {args.batch_size}, "
          f"{args.workers} readers; {done} of {total} tiles in {busy_s:.1f} s ({done / busy_s:.1f} tiles/s, view "
          f"{'still' if args.no_pan else 'panning and zooming'}; first batch {fmt(first_s)} s after Analyze, "
          f"streamed run {done / run_s if run_s else 0:.1f} tiles/s); load {load_avg()}; "
          f"{facts['cpu']}, {facts['cores']} cores; Qt {os.environ.get('QT_QPA_PLATFORM')}")
    print_table(["phase", "longest stall ms", "p99 stall ms", "stalls > 100 ms", "frames", "frame median ms",
                 "frame p95 ms", "frame max ms"],
                [[r["phase"], fmt(r["stall"]["max"], 1), fmt(r["stall"]["p99"], 1),
                  str(sum(1 for s in (idle_stalls if r["phase"].startswith("idle") else busy_stalls) if s > 100)),
                  str(r["frame"]["n"]), fmt(r["frame"]["median"], 1), fmt(r["frame"]["p95"], 1),
                  fmt(r["frame"]["max"], 1)] for r in rows])
    # Redraws with classified tiles: from the first batch (model loading and planning come before).
    during = [t for t in refreshed if t0 + (first_s or 0.0) <= t <= t0 + busy_s]
    gaps = [b - a for a, b in zip(during, during[1:])]
    print(f"live heatmap: {len(during)} redraws in {busy_s:.1f} s, longest gap {fmt(max(gaps) if gaps else None, 2)} s, "
          f"median gap {fmt(statistics.median(gaps) if gaps else None, 2)} s; cancel: "
          + (f"{cancel_s:.2f} s from Cancel to the end of the job, {after_cancel} tiles classified after it"
             if cancel_s is not None else "not needed (the run finished)"))
    print(f"reproduce: {command_line()}")
    save_json(args.json, {"command": command_line(), "machine": facts, "rows": rows, "tiles_done": done,
                          "first_batch_s": first_s, "run_s": run_s,
                          "tiles_total": total, "busy_s": busy_s, "status": finished[0] if finished else None,
                          "heatmap_gaps_s": gaps, "cancel_s": cancel_s, "tiles_after_cancel": after_cancel})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
