"""Shared fixtures. The suite is offline: nothing may reach the Hugging Face hub."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import pytest
import torch

DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture(autouse=True)
def _single_thread_torch():
    """Deterministic, contention-free CPU math on a 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def paired_features():
    """Features linearly related to random teacher embeddings: an easy alignment task."""
    rng = np.random.default_rng(0)
    teacher_embeddings = rng.normal(size=(60, 8)).astype(np.float32)
    mixing = rng.normal(size=(8, 6)).astype(np.float32)
    X = teacher_embeddings @ mixing + 0.01 * rng.normal(size=(60, 6)).astype(np.float32)
    return X, teacher_embeddings


@pytest.fixture(scope="session")
def colour_data():
    """Three well-separated classes with the text of each class."""
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, size=90)
    X = np.eye(3)[labels] * 3 + 0.2 * rng.normal(size=(90, 3))
    names = {0: "red", 1: "green", 2: "blue"}
    return X.astype(np.float32), labels, names


@pytest.fixture(scope="session")
def digits_split():
    """scikit-learn's handwritten digits split 70/30, with the word for each digit."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
