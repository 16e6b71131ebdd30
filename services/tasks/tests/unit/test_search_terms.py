"""Sanitising a search: only words survive, and each database gets them as plain terms."""

from __future__ import annotations

import pytest

from momentum_tasks.search import search_terms


def test_words_are_lower_cased_and_the_last_is_a_prefix() -> None:
    terms = search_terms("Quarterly REPORT draft")
    assert terms is not None
    assert terms.words == ("quarterly", "report", "draft")
    assert terms.tsquery() == "quarterly & report & draft:*"
    assert terms.fts5() == '"quarterly" AND "report" AND "draft"*'


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('"report" OR (milk*) & !bread | NEAR:*', ("report", "milk", "bread", "near")),
        ("don't-stop_now", ("stop",)),
        ("Übung café 2026", ("übung", "café", "2026")),
        ("the plan", ("plan",)),
        ("e-mail\\backslash 'quote'", ("e", "mail", "backslash", "quote")),
    ],
)
def test_query_syntax_is_dropped_and_words_are_kept(text: str, words: tuple[str, ...]) -> None:
    terms = search_terms(text)
    assert terms is not None
    assert terms.words == words
    for word in terms.words:
        assert word.isalnum()


@pytest.mark.parametrize("text", ["", "   ", "***", "&|!():'\"", "_-_", "the and of not"])
def test_a_search_without_words_is_none(text: str) -> None:
    assert search_terms(text) is None
