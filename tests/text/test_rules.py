"""Entity and noise rules on the inputs that tell them apart: e-mails, fullwidth signs, URLs
with punctuation."""
from __future__ import annotations

import pytest

from townsquare.text.rules import (CASHTAG, HASHTAG, LINK, MENTION, MENTION_ASCII,
                                   MENTION_ASCII_START, MENTION_LOOSE, URL, URL_LOOSE, URL_TRAIL,
                                   clean_post)


@pytest.mark.parametrize("rule, a_email, fullwidth, after_bang", [
    (MENTION, False, True, False),
    (MENTION_LOOSE, True, True, True),
    (MENTION_ASCII, True, False, True),
    (MENTION_ASCII_START, False, False, True),
])
def test_the_four_mention_rules_as_documented(rule, a_email, fullwidth, after_bang):
    assert (bool(rule.search("mail a@b.org")), bool(rule.search("hi ＠c")),
            bool(rule.search("yes!@d"))) == (a_email, fullwidth, after_bang)


def test_entity_mentions_are_handles_of_at_most_50_characters():
    assert MENTION.findall("cc @ann, @bob_2: ＠Cat and ann@example.org, @@x, a@b") == \
        ["ann", "bob_2", "Cat"]
    assert MENTION.findall("@" + "x" * 60) == ["x" * 50]


def test_hashtags_and_cashtags():
    assert HASHTAG.findall("#Flood a#b #2015 #séisme ＃地震 &#39; x/#y #2015flood") == \
        ["Flood", "séisme", "地震", "2015flood"]
    assert CASHTAG.findall("$ACME up, $5 down, $BRK.A, $toolong1") == ["ACME", "BRK.A"]


def test_urls_with_punctuation():
    text = 'See (https://t.co/x?a=1&b=2). Or "http://ex.org/p," then www.ex.org/q! ftp://f.org/z.'
    assert [m.group(0).rstrip(URL_TRAIL) for m in URL.finditer(text)] == \
        ["https://t.co/x?a=1&b=2", "http://ex.org/p"]
    assert [m.group(0).rstrip(URL_TRAIL) for m in LINK.finditer(text)] == \
        ["https://t.co/x?a=1&b=2", "http://ex.org/p", "www.ex.org/q", "ftp://f.org/z"]
    assert URL_LOOSE.findall(text) == ["https://t.co/x?a=1&b=2).", "http://ex.org/p,\"",
                                       "www.ex.org/q!"]
    assert URL_LOOSE.sub("_", "HTTPS://EX.ORG/A Www.Ex.Org") == "_ _"
    assert URL.findall("«https://x.fr/a»") == ["https://x.fr/a»"]   # guillemets are not stops


def test_clean_post_keeps_a_sentence():
    assert clean_post("RT @ann: @bob, Road closed. Details HTTPS://t.co/x #a #b") == "Road closed."
    assert clean_post("one two three four", max_words=2) == "one two..."


def test_clean_post_drops_what_sharing_adds_and_keeps_the_statement():
    # a commented retweet: the quoted post is the statement; a short quote keeps the whole text
    assert clean_post("so sad RT @bbc: Quake kills 300 in Kathmandu") == "Quake kills 300 in Kathmandu"
    assert clean_post("wow MT @ann: Road closed near the dam") == "Road closed near the dam"
    assert clean_post("agreed RT @bob: yes") == "agreed RT @bob: yes"
    assert clean_post("Dam holds after the storm via @localnews: more soon") == \
        "Dam holds after the storm more soon"
    assert clean_post("Sandbagging downtown (at City Hall) with the crew") == \
        "Sandbagging downtown with the crew"
    assert clean_post("Shelters open tonight @redcross @fema") == "Shelters open tonight"
    assert clean_post("Storm hits the coast - video http://t.co/x") == "Storm hits the coast"
    # a suffix that would leave almost nothing stays: it may be the statement
    assert clean_post("Flooding | Live") == "Flooding | Live"
