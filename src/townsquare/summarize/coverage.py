"""Evidence chosen for what it covers: the word pairs most of the posts share, in the fewest words.

    >>> shown = ["Typhoon Hagupit makes landfall in the Philippines",
    ...          "Typhoon Hagupit makes landfall in the Philippines, thousands flee",
    ...          "Hagupit: thousands flee the coast",
    ...          "Thousands flee the coast as Typhoon Hagupit nears",
    ...          "Stay safe everyone"]
    >>> sets = [pairs(s) for s in shown]
    >>> w = concept_weights(sets, groups=[0, 1, 2, 3, 4], min_groups=2)
    >>> w[("thousand", "flee")], w[("make", "landfall")], ("stay", "safe") in w
    (3, 2, False)
    >>> select_by_coverage(sets, [len(s.split()) for s in shown], w, k=5)   # all said twice
    [0, 2]

How: a *concept* is a pair of adjacent words (case and accents folded, a plural's "s" dropped,
links and mentions out; a pair of two stopwords is not a concept), weighted by how many
near-duplicate groups of the candidates state it (``concept_weights``; a retweet flood is one
group, so it cannot make its own words heavy). Pairs fewer than ``min_groups`` groups state are
no concept at all: one voice is not what the posts say. The summary then takes, one at a time,
the sentence whose concepts *not yet covered* weigh the most per word
(``select_by_coverage``: gain / words ** ``length_power``), until ``k`` are taken or nothing
new is left.

This is the concept-coverage summarizer of Gillick & Favre (2009; bigrams weighted by document
frequency, the strong baseline of the TAC summarization tasks), solved greedily as budgeted
maximum coverage (Khuller et al. 1999; Lin & Bilmes 2010 for the length scaling) instead of
with an ILP: the greedy ratio rule is within a constant of the optimum and costs milliseconds
for a day's thousand candidates. It needs no embedding and no trained weights: what a summary
should say is what most posts say, in the words most of them use, and it says each thing once
(a covered pair earns nothing the second time, which is its redundancy rule).
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from townsquare.text.normalize import STOPWORDS, fold_case_accents
from townsquare.text.rules import LINK_OR_MENTION

Pair = tuple[str, str]

_TOKEN = re.compile(r"[^\W_]+(?:[.,:][0-9]+)*", re.UNICODE)


def _stem(word: str) -> str:
    """A plural's "s" and a verb's "s" dropped ("kills" = "kill", "floods" = "flood"); enough
    to count one concept once, without a stemmer's tables."""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def tokens(text: str) -> list[str]:
    """Folded words and numbers of ``text``, links and mentions out, "#" dropped.

    >>> tokens("RT @cnn: 7.9 quake KILLS 1,500 in Kathmandú http://t.co/x #Nepal")
    ['rt', '7.9', 'quake', 'kill', '1,500', 'in', 'kathmandu', 'nepal']
    """
    return [_stem(w) for w in _TOKEN.findall(fold_case_accents(LINK_OR_MENTION.sub(" ", text)))]


def pairs(text: str) -> set[Pair]:
    """The concepts ``text`` states: its adjacent word pairs, pairs of two stopwords out.

    >>> sorted(pairs("Floods close the schools of Riverton"))
    [('close', 'the'), ('flood', 'close'), ('of', 'riverton'), ('school', 'of'), ('the', 'school')]
    """
    return pairs_of(tokens(text))


def pairs_of(w: list[str]) -> set[Pair]:
    """``pairs`` of an already tokenized text (``tokens``)."""
    return {(a, b) for a, b in zip(w, w[1:]) if not (a in STOPWORDS and b in STOPWORDS)}


def concept_weights(sets: Sequence[set[Pair]], groups: Sequence[int],
                    min_groups: int = 3) -> dict[Pair, int]:
    """Concept -> how many distinct ``groups`` (near-duplicate roots) state it, for the pairs
    that at least ``min_groups`` groups state."""
    if len(sets) != len(groups):
        raise ValueError(f"{len(sets)} pair sets but {len(groups)} groups")
    seen: dict[Pair, set[int]] = {}
    for s, g in zip(sets, groups):
        for p in s:
            seen.setdefault(p, set()).add(g)
    return {p: len(gs) for p, gs in seen.items() if len(gs) >= min_groups}


def select_by_coverage(sets: Sequence[set[Pair]], lengths: Sequence[int],
                       weights: dict[Pair, int], k: int, length_power: float = 1.0) -> list[int]:
    """Greedy budgeted coverage: indexes of up to ``k`` of ``sets``, each in turn the one whose
    uncovered concepts weigh the most per ``lengths`` ** ``length_power`` words (ties: the
    lower index). Stops early when no set adds anything."""
    if len(sets) != len(lengths):
        raise ValueError(f"{len(sets)} pair sets but {len(lengths)} lengths")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    own = [{p: weights[p] for p in s if p in weights} for s in sets]
    scale = [max(n, 1) ** length_power for n in lengths]
    covered: set[Pair] = set()
    chosen: list[int] = []
    free = [i for i in range(len(sets)) if own[i]]      # ascending: ties go to the lower index
    while len(chosen) < k and free:
        best, best_gain = -1, 0.0
        for i in free:
            gain = sum(w for p, w in own[i].items() if p not in covered) / scale[i]
            if gain > best_gain:
                best, best_gain = i, gain
        if best < 0:                                    # weights of 0: nothing to add
            break
        chosen.append(best)
        covered.update(own[best])
        # only the sets that still add something stay candidates (so every gain above is > 0)
        free = [i for i in free if i != best and any(p not in covered for p in own[i])]
    return chosen
