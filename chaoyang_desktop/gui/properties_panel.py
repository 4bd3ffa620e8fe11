"""The slide properties panel: format, image type, size, levels, pixel size, objective, the label and
macro pictures; and a pixel-size override.

A slide without a pixel size cannot be analysed (tiles are a fixed field of view in micrometres);
the engine's error tells the user to set it here, so the panel offers the override.

The image type (H&E brightfield, fluorescence, other) is the domain check's verdict on the slide's
thumbnail (:mod:`chaoyang_desktop.core.analysis.domain`), known once an analysis is previewed or
run; until then it says so instead of guessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from chaoyang_desktop.core.errors import ChaoyangError
from chaoyang_desktop.gui.associated_images import SHOWN, AssociatedPreview, read_image, show_associated_image, title

if TYPE_CHECKING:
    from chaoyang_desktop.core.analysis.domain import DomainCheck
    from chaoyang_desktop.core.slide.reader import Slide

#: The image types the panel names (the first word of :func:`image_type`'s answer).
HE_BRIGHTFIELD = "H&E brightfield"
FLUORESCENCE = "fluorescence"
OTHER = "other"
NOT_CHECKED = "not checked yet"


def slide_facts(slide: Slide) -> list[tuple[str, str]]:
    """``(label, value)`` rows that describe a slide for a pathologist."""
    w, h = slide.dimensions
    if slide.mpp:
        mm = f"{w * slide.mpp / 1000:.2f} \u00d7 {h * slide.mpp / 1000:.2f} mm"
        source = {"metadata": "from the file", "override": "set by you", "assumed": "ASSUMED (not in the file)"}.get(
            slide.mpp_source, slide.mpp_source)
        mpp = f"{slide.mpp:.4f} \u00b5m/px ({source})"
    else:
        mm = "unknown"
        mpp = "unknown: set it below to analyse"
    levels = ", ".join(f"{d:g}" for d in slide.level_downsamples)
    return [
        ("File", slide.path.name),
        ("Format", slide.vendor),
        ("Dimensions", f"{w:,} \u00d7 {h:,} px"),
        ("Physical size", mm),
        ("Pixel size", mpp),
        ("Objective", f"{slide.objective_power:g}\u00d7" if slide.objective_power else "not given"),
        ("Pyramid", f"{slide.level_count} level(s), downsamples {levels}"),
        ("Folder", str(slide.path.parent)),
    ]


def image_type(domain: DomainCheck | Mapping[str, Any] | None) -> tuple[str, str]:
    """``(image type, why)`` from a domain check (a plan's ``domain``, or a result's ``provenance.domain_check``).

    The type is :data:`HE_BRIGHTFIELD`, :data:`FLUORESCENCE`, :data:`OTHER` with the reason in
    parentheses, or :data:`NOT_CHECKED` without a check. A resolution finding says nothing about
    the type of image, so it does not change the answer.
    """
    if isinstance(domain, Mapping):
        from chaoyang_desktop.core.analysis.domain import DomainCheck

        domain = DomainCheck.from_dict(domain)
    if domain is None:
        return NOT_CHECKED, ("The domain check looks at the slide's colours when an analysis is previewed (T) "
                             "or run; it needs the pixel size and the model.")
    found = {f.kind: f.message for f in domain.findings}
    if "fluorescence" in found:
        return FLUORESCENCE, found["fluorescence"]
    if "grayscale" in found:
        return f"{OTHER} (grayscale)", found["grayscale"]
    if "stain" in found:
        return f"{OTHER} (not H&E)", found["stain"]
    share = domain.measurements.get("he_hue_share")
    if share is None:
        return ("brightfield, stain not judged",
                "A bright background, as in brightfield, but too few coloured tissue pixels on the thumbnail to "
                "tell the stain.")
    return HE_BRIGHTFIELD, (f"A bright background, and {share:.0%} of the coloured tissue has H&E's "
                            "pink-to-purple hues.")


class PropertiesPanel(QWidget):
    """Read-only facts, the image type, the label and macro previews, and the pixel-size override."""

    mpp_override = Signal(object)  # float, or None to go back to the file's value

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._slide: Slide | None = None
        #: The associated images shown, by name.
        self.previews: dict[str, AssociatedPreview] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.form = QFormLayout()
        self.form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        layout.addLayout(self.form)
        self.associated_title = QLabel("<b>Label and macro</b>")
        self.associated_row = QHBoxLayout()
        self.associated_row.setContentsMargins(0, 0, 0, 0)
        self.associated_note = QLabel()
        self.associated_note.setWordWrap(True)
        layout.addSpacing(6)
        layout.addWidget(self.associated_title)
        layout.addLayout(self.associated_row)
        layout.addWidget(self.associated_note)
        layout.addSpacing(6)
        row = QHBoxLayout()
        self.mpp_spin = QDoubleSpinBox()
        self.mpp_spin.setDecimals(4)
        self.mpp_spin.setRange(0.05, 50.0)
        self.mpp_spin.setSingleStep(0.01)
        self.mpp_spin.setValue(0.5)
        self.mpp_spin.setSuffix(" \u00b5m/px")
        self.apply_button = QPushButton("Set pixel size")
        self.reset_button = QPushButton("Use file's")
        row.addWidget(self.mpp_spin, 1)
        row.addWidget(self.apply_button)
        row.addWidget(self.reset_button)
        self.override_label = QLabel("Pixel size override (about 0.25 at 40\u00d7, 0.5 at 20\u00d7):")
        self.override_label.setWordWrap(True)
        layout.addWidget(self.override_label)
        layout.addLayout(row)
        layout.addStretch(1)
        self.apply_button.clicked.connect(lambda: self.mpp_override.emit(float(self.mpp_spin.value())))
        self.reset_button.clicked.connect(lambda: self.mpp_override.emit(None))
        self.set_slide(None)

    def set_slide(self, slide: Slide | None) -> None:
        """Describe ``slide`` (None: no slide); its image type is not checked until :meth:`set_domain_check`."""
        self._slide = slide
        while self.form.rowCount():
            self.form.removeRow(0)  # deletes the row's widgets, the image type's too: a new one each time
        self.image_type_label = QLabel()
        self.image_type_label.setWordWrap(True)
        self.image_type_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        enabled = slide is not None
        for w in (self.mpp_spin, self.apply_button, self.override_label):
            w.setEnabled(enabled)
        self.reset_button.setEnabled(enabled and slide.mpp_source == "override")
        self._set_associated(slide)
        if slide is None:
            self.form.addRow(QLabel("No slide open."))
            return
        for label, value in slide_facts(slide):
            v = QLabel(value)
            v.setWordWrap(True)
            v.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            if label == "Pixel size" and (slide.mpp is None or slide.mpp_assumed):
                v.setStyleSheet("color: #b00020; font-weight: 600;")
            self.form.addRow(label, v)
            if label == "Format":
                self.form.addRow("Image type", self.image_type_label)
        self.set_domain_check(None)
        if slide.mpp:
            self.mpp_spin.setValue(slide.mpp)

    def set_domain_check(self, domain: DomainCheck | Mapping[str, Any] | None) -> None:
        """Show the image type the domain check found (None: not checked yet)."""
        kind, why = image_type(domain)
        self.image_type_label.setText(kind)
        self.image_type_label.setToolTip(why)
        self.image_type_label.setStyleSheet("color: palette(mid);" if domain is None else "")

    def show_plan(self, ready: Any) -> None:
        """A plan arrived (a preview's or a run's ``PlanReady``): show its domain check."""
        plan = getattr(ready, "plan", ready)
        self.set_domain_check(getattr(plan, "domain", None))

    # ----- label and macro ---------------------------------------------------------------------------
    def _set_associated(self, slide: Slide | None) -> None:
        for preview in self.previews.values():
            self.associated_row.removeWidget(preview)
            preview.hide()
            preview.deleteLater()
        self.previews = {}
        while self.associated_row.count():  # the stretch
            self.associated_row.takeAt(0)
        names = [n for n in SHOWN if slide is not None and n in slide.associated_image_names]
        notes: list[str] = []
        for name in names:
            assert slide is not None
            try:
                image = read_image(slide, name)
            except (ChaoyangError, ValueError) as exc:
                notes.append(f"The {name} image cannot be read: {exc}")
                continue
            preview = AssociatedPreview(name, image)
            preview.clicked.connect(lambda _=False, n=name: self.open_associated(n))
            self.associated_row.addWidget(preview, 0, Qt.AlignmentFlag.AlignBottom)
            self.previews[name] = preview
        self.associated_row.addStretch(1)
        self.associated_title.setVisible(slide is not None)
        if slide is not None and not names:
            notes.append("This file has no label or macro image.")
        elif self.previews:
            items = " and ".join(f"View \u203a {title(n)} Image" for n in self.previews)
            notes.append(f"Click to enlarge (also {items}).")
        self.associated_note.setText(" ".join(notes))
        self.associated_note.setVisible(slide is not None)

    def open_associated(self, name: str) -> None:
        """Show the open slide's ``name`` image in its own window."""
        show_associated_image(self.window(), self._slide, name)
