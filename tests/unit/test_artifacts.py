"""The artifact store: atomic writes, sha256 verification, path safety, listing."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from shipyard.errors import ArtifactIntegrityError, StoreError
from shipyard.store import ArtifactStore, Store, check_artifact_path, tables


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(root=tmp_path / "sy") as opened:
        yield opened


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_put_then_get_round_trips_and_records_hash(store: Store, tmp_path: Path) -> None:
    data = b"\x00binary\xffcontent"
    sha = store.artifacts.put("models/iris/1/pipeline.joblib", data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert store.artifacts.get("models/iris/1/pipeline.joblib") == data
    rec = store.artifacts.record("models/iris/1/pipeline.joblib")
    assert (rec.path, rec.sha256, rec.size, rec.run_id) == (
        "models/iris/1/pipeline.joblib",
        sha,
        len(data),
        None,
    )
    root = tmp_path / "sy" / "artifacts"
    assert _files(root) == ["models/iris/1/pipeline.joblib"]  # no temporary files left


def test_put_again_replaces_file_and_record(store: Store) -> None:
    store.artifacts.put("a.txt", b"one")
    sha = store.artifacts.put("a.txt", b"two!")
    assert store.artifacts.get("a.txt") == b"two!"
    assert store.artifacts.record("a.txt").sha256 == sha
    assert store.artifacts.record("a.txt").size == 4
    with store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.artifacts)).scalar() == 1


def test_run_id_is_recorded(store: Store) -> None:
    with store.begin() as conn:
        conn.execute(
            sa.insert(tables.runs).values(
                id="r1", name="n", status="running", start_time=time.time()
            )
        )
    store.artifacts.put("runs/r1/x.json", b"{}", run_id="r1")
    assert store.artifacts.record("runs/r1/x.json").run_id == "r1"


def test_unknown_run_id_is_rejected_and_nothing_is_written(store: Store, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="run_id 'ghost' is not a run"):
        store.artifacts.put("runs/ghost/x.json", b"{}", run_id="ghost")
    assert _files(tmp_path / "sy" / "artifacts") == []
    assert not store.artifacts.exists("runs/ghost/x.json")


def test_changed_file_raises_integrity_error(store: Store, tmp_path: Path) -> None:
    sha = store.artifacts.put("models/m/1/pipeline.joblib", b"original")
    (tmp_path / "sy" / "artifacts" / "models/m/1/pipeline.joblib").write_bytes(b"tampered")
    with pytest.raises(ArtifactIntegrityError) as info:
        store.artifacts.get("models/m/1/pipeline.joblib")
    msg = str(info.value)
    assert "models/m/1/pipeline.joblib" in msg
    assert sha in msg
    assert hashlib.sha256(b"tampered").hexdigest() in msg
    assert "the file was changed after it was stored; refusing to load it" in msg


def test_missing_file_and_missing_record_raise_store_error(store: Store, tmp_path: Path) -> None:
    store.artifacts.put("gone.bin", b"x")
    (tmp_path / "sy" / "artifacts" / "gone.bin").unlink()
    with pytest.raises(StoreError, match=r"'gone\.bin' is recorded .* file is missing"):
        store.artifacts.get("gone.bin")
    with pytest.raises(StoreError, match=r"no artifact is recorded at 'never\.bin'"):
        store.artifacts.get("never.bin")
    assert not store.artifacts.exists("gone.bin")
    assert not store.artifacts.exists("never.bin")


def test_exists_needs_record_and_file(store: Store, tmp_path: Path) -> None:
    store.artifacts.put("here.txt", b"x")
    assert store.artifacts.exists("here.txt")
    (tmp_path / "sy" / "artifacts" / "stray.txt").write_bytes(b"x")
    assert not store.artifacts.exists("stray.txt")


def test_failed_record_write_leaves_no_file(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*_args: object) -> None:
        raise sa.exc.OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(ArtifactStore, "_upsert", fail)
    with pytest.raises(StoreError, match="disk I/O error"):
        store.artifacts.put("x/y.bin", b"data")
    assert _files(tmp_path / "sy" / "artifacts") == []


def test_list_matches_folder_prefixes_only(store: Store) -> None:
    for path in ("runs/a/x.txt", "runs/a/sub/y.txt", "runs/ab/z.txt", "runs/a_b/w.txt", "top"):
        store.artifacts.put(path, path.encode())
    assert [r.path for r in store.artifacts.list("runs/a")] == ["runs/a/sub/y.txt", "runs/a/x.txt"]
    assert [r.path for r in store.artifacts.list("runs/a/")] == [
        "runs/a/sub/y.txt",
        "runs/a/x.txt",
    ]
    assert [r.path for r in store.artifacts.list("runs/a_b")] == ["runs/a_b/w.txt"]
    assert [r.path for r in store.artifacts.list("top")] == ["top"]
    assert len(store.artifacts.list("")) == 5
    assert store.artifacts.list("nothing") == []


@pytest.mark.parametrize(
    "path",
    ["", "/", "../x", "a/../../b", "a/..", "/etc/passwd", "~/x", "a\\b", "C:/x", "s3://b/x", "./"],
)
def test_paths_escaping_the_root_are_rejected(store: Store, path: str) -> None:
    with pytest.raises(StoreError, match="invalid artifact path"):
        store.artifacts.put(path, b"x")
    with pytest.raises(StoreError, match="invalid artifact path"):
        store.artifacts.get(path)


def test_paths_are_canonicalised() -> None:
    assert check_artifact_path("./a//b/./c/") == "a/b/c"


@given(st.lists(st.sampled_from(["a", "b", ".", "..", "", "x.y", "~", "c:"]), max_size=6))
def test_accepted_paths_stay_inside_the_root(parts: list[str]) -> None:
    root = Path("/srv/artifacts")
    try:
        clean = check_artifact_path("/".join(parts))
    except StoreError:
        return
    resolved = (root / clean).resolve()
    assert resolved.is_relative_to(root)
    assert resolved != root


def test_fsspec_memory_root(tmp_path: Path) -> None:
    root = f"memory://shipyard-test-{uuid.uuid4().hex}"
    with Store.open(root=tmp_path, artifact_root=root) as store:
        sha = store.artifacts.put("m/1/metadata.json", b'{"a": 1}')
        assert store.artifacts.get("m/1/metadata.json") == b'{"a": 1}'
        assert store.artifacts.record("m/1/metadata.json").sha256 == sha
        assert store.artifacts.exists("m/1/metadata.json")
        import fsspec

        fs = fsspec.filesystem("memory")
        fs.pipe_file(f"{root}/m/1/metadata.json", b"changed")
        with pytest.raises(ArtifactIntegrityError):
            store.artifacts.get("m/1/metadata.json")
        fs.rm(root, recursive=True)
    assert not (tmp_path / "artifacts").exists()


def test_a_database_failure_is_a_store_error_naming_the_store_and_leaves_no_file(
    tmp_path: Path,
) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/missing-dir/none.db")  # cannot open
    artifacts = ArtifactStore(str(tmp_path / "root"), engine)
    with pytest.raises(StoreError, match=r"recording artifact 'a/b\.txt' failed: the metadata"):
        artifacts.put("a/b.txt", b"data")
    assert [p for p in (tmp_path / "root").rglob("*") if p.is_file()] == []
    for call, doing in (
        (lambda: artifacts.get("a/b.txt"), "reading the record"),
        (lambda: artifacts.list(), "listing artifacts"),
        (lambda: artifacts.exists("a/b.txt"), "looking up artifact"),
    ):
        with pytest.raises(StoreError, match=f"{doing}.*check that it is running"):
            call()


def test_delete_removes_record_and_file_together(store: Store, tmp_path: Path) -> None:
    store.artifacts.put("runs/a/one.txt", b"1")
    store.artifacts.put("runs/a/two.txt", b"2")
    assert store.artifacts.delete("runs/a/one.txt") is True
    assert store.artifacts.delete("runs/a/one.txt") is False  # nothing recorded any more
    assert [r.path for r in store.artifacts.list()] == ["runs/a/two.txt"]
    assert _files(tmp_path / "sy" / "artifacts") == ["runs/a/two.txt"]


def test_a_root_with_credentials_is_never_shown(tmp_path: Path) -> None:
    root = "memory://me:pw-secret@bucket/sy?token=tok-secret"
    store = ArtifactStore(root, sa.create_engine("sqlite://"))
    for shown in (store.location, repr(store)):
        assert "pw-secret" not in shown and "tok-secret" not in shown
    assert store.location == "memory://me:***@bucket/sy?token=***"


def test_an_unknown_filesystem_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot use the artifact root 'nosuchfs://b/sy'"):
        ArtifactStore("nosuchfs://b/sy", sa.create_engine("sqlite://"))
