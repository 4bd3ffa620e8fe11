"""Cohorts over a Ray cluster: the only package that imports Ray (``pip install ".[cluster]"``).

:mod:`.events` and :mod:`.availability` import no Ray, so front ends can name the events and
say how to install Ray without it; :mod:`.ray_cohort` runs the slides on the cluster.
"""
