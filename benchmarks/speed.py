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
import platform
import resource
import statistics
import subprocess
import sys
import time
import weakref
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch

from cwcl_sk import CWCLAligner, clear_teacher_cache, contrastive_loss, cwcl_loss
from cwcl_sk.encoders.generic import EmbeddingModel, build_mlp
from cwcl_sk.training import autocast

ROOT = Path(__file__).resolve().parent.parent

RESULTS = ROOT / "benchmarks" / "results"

FULL = {
    "device": "cpu",
    "precision": "32",
    "repeats": 5,
    "loss_n": 2048,
    "dim": 384,
    "fit_samples": 16384,
    "fit_features": 64,
    "fit_epochs": 3,
    "batch_size": 256,
    "memory_samples": 4096,
    "memory_batch": 4096,
    "memory_chunk": 256,
    "memory_frames": 1000,
    "grid_samples": 450,
    "grid_epochs": 5,
}
QUICK = {
    **FULL,
    "repeats": 1,
    "loss_n": 256,
    "fit_samples": 1024,
    "fit_epochs": 1,
    "memory_samples": 256,
    "memory_batch": 256,
    "memory_chunk": 32,
    "memory_frames": 20,
    "grid_samples": 30,
    "grid_epochs": 1,
}


def seconds(function) -> float:
    """Wall time of ``function()``, waiting for queued GPU work to finish."""
    synchronize()
    started = time.perf_counter()
    function()
    synchronize()
    return time.perf_counter() - started


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def paired_timing(first, second, repeats: int) -> tuple[float, float, float]:
    """Median of ``time(first) / time(second)`` over alternating runs, and the median times.

    Both run once to warm up. Alternating keeps the two sides of every ratio under the same
    load when other processes share the machine.
    """
    first()
    second()
    first_times, second_times = [], []
    for _ in range(repeats):
        first_times.append(seconds(first))
        second_times.append(seconds(second))
    ratios = [a / b for a, b in zip(first_times, second_times, strict=True)]
    return (
        statistics.median(ratios),
        statistics.median(first_times),
        statistics.median(second_times),
    )


def row(name, value, target, comparison, unit, details) -> dict:
    met = value <= target if comparison == "<=" else value >= target
    return {
        "name": name,
        "value": round(float(value), 4),
        "target": f"{comparison} {target}",
        "met": bool(met),
        "unit": unit,
        "details": details,
    }


# -- loss -------------------------------------------------------------------------------------


def loss_ratio(config: dict) -> dict:
    """CWCL over CL, forward + backward, on the same (N, d) embeddings."""
    generator = torch.Generator().manual_seed(0)
    n, dim, device = config["loss_n"], config["dim"], torch.device(config["device"])
    dtype = torch.bfloat16 if config["precision"] == "bf16" else torch.float32
    # In bf16 the embeddings arrive in bf16, as from an autocast student; the loss upcasts.
    student = torch.randn(n, dim, generator=generator).to(device, dtype).requires_grad_()
    teacher = torch.randn(n, dim, generator=generator).to(device, dtype)

    def three_steps(loss_function):
        def run():
            for _ in range(3):
                student.grad = None
                loss_function().backward()

        return run

    ratio, cwcl, clip = paired_timing(
        three_steps(lambda: cwcl_loss(student, teacher, 0.07, kernel="exp")),
        three_steps(lambda: contrastive_loss(student, teacher, 0.07)),
        config["repeats"],
    )
    cwcl, clip = cwcl / 3, clip / 3
    return row(
        "loss",
        ratio,
        1.25,
        "<=",
        "time CWCL / CL",
        {"n": n, "dim": dim, "dtype": str(dtype), "cwcl_ms": 1000 * cwcl, "cl_ms": 1000 * clip},
    )


# -- fit and transform -------------------------------------------------------------------------


