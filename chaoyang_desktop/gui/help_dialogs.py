"""Help > Keyboard Shortcuts and Help > User Guide.

The shortcuts table is made from the window's own QActions each time it opens (menu by menu, in
menu order), so it lists exactly the keys that work and cannot go stale as actions change. The
guide is ``resources/user-guide.md`` (one file: the repository's readers and the app read the
same one; installed with the other resources), shown with Qt's Markdown renderer.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLineEdit,
    QMainWindow,
    QMenu,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from chaoyang_desktop.resources import resource_path

#: The guide's file name in the resources folder.
USER_GUIDE = "user-guide.md"
#: Menu column of actions that are in no menu of the menu bar.
NO_MENU = "(anywhere in the window)"


@dataclass(frozen=True)
class ShortcutRow:
    """One action with keys: its menu path (``"View \u203a Magnification"``), its name and its keys."""

    menu: str
    command: str
    keys: tuple[str, ...]
    action: QAction


def fit_on_screen(widget: QWidget, wanted: QSize) -> QSize:
    """``wanted``, made smaller where the screen's free area (less a margin) is smaller."""
    screen = widget.screen() or QGuiApplication.primaryScreen()
    if screen is None:
        return wanted
    avail = screen.availableGeometry()
    return QSize(min(wanted.width(), int(avail.width() * 0.9)), min(wanted.height(), int(avail.height() * 0.9)))


def plain_text(text: str) -> str:
    """A menu text without its mnemonic marker and trailing ellipsis: ``"&Open\u2026"`` -> ``"Open"``."""
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").removesuffix("\u2026").removesuffix("...")


def key_texts(action: QAction) -> tuple[str, ...]:
    """The action's shortcuts as this platform writes them (``Ctrl+R``, ``\u2318R`` on macOS)."""
    return tuple(k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts() if not k.isEmpty())


def shortcut_rows(window: QMainWindow) -> list[ShortcutRow]:
    """Every action of ``window`` that has a shortcut: the menu bar's in menu order, then the others."""
    rows: list[ShortcutRow] = []
    seen: dict[int, QAction] = {}  # holding the wrappers keeps their ids unique

    def walk(menu: QMenu, path: str) -> None:
        for act in menu.actions():
            if act.isSeparator():
                continue
            sub = act.menu()
            if isinstance(sub, QMenu):
                walk(sub, f"{path} \u203a {plain_text(sub.title())}")
                continue
            if id(act) in seen:
                continue
            seen[id(act)] = act
            keys = key_texts(act)
            if keys:
                rows.append(ShortcutRow(path, plain_text(act.text()), keys, act))

    for top in window.menuBar().actions():
        menu = top.menu()
        if isinstance(menu, QMenu):
            walk(menu, plain_text(menu.title()))
    for act in window.actions() + window.findChildren(QAction):
        if id(act) in seen or act.isSeparator():
            continue
        seen[id(act)] = act
        keys = key_texts(act)
        if keys:
            rows.append(ShortcutRow(NO_MENU, plain_text(act.text()), keys, act))
    return rows


class ShortcutsDialog(QDialog):
    """A filterable table of the window's shortcuts: menu, command, keys."""

    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self.setObjectName("shortcuts_dialog")
        self.setWindowTitle("Keyboard Shortcuts")
        self.rows = shortcut_rows(window)
        layout = QVBoxLayout(self)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter, e.g. zoom or Ctrl")
        self.filter.setClearButtonEnabled(True)
        layout.addWidget(self.filter)
        self.table = QTableWidget(len(self.rows), 3)
        self.table.setHorizontalHeaderLabels(["Keys", "Command", "Menu"])
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        for i, row in enumerate(self.rows):
            for j, text in enumerate(("   or   ".join(row.keys), row.command, row.menu)):
                item = QTableWidgetItem(text)
                if j == 0:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                if not row.action.isEnabled():
                    item.setToolTip("Not available now (for example without an open slide).")
                self.table.setItem(i, j, item)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        layout.addWidget(self.table, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)
        self.filter.textChanged.connect(self._apply_filter)
        self.resize(fit_on_screen(self, QSize(680, 620)))

    def shown_commands(self) -> list[str]:
        """The commands of the rows the filter leaves visible, top to bottom."""
        return [self.rows[i].command for i in range(len(self.rows)) if not self.table.isRowHidden(i)]

    def _apply_filter(self, text: str) -> None:
        words = text.lower().split()
        for i, row in enumerate(self.rows):
            hay = " ".join((*row.keys, row.command, row.menu)).lower()
            self.table.setRowHidden(i, not all(w in hay for w in words))


def user_guide_text() -> str:
    """The guide's Markdown, from the app's resources folder."""
    return resource_path(USER_GUIDE).read_text(encoding="utf-8")


class UserGuideDialog(QDialog):
    """The user guide, rendered; web links open in the browser."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("user_guide_dialog")
        self.setWindowTitle("Chaoyang Desktop User Guide")
        layout = QVBoxLayout(self)
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(True)
        try:
            self.browser.setMarkdown(user_guide_text())
        except OSError as exc:
            self.browser.setPlainText(f"The user guide is missing from this installation ({exc}). Reinstall the app, "
                                      "or read resources/user-guide.md in its repository.")
        layout.addWidget(self.browser, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)
        self.resize(fit_on_screen(self, QSize(760, 720)))


def show_shortcuts(window: QMainWindow) -> ShortcutsDialog:
    """Help > Keyboard Shortcuts: a table of the window's actions as they are now (one dialog at a time)."""
    for old in window.findChildren(ShortcutsDialog):
        old.close()  # made again, so it lists what the window has now
    dialog = ShortcutsDialog(window)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    return dialog


def show_user_guide(window: QWidget) -> UserGuideDialog:
    """Help > User Guide (raising the one already open)."""
    for dialog in window.findChildren(UserGuideDialog):
        if dialog.isVisible():
            dialog.raise_()
            dialog.activateWindow()
            return dialog
    dialog = UserGuideDialog(window)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    return dialog
