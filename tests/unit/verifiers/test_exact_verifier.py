"""The ``exact`` verifier."""

from __future__ import annotations

import pickle

import pytest

from verifiers import load_verifier
from verifiers.base import CORRECT, NO_ANSWER, WRONG
from verifiers.exact import ExactMatchVerifier


def test_whole_completion_with_whitespace_normalised():
    verdicts = ExactMatchVerifier().verify({"answer": "New  York"}, ["New York\n", " new york", "", "Boston"])
    assert [v.reason for v in verdicts] == [CORRECT, WRONG, NO_ANSWER, WRONG]
    assert verdicts[0].answer == "New York"


def test_pattern_takes_the_last_match_and_case_can_be_ignored():
    verifier = load_verifier("exact", pattern=r"Answer:\s*(\w+)", ignore_case=True)
    verdicts = verifier.verify({"answer": "B"}, ["Answer: A ... Answer: b", "Answer: C", "no idea"])
    assert [v.reason for v in verdicts] == [CORRECT, WRONG, NO_ANSWER]
    assert verdicts[0].answer == "b"
    assert pickle.loads(pickle.dumps(verifier)).verify({"answer": "B"}, ["Answer: B"])[0].correct


def test_list_of_accepted_answers():
    assert ExactMatchVerifier().verify({"answer": ["4", "four"]}, ["four"])[0].correct


@pytest.mark.parametrize("reference", [{}, {"answer": 3}, {"answer": []}])
def test_bad_references(reference):
    with pytest.raises(ValueError, match="reference"):
        ExactMatchVerifier().verify(reference, ["x"])


def test_bad_pattern():
    with pytest.raises(ValueError, match="invalid answer pattern"):
        ExactMatchVerifier(pattern="(")
