"""Store a story once when several outlets carry it: near-duplicate articles by MinHash.

Agency copy runs under many mastheads with small edits: another headline, a line of the
outlet's own furniture, a trimmed last paragraph. Two articles are near-duplicates when the
Jaccard similarity of their sets of word 5-shingles (lower-cased) is at least
:data:`THRESHOLD`. MinHash signatures of :data:`PERMUTATIONS` permutations in an LSH index
(datasketch) find the candidates, at a threshold 0.1 lower so that the estimate's error
(about 0.03 at 128 permutations) loses none; each candidate's exact similarity is then
checked against the threshold before it is merged. The first article read is kept; every later copy
adds its ``(source, outlet, url)`` to the kept one's ``copies``, so each outlet and link is
still shown as a source.

A story added to an index that holds a copy of it already (``rag index --update``, an
upload) is found by the indexing workflow's copy check (``rag.indexing.copies``), with the
same shingles and threshold.

0.8 keeps apart different stories on one subject (which share names and phrases, well under
half of their shingles) and updates that add a paragraph or more, and merges copies that
differ by a headline, a byline or a few lines (a test checks both).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from rag.types import Document

THRESHOLD = 0.8
PERMUTATIONS = 128
SHINGLE_WORDS = 5
_WORD = re.compile(r"[^\W_]+")


def shingles(text: str) -> set[str]:
    """``text``'s word 5-shingles, lower-cased."""
    words = [w.lower() for w in _WORD.findall(text)]
    return {" ".join(words[i:i + SHINGLE_WORDS]) for i in range(max(1, len(words) - SHINGLE_WORDS + 1))}


def similarity(a: set[str], b: set[str]) -> float:
    """Jaccard similarity of two shingle sets."""
    return len(a & b) / len(a | b) if a or b else 1.0


def merge(documents: Sequence[Document]) -> list[Document]:
    """``documents`` with each near-duplicate folded into the first of its kind, in order (see the module's notes)."""
    from datasketch import MinHash, MinHashLSH

    index = MinHashLSH(threshold=THRESHOLD - 0.1, num_perm=PERMUTATIONS)
    kept: list[Document] = []
    for doc in documents:
        own = shingles(doc.text)
        minhash = MinHash(num_perm=PERMUTATIONS)
        minhash.update_batch(s.encode("utf-8") for s in own)
        match = next((int(key) for key in sorted(index.query(minhash), key=int)
                      if similarity(shingles(kept[int(key)].text), own) >= THRESHOLD), None)
        if match is None:
            index.insert(str(len(kept)), minhash)
            kept.append(doc)
        else:
            first = kept[match]
            kept[match] = replace(first, copies=(*first.copies, (doc.source, doc.outlet, doc.url), *doc.copies))
    return kept
