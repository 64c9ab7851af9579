"""The source registry: one parser of ``kind:path;option=value`` specs, typed options, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecgcore.data import (
    SourceSpecError,
    format_spec,
    open_source,
    parse_spec,
    register_source,
    source_kinds,
)
from ecgcore.data.base import ECGDataset
from ecgcore.data.deepfake import DeepFake
from ecgcore.data.ptbxl import PTBXL
from ecgcore.data.sources import SOURCES
from ecgcore.data.wfdb_dir import WFDBDir


def test_the_built_in_kinds_register_themselves():
    assert {"ptbxl", "deepfake", "wfdb"} <= set(source_kinds())
    assert (SOURCES["ptbxl"].cls, SOURCES["deepfake"].cls, SOURCES["wfdb"].cls) == (PTBXL, DeepFake, WFDBDir)
    assert PTBXL.kind == "ptbxl" and WFDBDir.kind == "wfdb"


def test_options_are_typed():
    spec = parse_spec("ptbxl:/data/ptbxl;fs=100;plus_dir=~/plus;plus_outliers=yes")
    assert spec.kind == "ptbxl" and spec.path == "/data/ptbxl"
    assert spec.options["fs"] == 100.0 and isinstance(spec.options["fs"], float)
    assert spec.options["plus_dir"] == Path("~/plus").expanduser()
    assert spec.options["plus_outliers"] is True
    assert parse_spec("ptbxl:x;plus_outliers=off").options["plus_outliers"] is False


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ptbxl", "expected KIND:PATH"),
        ("nope:/x", "unknown kind 'nope'; expected one of .*ptbxl"),
        ("ptbxl:", "no path after ptbxl:"),
        ("ptbxl:/x;fs=fast", r"option fs='fast' is not a number"),
        ("ptbxl:/x;plus_outliers=maybe", "is not a true/false"),
        (
            "ptbxl:/x;colour=red",
            r"ptbxl takes no option 'colour' \(it takes: fs, plus_dir, plus_outliers, labels\)",
        ),
        ("deepfake:/x;fs=100", r"deepfake takes no option 'fs' \(it takes: none\)"),
        ("ptbxl:/x;fs", "option 'fs' is not name=value"),
    ],
)
def test_bad_specs_are_named_in_the_error(spec, message):
    with pytest.raises(SourceSpecError, match=message) as caught:
        parse_spec(spec)
    assert repr(spec) in str(caught.value)  # the error quotes the spec it could not read
    assert isinstance(caught.value, ValueError)


def test_format_and_parse_round_trip():
    text = format_spec("ptbxl", "/data/ptbxl", fs=100.0, plus_dir=None, plus_outliers=True)
    assert text == "ptbxl:/data/ptbxl;fs=100;plus_outliers=true"  # None options are left out
    assert str(parse_spec(text)) == text
    with pytest.raises(SourceSpecError, match="contains ';'"):
        format_spec("wfdb", "/a;b")
    with pytest.raises(SourceSpecError, match="takes no option 'fs'"):
        format_spec("wfdb", "/a", fs=100)


def test_open_source_passes_typed_options(ptbxl_sample):
    assert open_source(f"ptbxl:{ptbxl_sample};fs=100").fs == 100.0
    assert open_source(f"ptbxl:{ptbxl_sample}", fs=500.0).fs == 500.0  # a keyword overrides the spec
    assert open_source(f"ptbxl:{ptbxl_sample};fs=100", fs=None).fs == 100.0  # None leaves it


def test_a_new_kind_registers_with_a_decorator(tmp_path):
    @register_source("toy_kind_for_test", depth=int)
    class Toy(ECGDataset):
        def __init__(self, root, depth=1):
            self.opened = (str(root), depth)

    try:
        toy = open_source(f"toy_kind_for_test:{tmp_path};depth=3")
        assert isinstance(toy, Toy) and toy.opened == (str(tmp_path), 3) and Toy.kind == "toy_kind_for_test"
        with pytest.raises(ValueError, match="already registered to Toy"):
            register_source("toy_kind_for_test")(type("Other", (ECGDataset,), {}))
        with pytest.raises(ValueError, match="'width' is not a parameter"):
            register_source("toy_kind_2", width=int)(Toy)
        with pytest.raises(ValueError, match="unsupported type"):
            register_source("toy_kind_3", depth=list)(Toy)
    finally:
        from ecgcore.data import sources

        sources._SOURCES.pop("toy_kind_for_test", None)
