"""One running app per user: a second launch hands its paths to the first and exits.

A double-clicked slide while the app is open must go to the open window, not start a second
copy (with a second model in memory). The first instance listens on a per-user QLocalServer;
a later one connects, sends the absolute paths as JSON and quits.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

log = logging.getLogger(__name__)

_TIMEOUT_MS = 1500


def default_server_name() -> str:
    user = getpass.getuser()
    return "chaoyang-desktop-" + hashlib.sha1(user.encode()).hexdigest()[:12]


class SingleInstance(QObject):
    """Listen for paths from later launches, or send ours to the running instance."""

    paths_received = Signal(list)

    def __init__(self, name: str | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name or default_server_name()
        self._server: QLocalServer | None = None

    def send_to_running(self, paths: list[str]) -> bool:
        """True when another instance took the paths (then this process should exit)."""
        socket = QLocalSocket()
        socket.connectToServer(self.name)
        if not socket.waitForConnected(_TIMEOUT_MS):
            return False
        payload = json.dumps([str(Path(p).resolve()) for p in paths]).encode() + b"\n"
        socket.write(payload)
        ok = socket.waitForBytesWritten(_TIMEOUT_MS)
        socket.disconnectFromServer()
        return ok

    def listen(self) -> bool:
        """Become the running instance; a stale socket left by a crash is removed first."""
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.name):
            QLocalServer.removeServer(self.name)
            if not server.listen(self.name):
                log.warning("Single-instance server unavailable: %s", server.errorString())
                return False
        server.newConnection.connect(self._on_connection)
        self._server = server
        return True

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server.deleteLater()
            self._server = None

    def _on_connection(self) -> None:
        assert self._server is not None
        while self._server.hasPendingConnections():
            socket = self._server.nextPendingConnection()
            buffer = bytearray()

            def read(sock: QLocalSocket = socket, buf: bytearray = buffer) -> None:
                buf.extend(bytes(sock.readAll().data()))
                if buf.endswith(b"\n"):
                    try:
                        paths = json.loads(buf.decode())
                    except (UnicodeDecodeError, json.JSONDecodeError):
                        log.warning("Ignored a malformed message on the single-instance socket.")
                        paths = []
                    if isinstance(paths, list) and all(isinstance(p, str) for p in paths):
                        self.paths_received.emit(paths)
                    sock.readyRead.disconnect()
                    sock.abort()
                    sock.deleteLater()

            socket.readyRead.connect(read)
            if socket.bytesAvailable():
                read()
