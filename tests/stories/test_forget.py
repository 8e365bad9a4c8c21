"""Deleted posts leave the stories: ``StoryState.refresh`` removes what the store's deletions log
lists (``stories.forget``), writes ``stories.pkl`` again at once, and no table of the
clusterer keeps a word only the deleted post had."""
from __future__ import annotations

import pickle
import struct

from townsquare.posts import Post
from townsquare.stories.cluster import StoryClusterer, StoryConfig, StoryPost
from townsquare.stories.forget import forget
from townsquare.stories.state import StoryState
from townsquare.store.base import Stored

BASE = 1212092628029698048
TOKEN = "zqxdeletetoken7731"
T0 = 1_600_000_000_000
BRIDGE = ["Bridge collapse on route 9 after the flood", "Route 9 bridge collapse as flood waters rise",
          f"Flood: route 9 bridge collapse seen from the {TOKEN} tower",
          "The flood took the route 9 bridge", "Route 9 bridge collapse photos from the flood"]
CHATTER = ["Morning coffee at the park", "New recipe tried tonight, pasta with lemon"]
VICTIM = BASE + 2
CFG = StoryConfig(min_posts=3)


def _fill(store, texts=BRIDGE + CHATTER):
    store.write_batch([Stored(Post(id=BASE + i, text=t, source="t", created_at=T0 + i * 1000,
                                   author_handle=f"u{i}").normalized())
                       for i, t in enumerate(texts)], [])


def _holds_token(c: StoryClusterer) -> list[str]:
    """The clusterer's tables in which some key still mentions the token (document
    frequencies are counts by hash, ``stories.counts``: they hold no text at all)."""
    assert c.df.counts.dtype.kind == "i"
    tables = {"vocab": c.vocab, "index": c._index, "segments": c._segments}
    for cl in c.clusters.values():
        tables[f"terms {cl.id}"], tables[f"centroid {cl.id}"] = cl.terms, cl.centroid
    return [name for name, t in tables.items() if any(TOKEN in k for k in t)]


def _members(store):
    def members(ids):
        return {pid: StoryPost(p.id, p.created_at, p.text, p.author_handle, p.lang)
                for pid, p in store.posts_by_id(ids).items()}
    return members


def test_refresh_removes_a_deleted_post_and_writes_the_file_at_once(store, tmp_path):
    path = tmp_path / "stories.pkl"
    _fill(store)
    st = StoryState(store, path, CFG)
    st.refresh()
    (story,) = st.stories()
    assert VICTIM in story.post_ids and TOKEN.encode() in path.read_bytes()
    docs = st.clusterer.n_docs
    store.delete([VICTIM])
    assert st.refresh(save=False) == 1        # removed; saved although save=False (the server's)
    (story,) = st.stories()                   # no alive filter: the state itself lost it
    assert VICTIM not in story.post_ids and story.size == len(BRIDGE) - 1
    assert VICTIM not in st.clusterer.assignment and st.clusterer.n_docs == docs - 1
    assert _holds_token(st.clusterer) == []
    data = path.read_bytes()
    assert TOKEN.encode() not in data and struct.pack("<q", VICTIM) not in data
    back = StoryState(store, path, CFG)
    assert back.deleted_through == st.deleted_through == store.deletions_since(0, 9)[-1][0]
    assert VICTIM not in back.stories()[0].post_ids and back.refresh() == 0


def test_the_state_after_a_deletion_counts_words_as_if_the_post_never_came(store):
    _fill(store)
    st = StoryState(store, None, CFG)
    st.refresh()
    store.delete([VICTIM])
    st.refresh()
    fresh = StoryClusterer(CFG)
    for i, t in enumerate(BRIDGE + CHATTER):
        if BASE + i != VICTIM:
            fresh.add(StoryPost(BASE + i, T0 + i * 1000, t, f"u{i}"))
    c = st.clusterer
    assert (c.n_docs, c.df, +c.vocab, c.vocab_total) == \
        (fresh.n_docs, fresh.df, +fresh.vocab, fresh.vocab_total)
    assert c.df["tower"] == 0 and c.df["bridge"] > 0          # its own words go, shared stay


def test_a_post_of_a_merged_cluster_leaves_the_cluster_it_merged_into():
    c = StoryClusterer(StoryConfig(join_threshold=0.5, merge_threshold=0.05, min_posts=3))
    texts = ["bridge collapse on route nine"] * 3 + [
        "flood waters near the bridge", f"flood waters near the bridge {TOKEN}",
        "flood waters near the bridge"]
    posts = {100 + i: StoryPost(100 + i, T0 + i, t, f"u{i}") for i, t in enumerate(texts)}
    c.run(posts.values())
    c.maintain()
    first, second = c.assignment[100], c.assignment[104]
    assert c.clusters[second].merged_into == first            # the two merged
    assert forget(c, [104], lambda ids: {i: posts[i] for i in ids}) == 1
    assert c.clusters[first].post_ids == [100, 101, 102, 103, 105]
    assert 104 not in c.assignment and _holds_token(c) == []
    lab = c.labels()                       # the share over clusters is the share over posts
    assert c.unassigned_share() == sum(v is None for v in lab.values()) / len(lab)


def test_remove_also_drops_members_the_store_no_longer_has(store):
    _fill(store)
    st = StoryState(store, None, CFG)
    st.refresh()
    c = st.clusterer
    store.delete([BASE + 3])                  # deleted too, but not named in this call
    assert forget(c, [VICTIM, 987], _members(store)) == 1      # 987: never held
    assert not {VICTIM, BASE + 3} & set(c.assignment)
    assert not {VICTIM, BASE + 3} & set(st.stories()[0].post_ids)
    assert forget(c, [VICTIM], _members(store)) == 0           # gone already


def test_a_new_state_reads_the_posts_left_and_skips_the_log(store, tmp_path):
    _fill(store)
    store.delete([VICTIM])
    st = StoryState(store, tmp_path / "stories.pkl", CFG)
    assert st.refresh() == len(BRIDGE + CHATTER) - 1          # posts read, nothing removed
    assert st.deleted_through == store.deletions_since(0, 9)[-1][0]
    assert VICTIM not in st.stories()[0].post_ids and st.refresh() == 0


def test_a_state_saved_before_the_log_applies_the_whole_log_once(store, tmp_path):
    path = tmp_path / "stories.pkl"
    _fill(store)
    StoryState(store, path, CFG).refresh()
    store.delete([VICTIM])
    saved = pickle.loads(path.read_bytes())
    del saved["deleted_through"]                # as the release before the log wrote it
    path.write_bytes(pickle.dumps(saved))
    old = StoryState(store, path, CFG)
    assert old.deleted_through == 0 and VICTIM in old.clusterer.assignment
    assert old.refresh() == 1 and VICTIM not in old.stories()[0].post_ids
    assert TOKEN.encode() not in path.read_bytes() and old.refresh() == 0
