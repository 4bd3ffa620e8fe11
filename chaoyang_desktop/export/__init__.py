"""Qt-free writers for analysis results: CSV, GeoJSON, NPZ, summary JSON and heatmap images.

Every writer goes through :mod:`chaoyang_desktop.core.atomic`, so a crash or a full disk
leaves either the old file or the new one, never half of one.
"""
