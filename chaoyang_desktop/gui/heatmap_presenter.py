"""The heatmap layer on the slide view and the summary panel, drawn from the session's result.

Depends on the widgets it paints, not on the window: :meth:`show` starts a layer for a new
result, :meth:`refresh` redraws it (and the summary, with each annotation's composition) from
the arrays the analysis controller keeps up to date, :meth:`restyle` applies the overlay controls.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from chaoyang_desktop.core.analysis.results import TILE_PENDING, TILE_QC
from chaoyang_desktop.gui.overlay import HeatmapLayer, OverlayStyle

if TYPE_CHECKING:
    from chaoyang_desktop.core.analysis.composition import AnnotationComposition
    from chaoyang_desktop.core.analysis.pipeline import AnalysisPlan
    from chaoyang_desktop.core.analysis.results import AnalysisResult
    from chaoyang_desktop.gui.slide_view import SlideView
    from chaoyang_desktop.gui.summary_panel import SummaryPanel


def summary_notes(r: AnalysisResult) -> tuple[str, str]:
    """The summary's note (an assumed pixel size) and warning (analysed although refused)."""
    note = f"Areas assume {r.provenance.mpp:g} \u00b5m/px (not in the file)." if r.provenance.mpp_assumed else ""
    warning = ""
    check = r.provenance.domain_check or {}
    if check.get("findings"):  # overridden now, or a stored analysis that was
        findings = " ".join(f.get("message", "") for f in check.get("findings", []))
        warning = f"Analysed anyway, outside what the model can judge; the classes may mean nothing. {findings}"
    return note, warning


class HeatmapPresenter:
    """Keeps the view's heatmap layer and the summary panel in step with a result."""

    def __init__(self, view: SlideView, summary: SummaryPanel) -> None:
        self.view = view
        self.summary = summary
        self.layer: HeatmapLayer | None = None

    def show(self, plan: AnalysisPlan, style: OverlayStyle) -> None:
        """A new layer for a result on this plan's grid (filled by :meth:`refresh`)."""
        self.layer = HeatmapLayer(plan.grid, style)
        self.view.set_heatmap(self.layer)

    def clear(self) -> None:
        self.layer = None
        self.view.set_heatmap(None)
        self.summary.clear()

    def refresh(self, r: AnalysisResult, style: OverlayStyle, running: bool,
                compositions: list[AnnotationComposition]) -> float:
        """Redraw the layer and the summary from the result; returns the milliseconds it took."""
        if self.layer is None:
            return 0.0
        started = time.perf_counter()
        hm, cnt = r.heatmap()
        pending = None
        waiting = r.status == TILE_PENDING
        if np.any(waiting) and running:  # the cells still to come are marked while it runs
            pending = r.grid.covered_cells(r.t_col[waiting], r.t_row[waiting])
        flagged = r.status == TILE_QC
        hm_qc = r.grid.covered_cells(r.t_col[flagged], r.t_row[flagged]) if np.any(flagged) else None
        top_spread = r.top_spread()
        hm_spread = r.cell_mean(top_spread) if top_spread is not None else None
        self.layer.set_cells(hm, cnt, pending, hm_qc, hm_spread)
        self.layer.set_style(style)
        self.view.heatmap_changed()
        self.summary.set_summary(r.summary(), style.class_colors, *summary_notes(r))
        self.summary.set_compositions(compositions)
        return 1000.0 * (time.perf_counter() - started)

    def restyle(self, style: OverlayStyle) -> None:
        if self.layer is not None:
            self.layer.set_style(style)
            self.view.heatmap_changed()
        panel = self.summary
        if panel.summary is not None:
            panel.set_summary(panel.summary, style.class_colors, panel.totals.text().partition("\n")[2],
                              panel.warning.text() if panel.warning.isVisibleTo(panel) else "")
