"""How many near-paraphrases a training batch of spoken requests holds, per batch size.

CL scores every other item of a batch as a negative, even a request that means the same thing
("wake me up at seven" beside "set an alarm for 7 am"). The larger the batch, the more such
pairs it holds, and the more often CL pushes a clip away from a transcript that describes it
well. The soft kernels credit them instead. This script measures both sides on the transcripts
that ``kernel_ablation.py --task spoken-intents*`` trains on (4,000 SLURP ``lm.txt``
transcripts, the same draw), with the bundled MiniLM teacher:

- the share of rows with at least one other item in the batch above cosine 0.7, 0.8 and 0.9;
- :func:`cwcl_sk.diagnostics.kernel_diagnostics` of the ``"exp"`` and ``"capped-exp"``
  kernels: mass on the matching pair and effective positives per row.

It needs only the text (no speech, no student): about 30 s of CPU time on one thread::

    python -m benchmarks.batch_neighbours
    python -m benchmarks.batch_neighbours --batch-sizes 64 256 1024 4096 --train-size 0
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from cwcl_sk.diagnostics import kernel_diagnostics
from cwcl_sk.encoders.teachers.text import load_bundled_minilm

from .results import RESULTS, table_lines, write_results
from .slurp_data import load_slurp
from .tasks.spoken_intents import KERNEL_GRID_TRAIN_SIZE, sample_transcripts

THRESHOLDS = (0.7, 0.8, 0.9)
KERNELS = ("exp", "capped-exp")


def neighbour_shares(embeddings: np.ndarray, batch_size: int, n_batches: int, seed: int):
    """Per threshold, the mean share of rows of a random batch with another item above it."""
    rng = np.random.default_rng(seed)
    shares = {threshold: [] for threshold in THRESHOLDS}
    size = min(batch_size, len(embeddings))
    for _ in range(n_batches):
        batch = embeddings[rng.choice(len(embeddings), size=size, replace=False)]
        similarity = batch @ batch.T  # (size, size)
        np.fill_diagonal(similarity, -np.inf)
        nearest = similarity.max(axis=1)  # (size,)
        for threshold in THRESHOLDS:
            shares[threshold].append(float(np.mean(nearest > threshold)))
    return {threshold: float(np.mean(values)) for threshold, values in shares.items()}


def measure(embeddings: np.ndarray, batch_sizes, n_batches: int, seed: int) -> list[dict]:
    """One row per batch size: the neighbour shares and each kernel's target statistics."""
    rows = []
    for batch_size in batch_sizes:
        row = {
            "batch_size": batch_size,
            **neighbour_shares(embeddings, batch_size, n_batches, seed),
        }
        for kernel in KERNELS:
            statistics = kernel_diagnostics(
                embeddings,
                kernel=kernel,
                batch_size=batch_size,
                n_batches=n_batches,
                random_state=seed,
            )
            row[kernel] = statistics
        rows.append(row)
    return rows


def markdown(rows: list[dict], n_texts: int) -> str:
    """The table of :func:`measure`'s rows."""
    header = ["batch", *(f"rows with a neighbour > {t}" for t in THRESHOLDS)]
    for kernel in KERNELS:
        header += [f"{kernel}: matching-pair mass", f"{kernel}: effective positives"]
    cells = []
    for row in rows:
        line = [str(row["batch_size"]), *(f"{row[t]:.1%}" for t in THRESHOLDS)]
        for kernel in KERNELS:
            statistics = row[kernel]
            line += [
                f"{statistics['diagonal_mass']:.3f}",
                f"{statistics['effective_positives']:.2f}",
            ]
        cells.append(line)
    note = (
        f"\n\nRandom batches of {n_texts} distinct SLURP training transcripts, "
        "all-MiniLM-L6-v2 cosine similarity."
    )
    return "\n".join(table_lines(header, cells)) + note


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument(
        "--train-size",
        type=int,
        default=KERNEL_GRID_TRAIN_SIZE,
        help="transcripts drawn as kernel_ablation.py draws them (0: all)",
    )
    parser.add_argument("--batches", type=int, default=32, help="random batches per size")
    parser.add_argument("--seed", type=int, default=0, help="seed of the batches")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    if min(args.batch_sizes) < 2:
        parser.error("--batch-sizes: every size must be >= 2")
    torch.set_num_threads(args.threads)

    # make_corpus's draw: its generator, seeded 0, picks the training transcripts first.
    texts = sample_transcripts(
        load_slurp(None)["train_texts"], args.train_size, np.random.default_rng(0)
    )
    embeddings = load_bundled_minilm().encode(texts, normalize_embeddings=True, batch_size=128)
    rows = measure(
        np.asarray(embeddings, dtype=np.float32), args.batch_sizes, args.batches, args.seed
    )
    table = markdown(rows, len(texts))
    settings = {
        "batch_sizes": args.batch_sizes,
        "train_size": args.train_size,
        "n_texts": len(texts),
        "batches": args.batches,
        "seed": args.seed,
        "threads": args.threads,
        "thresholds": THRESHOLDS,
        "kernels": KERNELS,
    }
    write_results(RESULTS / "batch_neighbours", table, {"settings": settings, "summary": rows})
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
