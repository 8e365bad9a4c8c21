"""Compile a parsed query into a query over the tantivy index's fields (``search.lexindex``).

    >>> import tantivy
    >>> from townsquare.query import parse
    >>> from townsquare.search.lexindex import build_schema
    >>> c = compile_tantivy(parse("flood lang:en -filter:links url:x.com"), build_schema(),
    ...                     now_ms=0, lang_known=True)
    >>> c.residual
    Op(name='url', value='x.com')

Every part of a query that the index holds exactly becomes a clause of one tantivy boolean
query; what it cannot hold stays in ``residual``, a smaller query that the store checks on the
index's candidates (``Store.filter_ids``), as every operator used to be checked. With no
residual, tantivy's top k *is* the answer: no SQL read at all, and no over-fetching.

What compiles (the store's SQL semantics, ``store/sqlite_query.py``, field by field):

- words and phrases: the index's tokens (``index_tokens``: FTS5's ``unicode61 remove_diacritics
  2`` for Latin scripts), as term and phrase queries; text without a token (an emoji) does not.
- ``#tag`` ``@handle`` ``$TAG``: the lowercased tag in the ``tags`` field (``#flood``,
  ``@ana``, ``$aapl``) and its words in the text, as the store requires both.
- ``lang:`` (only when every indexed post had its language when it was indexed,
  ``lang_known``: the late stage sets it after ingest), ``from:`` (the lowercased handle),
  ``to:`` (a reply that mentions the handle), ``filter:``/``exclude:`` of replies, retweets,
  nativeretweets, quote, links, media, hashtags and mentions (``flags``), ``since:``/``until:``/
  ``within_time:`` (a range on ``created_at``), ``since_id:``/``max_id:`` (a range on ``id``),
  ``include:nativeretweets`` (everything).
- ``-x``, ``OR`` and groups of any of these.

What stays in SQL: counts (``min_retweets:`` ..., ``filter:has_engagement``: the counts change
without the post's text changing), ``url:`` (a substring), ``geocode:``/``near:``,
``conversation_id:``, ``quoted_tweet_id:``, text without a token.

Filter clauses score 0 (``const_score_query``): BM25 ranks by the text alone, as FTS5 does.
Case: tags, handles and languages are compared lowercased (``str.lower``); the store's SQL
folds ASCII case and tries a few forms of the rest, so both agree on every ASCII tag and on
any tag whose non-ASCII letters are all one case.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from townsquare import query as q
from townsquare.text.normalize import WORD, lower_strip_accents

# ``filter:`` names kept as terms of the ``flags`` field (nativeretweets is retweets, as in SQL)
FLAGS = {"replies": "replies", "retweets": "retweets", "nativeretweets": "retweets",
         "quote": "quote", "links": "links", "media": "media", "hashtags": "hashtags",
         "mentions": "mentions"}
_TIME_OPS = ("since_ms", "until_ms", "within_time")


def index_tokens(text: str) -> list[str]:
    """Lowercase, strip accents, split into words: the index's tokens (``lower_strip_accents``
    is what tantivy's lowercaser and ASCII folding do to a word).

    >>> index_tokens("Séisme à l'Équateur: covid-19!")
    ['seisme', 'a', 'l', 'equateur', 'covid', '19']
    """
    return WORD.findall(lower_strip_accents(text))


@dataclass(frozen=True)
class Compiled:
    query: Any                  # tantivy.Query: every result satisfies it
    residual: q.Node | None     # still to check on the candidates (None: the query is exact)


class _Builder:
    def __init__(self, schema, now_ms: int, lang_known: bool):
        import tantivy
        self.t, self.schema, self.now_ms, self.lang_known = tantivy, schema, now_ms, lang_known

    # --- leaves ------------------------------------------------------------------------------------
    def words(self, text: str):
        toks = index_tokens(text)
        if not toks:
            return None
        Q = self.t.Query
        return (Q.term_query(self.schema, "text", toks[0]) if len(toks) == 1
                else Q.phrase_query(self.schema, "text", toks))

    def keyword(self, field: str, value: str):
        """A filter term that does not score."""
        Q = self.t.Query
        return Q.const_score_query(Q.term_query(self.schema, field, value), 0.0)

    def int_range(self, field: str, lo: int | None, hi: int | None, *, include_lo: bool = True,
                  include_hi: bool = True):
        Q = self.t.Query
        return Q.const_score_query(Q.range_query(
            self.schema, field, self.t.FieldType.Integer, lo, hi,
            include_lower=include_lo or lo is None, include_upper=include_hi or hi is None), 0.0)

    def everything(self):
        """Every post, scoring 0 (so that it adds nothing to BM25)."""
        return self.t.Query.const_score_query(self.t.Query.all_query(), 0.0)

    def both(self, *parts):
        parts = [p for p in parts if p is not None]
        if len(parts) == 1:
            return parts[0]
        return self.t.Query.boolean_query([(self.t.Occur.Must, p) for p in parts])

    def tag(self, prefix: str, tag: str, words: str):
        w = self.words(words) if index_tokens(words) else None
        return self.both(self.keyword("tags", prefix + tag.lower()), w)

    def op(self, node: q.Op):
        name, v = node.name, node.value
        if name == "lang":
            return self.keyword("lang", str(v).lower()) if self.lang_known else None
        if name == "since_ms":
            return self.int_range("created_at", int(v), None)
        if name == "until_ms":
            return self.int_range("created_at", None, int(v), include_hi=False)
        if name == "within_time":
            return self.int_range("created_at", self.now_ms - int(v) * 1000, None)
        if name == "since_id":
            return self.int_range("id", int(v), None, include_lo=False)
        if name == "max_id":
            return self.int_range("id", None, int(v))
        if name == "filter" and v in FLAGS:
            return self.keyword("flags", FLAGS[v])
        if name == "include":
            return self.everything()
        if name == "from":
            return self.keyword("author", str(v).lower())
        if name == "to":
            return self.both(self.keyword("flags", "replies"),
                             self.keyword("tags", "@" + str(v).lower()))
        return None

    # --- trees -------------------------------------------------------------------------------------
    def exact(self, node: q.Node):
        """A tantivy query matching exactly the posts ``node`` matches, or None."""
        Occur, Q = self.t.Occur, self.t.Query
        if isinstance(node, (q.Term, q.Phrase)):
            return self.words(node.text)
        if isinstance(node, q.Hashtag):
            return self.tag("#", node.tag, node.tag)
        if isinstance(node, q.Mention):
            return self.tag("@", node.handle, q.mention_text(node.handle))
        if isinstance(node, q.Cashtag):
            return self.tag("$", node.tag, node.tag)
        if isinstance(node, q.Op):
            return self.op(node)
        if isinstance(node, q.Not):
            inner = self.exact(node.child)
            return None if inner is None else Q.boolean_query(
                [(Occur.Must, self.everything()), (Occur.MustNot, inner)])
        if isinstance(node, q.Or):
            parts = [self.exact(c) for c in node.children]
            if not parts or any(p is None for p in parts):
                return None
            return Q.boolean_query([(Occur.Should, p) for p in parts])
        if isinstance(node, q.And):
            clauses = self.clauses(node.children)
            return None if clauses is None else self.boolean(clauses)
        return None

    def clauses(self, children) -> list | None:
        """Must / MustNot clauses for an AND's children; None when one does not compile."""
        Occur = self.t.Occur
        out = []
        for c in children:
            if isinstance(c, q.Not):
                inner = self.exact(c.child)
                if inner is None:
                    return None
                out.append((Occur.MustNot, inner))
            else:
                e = self.exact(c)
                if e is None:
                    return None
                out.append((Occur.Must, e))
        return out

    def boolean(self, clauses: list):
        Occur, Q = self.t.Occur, self.t.Query
        if not any(o == Occur.Must for o, _ in clauses):
            clauses = [(Occur.Must, self.everything())] + clauses   # MustNot alone: nothing
        return clauses[0][1] if len(clauses) == 1 else Q.boolean_query(clauses)

    def implied(self, node: q.Node):
        """The positive words of ``node`` that every match holds (None: none): a prefilter that
        also ranks, for a part that does not compile exactly."""
        if isinstance(node, (q.Term, q.Phrase)):
            return self.words(node.text)
        if isinstance(node, q.Hashtag):
            return self.words(node.tag)
        if isinstance(node, q.Mention):
            return self.words(q.mention_text(node.handle))
        if isinstance(node, q.Cashtag):
            return self.words(node.tag)
        if isinstance(node, q.And):
            must = [m for m in (self.implied(c) for c in node.children) if m is not None]
            return None if not must else self.both(*must)
        if isinstance(node, q.Or):
            parts = [self.implied(c) for c in node.children]
            if not parts or any(p is None for p in parts):
                return None
            return self.t.Query.boolean_query([(self.t.Occur.Should, p) for p in parts])
        return None


