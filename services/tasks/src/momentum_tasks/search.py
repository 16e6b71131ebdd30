"""The words of a full-text search: user input sanitised into plain lexemes, and the
query text each database's index takes (docs/spec/tasks.md §3.1).

Nothing the user types reaches a query parser as syntax: only runs of letters and digits
survive, and they are passed as quoted terms (FTS5) or as plain words joined by ``&``
(tsquery), so quotes, ``*``, ``:``, ``&``, ``|``, ``!``, parentheses and the keywords
``AND``, ``OR``, ``NOT`` and ``NEAR`` are only ever words or separators.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Letters and digits of any script; everything else (punctuation, symbols, ``_``,
# whitespace) separates words. It is how FTS5's unicode61 tokenizer splits text too.
_WORD = re.compile(r"[^\W_]+")
# PostgreSQL's 'english' configuration drops these words from documents and queries
# (share/tsearch_data/english.stop); they are dropped from every search, so SQLite, whose
# FTS5 index keeps them, answers the same tasks.
_ENGLISH_STOP = """
    i me my myself we our ours ourselves you your yours yourself yourselves he him his
    himself she her hers herself it its itself they them their theirs themselves what which
    who whom this that these those am is are was were be been being have has had having do
    does did doing a an the and but if or because as until while of at by for with about
    against between into through during before after above below to from up down in out on
    off over under again further then once here there when where why how all any both each
    few more most other some such no nor not only own same so than too very s t can will
    just don should now
"""
STOP_WORDS = frozenset(_ENGLISH_STOP.split())


@dataclass(frozen=True, slots=True)
class SearchTerms:
    """The words to find, lower-cased, in the order typed; the last one also as a prefix."""

    words: tuple[str, ...]

    def tsquery(self) -> str:
        """Text for ``to_tsquery('english', …)``: every word, the last as ``word:*``."""
        *whole, last = self.words
        return " & ".join([*whole, f"{last}:*"])

    def fts5(self) -> str:
        """Text for FTS5's ``MATCH``: quoted terms joined by AND, the last as ``"word"*``."""
        *whole, last = self.words
        return " AND ".join([*(f'"{word}"' for word in whole), f'"{last}"*'])


def search_terms(text: str) -> SearchTerms | None:
    """The words of ``text`` worth searching for; ``None`` when nothing is left."""
    words = [word for word in _WORD.findall(text.lower()) if word not in STOP_WORDS]
    if not words:
        return None
    return SearchTerms(words=tuple(words))
