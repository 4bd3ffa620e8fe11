"""The PySide6 desktop viewer. This is the only package that imports Qt."""