def feature_pairs(n_samples: int, n_features: int, dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    teacher = rng.normal(size=(n_samples, dim)).astype(np.float32)
    teacher /= np.linalg.norm(teacher, axis=1, keepdims=True)
    mixing = rng.normal(size=(dim, n_features)).astype(np.float32) / np.sqrt(dim)
    X = teacher @ mixing + 0.1 * rng.normal(size=(n_samples, n_features)).astype(np.float32)
    return X.astype(np.float32), teacher


def aligner_for(config: dict, **params) -> CWCLAligner:
    return CWCLAligner(
        teacher="precomputed",
        student="mlp",
        batch_size=config["batch_size"],
        max_epochs=config["fit_epochs"],
        device=config["device"],
        precision=config["precision"],
        random_state=0,
        **params,
    )


def bare_fit(X: np.ndarray, teacher: np.ndarray, config: dict) -> torch.nn.Module:
    """The hand-written loop: the same student, loss, optimiser, batches and epochs.

    Like ``fit``, it keeps the features on the host and copies each batch to the device,
    and it keeps the teacher embeddings on the device.
    """
    device = torch.device(config["device"])
    torch.manual_seed(0)
    model = EmbeddingModel(build_mlp(X, teacher.shape[1]), teacher.shape[1], teacher.shape[1])
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    features, targets = torch.from_numpy(X), torch.from_numpy(teacher).to(device)
    n_batches = -(-len(X) // config["batch_size"])
    model.train()
    for _ in range(config["fit_epochs"]):
        total = 0.0
        for rows in torch.tensor_split(torch.randperm(len(X)), n_batches):
            with autocast(device, config["precision"]):
                embeddings = model(features[rows].to(device, non_blocking=True))
            loss = cwcl_loss(embeddings, targets[rows.to(device)], 0.07, kernel="exp")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item()
    return model.eval()


def fit_ratio(config: dict) -> tuple[dict, dict]:
    """fit over the bare loop; transform's throughput over a bare forward of the same model."""
    X, teacher = feature_pairs(config["fit_samples"], config["fit_features"], config["dim"], seed=1)
    fitted = {}

    def library_fit():
        # The bare loop's loss: the engine is measured, not the default kernel's calibration.
        fitted["aligner"] = aligner_for(config, kernel="exp").fit(X, teacher)

    ratio, fit_seconds, bare_seconds = paired_timing(
        library_fit, lambda: bare_fit(X, teacher, config), config["repeats"]
    )
    fit = row(
        "fit",
        ratio,
        1.10,
        "<=",
        "time fit / bare loop",
        {
            "n_samples": len(X),
            "n_features": X.shape[1],
            "batch_size": config["batch_size"],
            "epochs": config["fit_epochs"],
            "student": "mlp (256,) gelu",
            "fit_s": fit_seconds,
            "bare_s": bare_seconds,
        },
    )

    aligner = fitted["aligner"]
    model, batch_size = aligner.student_, max(config["batch_size"], 256)
    features, device = torch.from_numpy(X), torch.device(config["device"])

    def bare_forward():
        with torch.inference_mode(), autocast(device, config["precision"]):
            parts = [
                model(chunk.to(device)).float().cpu().numpy()
                for chunk in torch.split(features, batch_size)
            ]
        return np.concatenate(parts)

    ratio, forward_seconds, transform_seconds = paired_timing(
        bare_forward, lambda: aligner.transform(X), 3 * config["repeats"]
    )
    transform = row(
        "transform",
        ratio,
        0.95,
        ">=",
        "throughput transform / bare forward",
        {
            "n_samples": len(X),
            "batch_size": batch_size,
            "transform_ms": 1000 * transform_seconds,
            "forward_ms": 1000 * forward_seconds,
        },
    )
    return fit, transform


# -- GradCache memory --------------------------------------------------------------------------


class FrameStudent(torch.nn.Module):
    """A frame-level encoder with mean pooling: (batch, frames * 16) -> (batch, 128).

    Like a small speech encoder over 100 frames a second, it keeps about
    ``frames * 2 KB`` of activations per sample for backward, while costing little compute.
    """

    def __init__(self, n_frames: int, n_features: int = 16, hidden: int = 128):
        super().__init__()
        self.n_frames, self.n_features = n_frames, n_features
        self.frames = torch.nn.Sequential(
            torch.nn.Linear(n_features, hidden),
            torch.nn.GELU(),
            torch.nn.LayerNorm(hidden),
            torch.nn.Linear(hidden, hidden),
            torch.nn.GELU(),
        )

    def forward(self, features):
        frames = features.view(-1, self.n_frames, self.n_features)  # (batch, frames, features)
        return self.frames(frames).mean(dim=1)  # (batch, hidden)


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
            __file__,
            "--memory-probe",
            mode,
            "--threads",
            str(threads),
            *(["--quick"] if config is QUICK else []),
        ]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
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
    from cwcl_sk.encoders import frozen

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
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {os.cpu_count()} CPU(s)",
        "quick": args.quick,
        "config": config,
        "rows": rows,
    }
    args.output.mkdir(parents=True, exist_ok=True)
    name = "speed-quick" if args.quick else "speed"
    (args.output / f"{name}.json").write_text(json.dumps(results, indent=2))
    table = markdown(results)
    (args.output / f"{name}.md").write_text(table + "\n")
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
