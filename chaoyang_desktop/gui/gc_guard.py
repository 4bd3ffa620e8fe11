"""Python's cyclic garbage collector runs on the GUI thread only, while a main window is open.

Python collects cycles in whichever thread allocates when a threshold is crossed. When that is
the worker thread (an evaluation importing a module, an analysis building batches) and the
garbage holds a Qt object, Qt destroys a GUI object off the GUI thread and the app crashes: a
segfault in "Garbage-collecting" on the worker was seen while an evaluation started. pyqtgraph
solves it the same way (``pyqtgraph.util.garbage_collector``): turn automatic collection off and
collect from a timer on the GUI thread, generation by generation as the thresholds say.

Windows :func:`acquire` the guard when they are built and :func:`release` it once their worker
has stopped; automatic collection comes back when the last window is gone, so a test session or
a script that closes its windows is left as it was.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QTimer

#: How often the GUI thread looks at the collector's counts.
INTERVAL_MS = 500

_users = 0
_timer: QTimer | None = None
_was_enabled = True


def collect() -> int:
    """Collect the generations whose thresholds are exceeded (what automatic collection would do)."""
    t0, t1, t2 = gc.get_threshold()
    c0, c1, c2 = gc.get_count()
    found = 0
    if c0 > t0:
        found += gc.collect(0)
        if c1 > t1:
            found += gc.collect(1)
            if c2 > t2:
                found += gc.collect(2)
    return found


def acquire() -> None:
    """Collect only on the GUI thread from now on (call on the GUI thread, with a QApplication)."""
    global _users, _timer, _was_enabled
    if _users == 0:
        _was_enabled = gc.isenabled()
        gc.disable()
        _timer = QTimer(QCoreApplication.instance())
        _timer.setInterval(INTERVAL_MS)
        _timer.timeout.connect(collect)
        _timer.start()
    _users += 1


def release() -> None:
    """One window less; the last one restores automatic collection (its threads have stopped)."""
    global _users, _timer
    if _users == 0:
        return
    _users -= 1
    if _users == 0:
        if _timer is not None:
            _timer.stop()
            _timer.deleteLater()
            _timer = None
        gc.collect()
        if _was_enabled:
            gc.enable()


def active() -> bool:
    return _users > 0
