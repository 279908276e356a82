"""Rows that are phrases of other rows, grouped under the sentence they come from.

Some text data sets list every phrase of every sentence as its own row (SST-2's training file:
67,349 rows from 6,886 sentences). A row-wise random split then validates on pieces of training
sentences, and validation figures describe text the model has read. Grouping keeps a sentence
and its phrases on one side of the split.

A row's group is the first longer row (longest first) that holds it as a run of whole words
(" a phrase " inside " the whole sentence "). Rows inside no other row head their own group.
A short phrase found in several sentences (a single word, often) joins one of them: it is
text every split shares anyway, as a test sentence shares words with training.

Candidates are found through the row's rarest word (an inverted index of group heads): on
SST-2 a row checks 4 candidates on average. Each row checks at most `MAX_CANDIDATES` heads; a
row whose rarest word is in more heads than that and that none of the first ones holds heads
its own group (a word that common is in nearly every sentence, so the first few hold any short
phrase of it). The whole search is bounded too: rows that share so many words that grouping
would take more than `MAX_CHECKS_PER_ROW` checks per row on average are not a file of sentences
and their phrases, and are refused rather than searched for hours.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scaledl.errors import DataError

MAX_CANDIDATES = 2048
MAX_CHECKS_PER_ROW = 256  # SST-2 needs 4
MIN_CHECKS = 100_000  # a small file is never refused (a fraction of a second)


@dataclass
class PhraseGroups:
    """`group[i]`: the row heading row i's group (i itself for a head)."""

    group: np.ndarray

    @property
    def heads(self) -> np.ndarray:
        """Rows that head a group (no other row holds them), in row order."""
        return np.flatnonzero(self.group == np.arange(len(self.group)))

    def members_of(self, heads: np.ndarray) -> np.ndarray:
        """Every row (heads and phrases) of the given heads' groups, in row order."""
        return np.flatnonzero(np.isin(self.group, heads))


def phrase_groups(texts: Sequence[object] | np.ndarray) -> PhraseGroups:
    """Group rows under the longest row that holds them as whole words."""
    words = [str(text).split() for text in texts]
    padded = [" " + " ".join(w) + " " for w in words]
    # longest first (in words; ties in row order), so a row's holders are all heads already
    order = sorted(range(len(words)), key=lambda i: (-len(words[i]), i))
    heads_with: defaultdict[str, list[int]] = defaultdict(list)
    group = np.arange(len(words), dtype=np.int64)
    allowed = MAX_CHECKS_PER_ROW * len(words) + MIN_CHECKS
    checks = 0
    for done, i in enumerate(order):
        if not words[i]:
            continue  # an empty row holds nothing and is held by nothing that matters
        distinct = set(words[i])
        rarest = min(distinct, key=lambda w: (len(heads_with.get(w, ())), w))
        holder = None
        for h in heads_with.get(rarest, ())[:MAX_CANDIDATES]:
            checks += 1
            if padded[i] in padded[h]:
                holder = h
                break
        if checks > allowed:
            raise DataError(
                f"data.text.group_phrases: after {done + 1} of {len(words)} rows, grouping had "
                f"checked {checks} candidate sentences, more than {MAX_CHECKS_PER_ROW} per row: "
                "these rows share too many words to be sentences and their phrases. Set "
                "data.text.group_phrases: false to split by row"
            )
        if holder is None:
            for word in distinct:
                heads_with[word].append(i)
        else:
            group[i] = group[holder]
    return PhraseGroups(group)
