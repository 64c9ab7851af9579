"""``python -m ecgcore images``: one PNG per record and kind, the image a model of that kind sees."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ecgcore.cli import main
from ecgcore.data.preprocess import Preprocessing, shape_record
from ecgcore.data.representations import gaf, to_uint8
from ecgcore.io import read_record
from tests.factories import make_deepfake_dir


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> list[Path]:
    root = make_deepfake_dir(tmp_path_factory.mktemp("df"), 2, seed=3)
    return sorted(root.rglob("*.asc"))


def test_images_writes_one_png_per_record_and_kind(records, tmp_path):
    out = tmp_path / "png"
    for kind in ("chart", "gaf", "mtf", "rp"):
        assert main(["images", *map(str, records), "--kind", kind, "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"{r.stem}-{k}.png" for r in records for k in ("chart", "gaf", "mtf", "rp"))
    chart = Image.open(out / f"{records[0].stem}-chart.png")
    assert chart.mode == "L" and chart.size == (224, 224)
    field = Image.open(out / f"{records[0].stem}-gaf.png")
    assert field.mode == "RGB" and field.size == (64, 64)
    # red = GASF of lead I, blue = lead V2 of the band-passed record
    rec = read_record(records[0])
    x = shape_record(rec, Preprocessing(leads=rec.leads, fs=rec.fs, duration=rec.duration, normalize="none"))
    rgb = np.asarray(field)
    np.testing.assert_array_equal(rgb[..., 0], to_uint8(gaf(x[rec.leads.index("I")], 64), -1, 1))
    np.testing.assert_array_equal(rgb[..., 2], to_uint8(gaf(x[rec.leads.index("V2")], 64), -1, 1))


def test_images_layout_size_and_bad_record(records, tmp_path, capsys):
    args = [
        "images",
        str(records[0]),
        "--kind",
        "chart",
        "--layout",
        "6x2+II",
        "--width",
        "500",
        "--height",
        "140",
    ]
    assert main([*args, "--out", str(tmp_path)]) == 0
    assert Image.open(tmp_path / f"{records[0].stem}-chart.png").size == (500, 140)
    assert main(["images", str(tmp_path / "nothing.asc"), "--kind", "rp", "--out", str(tmp_path)]) == 2
    assert "nothing.asc" in capsys.readouterr().err
