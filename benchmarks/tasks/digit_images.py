"""The digit-images task: scikit-learn's digits as images, captioned, classified zero-shot.

Shared by ``digit_images.py`` (CL against the CWCL kernels) and ``kernel_ablation.py``
(kernels x batch sizes).
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from cwcl_sk import CWCLAligner, ZeroShotClassifier

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# One training caption per image, drawn at random from these templates.
CAPTION_TEMPLATES = ("a handwritten {}", "the digit {}", "{}")

# Label prompts at evaluation: the bare word, and an ensemble of templates never used in training.
PROMPTS = {
    "word": ("{}",),
    "unseen templates": ("a scanned image of the number {}", "a small picture of a {}"),
}

STUDENT = {
    "teacher": "minilm",
    "student": "cnn",
    "student__color_mode": "L",
    "max_epochs": 12,
    "batch_size": 64,
    "learning_rate": 3e-3,
}

QUICK_STUDENT = {**STUDENT, "max_epochs": 2, "student__widths": (16, 32)}

TEST_FRACTION = 0.3

SPLIT_SEED = 0


def captions(digits, rng: np.random.Generator) -> list[str]:
    """One caption per image: its digit's name in a template drawn at random."""
    choice = rng.integers(len(CAPTION_TEMPLATES), size=len(digits))
    return [
        CAPTION_TEMPLATES[t].format(DIGIT_NAMES[d]) for t, d in zip(choice, digits, strict=True)
    ]


def load_split(quick: bool):
    """(train images, train digits, test images, test digits): a fixed stratified split."""
    digits = load_digits()
    images = digits.images / 16.0  # (1797, 8, 8): intensities 0..16 scaled to [0, 1]
    target = digits.target
    if quick:
        images, target = images[:300], target[:300]
    train_images, test_images, train_digits, test_digits = train_test_split(
        images, target, test_size=TEST_FRACTION, stratify=target, random_state=SPLIT_SEED
    )
    return train_images, train_digits, test_images, test_digits


def run(split, student: dict, loss: dict, seed: int) -> dict:
    """Fit on the training images; classify the test images zero-shot with each prompt set."""
    train_images, train_digits, test_images, test_digits = split
    aligner = CWCLAligner(random_state=seed, **student, **loss)
    started = time.perf_counter()
    aligner.fit(train_images, captions(train_digits, np.random.default_rng(seed)))
    seconds = time.perf_counter() - started
    accuracy = {}
    for prompt_set, templates in PROMPTS.items():
        classifier = ZeroShotClassifier(
            aligner, labels=dict(enumerate(DIGIT_NAMES)), templates=list(templates)
        ).fit(train_images, train_digits)
        accuracy[prompt_set] = float(classifier.score(test_images, test_digits))
    return {
        "accuracy": accuracy,
        "fit_seconds": seconds,
        "final_train_loss": aligner.history_[-1]["train_loss"],
    }
