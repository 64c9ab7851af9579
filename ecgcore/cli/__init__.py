"""Command line: ``python -m ecgcore <command> ...`` (also installed as ``ecglab``).

Each command lives in its own module under :mod:`ecgcore.cli`, which defines
``add_arguments(parser)`` and ``main(args) -> int``. Modules are imported only when their command
runs, so ``python -m ecgcore measure`` never pays for importing torch.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys

#: command -> (module under ecgcore.cli, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("data", "summarise datasets and generate DeepFake ECGs"),
    "measure": ("measure", "measure HR, PR, QRS, QT of records; evaluate against annotations"),
    "train": ("train", "train a model and record the run"),
    "runs": ("runs", "list, show, cancel and resume runs"),
    "predict": ("predict", "predict intervals or classes for records with a finished run"),
    "explain": ("explain", "attributions per lead and wave, with faithfulness checks"),
    "report": ("report", "write a per-record PDF/PNG report"),
    "reproduce": ("reproduce", "reproduce the published result tables"),
    "tune": ("tune", "hyperparameter search on Optuna (staged; every trial a run)"),
    "images": ("images", "draw records as ECG charts or GAF / MTF / RP images (PNG)"),
    "bench": ("bench", "measure training and prediction speed"),
    "beats": ("beats", "beat-by-beat analysis of long records (detect, classify, cluster); its evaluation"),
}


#: What argparse should read as a negative number, not an option: argparse's own pattern misses
#: exponents and -inf / -nan, so "--lr -1e-3" said "expected one argument".
NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$|^-(inf|infinity|nan)$", re.IGNORECASE)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ecgcore", description="ECG Lab, headless.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        build_parser().print_help()
        return 0 if not argv or argv[0] in {"-h", "--help"} else 2
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(f"ecgcore.cli.{COMMANDS[name][0]}")
    parser = argparse.ArgumentParser(prog=f"python -m ecgcore {name}", description=COMMANDS[name][1])
    parser._negative_number_matcher = NEGATIVE_NUMBER  # "--lr -1e-3" is a value, not an unknown option
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        return int(module.main(args) or 0)
    except (ValueError, FileNotFoundError) as exc:  # bad input: a clear message, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM during a step that stops cleanly (a cache build)
        print(f"interrupted{': ' + str(exc) if str(exc) else ''}", file=sys.stderr)
        return 130
    finally:
        _print_repair_notices()


def _print_repair_notices() -> None:
    """Say once, on stderr, that a damaged run store was rebuilt while the command ran."""
    store = sys.modules.get("ecgcore.runs.store")
    if store is not None:
        for notice in store.pending_notices():
            print(f"note: {notice}", file=sys.stderr)
