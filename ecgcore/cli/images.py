"""``python -m ecgcore images RECORD ... --kind chart|gaf|gadf|mtf|rp --out DIR``: records as PNG images.

Writes ``DIR/<record>-<kind>.png``, the same image a model of that representation sees (band-passed
millivolts; a chart in grey, fields of leads I, II and V2 as the red, green and blue channels). With
``--size`` a field is drawn larger for viewing (models use 64 x 64).
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ecgcore.data.representations import IMAGE_KINDS, LAYOUTS

    parser.add_argument("records", nargs="+", help="record files (WFDB .hea/.dat/.mat, DeepFake .asc, CSV)")
    parser.add_argument("--kind", required=True, choices=IMAGE_KINDS, help="chart or field (gaf = summation)")
    parser.add_argument("--layout", default="3x4+II", choices=sorted(LAYOUTS), help="chart layout")
    parser.add_argument("--width", type=int, help="chart width in pixels (default: the layout's, 224)")
    parser.add_argument("--height", type=int, help="chart height in pixels (default: the layout's, 224)")
    parser.add_argument("--no-grid", action="store_true", help="draw charts without the mm grid")
    parser.add_argument("--size", type=int, default=64, help="field size in pixels (default 64)")
    parser.add_argument("--raw", action="store_true", help="no 0.5-40 Hz band-pass before drawing")
    parser.add_argument("--fs", type=float, help="sampling rate of CSV records (Hz)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNG files")


def main(args: argparse.Namespace) -> int:
    from PIL import Image

    from ecgcore.data.preprocess import Preprocessing, shape_record
    from ecgcore.data.representations import chart_layout, signal_image
    from ecgcore.io import read_record
    from ecgcore.paths import atomic_write_bytes

    changes = {k: v for k, v in (("width", args.width), ("height", args.height)) if v is not None}
    if args.no_grid:
        changes["grid"] = False
    layout = chart_layout(args.layout, **changes)
    for path in args.records:
        record = read_record(path, fs=args.fs)
        prep = Preprocessing(
            leads=record.leads,
            fs=record.fs,
            duration=record.duration,
            bandpass=not args.raw,
            normalize="none",
        )
        signal = shape_record(record, prep)
        image = signal_image(signal, record.fs, record.leads, args.kind, layout=layout, size=args.size)
        pil = Image.fromarray(image[0] if image.shape[0] == 1 else image[:3].transpose(1, 2, 0))
        buffer = io.BytesIO()
        pil.save(buffer, format="PNG")
        target = args.out / f"{record.record_id}-{args.kind}.png"
        atomic_write_bytes(target, buffer.getvalue())
        print(target)
    return 0
