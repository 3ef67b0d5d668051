"""The tiny recipes that ``slkd-demo`` and ``bench/study.py`` share, importable without running the demo.

- :mod:`.tiny_nets`: the one tiny Restormer definition (demo, study and tests derive theirs from it).
- :mod:`.demo_recipe`: the demo's teacher/student networks, scikit-image data, losses and option builders.
- :mod:`.runs`: training one options dict through ``python -m slkd_basicsr.tools.train``.
- :mod:`.evaluation`: held-out restoration scores and CPU latency of a trained network (loaded by
  :func:`slkd_basicsr.compat.checkpoints.load_network`).
"""
