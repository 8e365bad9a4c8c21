"""The text toolkit: the one place that says how post text is folded, split and matched.

    >>> from townsquare.text.normalize import fold_case_accents
    >>> from townsquare.text.rules import MENTION
    >>> fold_case_accents("Séisme à Québec"), MENTION.findall("cc @ann, not ann@example.org")
    ('seisme a quebec', ['ann'])

- ``normalize``: case and accent folding (four foldings, each named by what it does and kept
  for a reason its docstring gives), stop words, CamelCase parts, word segmentation.
- ``rules``: the regular expressions for URLs, mentions, hashtags and cashtags, one per distinct
  rule, and ``clean_post`` (a post as a headline sentence).
- ``shingles``: word shingles, MinHash signatures, LSH band buckets and the near-duplicate index
  shared by the ingest late stage and the training corpus (datasketch underneath).

The package sits on the ground floor: it imports the standard library, numpy and datasketch,
and no other townsquare package. ``shingles`` is not imported here, so a module that only
needs folding does not pay for numpy and datasketch.
"""
