"""Baseline trackers of the paper: the 1-stage centroid tracker (Eq. 5) and the first-frame fine-tuned FCN."""
