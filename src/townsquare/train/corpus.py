"""The governed training corpus: what townsquare's GPT may learn from, and a record of it.

    >>> scrub("RT @ann: Call +1 (555) 123-4567 or write to ann@example.org, see https://t.co/x.")
    'Call or write to, see <|url|>.'
    >>> import tempfile
    >>> from townsquare.posts import Post
    >>> from townsquare.store import open_store
    >>> from townsquare.store.base import Stored
    >>> with open_store(":memory:") as store, tempfile.TemporaryDirectory() as out:
    ...     _ = store.write_batch([Stored(Post(id=1212092628029698048 + i, source="demo", text=t,
    ...                                        author_handle=a).normalized())
    ...                            for i, (t, a) in enumerate([
    ...         ("Water rising fast on Main St, stay away from the bridge", "ann"),
    ...         ("water rising fast on main st, stay away from the bridge https://t.co/q", "bob"),
    ...         ("My number is 555-123-4567, the shelter on Elm St is open", "cat")])], [])
    ...     _ = store.opt_out(["@Cat"])
    ...     m = CorpusBuilder(store).run(out)
    ...     (m.counts["kept"], m.counts["exact_dup"], m.counts["opted_out"])
    (1, 1, 1)

``CorpusBuilder.run`` reads every stored post in time order and, for each, in this order:

1. **consent**: drops posts of opted-out authors (``Store.opt_out``; a lowercased handle or a
   numeric author id) and deleted posts. Only the ``posts`` table is read, so quarantined records
   never come in; deletions and opt-outs recorded while the build ran are checked again at the end.
2. **language**: when ``langs`` is set, keeps posts whose ``Post.lang`` is one of them (a post the
   late stage has not identified yet, ``lang`` None, is dropped: unknown is not allowed).
3. **PII**: ``scrub`` removes emails and phone numbers, puts ``<|user|>`` for @handles and
   ``<|url|>`` for links (the tokenizer's special tokens, ``train.tokenizer``), drops the
   retweet prefix and collapses whitespace. Special-token strings typed in a post are removed
   first: a post must not be able to write ``<|endofpost|>`` into the token stream.
4. **quality**: ``min_chars`` and ``min_alpha_share`` on the text without placeholders, so a
   post that is only links and handles never passes.
5. **duplicates**: exact (the scrubbed text without placeholders, case-folded: copies that differ
   in case, spacing, links or handles) and near (Jaccard similarity of word 3-shingles >= ``near_dup_threshold``);
   the earliest post of a group is kept, since it is read first.

It writes ``corpus.jsonl`` (``{"id", "created_at", "text"}`` per kept post, in time order) and
``manifest.json``: counts per reason, the config, the store, the time span, the build time, and the
kept posts with a SHA-256 of each one's source text plus one SHA-256 over all (id, text) pairs,
so a checkpoint can name exactly what trained it. Whose posts were left out for consent is there
too, without naming anyone: ``counts["opted_out"]`` posts, by the authors whose
``author_digest`` is in ``opted_out_authors`` (every opt-out the build honoured), so a user's
export can say that the last corpus left them out while a manifest shipped beside a model lists no
handle. ``check_deletions`` lists the posts of a
manifest that have been deleted or opted out since: what a retraining must leave out. Given the
same store, two builds write the same bytes (the manifest differs only in ``created_at``).

Near duplicates, how (``townsquare.text.shingles.NearDupIndex``, over the word 3-shingles of
``content_of``): MinHash signatures (datasketch, ``num_perm`` permutations) go into datasketch's
``MinHashLSH`` to find candidates, and each candidate is then checked with the exact Jaccard
similarity of the two shingle sets, so ``near_dup_threshold`` means what it says and the MinHash
estimate's noise (+/-0.06 at 64 permutations) only costs candidate lookups. The bands are chosen
for recall (``lsh_params``: a pair at the threshold is a candidate with probability >= 0.95)
instead of datasketch's default, which finds only ~38% of the pairs at the threshold.
The default threshold is 0.7, the late stage's (``text.shingles.THRESHOLD``): changing one word in
the middle of an n-word post leaves a Jaccard of (n - 5) / (n + 1) on 3-shingles, 0.71 for 20
words, so 0.8 would keep most one-word edits of a typical post.
"""
from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from townsquare.posts import Post
from townsquare.settings import redact_url
from townsquare.store.base import Store, author_key
from townsquare.text.rules import LINK, MENTION, URL_TRAIL
from townsquare.text.shingles import NearDupIndex, word_shingles
from townsquare.train.tokenizer import SPECIALS

