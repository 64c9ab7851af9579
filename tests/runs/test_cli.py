import json

from ecgcore.__main__ import main
from ecgcore.runs.store import RunStore
from tests.train.helpers import tiny_config


def test_runs_commands_on_a_store(tmp_path, capsys):
    store = RunStore(tmp_path)
    run_id = store.create_run(tiny_config("deepfake:somewhere"))
    store.update(run_id, status="failed", error="ValueError: boom")
    assert main(["runs", "list", "--runs-dir", str(tmp_path), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in listed] == [run_id] and listed[0]["status"] == "failed"
    assert main(["runs", "cancel", run_id, "--runs-dir", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "failed"  # not active: nothing to cancel
    assert main(["runs", "resume", run_id, "--runs-dir", str(tmp_path)]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert main(["runs", "show", "nope", "--runs-dir", str(tmp_path)]) == 2
    assert "no run 'nope'" in capsys.readouterr().err
