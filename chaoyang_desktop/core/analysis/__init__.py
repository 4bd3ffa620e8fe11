"""Analysing a slide: the plan, the input check, the tile pipeline, results, their files and the cache."""
