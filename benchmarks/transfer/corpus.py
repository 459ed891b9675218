"""The general paired speech corpus: clean, filter and draw the training sentences, then speak them.

The sentences are WordNet 3.0's examples (:mod:`.wordnet`). :func:`clean_sentences` keeps those
an English synthesiser reads as written and that belong to no evaluation task:

- whitespace and quotes normalised (WordNet quotes with a backtick and an apostrophe);
- dropped when they hold a numeral (espeak would say the number, and the digits task is about
  number names), a URL, a character other than ASCII letters and simple punctuation, or fewer
  than ``min_words`` / more than ``max_words`` words;
- dropped when they are only digit names ("zero" to "nine"), or occur in SLURP (every split,
  compared case- and punctuation-insensitively): those are evaluation sentences;
- each kept once.

:func:`sample_sentences` draws the corpus from what is left with a seed; a smaller draw with
the same seed is a prefix of a larger one, so a corpus can grow and keep the clips it has.

``python -m benchmarks.transfer.corpus --quick`` builds and speaks 50 sentences in seconds;
without ``--quick`` it speaks ``--size`` sentences (see ``--help``) into ``--out``, resuming
where an earlier run stopped.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter
from pathlib import Path

import numpy as np

from ..results import RESULTS
from ..slurp_data import load_slurp
from .keywords import keyword_counts
from .wordnet import EXAMPLES_FILE, read_examples

__all__ = [
    "DIGIT_NAMES",
    "MAX_WORDS",
    "MIN_WORDS",
    "clean_sentences",
    "match_key",
    "normalise",
    "rejection_reason",
    "sample_sentences",
    "slurp_sentences",
]

#: The names of the spoken digits task's classes.
DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
#: Words a kept sentence has at least, and at most.
MIN_WORDS, MAX_WORDS = 3, 20

QUICK_SIZE = 50
DEFAULT_SIZE = 30_000

_QUOTES = str.maketrans({"`": "'", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
# Letters, spaces and the punctuation espeak reads as a pause or ignores.
_SPEAKABLE = re.compile(r"[A-Za-z ,.;:!?'\"-]+")
_URL = re.compile(r"https?:|www\.|\w\.(com|org|net|edu|gov)\b", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z]+(?:['-][A-Za-z]+)*")


def normalise(text: str) -> str:
    """``text`` with straight quotes and single spaces, stripped of spaces and of quotes
    that enclose all of it."""
    text = " ".join(text.translate(_QUOTES).split())
    while len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1].strip()
    return text


def rejection_reason(text: str, min_words: int = MIN_WORDS, max_words: int = MAX_WORDS):
    """Why a normalised sentence is not speakable training text, or None when it is.

    Returns
    -------
    reason : {"numeral", "url", "characters", "too short", "too long"} or None
    """
    if re.search(r"[0-9]", text):
        return "numeral"
    if _URL.search(text):
        return "url"
    if not _SPEAKABLE.fullmatch(text):
        return "characters"
    words = len(_WORD.findall(text))
    if words < min_words:
        return "too short"
    if words > max_words:
        return "too long"
    return None


def match_key(text: str) -> str:
    """What two sentences must share to count as one: lower case, apostrophes dropped,
    other punctuation read as a space ("What's on?" and "whats on" match)."""
    text = text.lower().translate(_QUOTES).replace("'", "")
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


def _only_digit_names(key: str) -> bool:
    return all(word in DIGIT_NAMES for word in key.split())


def slurp_sentences(data_dir=None) -> list[str]:
    """Every SLURP sentence of every split (``lm.txt`` and ``devel.jsonl``)."""
    slurp = load_slurp(data_dir)
    return slurp["train_texts"] + slurp["eval_texts"]


def clean_sentences(texts, excluded=(), min_words: int = MIN_WORDS, max_words: int = MAX_WORDS):
    """The speakable, distinct sentences of ``texts`` that are not in ``excluded``.

    Parameters
    ----------
    texts : iterable of str
        Candidate sentences, in the order to keep.
    excluded : iterable of str, default=()
        Sentences that must not be kept (the evaluation tasks' text), matched by
        :func:`match_key`. Sentences made only of digit names are always excluded.
    min_words, max_words : int, default=3, 20
        The word-count window.

    Returns
    -------
    kept : list of str
        Normalised sentences, in the order of ``texts``, each once (by :func:`match_key`).
    dropped : dict
        How many candidates each rule dropped: the reasons of :func:`rejection_reason`,
        ``"digit names"``, ``"excluded"`` and ``"duplicate"``.
    """
    if not (isinstance(min_words, int) and isinstance(max_words, int) and 1 <= min_words):
        raise ValueError(
            f"min_words and max_words must be positive integers, got {min_words!r}, {max_words!r}."
        )
    if max_words < min_words:
        raise ValueError(f"max_words ({max_words}) must be at least min_words ({min_words}).")
    excluded_keys = {match_key(text) for text in excluded}
    seen: set[str] = set()
    kept: list[str] = []
    dropped: Counter = Counter()
    for text in texts:
        sentence = normalise(text)
        reason = rejection_reason(sentence, min_words, max_words)
        key = match_key(sentence)
        if reason is None and _only_digit_names(key):
            reason = "digit names"
        if reason is None and key in excluded_keys:
            reason = "excluded"
        if reason is None and key in seen:
            reason = "duplicate"
        if reason is not None:
            dropped[reason] += 1
            continue
        seen.add(key)
        kept.append(sentence)
    return kept, dict(sorted(dropped.items()))


def sample_sentences(sentences, size: int, seed: int = 0) -> list[str]:
    """``size`` of ``sentences`` in a seeded random order (all of them when ``size`` is None).

    The order is one permutation per seed, so the draw of ``size`` is the first ``size``
    sentences of any larger draw with the same seed.
    """
    sentences = list(sentences)
    if size is not None and (not isinstance(size, int) or size < 1):
        raise ValueError(f"size must be a positive integer or None, got {size!r}.")
    if size is not None and size > len(sentences):
        raise ValueError(f"size is {size}, but only {len(sentences)} sentences are left to draw.")
    order = np.random.default_rng(seed).permutation(len(sentences))
    return [sentences[index] for index in order[:size]]


def build_sentences(size, seed: int = 0, slurp_dir=None, source=EXAMPLES_FILE) -> dict:
    """Read, clean and draw the corpus; returns the sentences and what each step did."""
    candidates = read_examples(source)
    kept, dropped = clean_sentences(candidates, excluded=slurp_sentences(slurp_dir))
    sentences = sample_sentences(kept, size, seed)
    return {
        "sentences": sentences,
        "n_candidates": len(candidates),
        "n_kept": len(kept),
        "dropped": dropped,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SIZE} sentences")
    parser.add_argument("--size", type=int, default=None, help=f"default {DEFAULT_SIZE}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--voices-per-sentence", type=int, default=1)
    parser.add_argument("--data", default=None, help="the SLURP text folder")
    parser.add_argument("--out", default=None, help="the corpus folder")
    arguments = parser.parse_args(argv)
    from .speech import SpeechSettings, speak_corpus

    size = arguments.size or (QUICK_SIZE if arguments.quick else DEFAULT_SIZE)
    default_folder = "transfer-corpus-quick" if arguments.quick else "transfer-corpus"
    folder = Path(arguments.out) if arguments.out else RESULTS / default_folder
    started = time.perf_counter()
    built = build_sentences(size, arguments.seed, arguments.data)
    print(
        f"{built['n_candidates']} WordNet examples, {built['n_kept']} kept "
        f"(dropped: {built['dropped']}), {len(built['sentences'])} drawn "
        f"in {time.perf_counter() - started:.1f} s"
    )
    spoken = speak_corpus(
        built["sentences"],
        folder,
        SpeechSettings(voices_per_sentence=arguments.voices_per_sentence, seed=arguments.seed),
        verbose=1,
    )
    keywords = keyword_counts(built["sentences"])
    summary = {
        "source": "WordNet 3.0 example sentences",
        "seed": arguments.seed,
        "n_candidates": built["n_candidates"],
        "n_kept": built["n_kept"],
        "dropped": built["dropped"],
        "n_sentences": len(built["sentences"]),
        **spoken,
        "keywords": keywords,
    }
    (folder / "corpus.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"{spoken['n_clips']} clips in {folder}: {spoken['written']} written, "
        f"{spoken['skipped']} already there; "
        f"{spoken['seconds_per_clip']:.4f} s per written clip"
        if spoken["written"]
        else f"{spoken['n_clips']} clips in {folder}, all already there"
    )
    print(
        f"sentences with a Speech Commands keyword: {keywords['sentences_with_any']} "
        f"of {keywords['n_sentences']}"
    )


if __name__ == "__main__":
    main()
