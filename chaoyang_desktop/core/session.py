"""One open slide and everything known about it, without Qt.

A :class:`SlideSession` is created when a slide opens and dropped when another one opens or
the slide closes, so nothing of one slide can be shown on another: its analyses (the whole
slide's and any number of regions'), its annotations with their undo history and the selection
all go with it (its jobs are held by the analysis controller, which follows the session). The Qt
views render from the session; controllers change it and persist what belongs to the user
(regions and annotations, per slide fingerprint, in the user's data folder).

napari's split between a Qt-free ``ViewerModel`` and its ``_qt`` views is the pattern: the
session has no widgets, and its listeners are plain callables, so it can be tested and used
from scripts without a display.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from chaoyang_desktop.core.slide.annotation_store import AnnotationStore
from chaoyang_desktop.core.slide.annotations import Annotation, AnnotationHistory
from chaoyang_desktop.core.slide.region_store import RegionStore
from chaoyang_desktop.core.slide.roi import Roi

if TYPE_CHECKING:
    from chaoyang_desktop.core.analysis.composition import AnnotationComposition
    from chaoyang_desktop.core.analysis.pipeline import AnalysisPlan, TileScheduler
    from chaoyang_desktop.core.analysis.results import AnalysisResult
    from chaoyang_desktop.core.slide.reader import Slide

#: What changed, passed to the listeners.
CHANGED_ANNOTATIONS = "annotations"
CHANGED_SELECTION = "selection"
CHANGED_REGIONS = "regions"


class SlideSession:
    """The state of one open slide.

    Attributes:
        path: The slide's file.
        slide: The open slide (closed by :meth:`close`).
        mpp_override: The pixel size the user set for it, if any.
        roi: The region whose analysis is shown and run (None: the whole slide).
        plan, result: The analysis shown: its plan and the result mirrored from the worker.
        preview_plan: The last plan of the current settings and region (tissue and tiles).
        scheduler: The running analysis's tile queue (to send visible tiles first).
        regions: The regions analysed on this slide, oldest first (the Analyses panel).
        annotations: The annotations, with undo and redo.
        selected: The uids of the selected annotations.
        out_of_domain_allowed: The user chose to analyse it although the domain check refused it.
    """

    def __init__(
        self,
        path: str,
        slide: Slide,
        mpp_override: float | None = None,
        *,
        regions: RegionStore | None = None,
        annotations: AnnotationStore | None = None,
    ) -> None:
        self.path = path
        self.slide = slide
        self.mpp_override = mpp_override
        self._region_store = regions or RegionStore()
        self._annotation_store = annotations or AnnotationStore()
        self.fingerprint = slide.fingerprint()
        self.roi: Roi | None = None
        self.plan: AnalysisPlan | None = None
        self.result: AnalysisResult | None = None
        self.preview_plan: AnalysisPlan | None = None
        self.scheduler: TileScheduler | None = None
        self.regions: list[Roi] = self._region_store.load(self.fingerprint)
        self.annotations = AnnotationHistory()
        self.annotations.reset(tuple(self._annotation_store.load(self.fingerprint)))
        self.selected: tuple[str, ...] = ()
        self.out_of_domain_allowed = False
        self.listeners: list[Callable[[str], None]] = []

    def _emit(self, what: str) -> None:
        for listener in list(self.listeners):
            listener(what)

    # ----- analyses --------------------------------------------------------------------------------
    def remember_region(self, roi: Roi) -> None:
        """Add a region to the slide's analyses (once), kept across sessions."""
        if all(r.digest() != roi.digest() for r in self.regions):
            self.regions.append(roi)
            self._region_store.save(self.fingerprint, self.regions)
            self._emit(CHANGED_REGIONS)

    def drop_unanalysed_target(self) -> bool:
        """Forget a region that is neither analysed nor the selection; True when it was the target.

        A region drawn and not analysed yet is what Analyze would run on only while its
        annotations are selected: deleted, undone or deselected, it must not linger as a target.
        """
        if self.roi is None or any(r.digest() == self.roi.digest() for r in self.regions):
            return False
        selection = self.selection_region()
        if selection is not None and selection.digest() == self.roi.digest():
            return False
        self.roi = None
        self.preview_plan = None
        return True

    def region_by_digest(self, digest: str | None) -> Roi | None:
        """The region an analysis used, from its provenance's ``roi_digest``."""
        if not digest:
            return None
        for roi in [self.roi, *self.regions]:
            if roi is not None and roi.digest() == digest:
                return roi
        return None

    # ----- annotations ----------------------------------------------------------------------------
    def annotation_list(self) -> tuple[Annotation, ...]:
        return self.annotations.state

    def selected_annotations(self) -> list[Annotation]:
        chosen = set(self.selected)
        return [a for a in self.annotations.state if a.uid in chosen]

    def select(self, uids: Iterable[str]) -> None:
        """Select annotations by uid (unknown ones are ignored), in annotation order."""
        wanted = set(uids)
        selected = tuple(a.uid for a in self.annotations.state if a.uid in wanted)
        if selected != self.selected:
            self.selected = selected
            self._emit(CHANGED_SELECTION)

    def edit(self, change: Callable[[AnnotationHistory], object]) -> None:
        """Apply an edit to the annotations (one undo step), save them and tell the listeners."""
        change(self.annotations)
        self._after_annotation_change()

    def undo(self) -> str | None:
        label = self.annotations.undo()
        if label is not None:
            self._after_annotation_change()
        return label

    def redo(self) -> str | None:
        label = self.annotations.redo()
        if label is not None:
            self._after_annotation_change()
        return label

    def _after_annotation_change(self) -> None:
        self._annotation_store.save(self.fingerprint, list(self.annotations.state))
        alive = {a.uid for a in self.annotations.state}
        self.selected = tuple(u for u in self.selected if u in alive)
        self._emit(CHANGED_ANNOTATIONS)

    def selection_region(self) -> Roi | None:
        """The union of the selected annotations as one region to analyse; None when none is selected."""
        chosen = self.selected_annotations()
        if not chosen:
            return None
        polygons = tuple(p for a in chosen for p in a.polygons)
        names = [a.name for a in chosen if a.name]
        return Roi(polygons, source=" + ".join(names) if names else "drawn")

    def compositions(self) -> list[AnnotationComposition]:
        """Each annotation's class composition in the analysis shown (none without one)."""
        from chaoyang_desktop.core.analysis.composition import annotation_compositions

        if self.result is None or self.result.n_done == 0 or not self.annotations.state:
            return []
        return annotation_compositions(self.result, self.annotations.state)

    # ----- lifetime -------------------------------------------------------------------------------
    def close(self) -> None:
        self.listeners.clear()
        self.scheduler = None
        self.slide.close()
