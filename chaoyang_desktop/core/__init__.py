"""The Qt-free engine: model profiles and loading, preprocessing, inference, slides, tiling,
tissue detection, the streamed analysis pipeline and its results.

Nothing in this package imports PySide6; the GUI and the CLI are two front ends over it.
"""

import os as _os

# Tile readers and the model share the CPU. OpenMP's default "active" wait makes PyTorch's idle
# intra-op threads spin for a while after every operator, taking the cores the readers need to
# decode the next tiles: on 2 cores with a small model that halved end-to-end throughput
# (docs/performance.md). Passive waiting costs a big model nothing measurable. It only works if
# set before torch loads the OpenMP runtime, hence here, before any core module imports torch;
# a value the user set wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
