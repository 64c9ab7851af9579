"""Datasets (PTB-XL, PTB-XL+, DeepFake ECG, any WFDB folder) behind one cached tensor store.

``open_source("ptbxl:bundled")`` opens a dataset; ``load_cached(dataset, Preprocessing())`` gives
its preprocessed signals as one memory-mapped array. Torch is imported only by
:mod:`ecgcore.data.transforms` and by :func:`generate_deepfake` when it runs.
"""

from ecgcore.data.base import DatasetError, ECGDataset, open_source
from ecgcore.data.cache import CachedDataset, Preprocessing, load_cached, preprocess_record
from ecgcore.data.deepfake import ensure_demo_set, generate_deepfake
from ecgcore.data.splits import in_half, ptbxl_halves

__all__ = [
    "CachedDataset",
    "DatasetError",
    "ECGDataset",
    "Preprocessing",
    "ensure_demo_set",
    "generate_deepfake",
    "in_half",
    "load_cached",
    "open_source",
    "preprocess_record",
    "ptbxl_halves",
]
