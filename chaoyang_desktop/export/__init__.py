"""Qt-free writers for analysis results: CSV, GeoJSON, NPZ, summary JSON, heatmap images, the
per-slide PDF report (content in ``report_data``, layout in ``pdf_report``) and ``cohort.csv``.

Every writer goes through :mod:`chaoyang_desktop.core.atomic`, so a crash or a full disk
leaves either the old file or the new one, never half of one.
"""
