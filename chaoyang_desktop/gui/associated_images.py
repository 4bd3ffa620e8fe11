"""The pictures a scanner stores beside the pyramid: the label and the macro (overview) photograph.

A pathologist checks the label (case number, stain, block) and the macro image (the whole glass,
with pen marks and where the scanned area lies) before reading a slide, as QuPath and ASAP show
them. :class:`AssociatedPreview` is the small picture in the slide properties;
:class:`AssociatedImageDialog` shows one picture scaled to fit its window. Pixels come from
:meth:`Slide.read_associated_image <chaoyang_desktop.core.slide.reader.Slide.read_associated_image>`,
read when asked for (they are small: a few hundred kilobytes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QGuiApplication, QIcon, QImage, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from chaoyang_desktop.core.errors import ChaoyangError
from chaoyang_desktop.gui.dialogs import show_error
from chaoyang_desktop.gui.tile_loader import rgb_to_qimage

if TYPE_CHECKING:
    from chaoyang_desktop.core.slide.reader import Slide

#: The associated images the viewer offers, in the order shown; OpenSlide's names.
SHOWN = ("label", "macro")
_TITLES = {"label": "Label", "macro": "Macro", "thumbnail": "Thumbnail"}
_WHAT = {
    "label": "the slide's label, as the scanner photographed it",
    "macro": "the scanner's overview photograph of the whole glass slide",
    "thumbnail": "the scanner's own small picture of the scanned area",
}
#: Longer side of a preview in the slide properties, in pixels.
PREVIEW_SIDE = 150


def title(name: str) -> str:
    """``"label"`` -> ``"Label"``; other vendors' names as they are, capitalised."""
    return _TITLES.get(name, name[:1].upper() + name[1:])


def read_image(slide: Slide, name: str) -> QImage:
    """One associated image of ``slide`` as a QImage (GUI thread).

    Raises:
        KeyError: The slide has none of that name.
        ChaoyangError: Its data cannot be decoded.
        ValueError: The slide was closed.
    """
    return rgb_to_qimage(slide.read_associated_image(name))


class ScaledPicture(QWidget):
    """Paints an image as large as fits, keeping its proportions, centred (never cropped)."""

    def __init__(self, image: QImage, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image = image
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(80, 60)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        return self.image.size()

    def drawn_rect(self) -> QRectF:
        """Where the image is drawn: the largest rectangle of its proportions inside the widget."""
        iw, ih = max(1, self.image.width()), max(1, self.image.height())
        k = min(self.width() / iw, self.height() / ih)
        w, h = iw * k, ih * k
        return QRectF((self.width() - w) / 2.0, (self.height() - h) / 2.0, w, h)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt name)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.drawImage(self.drawn_rect(), self.image)
        p.end()


class AssociatedImageDialog(QDialog):
    """One associated image of one slide, scaled to fit the window; resizable, not modal."""

    def __init__(self, image: QImage, slide_name: str, slide_path: str, name: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.slide_path = slide_path
        self.setObjectName(f"associated_{name}_dialog")
        self.setWindowTitle(f"{title(name)} Image \u2014 {slide_name}")
        layout = QVBoxLayout(self)
        self.picture = ScaledPicture(image)
        layout.addWidget(self.picture, 1)
        what = _WHAT.get(name, "a picture stored in the slide file")
        self.caption = QLabel(f"{what[:1].upper()}{what[1:]}: {image.width():,} \u00d7 {image.height():,} px, "
                              "scaled to fit this window.")
        self.caption.setWordWrap(True)
        layout.addWidget(self.caption)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)
        self.resize(self._first_size(image))

    def _first_size(self, image: QImage) -> QSize:
        """The image at 1:1 when it fits in most of the screen, else scaled down to fit there."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        avail = screen.availableGeometry().size() if screen is not None else QSize(1280, 800)
        max_w, max_h = int(avail.width() * 0.8), int(avail.height() * 0.8) - 90
        k = min(1.0, max_w / max(1, image.width()), max_h / max(1, image.height()))
        return QSize(max(360, round(image.width() * k) + 24), max(200, round(image.height() * k) + 90))


def show_associated_image(parent: QWidget, slide: Slide | None, name: str) -> AssociatedImageDialog | None:
    """Show ``name`` of ``slide`` in a dialog (raising the one already open); None when there is nothing."""
    if slide is None:
        return None
    path = str(slide.path)
    for dialog in parent.findChildren(AssociatedImageDialog):
        if dialog.slide_path == path and dialog.name == name and dialog.isVisible():
            dialog.raise_()
            dialog.activateWindow()
            return dialog
    try:
        image = read_image(slide, name)
    except KeyError:
        show_error(parent, f"No {title(name).lower()} image", f"{slide.path.name} has no {name} image.")
        return None
    except (ChaoyangError, ValueError) as exc:
        show_error(parent, f"Cannot show the {title(name).lower()} image", str(exc))
        return None
    dialog = AssociatedImageDialog(image, slide.path.name, path, name, parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    return dialog


def close_associated_images(parent: QWidget, keep_path: str | None = None) -> None:
    """Close the dialogs that show another slide's pictures than ``keep_path``'s (None: all of them)."""
    for dialog in parent.findChildren(AssociatedImageDialog):
        if dialog.slide_path != keep_path:
            dialog.close()


class AssociatedPreview(QToolButton):
    """A small associated image with its name under it; a click shows it large."""

    def __init__(self, name: str, image: QImage, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.setObjectName(f"associated_{name}_preview")
        pixmap = QPixmap.fromImage(image.scaled(PREVIEW_SIDE, PREVIEW_SIDE, Qt.AspectRatioMode.KeepAspectRatio,
                                                Qt.TransformationMode.SmoothTransformation))
        self.setIcon(QIcon(pixmap))
        self.setIconSize(pixmap.size())
        self.setText(title(name))
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
        self.setAutoRaise(True)
        self.setToolTip(f"{title(name)} image ({image.width():,} \u00d7 {image.height():,} px): click to enlarge")
