"""Issue 17, group 4 (per file): a file that cannot be read is listed in ``skipped_files`` (and
``unreadable_files``) with its reason, the files after it are read, and ``--strict`` fails.

Tests run as root, for whom mode 000 hides nothing, so unreadability is made in ways that hold for
root too: a dangling symbolic link, a FIFO, a file removed between listing and opening (a real
race, made by the progress callback), and, for a folder that cannot be listed, ``os.scandir``
raising ``PermissionError`` at the OS boundary (the only stand-in here). Where the tests do not
run as root, a real mode-000 file and folder are checked as well."""
from __future__ import annotations

import codecs
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from townsquare.ingest.pipeline import IngestPipeline
from townsquare.store.sqlite import SQLiteStore

BASE = 1212092628029698048


def _csv(path: Path, *ids: int) -> Path:
    path.write_text("id,text\n" + "".join(f"{BASE + i},post {i}\n" for i in ids))
    return path


def _ingest(tmp_path: Path, *paths: Path, **kw):
    store = SQLiteStore(tmp_path / "t.db")
    report = IngestPipeline(store, **kw).run(list(paths))
    return store, report


def test_broken_link_fifo_and_undecodable_file_are_listed_and_the_rest_is_read(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    _csv(d / "a.csv", 1)
    (d / "b_gone.csv").symlink_to(d / "nowhere.csv")
    os.mkfifo(d / "c_pipe.csv")                     # opening it for reading would block
    (d / "d_utf16.csv").write_bytes("id,text\n".encode("utf-16-le"))    # no byte order mark
    _csv(d / "e.csv", 5)
    (d / "f_notes.txt").write_text("not posts")
    store, r = _ingest(tmp_path, d)
    assert sorted(p.id - BASE for p in store.iter_posts()) == [1, 5]
    unreadable = {Path(p).name: why for p, why in r.to_dict()["unreadable_files"].items()}
    assert unreadable == {
        "b_gone.csv": "broken symbolic link (to a file that does not exist)",
        "c_pipe.csv": "not a regular file (a FIFO)",
        "d_utf16.csv": unreadable["d_utf16.csv"]}
    assert unreadable["d_utf16.csv"].startswith("NUL bytes in its first 16 bytes: UTF-16")
    skipped = {Path(p).name for p in r.to_dict()["skipped_files"]}
    assert skipped == set(unreadable) | {"f_notes.txt"}   # not posts: skipped, not unreadable


def test_a_fifo_named_on_the_command_line_does_not_hang(tmp_path):
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    good = _csv(tmp_path / "good.csv", 1)
    cmd = [sys.executable, "-m", "townsquare.cli", "ingest", str(fifo), str(good), "--home",
           str(tmp_path / "h"), "--no-late", "--json"]
    done = subprocess.run(cmd, capture_output=True, timeout=120)   # it hung forever before
    assert done.returncode == 0, done.stderr
    res = orjson.loads(done.stdout)
    assert res["inserted"] == 1
    assert res["unreadable_files"] == {str(fifo): "not a regular file (a FIFO)"}
    strict = subprocess.run(cmd + ["--strict"], capture_output=True, timeout=120)
    assert strict.returncode == 1


def test_a_file_removed_between_listing_and_reading_is_listed_and_the_next_is_read(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    first, second, third = _csv(d / "1.csv", 1), _csv(d / "2.csv", 2), _csv(d / "3.csv", 3)

    def progress(fr, posts, bad, done):
        if done and fr.path == str(first.resolve()):
            second.unlink()                      # gone after the folder was listed

    store = SQLiteStore(tmp_path / "t.db")
    r = IngestPipeline(store, writer="inline").run([d], progress)
    assert sorted(p.id - BASE for p in store.iter_posts()) == [1, 3]
    assert r.unreadable == {str(second.resolve()): "cannot read: No such file or directory"}


def test_a_folder_that_cannot_be_listed_is_listed_and_its_siblings_are_read(tmp_path, monkeypatch):
    d = tmp_path / "data"
    (d / "locked").mkdir(parents=True)
    _csv(d / "locked" / "x.csv", 9)
    _csv(d / "z.csv", 1)
    real_scandir = os.scandir

    def scandir(path):
        if Path(path) == d / "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)   # the OS's answer for a mode-000 folder
    store, r = _ingest(tmp_path, d)
    assert [p.id - BASE for p in store.iter_posts()] == [1]
    assert r.unreadable == {str(d / "locked"): "cannot list the folder: Permission denied"}


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads mode-000 files and folders")
def test_mode_000_file_and_folder_as_a_user(tmp_path):
    d = tmp_path / "data"
    (d / "locked").mkdir(parents=True)
    _csv(d / "a.csv", 1).chmod(0)
    _csv(d / "b.csv", 2)
    (d / "locked").chmod(0)
    try:
        store, r = _ingest(tmp_path, d)
    finally:
        (d / "locked").chmod(0o755)
    assert [p.id - BASE for p in store.iter_posts()] == [2]
    assert {Path(p).name for p in r.unreadable} == {"a.csv", "locked"}


def test_utf16_and_utf32_with_a_byte_order_mark_are_decoded(tmp_path):
    text = f"id,text\n{BASE + 1},crue à Paris\n"
    (tmp_path / "le.csv").write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    (tmp_path / "be.tsv").write_bytes(codecs.BOM_UTF16_BE + text.replace(",", "\t")
                                      .replace(str(BASE + 1), str(BASE + 2)).encode("utf-16-be"))
    line = orjson.dumps({"id": str(BASE + 3), "text": "crue à Lyon"}).decode()
    (tmp_path / "p.jsonl").write_bytes(codecs.BOM_UTF32_LE + line.encode("utf-32-le"))
    arr = orjson.dumps([{"id": str(BASE + 4), "text": "crue à Nice"}]).decode()
    (tmp_path / "a.json").write_bytes(codecs.BOM_UTF16_LE + arr.encode("utf-16-le"))
    store, r = _ingest(tmp_path, tmp_path / "le.csv", tmp_path / "be.tsv", tmp_path / "p.jsonl",
                       tmp_path / "a.json")
    assert r.to_dict()["skipped_files"] == {}
    assert {p.id - BASE: p.text for p in store.iter_posts()} == {
        1: "crue à Paris", 2: "crue à Paris", 3: "crue à Lyon", 4: "crue à Nice"}


def test_a_symlink_loop_and_a_link_to_a_regular_file(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    (d / "loop").symlink_to(d)                      # a folder that contains itself
    (d / "self").symlink_to(d / "self")             # a link to itself: ELOOP
    _csv(tmp_path / "elsewhere.csv", 1)
    (d / "link.csv").symlink_to(tmp_path / "elsewhere.csv")
    store, r = _ingest(tmp_path, d)
    assert [p.id - BASE for p in store.iter_posts()] == [1]
    skipped = {Path(p).name: why for p, why in r.to_dict()["skipped_files"].items()}
    assert skipped["loop"] == "symbolic link to a folder that contains it (a loop)"
    assert skipped["self"].startswith("cannot read: ")
    assert set(r.unreadable) == {str(d / "self")}   # the loop's files were read once: fine