USER, URL = "<|user|>", "<|url|>"
CORPUS_FILE = "corpus.jsonl"
MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = 1
# The reasons a post is left out, in the order they are checked; ``kept`` closes the count.
COUNTS = ("read", "opted_out", "deleted", "lang", "too_short", "low_quality", "exact_dup",
          "near_dup", "kept")


@dataclass
class CorpusConfig:
    min_chars: int = 20                       # characters left once placeholders are removed
    langs: tuple[str, ...] | None = None      # ISO 639-1 codes to keep; None keeps every language
    near_dup_threshold: float = 0.7           # Jaccard of word 3-shingles at which posts are copies
    num_perm: int = 64                        # MinHash permutations (candidate search only)
    min_alpha_share: float = 0.5              # letters among the non-space characters

    def __post_init__(self):
        if isinstance(self.min_chars, bool) or not isinstance(self.min_chars, int) \
                or self.min_chars < 0:
            raise ValueError(f"min_chars must be an integer >= 0, got {self.min_chars!r}")
        if self.langs is not None:
            if isinstance(self.langs, str) or not all(
                    isinstance(x, str) and x.strip() for x in self.langs) or not self.langs:
                raise ValueError(f"langs must be None or a non-empty sequence of language codes "
                                 f"such as ('en', 'fr'), got {self.langs!r}")
            self.langs = tuple(sorted({x.strip().lower() for x in self.langs}))
        if not 0.0 < self.near_dup_threshold <= 1.0:
            raise ValueError(f"near_dup_threshold must be in (0, 1], got {self.near_dup_threshold!r}")
        if isinstance(self.num_perm, bool) or not isinstance(self.num_perm, int) \
                or not 16 <= self.num_perm <= 1024:
            raise ValueError(f"num_perm must be an integer in [16, 1024], got {self.num_perm!r}")
        if not 0.0 <= self.min_alpha_share <= 1.0:
            raise ValueError(f"min_alpha_share must be in [0, 1], got {self.min_alpha_share!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["langs"] = list(self.langs) if self.langs is not None else None
        return d


# --- PII -----------------------------------------------------------------------------------------
_SPECIAL = re.compile("|".join(re.escape(s) for s in SPECIALS))
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}\b", re.IGNORECASE)
# Phones. International: "+" then 8 to 15 digits (E.164) in groups, an area code may be in
# parentheses: "+44 20 7946 0958", "+1 (555) 123-4567", "+33612345678". National (North American)
# numbers need their separators, "(555) 123-4567", "555-123-4567", "555.123.4567", "1-800-555-0199",
# so dates (2020-01-15), times, counts and amounts are left alone; a bare 10-digit run is too.
_PHONE_INTL = re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d{1,4}){1,6}(?!\d)")
_PHONE_US = re.compile(
    r"(?<![\w+])(?:1[ .-]?)?(?:\(\d{3}\)[ .-]?|\d{3}([ .-]))\d{3}(?(1)\1|[ .-])\d{4}(?!\d)")
_RT_PREFIX = re.compile(r"^(?:RT|MT)\s*<\|user\|>:?\s*", re.IGNORECASE)
_SPACE = re.compile(r"\s+")
_PLACEHOLDER = re.compile(re.escape(USER) + "|" + re.escape(URL))


def _link(m: re.Match) -> str:
    """A link as ``<|url|>``; its trailing punctuation stays with the sentence."""
    s = m.group(0)
    body = s.rstrip(URL_TRAIL)
    return URL + s[len(body):]


def _intl_phone(m: re.Match) -> str:
    digits = sum(c.isdigit() for c in m.group(0))
    return _GONE if 8 <= digits <= 15 else m.group(0)


# What a removal leaves, for a moment: NUL never occurs in a stored text (``Post.normalized``).
_GONE = "\x00"
# A removal right before punctuation takes its spaces with it: "write to a@b.org, or" reads
# "write to, or" rather than "write to , or".
_GONE_BEFORE_PUNCT = re.compile(r"\s*\x00[\s\x00]*(?=[,.;:!?)\]}]|$)")


def scrub(text: str) -> str:
    """A post's text with its personal data out: emails and phone numbers removed, @handles as
    ``<|user|>``, links as ``<|url|>``, no retweet prefix, whitespace collapsed."""
    t = _SPECIAL.sub(" ", text.replace(_GONE, ""))
    t = LINK.sub(_link, t)              # before emails and handles: a link may hold an "@"
    t = _EMAIL.sub(_GONE, t)            # before handles: "ann@example.org" is not a mention
    t = _PHONE_INTL.sub(_intl_phone, t)
    t = _PHONE_US.sub(_GONE, t)
    t = MENTION.sub(USER, t)
    t = _GONE_BEFORE_PUNCT.sub("", t).replace(_GONE, " ")
    t = _SPACE.sub(" ", t).strip()
    return _RT_PREFIX.sub("", t)


