"""Exercise the CUDA paths of the training engine and print a compact JSON summary.

    python benchmarks/gpu_check.py            # needs a CUDA GPU; about a minute on an H200
    python benchmarks/gpu_check.py --device cpu --quick   # checks this script itself

Checks, each reported as ``ok`` (with its numbers) or with the error it raised:

- ``fit_bf16`` and ``fit_16_mixed``: ``CWCLAligner.fit`` with ``precision="bf16"`` and
  ``"16-mixed"`` (GradScaler) learns (loss falls, recall@1 rises) and ``transform`` returns
  float32 unit vectors;
- ``grad_cache_equivalence``: GradCache (chunks of 128) trains the same model as the plain
  batch of 1024 (float32, TF32 off);
- ``grad_cache_memory``: peak ``torch.cuda.max_memory_allocated`` of one step at batch 4096
  with chunks of 256 over a plain batch of 256;
- ``speed_bf16``: the ratios of ``benchmarks/speed.py`` (loss, fit, transform) in bf16.

The summary is also written to ``benchmarks/results/gpu_check.json``. Exit status 0 when
every check ran, 1 when one raised, 2 when there is no CUDA device.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import speed  # benchmarks/speed.py; it also puts the repository on sys.path

from cwcl_sk import CWCLAligner

FULL = {
    "samples": 16384,
    "features": 64,
    "epochs": 5,
    "memory_frames": 1000,
    "memory_batch": 4096,
    "memory_chunk": 256,
}
QUICK = {**FULL, "samples": 1024, "epochs": 2, "memory_frames": 20, "memory_batch": 512}


def fit_with_precision(precision: str, device: str, config: dict) -> dict:
    X, teacher = speed.feature_pairs(config["samples"], config["features"], 384, seed=1)
    aligner = CWCLAligner(
        teacher="precomputed",
        batch_size=512,
        max_epochs=config["epochs"],
        learning_rate=3e-3,
        device=device,
        precision=precision,
        learn_temperature=True,
        random_state=0,
    )
    started = time.perf_counter()
    aligner.fit(X, teacher)
    seconds = time.perf_counter() - started
    embeddings = aligner.transform(X[:2048])
    losses = [record["train_loss"] for record in aligner.history_]
    assert embeddings.dtype == np.float32, embeddings.dtype
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-3)
    assert all(np.isfinite(losses)), losses
    assert losses[-1] < losses[0], losses
    return {
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "r1": aligner.score(X[:2048], teacher[:2048]),
        "temperature": aligner.temperature_,
        "seconds": seconds,
        "device": str(aligner.device_),
    }


def grad_cache_equivalence(device: str, config: dict) -> dict:
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    X, teacher = speed.feature_pairs(4096, config["features"], 384, seed=2)
    params = {"teacher": "precomputed", "batch_size": 1024, "max_epochs": 2, "device": device}
    plain = CWCLAligner(**params, random_state=0).fit(X, teacher)
    cached = CWCLAligner(**params, mini_batch_size=128, random_state=0).fit(X, teacher)
    difference = float(np.abs(plain.transform(X) - cached.transform(X)).max())
    assert difference < 1e-4, difference
    return {"max_abs_difference": difference}


def peak_memory(device: str, config: dict, batch_size: int, mini_batch_size) -> int:
    """Peak allocated GPU bytes of one optimiser step on ``batch_size`` pairs."""
    frames = config["memory_frames"]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(batch_size, frames * 16)).astype(np.float32)
    teacher = rng.normal(size=(batch_size, 384)).astype(np.float32)
    aligner = CWCLAligner(
        teacher="precomputed",
        student=speed.FrameStudent(frames),
        batch_size=batch_size,
        mini_batch_size=mini_batch_size,
        max_epochs=1,
        device=device,
        random_state=0,
    )
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    aligner.fit(X, teacher)
    return torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0


def grad_cache_memory(device: str, config: dict) -> dict:
    plain = peak_memory(device, config, config["memory_chunk"], None)
    cached = peak_memory(device, config, config["memory_batch"], config["memory_chunk"])
    return {
        "plain_batch": config["memory_chunk"],
        "grad_cache_batch": config["memory_batch"],
        "plain_peak_mb": plain / 2**20,
        "grad_cache_peak_mb": cached / 2**20,
        "ratio": cached / plain if plain else None,
    }


def speed_bf16(device: str, quick: bool) -> dict:
    config = {**(speed.QUICK if quick else speed.FULL), "device": device, "precision": "bf16"}
    rows = [speed.loss_ratio(config), *speed.fit_ratio(config)]
    return {item["name"]: {"value": item["value"], "target": item["target"]} for item in rows}


def run_check(function, *args) -> dict:
    try:
        return {"ok": True, **function(*args)}
    except Exception as error:
        traceback.print_exc(file=sys.stderr)
        return {"ok": False, "error": f"{type(error).__name__}: {error}"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            "gpu_check: no CUDA device is available (torch.cuda.is_available() is False); "
            "run it on a GPU machine, or pass --device cpu --quick to check the script.",
            file=sys.stderr,
        )
        return 2
    config = QUICK if args.quick else FULL
    started = time.perf_counter()
    on_cuda = args.device.startswith("cuda")
    summary = {
        "device": torch.cuda.get_device_name() if on_cuda else args.device,
        "torch": torch.__version__,
        "fit_bf16": run_check(fit_with_precision, "bf16", args.device, config),
        "fit_16_mixed": (
            run_check(fit_with_precision, "16-mixed", args.device, config)
            if on_cuda
            else {"ok": True, "skipped": "16-mixed needs CUDA"}
        ),
        "grad_cache_equivalence": run_check(grad_cache_equivalence, args.device, config),
        "grad_cache_memory": (
            run_check(grad_cache_memory, args.device, config)
            if on_cuda
            else {"ok": True, "skipped": "CUDA memory statistics"}
        ),
        "speed_bf16": run_check(speed_bf16, args.device, args.quick),
    }
    summary["seconds"] = time.perf_counter() - started
    text = json.dumps(summary, default=float)
    speed.RESULTS.mkdir(parents=True, exist_ok=True)
    (speed.RESULTS / "gpu_check.json").write_text(text)
    print(text)
    return (
        0
        if all(value.get("ok", True) for value in summary.values() if isinstance(value, dict))
        else 1
    )


if __name__ == "__main__":
    sys.exit(main())
