"""The code version stored with every run: package version + digest of the ecgcore source."""

from __future__ import annotations

import shutil

from ecgcore import version


def test_the_source_digest_changes_with_any_edit_to_the_package(tmp_path, monkeypatch):
    copy = tmp_path / "ecgcore"
    shutil.copytree(version.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(version, "PACKAGE_DIR", copy)
    version.source_digest.cache_clear()
    before = version.code_version()
    (copy / "__pycache__").mkdir(exist_ok=True)
    (copy / "__pycache__" / "x.py").write_text("ignored")  # compiled / cached files do not count
    version.source_digest.cache_clear()
    assert version.code_version() == before
    target = copy / "train" / "metrics.py"
    target.write_text(target.read_text() + "\n# one more line\n")
    version.source_digest.cache_clear()
    after = version.code_version()
    version.source_digest.cache_clear()
    assert after["source"] != before["source"] and after["package"] == before["package"]
    assert after["label"] == f"{after['package']}+src.{after['source']}"
