"""Label maps: the Challenge's SNOMED CT classes, the PTB-XL SCP crosswalk, and label sets over both."""

from ecgcore.data.labels.snomed import (
    LABEL_SET_NAMES,
    RARE_MIN,
    STUDY_18,
    Diagnosis,
    LabelError,
    LabelSet,
    SnomedMap,
    challenge_map,
    class_counts,
    crosswalk,
    label_set,
    parse_dx,
    rare_classes,
)

__all__ = [
    "LABEL_SET_NAMES",
    "RARE_MIN",
    "STUDY_18",
    "Diagnosis",
    "LabelError",
    "LabelSet",
    "SnomedMap",
    "challenge_map",
    "class_counts",
    "crosswalk",
    "label_set",
    "parse_dx",
    "rare_classes",
]
