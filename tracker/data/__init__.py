"""Dataset readers and writers: VOT sequences, VOT2016 per-frame PNG masks, DAVIS, synthetic."""
