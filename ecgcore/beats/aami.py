"""ANSI/AAMI EC57 beat classes and the MIT-BIH annotation symbols each one groups.

EC57 groups the MIT-BIH beat labels into five classes: N (normal and bundle branch block beats),
S (supraventricular ectopic), V (ventricular ectopic), F (fusion of ventricular and normal) and
Q (paced, fusion of paced and normal, unclassifiable). The table below is EC57's: the five symbols
the issue names per class, plus the rarer MIT-BIH beat codes EC57 puts in the same classes
(B bundle branch block -> N, n supraventricular escape -> S, r R-on-T -> V, ? unclassifiable -> Q).
Every other annotation (rhythm ``+``, noise ``~``, artefact ``|``, comments) is not a beat.
"""

from __future__ import annotations

import numpy as np

#: The five EC57 classes, in the order models output them.
CLASSES: tuple[str, ...] = ("N", "S", "V", "F", "Q")

#: MIT-BIH beat symbol -> EC57 class.
SYMBOL_TO_CLASS: dict[str, str] = {
    **dict.fromkeys(("N", "L", "R", "e", "j", "B"), "N"),
    **dict.fromkeys(("A", "a", "J", "S", "n"), "S"),
    **dict.fromkeys(("V", "E", "r"), "V"),
    "F": "F",
    **dict.fromkeys(("/", "f", "Q", "?"), "Q"),
}

#: Class name -> index in :data:`CLASSES`.
CLASS_INDEX: dict[str, int] = {c: i for i, c in enumerate(CLASSES)}


def is_beat(symbol: str) -> bool:
    """Whether a MIT-BIH annotation symbol marks a beat (as opposed to rhythm, noise or a comment)."""
    return symbol in SYMBOL_TO_CLASS


def classes_of(symbols: list[str] | np.ndarray) -> np.ndarray:
    """EC57 class indices of beat symbols (every symbol must be a beat)."""
    return np.array([CLASS_INDEX[SYMBOL_TO_CLASS[s]] for s in symbols], dtype=np.int64)