def compile_tantivy(node: q.Node, schema, *, now_ms: int, lang_known: bool) -> Compiled:
    """``node`` as a tantivy query over ``schema`` (``lexindex.build_schema``) plus the residual
    the store must check."""
    b = _Builder(schema, now_ms, lang_known)
    Occur = b.t.Occur
    clauses, rest = [], []
    for c in node.children if isinstance(node, q.And) else (node,):
        inner = c.child if isinstance(c, q.Not) else c
        e = b.exact(inner)
        if e is not None:
            clauses.append((Occur.MustNot if isinstance(c, q.Not) else Occur.Must, e))
            continue
        rest.append(c)
        if not isinstance(c, q.Not) and (pre := b.implied(c)) is not None:
            clauses.append((Occur.Must, pre))
    residual = None if not rest else rest[0] if len(rest) == 1 else q.And(tuple(rest))
    return Compiled(query=b.boolean(clauses) if clauses else b.everything(),
                    residual=residual)


def split_filters(node: q.Node) -> tuple[q.Node, q.Node, list[tuple[str, str, bool]]] | None:
    """``(words, filters, conditions)`` of a query that is one word, or words under one OR, and
    keyword conditions on the post (``lang:``, ``from:``, ``filter:`` and their exclusions);
    None for any other query. ``conditions``: each filter as (index field, lowercased value,
    excluded). Why: tantivy ranks a word, or a union of words, with block-max WAND, reading a
    few blocks of each posting list, where the same words AND a condition are scored post by
    post over their whole intersection (filters score 0, so the posts that pass come in the
    same order): ``SearchEngine`` ranks the words and checks the conditions on their
    candidates. Words that must all match (or a phrase) are scored post by post either way:
    there, checking the conditions in the store only adds its reads (``bench/search.py``).

    >>> from townsquare.query import parse
    >>> w, f, conds = split_filters(parse('flood OR fire lang:EN -filter:links'))
    >>> w
    Or(children=(Term(text='flood'), Term(text='fire')))
    >>> conds
    [('lang', 'en', False), ('flags', 'links', True)]
    >>> split_filters(parse("flood rain lang:en")) is None      # two words, both required
    True
    """
    words, filters, conds = [], [], []
    for c in node.children if isinstance(node, q.And) else (node,):
        if _ranked_by_blocks(c):
            words.append(c)
            continue
        op, excluded = (c.child, True) if isinstance(c, q.Not) else (c, False)
        if not isinstance(op, q.Op):
            return None
        if op.name in ("lang", "from"):
            conds.append(("lang" if op.name == "lang" else "author", str(op.value).lower(),
                          excluded))
        elif op.name == "filter" and op.value in FLAGS:
            conds.append(("flags", FLAGS[op.value], excluded))
        else:
            return None
        filters.append(c)
    if len(words) != 1 or not filters:
        return None
    return words[0], filters[0] if len(filters) == 1 else q.And(tuple(filters)), conds


