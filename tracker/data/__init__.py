"""Dataset readers and writers: VOT sequences, VOT2016 per-frame PNG masks, DAVIS, synthetic.

Every reader returns `Sequence` objects (frames HxWx3 uint8 RGB read on demand, masks HxW
bool); bad input raises `DatasetError`, naming the file and line at fault. The synthetic
benchmark lives in `tracker.data.synth` (imported on demand).
"""

from tracker.data.dataset import load_dataset, load_sequence
from tracker.data.davis import load_davis_dataset, load_davis_sequence, write_davis_list, write_davis_sequence
from tracker.data.errors import DatasetError
from tracker.data.images import JPEG_QUALITY
from tracker.data.sequence import FileSequence, InMemorySequence, Sequence
from tracker.data.trackable import check_all_trackable, check_trackable
from tracker.data.vot import (
    ANCHOR_INTERVAL,
    anchor_values,
    load_vot_dataset,
    load_vot_sequence,
    write_vot_dataset,
    write_vot_list,
    write_vot_sequence,
)

__all__ = [
    "ANCHOR_INTERVAL",
    "DatasetError",
    "FileSequence",
    "InMemorySequence",
    "JPEG_QUALITY",
    "Sequence",
    "anchor_values",
    "check_all_trackable",
    "check_trackable",
    "load_dataset",
    "load_davis_dataset",
    "load_davis_sequence",
    "load_sequence",
    "load_vot_dataset",
    "load_vot_sequence",
    "write_davis_list",
    "write_davis_sequence",
    "write_vot_dataset",
    "write_vot_list",
    "write_vot_sequence",
]
