"""Image representations as model inputs: cached uint8 ``[N, C, H, W]`` arrays, registered by name.

Each name below is a :data:`ecgcore.data.inputs.INPUTS` entry (``TrainConfig.representation``):

========================  =========================================================================
``chart`` / ``chart2``    the record drawn as a 224 x 224 grey chart, layout ``3x4+II`` / ``6x2+II``
``gaf`` ``gadf``          summation / difference Gramian angular field of leads I, II, V2, 64 x 64
``mtf`` ``rp``            Markov transition field / recurrence plot of leads I, II, V2, 64 x 64
``signal+chart`` ...      a tuple (signal, image) for the fusion model (also ``signal+gaf``, ``gaf+mtf``)
========================  =========================================================================

Images are drawn from the millivolt signals of the signal cache built with the run's preprocessing but
``normalize="none"`` (leads, rate, band-pass and duration as the run says), so rows align with
``load_cached(dataset, prep).index``. They are cached under ``paths.cache_dir()/images/``: ``images.npy``
(uint8, memory-mapped) and ``meta.json`` holding a fingerprint of the signal cache's fingerprint and every
drawing parameter; a mismatch redraws. Drawing runs in two worker processes from 400 records on, with
progress, into a temporary folder renamed into place when complete.

:func:`record_inputs` draws the same input for one record (prediction, explanation).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ecgcore import paths
from ecgcore.data.cache import _install, build_folder, fill_in_chunks, load_cached
from ecgcore.data.inputs import register_input, signal_inputs
from ecgcore.data.preprocess import Preprocessing, preprocess_record, shape_record
from ecgcore.data.representations import FIELD_LEADS, LAYOUTS, ChartLayout, signal_image
from ecgcore.progress import ProgressFn

IMAGE_CACHE_VERSION = 1


@dataclass(frozen=True)
class ImageSpec:
    """How one image representation is drawn (all of it is part of the cache key)."""

    kind: str
    layout: ChartLayout | None = None
    size: int = 64
    field_leads: tuple[str, ...] = FIELD_LEADS

    def draw(self, signal: np.ndarray, fs: float, leads: tuple[str, ...]) -> np.ndarray:
        return signal_image(
            signal,
            fs,
            leads,
            self.kind,
            layout=self.layout or LAYOUTS["3x4+II"],
            size=self.size,
            field_leads=self.field_leads,
        )

    def shape(self) -> tuple[int, int, int]:
        if self.kind == "chart":
            layout = self.layout or LAYOUTS["3x4+II"]
            return (1, layout.height, layout.width)
        return (len(self.field_leads), self.size, self.size)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "layout": self.layout.to_dict() if self.layout else None,
            "size": self.size,
            "field_leads": list(self.field_leads),
        }


#: Registered image representations.
IMAGE_SPECS: dict[str, ImageSpec] = {
    "chart": ImageSpec("chart", LAYOUTS["3x4+II"]),
    "chart2": ImageSpec("chart", LAYOUTS["6x2+II"]),
    "gaf": ImageSpec("gaf"),
    "gadf": ImageSpec("gadf"),
    "mtf": ImageSpec("mtf"),
    "rp": ImageSpec("rp"),
}
#: Registered multi-input representations: name -> the parts, "signal" or an image name.
FUSED: dict[str, tuple[str, ...]] = {
    "signal+chart": ("signal", "chart"),
    "signal+gaf": ("signal", "gaf"),
    "gaf+mtf": ("gaf", "mtf"),
}


def image_array(
    spec: ImageSpec,
    dataset: Any,
    prep: Preprocessing,
    progress: ProgressFn | None = None,
    n_jobs: int | None = None,
) -> np.ndarray:
    """``spec`` drawn for every record of ``dataset``: uint8 ``[N, C, H, W]``, mapped from the cache or built."""
    mv = load_cached(dataset, replace(prep, normalize="none"), progress=progress)
    rows = load_cached(dataset, prep, progress=progress)
    if list(mv.index["record_id"]) != list(rows.index["record_id"]):
        raise ValueError(f"{dataset.root}: the millivolt and the normalised caches hold different records")
    fp = hashlib.sha256(
        json.dumps(
            {"signals": mv.meta.get("fingerprint"), "spec": spec.to_dict(), "version": IMAGE_CACHE_VERSION},
            sort_keys=True,
        ).encode()
    ).hexdigest()
    final = paths.cache_dir() / "images" / f"{mv.path.name}-{spec.kind}-{fp[:16]}"
    found = _open(final, fp, len(mv.index))
    if found is not None:
        return found
    final.parent.mkdir(parents=True, exist_ok=True)
    _build(spec, mv.signals, prep, final, fp, progress, n_jobs)
    found = _open(final, fp, len(mv.index))
    if found is None:
        raise RuntimeError(f"image cache {final} was replaced while it was being built; try again")
    return found


def _open(folder: Path, fp: str, n: int) -> np.ndarray | None:
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text())
    if meta.get("fingerprint") != fp or not meta.get("complete"):
        return None
    images = np.load(folder / "images.npy", mmap_mode="r")
    return images if images.shape[0] == n else None


_WORKER: dict[str, Any] = {}


def _init_worker(spec: ImageSpec, signals_path: str, prep: Preprocessing, images_path: str) -> None:
    _WORKER.update(
        spec=spec,
        signals=np.load(signals_path, mmap_mode="r"),
        prep=prep,
        images=np.load(images_path, mmap_mode="r+"),
    )


def _fill(rows: range) -> int:
    spec: ImageSpec = _WORKER["spec"]
    prep: Preprocessing = _WORKER["prep"]
    images, signals = _WORKER["images"], _WORKER["signals"]
    for row in rows:
        images[row] = spec.draw(np.asarray(signals[row]), prep.fs, prep.leads)
    images.flush()
    return len(rows)


def _build(
    spec: ImageSpec,
    signals: np.ndarray,
    prep: Preprocessing,
    final: Path,
    fp: str,
    progress: ProgressFn | None,
    n_jobs: int | None,
) -> None:
    with build_folder(final) as tmp:
        start = time.perf_counter()
        n = len(signals)
        images_path = tmp / "images.npy"
        np.lib.format.open_memmap(images_path, mode="w+", dtype=np.uint8, shape=(n, *spec.shape()))
        args = (spec, str(Path(signals.filename)), prep, str(images_path))
        _, jobs = fill_in_chunks(
            n, n_jobs, _init_worker, args, _fill, _WORKER.clear, progress, f"drawing {spec.kind} images"
        )
        meta = {
            "complete": True,
            "fingerprint": fp,
            "spec": spec.to_dict(),
            "shape": [n, *spec.shape()],
            "build_seconds": round(time.perf_counter() - start, 3),
            "workers": jobs,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        paths.atomic_write_json(tmp / "meta.json", meta)
        _install(tmp, final)


def _image_builder(name: str):
    def build(dataset: Any, prep: Preprocessing, progress: ProgressFn | None = None) -> np.ndarray:
        return image_array(IMAGE_SPECS[name], dataset, prep, progress)

    build.__doc__ = f"The ``{name}`` images of every record (uint8 [N, C, H, W], cached)."
    return build


def _fused_builder(parts: tuple[str, ...]):
    def build(
        dataset: Any, prep: Preprocessing, progress: ProgressFn | None = None
    ) -> tuple[np.ndarray, ...]:
        return tuple(
            signal_inputs(dataset, prep, progress)
            if p == "signal"
            else image_array(IMAGE_SPECS[p], dataset, prep, progress)
            for p in parts
        )

    build.__doc__ = f"``({', '.join(parts)})`` of every record, row-aligned (for the fusion model)."
    return build


for _name in IMAGE_SPECS:
    register_input(_name)(_image_builder(_name))
for _name, _parts in FUSED.items():
    register_input(_name)(_fused_builder(_parts))


def record_inputs(
    name: str, record: Any, prep: Preprocessing, stats: dict | None = None
) -> np.ndarray | tuple:
    """The ``name`` input of one :class:`ecgcore.io.Record`, as training drew it (no batch axis)."""
    if name == "signal":
        return preprocess_record(record, prep, stats)
    parts = FUSED.get(name, (name,))
    unknown = [p for p in parts if p != "signal" and p not in IMAGE_SPECS]
    if unknown:
        raise ValueError(f"unknown input representation {name!r}")
    mv = shape_record(record, prep)
    out = tuple(
        preprocess_record(record, prep, stats)
        if p == "signal"
        else IMAGE_SPECS[p].draw(mv, prep.fs, prep.leads)
        for p in parts
    )
    return out if len(out) > 1 else out[0]


def input_shape(name: str, prep: Preprocessing) -> tuple[int, ...] | tuple[tuple[int, ...], ...]:
    """The shape of one sample of the ``name`` input (no batch axis); a tuple of shapes for fused inputs."""
    parts = FUSED.get(name, (name,))
    shapes = tuple(
        (len(prep.leads), prep.n_samples) if p == "signal" else IMAGE_SPECS[p].shape() for p in parts
    )
    return shapes if len(shapes) > 1 else shapes[0]