def content_of(text: str) -> str:
    """A scrubbed text without its placeholders: what the quality filters measure."""
    return _SPACE.sub(" ", _PLACEHOLDER.sub(" ", text)).strip()


# --- duplicates ----------------------------------------------------------------------------------
def exact_key(content: str) -> bytes:
    """The exact-duplicate key of a post's ``content_of``: copies that differ only in case,
    spacing, links or handles share it."""
    return hashlib.blake2b(content.casefold().encode(), digest_size=16).digest()


# --- the build -----------------------------------------------------------------------------------
@dataclass
class CorpusManifest:
    """What a build wrote and why (``manifest.json``)."""

    store: str                                # the store's path
    config: dict[str, Any]
    counts: dict[str, int]                    # per reason in COUNTS
    first_created_at: int | None              # time span of the kept posts (ms), None when empty
    last_created_at: int | None
    content_sha256: str                       # over the kept (id, source text) pairs, in order
    corpus_sha256: str                        # of corpus.jsonl's bytes
    posts: list[tuple[str, str]] = field(default_factory=list)  # (id, SHA-256 of source text)
    opted_out_authors: list[str] = field(default_factory=list)  # author_digest of each opt-out
    created_at: int = 0                       # when the build ran (ms)
    format: int = MANIFEST_FORMAT

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["posts"] = [list(p) for p in self.posts]
        return d

    @classmethod
    def load(cls, path: str | Path) -> "CorpusManifest":
        """A manifest from its file or from the folder holding it."""
        p = Path(path)
        if p.is_dir():
            p = p / MANIFEST_FILE
        d = orjson.loads(p.read_bytes())
        if d.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"{p}: manifest format {d.get('format')!r}, expected {MANIFEST_FORMAT}")
        d["posts"] = [tuple(x) for x in d["posts"]]
        return cls(**d)

    def ids(self) -> list[int]:
        return [int(i) for i, _ in self.posts]


def authors_of(p: Post) -> tuple[str, ...]:
    """The keys an opt-out can name a post's author by: the lowercased handle, the numeric id."""
    keys = []
    if p.author_handle:
        keys.append(p.author_handle.lstrip("@").lower())
    if p.author_id is not None:
        keys.append(str(p.author_id))
    return tuple(keys)


def author_digest(author: str) -> str:
    """How a manifest names an opted-out author: the SHA-256 (hex) of the author's key
    (``store.base.author_key``). It confirms that a known user was left out; it is not
    anonymous (a handle can be hashed and looked up), which is why only the opted-out are listed.

        >>> author_digest("ann")[:12]
        '49915e0d7d4b'
    """
    return hashlib.sha256(author_key(author).encode()).hexdigest()


def source_hash(text: str) -> bytes:
    """SHA-256 of a post's source text, as the manifest lists it."""
    return hashlib.sha256(text.encode()).digest()


class CorpusBuilder:
    """Builds the governed corpus of ``store`` into a folder (see the module's docstring)."""

    def __init__(self, store: Store, config: CorpusConfig | None = None):
        self.store = store
        self.config = config or CorpusConfig()

    def keep_lang(self, p: Post) -> bool:
        """Whether the language filter (``langs``) lets ``p`` in."""
        return self.config.langs is None or (p.lang or "") in self.config.langs

    def quality(self, text: str) -> str | None:
        """The reason a scrubbed text fails the quality filters, or None when it passes."""
        content = content_of(text)
        if len(content) < self.config.min_chars:
            return "too_short"
        chars = content.replace(" ", "")
        if not chars or sum(c.isalpha() for c in chars) / len(chars) < self.config.min_alpha_share:
            return "low_quality"
        return None

    def run(self, out_dir: str | Path, *,
            progress: Callable[[int], None] | None = None) -> CorpusManifest:
        """Write ``corpus.jsonl`` and ``manifest.json`` into ``out_dir`` (replacing a previous
        build's); ``progress(n_read)`` is called every 1,000 posts read and once at the end."""
        cfg = self.config
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        counts = dict.fromkeys(COUNTS, 0)
        opted = self.store.opted_out()
        deleted = self.store.deleted_ids()
        exact: set[bytes] = set()
        near = NearDupIndex(cfg.near_dup_threshold, cfg.num_perm)
        # Per kept post: (id, created_at, source hash, author keys); the text goes to a temporary
        # file as it is read, so memory holds hashes and the LSH index, not the corpus.
        kept: list[tuple[int, int, bytes, tuple[str, ...]]] = []
        tmp = out / (CORPUS_FILE + ".tmp")
        with open(tmp, "wb") as f:
            for p in self.store.iter_posts(by_time=True):
                counts["read"] += 1
                if progress is not None and counts["read"] % 1000 == 0:
                    progress(counts["read"])
                authors = authors_of(p)
                if any(a in opted for a in authors):
                    counts["opted_out"] += 1
                    continue
                if p.id in deleted:      # deleted between the tombstones' read and this page
                    counts["deleted"] += 1
                    continue
                if not self.keep_lang(p):
                    counts["lang"] += 1
                    continue
                text = scrub(p.text)
                reason = self.quality(text)
                if reason is not None:
                    counts[reason] += 1
                    continue
                content = content_of(text)
                key = exact_key(content)
                if key in exact:
                    counts["exact_dup"] += 1
                    continue
                if near.seen(p.id, word_shingles(content)):
                    counts["near_dup"] += 1
                    continue
                exact.add(key)
                kept.append((p.id, p.created_at, source_hash(p.text), authors))
                f.write(orjson.dumps({"id": str(p.id), "created_at": p.created_at, "text": text}))
                f.write(b"\n")
        if progress is not None:
            progress(counts["read"])

        return finish_build(self.store, cfg, out, tmp, counts, kept, opted, deleted)


