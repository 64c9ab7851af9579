"""The reproduction experiments: definitions as data, the published numbers, and what runs them.

Modules: :mod:`.definitions` (experiments and presets as data), :mod:`.g12ec` (the PTB-XL -> G12EC
study's experiments, registered into the same table), :mod:`.vision` (the image studies'), :mod:`.published` (the seed
study's numbers), :mod:`.prepare` (check and make the data), :mod:`.planning` (where each run stands,
launch workers), :mod:`.tables` (build, render and write a table), :mod:`.reproduction` (all of it in
this process, for the command line).

What the dashboard's Results page calls::

    from ecgcore import experiments as ex
    ex.list_experiments()                                  # name, title, description, needs_ptbxl
    sources = ex.data_sources(["ptbxl:/data/ptbxl"])       # or DataSources(...); settings fill the gaps
    ex.check_data("table2", sources)                       # raises DataRequired with what / where to get it
    ex.prepare_data("table1", "quick", sources, progress)  # generate DeepFake / measure PTB-XL-A labels
    ex.plan_frame(ex.plan("table1", "quick", sources))     # which runs are done, running, missing, waiting
    ex.launch_missing("table1", "quick", sources)          # worker processes for what can start now
    ex.build_table("table1", "quick", sources)             # ours / baseline / published, long form
    ex.table_notes("table1", "quick", sources)             # what a reader must know beside it
"""

from ecgcore.experiments import g12ec, vision  # noqa: F401  (register the G12EC and image studies' experiments)
from ecgcore.experiments.definitions import (
    EXPERIMENTS,
    PRESETS,
    DataSources,
    Experiment,
    Preset,
    RunSpec,
    get_experiment,
    get_preset,
    list_experiments,
)
from ecgcore.experiments.planning import PlannedRun, launch_missing, plan, plan_frame
from ecgcore.experiments.prepare import DataRequired, check_data, data_sources, prepare_data
from ecgcore.experiments.published import SEED_STUDY
from ecgcore.experiments.reproduction import Reproduction, reproduce
from ecgcore.experiments.tables import build_table, table_notes, to_markdown

__all__ = [
    "EXPERIMENTS",
    "PRESETS",
    "SEED_STUDY",
    "DataRequired",
    "DataSources",
    "Experiment",
    "PlannedRun",
    "Preset",
    "Reproduction",
    "RunSpec",
    "build_table",
    "check_data",
    "data_sources",
    "get_experiment",
    "get_preset",
    "launch_missing",
    "list_experiments",
    "plan",
    "plan_frame",
    "prepare_data",
    "reproduce",
    "table_notes",
    "to_markdown",
]
