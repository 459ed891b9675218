"""The keyword-spotting task: the 35 words of Speech Commands and their label prompts.

The words are those of Speech Commands v2 (Warden, 2018, "Speech Commands: A Dataset for
Limited-Vocabulary Speech Recognition", arXiv:1804.03209; the dataset is licensed CC BY 4.0):
twenty command words, ten auxiliary words of version 1 and five added in version 2. Here they
are spoken by the voices held out from training and classified zero-shot by their prompts.
"""

from __future__ import annotations

import re
from collections import Counter

__all__ = ["KEYWORDS", "KEYWORD_TEMPLATES", "keyword_counts"]

_COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_AUXILIARY = ("bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow")
_ADDED_IN_VERSION_2 = ("backward", "forward", "follow", "learn", "visual")

#: The 35 words, each its own label.
KEYWORDS = _COMMANDS + _DIGITS + _AUXILIARY + _ADDED_IN_VERSION_2

#: Prompts a word is embedded in by the teacher, averaged as the class embedding.
KEYWORD_TEMPLATES = ["{}", "the word {}", "someone saying {}"]

_WORD = re.compile(r"[a-z]+")


def keyword_counts(sentences) -> dict:
    """How often each keyword is a whole word of ``sentences`` (case-insensitive).

    Returns
    -------
    counts : dict
        ``sentences_with`` (keyword -> how many sentences contain it), ``sentences_with_any``
        (how many contain at least one keyword) and ``n_sentences``.
    """
    keywords = set(KEYWORDS)
    with_keyword: Counter = Counter()
    with_any = 0
    n_sentences = 0
    for sentence in sentences:
        n_sentences += 1
        found = keywords.intersection(_WORD.findall(sentence.lower()))
        with_keyword.update(found)
        with_any += bool(found)
    return {
        "sentences_with": {keyword: with_keyword[keyword] for keyword in KEYWORDS},
        "sentences_with_any": with_any,
        "n_sentences": n_sentences,
    }
