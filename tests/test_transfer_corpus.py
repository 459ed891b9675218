"""The transfer corpus: its sentence filters, its seeded draw and its resumable synthesis."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.tasks.spoken_intents import EVAL_VOICES, TRAIN_VOICES
from benchmarks.transfer.corpus import (
    build_sentences,
    clean_sentences,
    match_key,
    normalise,
    sample_sentences,
    slurp_sentences,
)
from benchmarks.transfer.keywords import KEYWORDS, keyword_counts
from benchmarks.transfer.speech import MANIFEST, SpeechSettings, plan_clips, speak_corpus
from benchmarks.transfer.wordnet import (
    EXAMPLES_FILE,
    extract_examples,
    read_examples,
    write_examples,
)

REPOSITORY = Path(__file__).resolve().parents[1]
SLURP = Path(os.environ.get("CWCL_SLURP_DIR", REPOSITORY.parent / "shared" / "data" / "slurp"))
needs_slurp = pytest.mark.skipif(
    not (SLURP / "devel.jsonl").exists(), reason="SLURP text not found (CWCL_SLURP_DIR)"
)


def test_normalise_straightens_quotes_and_spaces():
    assert normalise("  the phrase  `a beginner'\tis \u201cfine\u201d ") == (
        "the phrase 'a beginner' is \"fine\""
    )
    assert normalise('"Keep an eye on the baby, please!"') == "Keep an eye on the baby, please!"


def test_clean_sentences_drops_what_a_synthesiser_would_misread():
    texts = [
        "the thermometer showed 20 degrees",
        "see www.example.com for details",
        "a caf\u00e9 on the corner",
        "the ratio (by weight) was small",
        "too short",
        " ".join(["word"] * 21),
        "it may rain in which case the picnic will be canceled",
    ]
    kept, dropped = clean_sentences(texts)
    assert kept == ["it may rain in which case the picnic will be canceled"]
    assert dropped == {"characters": 2, "numeral": 1, "too long": 1, "too short": 1, "url": 1}


def test_clean_sentences_drops_excluded_sentences_whatever_their_case_and_punctuation():
    kept, dropped = clean_sentences(
        ["What's the TIME, please?", "turn the lights on", "tell me about the weather"],
        excluded=["whats the time please", "Turn the lights on."],
    )
    assert kept == ["tell me about the weather"]
    assert dropped == {"excluded": 2}
    assert match_key("What's on-line?") == match_key("whats on line")


def test_clean_sentences_drops_sentences_made_only_of_digit_names():
    kept, dropped = clean_sentences(["one two three", "Seven, eight, nine!", "one of the three"])
    assert kept == ["one of the three"]
    assert dropped == {"digit names": 2}


def test_clean_sentences_keeps_the_first_of_each_duplicate():
    kept, dropped = clean_sentences(["He ran out of money.", "he ran out of money", "she did not"])
    assert kept == ["He ran out of money.", "she did not"]
    assert dropped == {"duplicate": 1}


def test_sample_sentences_is_seeded_and_a_smaller_draw_is_a_prefix():
    sentences = [f"sentence number {word}" for word in "abcdefghijklmnopqrstuvwxyz"]
    draw = sample_sentences(sentences, 10, seed=3)
    assert draw == sample_sentences(sentences, 10, seed=3)
    assert draw != sample_sentences(sentences, 10, seed=4)
    assert sample_sentences(sentences, 4, seed=3) == draw[:4]
    assert len(set(draw)) == 10 and set(draw) <= set(sentences)
    with pytest.raises(ValueError, match="size is 27, but only 26"):
        sample_sentences(sentences, 27)


def test_wordnet_examples_are_read_from_the_glosses_skipping_the_licence(tmp_path):
    synset = "00001740 03 n 01 entity 0 000 | that which exists; {}\n"
    for name in ("data.noun", "data.verb", "data.adj", "data.adv"):
        (tmp_path / name).write_text('  1 This software and database "is" licensed\n')
    with (tmp_path / "data.noun").open("a") as file:
        file.write(synset.format('"the dog barked"; "a new idea"'))
        file.write(synset.format('"the dog barked"'))
    with (tmp_path / "data.verb").open("a") as file:
        file.write(synset.format('"he ran out of money"'))
    examples = extract_examples(tmp_path)
    assert examples == ["the dog barked", "a new idea", "he ran out of money"]
    write_examples(examples, tmp_path / "list.txt")
    assert read_examples(tmp_path / "list.txt") == examples
    assert "Princeton" in (tmp_path / "list.txt").read_text()


def test_the_committed_list_holds_the_wordnet_examples_under_their_licence():
    header = EXAMPLES_FILE.read_text().split("\n# WordNet 3.0 Copyright", 1)
    assert len(header) == 2 and "Permission to use, copy, modify and distribute" in header[0]
    examples = read_examples()
    assert len(examples) == len(set(examples)) == 48224
    kept, _ = clean_sentences(examples)
    assert len(kept) > 40_000


@needs_slurp
def test_no_corpus_sentence_is_a_slurp_sentence():
    excluded = {match_key(text) for text in slurp_sentences(SLURP)}
    candidates = {match_key(text) for text in read_examples()}
    assert candidates & excluded, "the check needs a source that overlaps SLURP somewhere"
    built = build_sentences(None, slurp_dir=SLURP)
    assert built["dropped"]["excluded"] > 0
    assert not {match_key(text) for text in built["sentences"]} & excluded


def test_keywords_are_the_35_speech_commands_words():
    assert len(KEYWORDS) == len(set(KEYWORDS)) == 35
    assert {"marvin", "sheila", "backward", "visual", "zero", "nine"} <= set(KEYWORDS)
    counts = keyword_counts(["Go on, dog!", "the house is on the left", "nothing here"])
    assert counts["sentences_with"]["on"] == 2
    assert counts["sentences_with"]["go"] == 1
    assert (counts["sentences_with_any"], counts["n_sentences"]) == (2, 3)


def test_plan_keeps_the_evaluation_voices_out_and_draws_distinct_voices():
    three_voices = SpeechSettings(voices_per_sentence=3)
    plan = plan_clips(["a first sentence here", "a second one here"], three_voices)
    assert len(plan) == 6
    assert {clip["voice"] for clip in plan} <= set(TRAIN_VOICES)
    assert len({clip["voice"] for clip in plan[:3]}) == 3
    assert plan_clips(["a first sentence here"], three_voices) == plan[:3]
    with pytest.raises(ValueError, match="held out for evaluation"):
        plan_clips(["a sentence"], SpeechSettings(voices=(*TRAIN_VOICES[:2], EVAL_VOICES[0])))
    with pytest.raises(ValueError, match="voices_per_sentence"):
        plan_clips(["a sentence"], SpeechSettings(voices_per_sentence=len(TRAIN_VOICES) + 1))


def test_speaking_resumes_and_skips_the_clips_already_written(tmp_path):
    pytest.importorskip("espeakng_loader")
    sentences = ["the dog barked all night", "keep an eye on the baby", "he ran out of money"]
    first = speak_corpus(sentences, tmp_path, SpeechSettings(seed=1))
    assert (first["written"], first["skipped"]) == (3, 0)
    plan = [json.loads(line) for line in (tmp_path / MANIFEST).read_text().splitlines()]
    paths = [tmp_path / clip["path"] for clip in plan]
    kept_times = {path: path.stat().st_mtime_ns for path in paths[1:]}
    paths[0].unlink()  # as if the run had been interrupted before this clip
    again = speak_corpus(sentences, tmp_path, SpeechSettings(seed=1))
    assert (again["written"], again["skipped"]) == (1, 2)
    assert paths[0].is_file()
    assert {path: path.stat().st_mtime_ns for path in paths[1:]} == kept_times
    assert not list((tmp_path / "clips").glob(".tmp-*"))


@pytest.mark.slow
@needs_slurp
def test_quick_mode_writes_a_manifest_the_command_line_reads(tmp_path):
    pytest.importorskip("espeakng_loader")
    from cwcl_sk.cli import read_manifest_rows

    command = [sys.executable, "-m", "benchmarks.transfer.corpus", "--quick"]
    command += ["--data", str(SLURP), "--out", str(tmp_path)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=280, cwd=REPOSITORY)
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = read_manifest_rows(tmp_path / MANIFEST)
    assert len(rows) == 50 and all(Path(row.path).stat().st_size > 0 for row in rows)
    summary = json.loads((tmp_path / "corpus.json").read_text())
    assert (summary["n_sentences"], summary["written"]) == (50, 50)
    assert summary["seconds_per_clip"] > 0
    assert [row.text for row in rows] == build_sentences(50, slurp_dir=SLURP)["sentences"]
