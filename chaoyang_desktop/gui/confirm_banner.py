"""The banner over the slide that says what an analysis would do, before it runs.

It shows the plan's numbers (tissue tiles, tile size, area, stored tiles found) and, when the
input check refuses the slide, why, before anything is classified. *Run analysis* and *Not now*
are its two answers.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtWidgets import QComboBox, QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from chaoyang_desktop.core.analysis.results import TILE_DONE, TILE_QC
from chaoyang_desktop.core.slide.tile_qc import count_by_reason

if TYPE_CHECKING:
    from chaoyang_desktop.gui.analysis_worker import PlanReady


#: What the fast CPU mode measured (docs/performance.md §1: ViT-B, 41 real H&E patches, 2-core AMX CPU).
FAST_MODE_TIP = ("bf16 on this CPU's bf16 hardware: 10.7 against 2.5 tiles/s for ViT-B (4.3\u00d7), with the same "
                 "top class as fp32 on all 41 real H&E test patches (probabilities within 0.07). "
                 "Settings \u25b8 Inference \u25b8 Precision switches it back.")
FAST_MODE_SPEEDUP = 4.3


class ConfirmBanner(QFrame):
    """A light-blue strip with the plan's description and the two buttons."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("confirm_banner")
        self.setStyleSheet("#confirm_banner { background: #e3f2fd; border-bottom: 1px solid #90caf9; }"
                           "#confirm_banner QLabel { color: #0d2b45; }")
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 6, 10, 6)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.run_button = QPushButton("Run analysis")
        self.run_button.setDefault(True)
        self.cancel_button = QPushButton("Not now")
        # Offered where the CPU has bf16 in hardware and the model runs in fp32 (see fast_mode_hint).
        self.fast_button = QPushButton("Use Fast CPU Mode")
        self.fast_button.setToolTip(FAST_MODE_TIP)
        self.fast_button.hide()
        # Overlap presets: 50 % halves the stride, four times the tiles, and a smoother heatmap.
        self.overlap_combo = QComboBox()
        self.overlap_combo.addItem("No overlap", 0.0)
        self.overlap_combo.addItem("50 % overlap", 0.5)
        self.overlap_combo.setToolTip("Tiles overlapping by half are averaged per heatmap cell: a finer, smoother "
                                      "map for four times the tiles (and the time).")
        row.addWidget(self.label, 1)
        row.addWidget(self.overlap_combo)
        row.addWidget(self.fast_button)
        row.addWidget(self.run_button)
        row.addWidget(self.cancel_button)
        self.hide()

    def ask(self) -> None:
        """Show it while the plan is being made."""
        self.label.setText("Preparing the preview of tissue and tiles\u2026")
        self.run_button.setEnabled(False)
        self.show()
        self.run_button.setFocus()

    def offer_fast_mode(self, offered: bool, seconds_per_tile: float | None = None, tiles: int = 0) -> None:
        """Show the fast CPU mode button, with the time it would save when a rate was measured."""
        self.fast_button.setVisible(offered)
        if offered and seconds_per_tile and tiles:
            now = seconds_per_tile * tiles
            self.fast_button.setToolTip(f"About {_duration(now)} now, about {_duration(now / FAST_MODE_SPEEDUP)} "
                                        f"in the fast mode. {FAST_MODE_TIP}")
        else:
            self.fast_button.setToolTip(FAST_MODE_TIP)

    def set_estimate(self, seconds_per_tile: float | None, tiles: int) -> None:
        """The time the run would take at the last run's speed, after the plan's numbers."""
        if seconds_per_tile and tiles:
            self.label.setText(self.label.text() + f" About {_duration(seconds_per_tile * tiles)} at the last "
                               "run's speed.")

    def describe(self, ready: PlanReady, in_region: bool) -> None:
        """The plan's numbers; without a tile to classify, why not (and no Run)."""
        plan = ready.plan
        n = plan.n_tiles
        if n == 0:
            self.label.setText(f"<b>Nothing to analyse.</b> {html.escape(plan.empty_reason)}")
            self.run_button.setEnabled(False)
            return
        where = "in the selected region" if in_region else "in the whole slide"
        area = n * (plan.provenance.tile_um / 1000.0) ** 2
        cached = ""
        if ready.from_cache:
            done = int(np.count_nonzero((ready.status == TILE_DONE) | (ready.status == TILE_QC)))
            cached = " Stored result found: shown at once." if done == n else f" {done} done in an earlier run: resumes."
        if plan.provenance.qc:
            counts = count_by_reason(plan.qc_flags[plan.qc_flags != 0])
            found = ", ".join(f"{k} {name}" for name, k in counts.items() if k)
            left_out = int(np.count_nonzero(plan.qc_flags))
            qc = (f" Quality control leaves out {left_out:,} (from the overview: {found});" if left_out else
                  " Quality control:") + " glass, pen, blur and dark tiles are also left out as they are read."
        else:
            qc = " Quality control is off: every tissue tile is classified."
        check = ""
        if not plan.domain.passed:  # said before the run, not only after it is refused
            check = (f"<br><b style='color:#b35900'>\u26a0 The model cannot judge this slide:</b> "
                     f"{html.escape(plan.domain.reason)}")
        self.label.setText(
            f"<b>{n:,} tissue tile{'s' if n != 1 else ''}</b> {where} (of {plan.grid.t_cols * plan.grid.t_rows:,} "
            f"in the grid), {plan.provenance.tile_um:.0f} \u00b5m each, about {area:.2f} mm\u00b2. "
            f"Striped: tissue found; outlined: tiles to classify.{qc}{cached}{check}")
        self.run_button.setEnabled(True)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
