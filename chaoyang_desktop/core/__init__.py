"""The Qt-free engine: model profiles and loading, preprocessing, inference, slides, tiling,
tissue detection, the streamed analysis pipeline and its results.

Nothing in this package imports PySide6; the GUI and the CLI are two front ends over it.
"""
