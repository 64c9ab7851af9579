"""The project's one vocabulary: lead names, superclasses and regression targets.

Everything that names a lead, a class or a target imports it from here, so the order of the
leads in an array, of the classes in a probability vector and of the targets in a regression
output is defined exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The standard 12 leads in their usual order.
LEADS_12: tuple[str, ...] = (
    "I",
    "II",
    "III",
    "aVR",
    "aVL",
    "aVF",
    "V1",
    "V2",
    "V3",
    "V4",
    "V5",
    "V6",
)
#: The 8 independent leads used by the DeepFake generator and the regression models.
LEADS_8: tuple[str, ...] = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
#: Leads that are linear combinations of I and II (Einthoven / Goldberger).
LIMB_DERIVED: tuple[str, ...] = ("III", "aVR", "aVL", "aVF")

#: PTB-XL diagnostic superclasses, in the order of every label vector and probability vector.
SUPERCLASSES: tuple[str, ...] = ("NORM", "MI", "STTC", "CD", "HYP")
SUPERCLASS_NAMES: dict[str, str] = {
    "NORM": "Normal ECG",
    "MI": "Myocardial infarction",
    "STTC": "ST/T change",
    "CD": "Conduction disturbance",
    "HYP": "Hypertrophy",
}


@dataclass(frozen=True)
class Target:
    """A regression target: its key, a display name and its unit."""

    key: str
    name: str
    unit: str


#: Interval regression targets, in the order of every regression output.
TARGETS: tuple[Target, ...] = (
    Target("hr", "Heart rate", "bpm"),
    Target("pr", "PR interval", "ms"),
    Target("qrs", "QRS duration", "ms"),
    Target("qt", "QT interval", "ms"),
)
TARGET_KEYS: tuple[str, ...] = tuple(t.key for t in TARGETS)
TARGETS_BY_KEY: dict[str, Target] = {t.key: t for t in TARGETS}

_LEAD_ALIASES: dict[str, str] = {name.lower(): name for name in LEADS_12}
_LEAD_ALIASES.update({"lead i": "I", "lead ii": "II", "lead iii": "III", "d1": "I", "d2": "II", "d3": "III"})


def canonical_lead(name: str) -> str:
    """Return the canonical spelling of a lead name (``AVR``, ``avr``, ``aVR`` -> ``aVR``).

    Raises
    ------
    ValueError
        If ``name`` is not one of the 12 standard leads under any usual spelling.
    """
    key = " ".join(str(name).strip().lower().split())
    if key in _LEAD_ALIASES:
        return _LEAD_ALIASES[key]
    raise ValueError(f"unknown lead name {name!r}; expected one of {', '.join(LEADS_12)}")


def parse_targets(spec: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Parse ``"hr,pr,qrs,qt"`` (or a list) into target keys in the canonical order."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    keys = {item.strip().lower() for item in items if item.strip()}
    unknown = keys - set(TARGET_KEYS)
    if unknown or not keys:
        raise ValueError(
            f"unknown targets {sorted(unknown) or spec!r}; expected a subset of {', '.join(TARGET_KEYS)}"
        )
    return tuple(k for k in TARGET_KEYS if k in keys)


def parse_leads(spec: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Parse ``"I,II,V1"`` / ``"8"`` / ``"12"`` (or a list) into canonical lead names."""
    if isinstance(spec, str) and spec.strip() in {"8", "12"}:
        return LEADS_8 if spec.strip() == "8" else LEADS_12
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    return tuple(canonical_lead(item) for item in items if str(item).strip())


#: The one colour map of saliency shading, in the app (plotly) and the PDF report (matplotlib), and its key.
SALIENCY_COLOURMAP = "YlOrRd"
SALIENCY_KEY = "attribution (share of the largest, 0-1)"