def _ranked_by_blocks(node: q.Node) -> bool:
    """A word of one token, or an OR of such words: what block-max WAND ranks."""
    if isinstance(node, q.Term):
        return len(index_tokens(node.text)) == 1
    return isinstance(node, q.Or) and all(_ranked_by_blocks(c) for c in node.children)


def uses_lang(node: q.Node) -> bool:
    """Whether ``node`` has a ``lang:`` operator anywhere."""
    if isinstance(node, q.Op):
        return node.name == "lang"
    if isinstance(node, q.Not):
        return uses_lang(node.child)
    if isinstance(node, (q.And, q.Or)):
        return any(uses_lang(c) for c in node.children)
    return False


def text_atoms(node: q.Node) -> list[str]:
    """The words and phrases ``node`` tests anywhere (excluded ones too), in its order."""
    if isinstance(node, (q.Term, q.Phrase)):
        return [node.text]
    if isinstance(node, q.Not):
        return text_atoms(node.child)
    if isinstance(node, (q.And, q.Or)):
        return [t for c in node.children for t in text_atoms(c)]
    return []


def relax_text(node: q.Node) -> q.Node | None:
    """The query without its positive words, phrases and hashtags (None: no condition left);
    operators, mentions, cashtags and every exclusion stay. Semantic candidates must satisfy it."""
    if isinstance(node, (q.Term, q.Phrase, q.Hashtag)):
        return None
    if isinstance(node, q.And):
        kept = [c for c in (relax_text(ch) for ch in node.children) if c is not None]
        return None if not kept else kept[0] if len(kept) == 1 else q.And(tuple(kept))
    if isinstance(node, q.Or):
        kept = [relax_text(ch) for ch in node.children]
        return None if any(c is None for c in kept) else q.Or(tuple(kept))
    return node            # Not (exclusions stay whole), Mention, Cashtag, Op
