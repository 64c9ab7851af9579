"""The dashboard's pages, in menu order: ``app.py`` builds the navigation from this list and the Home
page its "Where to go" links, so a new page appears in both."""

from __future__ import annotations

from typing import NamedTuple


class PageEntry(NamedTuple):
    """One page: its script, menu title, Material icon and the line Home shows for it."""

    script: str
    title: str
    icon: str
    blurb: str


PAGES = [
    PageEntry("dashboard/home.py", "Home", ":material/home:", "what is here"),
    PageEntry("dashboard/explorer.py", "Explorer", ":material/monitor_heart:", "browse records on ECG paper"),
    PageEntry(
        "dashboard/compare.py", "Compare datasets", ":material/compare:", "labels and intervals side by side"
    ),
    PageEntry("dashboard/train.py", "Train", ":material/model_training:", "start a run"),
    PageEntry(
        "dashboard/results.py", "Results", ":material/leaderboard:", "compare runs and reproduce the tables"
    ),
    PageEntry(
        "dashboard/record.py",
        "Record & saliency",
        ":material/troubleshoot:",
        "predict and explain one record",
    ),
    PageEntry(
        "dashboard/images.py",
        "Images & studies",
        ":material/image:",
        "ECG images, GAF/MTF/RP fields, fusion models and their studies",
    ),
    PageEntry(
        "dashboard/holter.py", "Holter", ":material/ecg_heart:", "beat-by-beat analysis of a long recording"
    ),
    PageEntry("dashboard/settings.py", "Settings", ":material/settings:", "where your datasets are"),
]
