"""The PySide6 desktop viewer. This is the only package that imports Qt.

Modules are named after what they own: ``main_window`` (menus, docks, opening, running jobs),
``slide_view`` with ``view_state``, ``tile_loader``, ``minimap`` and ``scale_bar`` (looking at a
slide), ``overlay`` and ``overlay_panel`` (the heatmap and its controls), ``inspector``,
``summary_panel``, ``properties_panel``, ``gallery`` (patches), ``analysis_worker`` (the one
background thread that runs the engine), ``settings`` and ``settings_dialog``, ``model_dialog``,
and ``view_script`` (``chaoyang-desktop view``). ``chaoyang_desktop.app`` builds the application.
"""
