"""A damaged cache is found when opened and rebuilt; SIGTERM or Ctrl-C stops a build at once, leaving nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from ecgcore.data import Preprocessing, load_cached, open_source
from ecgcore.data.cache import CacheWarning
from tests.factories import make_deepfake_dir

pytestmark = pytest.mark.filterwarnings("ignore::ecgcore.data.base.MissingFilesWarning")
PREP = Preprocessing(fs=100, normalize="zscore")


@pytest.fixture(scope="module")
def deepfake_root(tmp_path_factory):
    return make_deepfake_dir(tmp_path_factory.mktemp("deepfake"), 12, seed=3)


def _truncate(folder):
    path = folder / "signals.npy"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage_header(folder):
    path = folder / "signals.npy"
    path.write_bytes(b"\x00" * 64 + path.read_bytes()[64:])


def _garbage_manifest(folder):
    (folder / "meta.json").write_text("{ not json")


def _other_shape(folder):
    meta = json.loads((folder / "meta.json").read_text())
    np.save(folder / "signals.npy", np.zeros((meta["shape"][0], 3, 7), np.float32))


def _missing(folder):
    (folder / "signals.npy").unlink()


def _manifest_a_list(folder):
    (folder / "meta.json").write_text("[1, 2]")


def _manifest_lists_unknown_records(folder):
    meta = json.loads((folder / "meta.json").read_text())
    meta["record_ids"] = ["zz"] * len(meta["record_ids"])
    (folder / "meta.json").write_text(json.dumps(meta))


def _flipped_bytes(folder):
    """Bytes changed in place: the same size, header and shape; only a content check sees it."""
    path = folder / "signals.npy"
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.seek(size // 2)
        byte = handle.read(1)
        handle.seek(size // 2)
        handle.write(bytes([byte[0] ^ 0x40]))
    assert path.stat().st_size == size


def _flipped_with_mtime_set_back(folder):
    path = folder / "signals.npy"
    before = path.stat()
    _flipped_bytes(folder)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # only the ctime still tells


@pytest.mark.parametrize(
    "damage",
    [
        _truncate,
        _garbage_header,
        _garbage_manifest,
        _other_shape,
        _missing,
        _manifest_a_list,
        _manifest_lists_unknown_records,
        _flipped_bytes,
        _flipped_with_mtime_set_back,
    ],
)
def test_a_damaged_cache_is_named_and_rebuilt(deepfake_root, damage):
    ds = open_source(f"deepfake:{deepfake_root}")
    good = np.array(load_cached(ds, PREP).signals)
    folder = load_cached(ds, PREP).path
    damage(folder)
    with pytest.warns(CacheWarning, match=rf"cache {folder} is damaged: .*rebuilding it"):
        rebuilt = load_cached(open_source(f"deepfake:{deepfake_root}"), PREP)
    np.testing.assert_array_equal(np.asarray(rebuilt.signals), good)
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # nothing set aside left behind


def test_a_verified_cache_opens_by_stat_alone_and_is_read_again_when_its_file_changes(
    deepfake_root, monkeypatch
):
    from ecgcore.data import cache

    ds = open_source(f"deepfake:{deepfake_root}")
    folder = load_cached(ds, PREP).path
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["content"]["hash"] == "blake2b-128" and len(meta["content"]["blocks"]) >= 1
    reads = []
    digests = cache.content_digests
    monkeypatch.setattr(cache, "content_digests", lambda *a, **k: reads.append(a) or digests(*a, **k))
    load_cached(ds, PREP)
    assert reads == []  # verified at the build, unchanged since: no full read
    (folder / "verified.json").unlink()
    load_cached(ds, PREP)
    assert len(reads) == 1  # no record of a check: one full read, then recorded again
    load_cached(ds, PREP)
    assert len(reads) == 1


def test_a_cache_built_without_digests_gets_them_and_is_checked_from_then_on(deepfake_root):
    ds = open_source(f"deepfake:{deepfake_root}")
    good = np.array(load_cached(ds, PREP).signals)
    folder = load_cached(ds, PREP).path
    meta = json.loads((folder / "meta.json").read_text())
    meta.pop("content")  # as the previous version wrote it
    (folder / "meta.json").write_text(json.dumps(meta))
    (folder / "verified.json").unlink()
    load_cached(ds, PREP)
    assert json.loads((folder / "meta.json").read_text())["content"]["blocks"]
    _flipped_bytes(folder)
    with pytest.warns(CacheWarning, match="changed since the build"):
        rebuilt = load_cached(open_source(f"deepfake:{deepfake_root}"), PREP)
    np.testing.assert_array_equal(np.asarray(rebuilt.signals), good)


_SLOW_BUILD = """
import multiprocessing, os, sys, time
from ecgcore.data import Preprocessing, load_cached, open_source
from ecgcore.data import cache
cache._CHUNK = 1
shape = cache.shape_record
def slow(record, prep):
    time.sleep(0.4)
    return shape(record, prep)
cache.shape_record = slow
def started(done, total, message):
    if done >= 1 and not os.path.exists(sys.argv[2]):
        with open(sys.argv[2], "w") as f:
            f.write(" ".join(str(p.pid) for p in multiprocessing.active_children()))
load_cached(open_source(sys.argv[1]), Preprocessing(fs=100), progress=started, n_jobs=int(sys.argv[3]))
print("finished")
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("jobs", [1, 2])
def test_a_signal_stops_a_cache_build_within_a_second_and_leaves_nothing(
    deepfake_root, ecglab_home, tmp_path, signum, jobs
):
    marker = tmp_path / "started"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(_SLOW_BUILD),
            f"deepfake:{deepfake_root}",
            str(marker),
            str(jobs),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), proc.communicate()[1]
    workers = [int(p) for p in marker.read_text().split()]
    cache_dir = ecglab_home / "cache"
    assert any(".tmp-" in p.name for p in cache_dir.iterdir())
    sent = time.monotonic()
    proc.send_signal(signum)
    while time.monotonic() - sent < 5 and (list(cache_dir.iterdir()) or any(_alive(pid) for pid in workers)):
        time.sleep(0.02)
    took = time.monotonic() - sent  # the interpreter's own exit afterwards (module teardown) is not counted
    assert took < 1.0, f"the build took {took:.1f} s to stop"
    assert list(cache_dir.iterdir()) == [], "no temporary folder left behind"
    assert not any(_alive(pid) for pid in workers), "build workers are gone"
    out, err = proc.communicate(timeout=30)
    assert "finished" not in out and "BuildInterrupted" in err
    assert load_cached(open_source(f"deepfake:{deepfake_root}"), Preprocessing(fs=100)).signals.shape[0] == 12
