"""``shipyard runs`` against runs tracked from Python, the store location and error output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import shipyard
from cli_runner import run_cli as cli
from shipyard.store import Store
from shipyard.tracking import Lineage, Tracker


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean environment: no store settings, wide output, a scratch working directory."""
    for name in ("SHIPYARD_STORE_URL", "SHIPYARD_HOME", "SHIPYARD_ARTIFACT_ROOT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


def test_python_tracking_honours_shipyard_home_and_artifact_root(
    capsys: pytest.CaptureFixture[str], env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, artifacts = env / "home", env / "artifacts"
    monkeypatch.setenv("SHIPYARD_HOME", str(home))
    monkeypatch.setenv("SHIPYARD_ARTIFACT_ROOT", str(artifacts))
    with shipyard.start_run("from-python", lineage=Lineage()) as run:
        shipyard.log_metric("loss", 0.25)
        run.log_artifact("notes.txt", b"hello")
    assert not (env / "work" / ".shipyard").exists()  # nothing landed in the working directory
    assert (home / "shipyard.db").is_file()
    assert (artifacts / "runs" / run.id / "notes.txt").read_bytes() == b"hello"

    elsewhere = env / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, out, err = cli(capsys, "runs", "list")
    assert code == 0, err
    assert run.id[:8] in out and "from-python" in out and "loss=0.2500" in out
    code, out, err = cli(capsys, "runs", "show", run.id)
    assert code == 0, err
    assert "notes.txt" in out
    assert not (elsewhere / ".shipyard").exists()


def _tracked_runs_with_brackets(home: Path) -> tuple[str, str]:
    """A finished and a failed run whose user-given text holds rich-markup-like brackets."""
    with Store.open(root=home) as store, Tracker(store) as tracker:
        with tracker.start_run("sweep[fast]", project="proj[a]", lineage=Lineage()) as ok:
            ok.log_params({"grid[lr]": "[bold]0.1[/bold]", "layers": "[/]"})
            ok.log_metric("acc[val]", 0.5)
            ok.set_tag("note", "[red]not red[/red]")
        with pytest.raises(KeyError), tracker.start_run("broken[x]", lineage=Lineage()) as bad:
            raise KeyError("[missing] [/]")
    return ok.id, bad.id


def test_user_text_with_brackets_is_printed_verbatim(
    capsys: pytest.CaptureFixture[str], env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_HOME", str(env / "home"))
    ok, bad = _tracked_runs_with_brackets(env / "home")
    code, out, err = cli(capsys, "runs", "list")
    assert code == 0, err
    assert "sweep[fast]" in out and "proj[a]" in out and "broken[x]" in out
    code, out, err = cli(capsys, "runs", "show", ok)
    assert code == 0, err
    for text in ("sweep[fast]", "grid[lr]", "[bold]0.1[/bold]", "[/]", "acc[val]", "[red]not"):
        assert text in out, text
    code, out, err = cli(capsys, "runs", "show", bad)
    assert code == 0, err
    assert "[missing] [/]" in out
    code, out, err = cli(capsys, "runs", "compare", ok, bad)
    assert code == 0, err
    assert "sweep[fast]" in out and "broken[x]" in out and "[bold]0.1[/bold]" in out


def test_postgres_install_hint_keeps_its_brackets(
    capsys: pytest.CaptureFixture[str], env: Path
) -> None:
    code, _out, err = cli(capsys, "--store", "postgresql+nonexistentdriver://x/y", "runs", "list")
    assert code == 1
    assert "install shipyard[postgres] for PostgreSQL" in " ".join(err.split())


_OWNER = """
import sys, time
import shipyard
from shipyard.tracking import Lineage

run = shipyard.start_run("doomed", lineage=Lineage())
shipyard.log_metric("loss", 0.5)
run._tracker.flush()
print(run.id, flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_run_whose_process_is_killed_9_is_listed_as_crashed(
    capsys: pytest.CaptureFixture[str], env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_HOME", str(env / "home"))
    owner = subprocess.Popen(
        [sys.executable, "-c", _OWNER], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    try:
        assert owner.stdout is not None
        run_id = owner.stdout.readline().strip()
        assert len(run_id) == 32, "the owner process did not start its run"
        code, out, err = cli(capsys, "runs", "list", "--status", "running")
        assert code == 0, err
        assert run_id[:8] in out  # alive: still running
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait(60)
        owner.stdout.close()  # type: ignore[union-attr]

    with Store.open(root=env / "home") as store, Tracker(store) as reader:
        record = reader.get_run(run_id)
        assert record.status == "crashed"
        assert record.error is not None and f"pid {owner.pid}" in record.error
        assert record.metrics == {"loss": 0.5}  # what was flushed is kept
        assert [r.id for r in reader.search_runs(status="crashed")] == [run_id]
    code, out, err = cli(capsys, "runs", "list", "--status", "crashed")
    assert code == 0, err
    assert run_id[:8] in out and "crashed" in out and "doomed" in out
    code, out, err = cli(capsys, "runs", "list", "--status", "running")
    assert code == 0 and run_id[:8] not in out
    code, out, err = cli(capsys, "runs", "show", run_id[:8])
    assert code == 0 and "crashed" in out and f"pid {owner.pid}" in " ".join(out.split())


def test_runs_list_refuses_an_unknown_status(
    capsys: pytest.CaptureFixture[str], env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_HOME", str(env / "home"))
    Store.open(root=env / "home").close()
    code, _out, err = cli(capsys, "runs", "list", "--status", "crashd")
    assert code == 1
    assert "crashed" in err


def test_help_names_every_store_setting(capsys: pytest.CaptureFixture[str], env: Path) -> None:
    code, out, _err = cli(capsys, "--help")
    assert code == 0
    assert "SHIPYARD_STORE_URL" in out and "SHIPYARD_HOME" in out
