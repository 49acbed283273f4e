"""pixtrack: pixel-wise object tracking (Song, Li, Wang) and its evaluation harness.

`tracker` holds the paper's method; `baselines` the 1-stage and FCN trackers; `evaluation`
the metrics, protocols, tables and plots. Every tracker speaks one online interface::

    state = tracker.init(frame, mask)          # HxWx3 uint8, HxW bool
    prob, state = tracker.track(frame, state)  # HxW float32 in [0, 1]
"""

__version__ = "0.1.0"
