"""Speed and memory of the training engine, as ratios to bare PyTorch measured in the same run.

    python -m benchmarks.speed             # the full benchmark (a few minutes on 2 CPU cores)
    python -m benchmarks.speed --quick     # a smoke run (seconds)

Rows (each timing is the median of repeated runs after a warm-up):

- ``loss``: CWCL loss forward+backward (exp kernel, both directions) over CL's at N=2048, d=384;
- ``fit``: ``CWCLAligner.fit`` over a hand-written PyTorch loop with the same MLP student, data,
  loss, optimiser, batch size and epochs;
- ``transform``: the throughput of ``transform`` over a bare batched forward pass;
- ``grad_cache_memory``: peak memory of one epoch with GradCache at batch 4096 (chunks of 256)
  over plain batch 256, same data and student. Each configuration runs in its own process and
  reports its peak resident memory (``ru_maxrss``) above the resident memory before ``fit``;
  the peak bytes saved for backward (activations) are reported beside it;
- ``grid_search``: ``GridSearchCV`` 3 folds x 3 temperatures with the bundled MiniLM teacher:
  texts passed through the teacher per unique text, and the wall time with the teacher cache
  and with it switched off.

Results are printed as a table and written to ``benchmarks/results/speed.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
import weakref
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch

from cwcl_sk import CWCLAligner, clear_teacher_cache

from .overheads import (
    FULL,
    QUICK,
    FrameStudent,
    fit_ratio,
    loss_ratio,
    row,
)
from .results import REPOSITORY, RESULTS, machine_description, write_results

# -- GradCache memory --------------------------------------------------------------------------


class SavedBytes:
    """Peak bytes of the tensors autograd saves for backward inside the context.

    The student's activations and the loss's (N, N) matrices; the weights the layers save
    are counted too (about 0.3 MB here).
    """

    def __init__(self):
        self.current = self.peak = 0

    def pack(self, tensor):
        size = tensor.numel() * tensor.element_size()
        self.current += size
        self.peak = max(self.peak, self.current)
        box = _Box(tensor)
        # Autograd drops the box when it frees the saved tensor.
        weakref.finalize(box, self.release, size)
        return box

    def release(self, size):
        self.current -= size

    @contextlib.contextmanager
    def measure(self):
        with torch.autograd.graph.saved_tensors_hooks(self.pack, _Box.unpack):
            yield self


class _Box:
    def __init__(self, tensor):
        self.tensor = tensor

    def unpack(self):
        return self.tensor


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_probe(mode: str, config: dict) -> dict:
    """Run in a fresh process: one epoch, plain batch or GradCache; report its peak memory."""
    n, frames = config["memory_samples"], config["memory_frames"]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, frames * 16)).astype(np.float32)
    teacher = rng.normal(size=(n, config["dim"])).astype(np.float32)
    if mode == "plain":
        params = {"batch_size": config["memory_chunk"]}
    else:
        params = {"batch_size": config["memory_batch"], "mini_batch_size": config["memory_chunk"]}

    def fit(rows=slice(None), **extra):
        aligner = CWCLAligner(
            teacher="precomputed",
            student=FrameStudent(frames),
            max_epochs=1,
            device="cpu",
            random_state=0,
            **{**params, **extra},
        )
        return aligner.fit(X[rows], teacher[rows])

    # The first fit of a process imports modules lazily (the optimiser's): not training memory.
    fit(slice(0, 8), batch_size=8, mini_batch_size=None)
    before = resident_bytes()
    started = time.perf_counter()
    fit()
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    # The activations alone, in a second run (the hooks slow it a little).
    with SavedBytes().measure() as saved:
        fit()
    return {
        "peak_above_start_bytes": peak - before,
        "saved_for_backward_peak_bytes": saved.peak,
        "epoch_seconds": seconds,
    }


def grad_cache_memory(config: dict, threads: int) -> dict:
    probes = {}
    for mode in ("plain", "grad_cache"):
        command = [
            sys.executable,
            "-m",
            "benchmarks.speed",
            "--memory-probe",
            mode,
            "--threads",
            str(threads),
            *(["--quick"] if config is QUICK else []),
        ]
        output = subprocess.run(
            command, capture_output=True, text=True, check=True, cwd=REPOSITORY
        ).stdout
        probes[mode] = json.loads(output.strip().splitlines()[-1])
    plain, cached = probes["plain"], probes["grad_cache"]
    ratio = cached["peak_above_start_bytes"] / plain["peak_above_start_bytes"]
    saved_ratio = cached["saved_for_backward_peak_bytes"] / plain["saved_for_backward_peak_bytes"]
    return row(
        "grad_cache_memory",
        ratio,
        1.5,
        "<=",
        f"peak RSS, batch {config['memory_batch']} GradCache / batch {config['memory_chunk']}",
        {
            "n_samples": config["memory_samples"],
            "frames_per_sample": config["memory_frames"],
            "chunk": config["memory_chunk"],
            "plain_peak_mb": plain["peak_above_start_bytes"] / 2**20,
            "grad_cache_peak_mb": cached["peak_above_start_bytes"] / 2**20,
            "saved_for_backward_ratio": saved_ratio,
            "plain_saved_mb": plain["saved_for_backward_peak_bytes"] / 2**20,
            "grad_cache_saved_mb": cached["saved_for_backward_peak_bytes"] / 2**20,
            "plain_epoch_s": plain["epoch_seconds"],
            "grad_cache_epoch_s": cached["epoch_seconds"],
        },
    )


# -- grid search and the teacher cache ---------------------------------------------------------


def text_pairs(n_samples: int) -> list[str]:
    """Distinct short texts (up to 450)."""
    colours = ["red", "green", "blue", "yellow", "black", "white", "orange", "purple", "grey"]
    things = ["car", "house", "bird", "cup", "coat", "door", "boat", "chair", "lamp", "kite"]
    sizes = ["small", "large", "old", "new", "broken"]
    texts = [
        f"a {sizes[(i // 90) % 5]} {colours[i % 9]} {things[(i // 9) % 10]}"
        for i in range(n_samples)
    ]
    return texts


@contextlib.contextmanager
def teacher_cache_disabled():
    from cwcl_sk.encoders.teachers import frozen

    original = frozen._EmbeddingCache.get
    frozen._EmbeddingCache.get = lambda self, key: None
    try:
        yield
    finally:
        frozen._EmbeddingCache.get = original


def grid_search_cache(config: dict) -> dict:
    from sentence_transformers import SentenceTransformer
    from sklearn.model_selection import GridSearchCV

    from cwcl_sk.encoders import make_teacher

    texts = text_pairs(config["grid_samples"])
    # Student features: a fixed random view of the texts' teacher embeddings.
    embeddings = make_teacher("minilm", {}, "cpu").encode(texts)
    rng = np.random.default_rng(0)
    X = (embeddings @ rng.normal(size=(embeddings.shape[1], 32))).astype(np.float32)

    encoded: list = []
    original = SentenceTransformer.encode

    def counting_encode(self, sentences, *args, **kwargs):
        encoded.extend(sentences)
        return original(self, sentences, *args, **kwargs)

    def search():
        estimator = CWCLAligner(
            batch_size=64, max_epochs=config["grid_epochs"], device="cpu", random_state=0
        )
        GridSearchCV(estimator, {"temperature": [0.03, 0.07, 0.2]}, cv=3).fit(X, texts)

    SentenceTransformer.encode = counting_encode
    try:
        clear_teacher_cache()
        started = time.perf_counter()
        search()
        cached_seconds = time.perf_counter() - started
        per_text = len(encoded) / len(set(texts))
        encoded.clear()
        clear_teacher_cache()
        with teacher_cache_disabled():
            started = time.perf_counter()
            search()
            uncached_seconds = time.perf_counter() - started
        uncached_per_text = len(encoded) / len(set(texts))
    finally:
        SentenceTransformer.encode = original
    return row(
        "grid_search",
        per_text,
        1.0,
        "<=",
        "teacher encodings per unique text",
        {
            "n_samples": len(texts),
            "unique_texts": len(set(texts)),
            "fits": 10,
            "with_cache_s": cached_seconds,
            "without_cache_s": uncached_seconds,
            "encodings_per_text_without_cache": uncached_per_text,
        },
    )


# -- report ------------------------------------------------------------------------------------


def markdown(results: dict) -> str:
    """The terminal preview of ``results``: torch, threads, machine, quick and the rows."""
    lines = [
        f"Torch {results['torch']}, {results['threads']} thread(s), "
        f"{results['machine']}{' (quick)' if results['quick'] else ''}",
        "",
        "| row | value | target | met | what |",
        "|---|---|---|---|---|",
    ]
    for item in results["rows"]:
        lines.append(
            f"| {item['name']} | {item['value']:.3f} | {item['target']} | "
            f"{'yes' if item['met'] else 'NO'} | {item['unit']} |"
        )
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--memory-probe", choices=["plain", "grad_cache"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = QUICK if args.quick else FULL
    if args.memory_probe:
        print(json.dumps(memory_probe(args.memory_probe, config)))
        return {}

    rows = [loss_ratio(config), *fit_ratio(config), grad_cache_memory(config, args.threads)]
    rows.append(grid_search_cache(config))
    results = {
        "settings": {"quick": args.quick, "threads": torch.get_num_threads(), **config},
        "summary": rows,
    }
    table = markdown(
        {
            "torch": torch.__version__,
            "threads": results["settings"]["threads"],
            "machine": machine_description()["cpu"],
            "quick": args.quick,
            "rows": rows,
        }
    )
    write_results(args.output / ("speed_quick" if args.quick else "speed"), table + "\n", results)
    print(table)
    for item in rows:
        details = ", ".join(
            f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
            for key, value in item["details"].items()
        )
        print(f"  {item['name']}: {details}")
    return results


if __name__ == "__main__":
    main()
