"""Slides and what lies on them: reading and decoding, the tile grid, tissue, regions and annotations.

Nothing here knows the model (a contract in pyproject.toml keeps it so).
"""
