"""CSV/TSV: every layout in ../shared/data, and rows broken in the ways real exports break."""
from __future__ import annotations

from pathlib import Path

import pytest

from townsquare.ingest.tabular import ColumnMapping, MappingError, read_table
from townsquare.posts import PostError, parse_time_ms

ID1, ID2, ID3 = 591903085670215681, 591903104276234242, 591903131505659904


def _write(tmp_path: Path, name: str, content: bytes) -> Path:
    f = tmp_path / "2015_Test_Event" / name
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_bytes(content)
    return f


def test_crisislex_layout_quoted_ids_and_spaces_after_commas(tmp_path):
    f = _write(tmp_path, "x.csv", (
        "tweet id, tweet, label\n"
        f"'{ID1}',\"Flood, water everywhere\",on-topic\n"
        f"'{ID2}',just a day,off-topic\n").encode())
    items = list(read_table(f, None))
    assert [i.line for i in items] == [2, 3]
    p = items[0].posts[0]
    assert (p.id, p.text, p.source) == (ID1, "Flood, water everywhere", "crisislex_t6")
    assert p.labels == {"label": "on-topic", "folder": "2015_Test_Event"}


def test_aidr_layout_cr_line_ends_mac_roman_mojibake_and_na(tmp_path):
    header = ("tweet_id, tweet_time, tweet_author, tweet_author_id, tweet_language, tweet_lon, "
              "tweet_lat, tweet_text, tweet_url,label")
    row1 = (f"'{ID1}',Sat Apr 25 09:54:27 +0000 2015,ann,2387302745,en,73.547794,32.392816,"
            f"\"Stay safe, all\",https://twitter.com/ann/status/{ID1},Sympathy")
    row2 = (f"'{ID2}',Sat Apr 25 09:54:31 +0000 2015,bob,153876973,en,NA,NA,"
            f"the country faces another".encode() + b"\x89\xdb_" + b" http://t.co/x,https://x,Other")
    f = _write(tmp_path, "aidr.csv", (header + "\r" + row1 + "\r").encode() + row2 + b"\r")
    items = list(read_table(f, None))
    assert all(i.ok for i in items), [i.error for i in items]
    a, b = items[0].posts[0], items[1].posts[0]
    assert a.source == "crisisnlp_aidr_volunteers"
    assert (a.author_handle, a.author_id, a.lang) == ("ann", 2387302745, "en")
    assert (a.lon, a.lat) == (73.547794, 32.392816)
    assert a.created_at == parse_time_ms("2015-04-25T09:54:27Z")
    assert "tweet_url" not in a.labels and a.labels["label"] == "Sympathy"
    assert (b.lon, b.lat) == (None, None)
    assert "another\u00e2\u20ac_ http" in b.text      # the bytes kept, read as Mac Roman


def test_humaid_and_crowdflower_tsv_layouts(tmp_path):
    h = _write(tmp_path, "h.tsv", f"tweet_id\ttweet_text\tclass_label\n{ID1}\tRoads closed\tcaution\n"
               .encode())
    c = _write(tmp_path, "c.tsv", (f"tweet_id\ttweet_text\tlabel\r\n'{ID2}'\t\"He said \"\"go\"\" now\""
                                   f"\tcaution_and_advice\r\n").encode())
    (hp,) = next(iter(read_table(h, None))).posts
    (cp,) = next(iter(read_table(c, None))).posts
    assert hp.source == "humaid" and hp.labels["class_label"] == "caution"
    assert cp.source == "crisisnlp_lrec2016_crowdflower" and cp.text == 'He said "go" now'


def test_bad_rows_are_reported_and_good_rows_around_them_kept(tmp_path):
    f = _write(tmp_path, "bad.csv", (
        "id,text,label\n"
        f"{ID1},first good,a\n"
        "notanid,bad id,b\n"
        f"{ID2},\"never closed,c\n"
        f"{ID3},third good,d\n"
        f"{ID3 + 1},too,many,fields\n"
        f"{ID3 + 2},,empty text\n"
        f"{ID3 + 3},\"multi\nline\",ok\n").encode())
    items = list(read_table(f, None))
    good = {i.line: i.posts[0].id for i in items if i.ok}
    bad = {i.line: i.error for i in items if not i.ok}
    assert good == {2: ID1, 5: ID3, 7: ID3 + 2, 8: ID3 + 3}
    assert bad[3].startswith("id: not a numeric id")
    assert "quote" in bad[4]
    assert bad[6] == "row: expected 3 fields, got 4"
    with pytest.raises(PostError, match="text: empty text"):   # the pipeline quarantines it
        next(i for i in items if i.line == 7).posts[0].normalized()
    assert [p.text for i in items if i.line == 8 for p in i.posts] == ["multi\nline"]


def test_two_stray_quotes_do_not_swallow_the_rows_between(tmp_path):
    f = _write(tmp_path, "q.tsv", (
        "tweet_id\ttweet_text\tclass_label\n"
        f"{ID1}\t5\" of rain\tx\n"
        f"{ID2}\tsecond\ty\n"
        f"{ID3}\ta 6\" drift\tz\n").encode())
    items = list(read_table(f, None))
    # a quote inside a field is literal in CSV: all three rows are good
    assert [(i.line, i.posts[0].text) for i in items] == [
        (2, '5" of rain'), (3, "second"), (4, 'a 6" drift')]


def test_column_mapping_override_and_clear_errors(tmp_path):
    f = _write(tmp_path, "custom.csv", f"post,body,when\n{ID1},hello,2015-04-25T09:54:27Z\n".encode())
    with pytest.raises(MappingError, match=r"no id column .*--columns id="):
        list(read_table(f, None))
    (item,) = read_table(f, "mine", columns={"id": "post", "text": "body", "created_at": "when"})
    assert item.posts[0].source == "mine" and item.posts[0].text == "hello"
    with pytest.raises(MappingError, match="unknown field 'colour'"):
        ColumnMapping.from_header(["a"], {"colour": "a"})


@pytest.mark.parametrize("folder,source", [
    ("crisislex_t6", "crisislex_t6"), ("humaid", "humaid"),
    ("crisisnlp_aidr_volunteers", "crisisnlp_aidr_volunteers"),
    ("crisisnlp_lrec2016_crowdflower", "crisisnlp_lrec2016_crowdflower"),
])
def test_real_dataset_files_read_without_errors(shared_data, folder, source):
    files = sorted(p for p in (shared_data / folder).rglob("*") if p.suffix in (".csv", ".tsv"))
    f = files[0]
    items = list(read_table(f, None))
    assert items and all(i.ok for i in items), [i.error for i in items if not i.ok][:3]
    assert {i.posts[0].source for i in items} == {source}
    assert all(i.posts[0].normalized().created_at for i in items)