def finish_build(store: Store, cfg: CorpusConfig, out: Path, tmp: Path, counts: dict[str, int],
                 kept: list[tuple[int, int, bytes, tuple[str, ...]]], opted: set[str],
                 deleted: set[int]) -> CorpusManifest:
    """The end of a build (``CorpusBuilder.run`` and the Dask job ``jobs.corpus``): drop what was
    deleted or opted out while it ran, hash, move the corpus into place, write the manifest.
    ``kept``: per kept post (id, created_at, source hash, author keys), in corpus order; ``tmp``
    the corpus written so far; ``opted``/``deleted`` what the build read when it started."""
    # Deletions and opt-outs recorded while the build ran: those posts leave the corpus too
    # (their near-duplicates that were dropped in their favour stay out; the next build has them).
    late_deleted = store.deleted_ids() - deleted
    late_opted = store.opted_out() - opted
    drop: set[int] = set()
    for pid, _, _, authors in kept:
        if pid in late_deleted:
            counts["deleted"] += 1
            drop.add(pid)
        elif any(a in late_opted for a in authors):
            counts["opted_out"] += 1
            drop.add(pid)
    if drop:
        kept = [k for k in kept if k[0] not in drop]
        with open(tmp, "rb") as src, open(out / (CORPUS_FILE + ".tmp2"), "wb") as dst:
            for line in src:
                if int(orjson.loads(line)["id"]) not in drop:
                    dst.write(line)
        os.replace(out / (CORPUS_FILE + ".tmp2"), tmp)
    counts["kept"] = len(kept)

    content = hashlib.sha256()
    for pid, _, h, _ in kept:
        content.update(orjson.dumps([str(pid), h.hex()]) + b"\n")
    file_hash = hashlib.sha256()
    with open(tmp, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            file_hash.update(block)
    os.replace(tmp, out / CORPUS_FILE)
    manifest = CorpusManifest(
        store=str(getattr(store, "path", None) or redact_url(getattr(store, "url", "") or "")),
        config=cfg.to_dict(),
        counts=counts,
        first_created_at=kept[0][1] if kept else None,
        last_created_at=kept[-1][1] if kept else None,
        content_sha256=content.hexdigest(),
        corpus_sha256=file_hash.hexdigest(),
        posts=[(str(pid), h.hex()) for pid, _, h, _ in kept],
        opted_out_authors=sorted(author_digest(a) for a in opted | late_opted),
        created_at=int(time.time() * 1000),
    )
    # The manifest goes last, atomically: a manifest on disk always describes a whole corpus.
    (out / (MANIFEST_FILE + ".tmp")).write_bytes(
        orjson.dumps(manifest.to_dict(), option=orjson.OPT_INDENT_2))
    os.replace(out / (MANIFEST_FILE + ".tmp"), out / MANIFEST_FILE)
    return manifest


def check_deletions(manifest_path: str | Path, store: Store) -> list[int]:
    """Ids of a manifest's posts that must not be trained on any more, ascending: deleted since the
    build, by an author who has opted out since, or no longer in ``store`` at all (a post whose
    author cannot be checked is not one to train on)."""
    ids = CorpusManifest.load(manifest_path).ids()
    gone = store.deleted_ids()
    opted = store.opted_out()
    out = {i for i in ids if i in gone}
    rest = [i for i in ids if i not in gone]
    posts = store.posts_by_id(rest)
    for i in rest:
        p = posts.get(i)
        if p is None or any(a in opted for a in authors_of(p)):
            out.add(i)
    return sorted(out)
