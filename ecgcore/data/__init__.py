"""Datasets (PTB-XL, PTB-XL+, DeepFake ECG, any WFDB folder, PhysioNet/CinC Challenge folders) behind one cached tensor store.

``open_source("ptbxl:bundled")`` opens a dataset (specs and the registry of kinds:
:mod:`ecgcore.data.sources`); ``load_cached(dataset, Preprocessing())`` gives its preprocessed
signals as one memory-mapped array; ``preprocess_record`` is the same transformation for one record.
Torch is imported only by :mod:`ecgcore.data.transforms` and by :func:`generate_deepfake` when it runs.

Every module that registers a source kind is imported here, so ``open_source`` knows them all.
"""

from ecgcore.data import (  # noqa: F401  (they register their source kinds / inputs)
    challenge,
    chapman,
    deepfake,
    frequency,
    image_inputs,
    ptbxl,
    wfdb_dir,
)
from ecgcore.data.base import DatasetError, ECGDataset
from ecgcore.data.cache import CachedDataset, load_cached
from ecgcore.data.deepfake import ensure_demo_set, generate_deepfake
from ecgcore.data.preprocess import Preprocessing, preprocess_record
from ecgcore.data.sources import (
    SourceSpec,
    SourceSpecError,
    format_spec,
    open_source,
    parse_spec,
    register_source,
    source_kinds,
)
from ecgcore.data.splits import in_half, ptbxl_halves

__all__ = [
    "CachedDataset",
    "DatasetError",
    "ECGDataset",
    "Preprocessing",
    "SourceSpec",
    "SourceSpecError",
    "ensure_demo_set",
    "format_spec",
    "generate_deepfake",
    "in_half",
    "load_cached",
    "open_source",
    "parse_spec",
    "preprocess_record",
    "ptbxl_halves",
    "register_source",
    "source_kinds",
]
