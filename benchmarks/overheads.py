"""The engine's overheads against bare PyTorch: the loss and ``fit``/``transform`` ratios.

Shared by ``speed.py`` (on the CPU, with the memory and grid-search rows) and ``gpu_check.py``
(the same ratios in bf16 on CUDA). Each timing is the median of repeated runs after a warm-up.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from cwcl_sk import CWCLAligner, contrastive_loss, cwcl_loss
from cwcl_sk.encoders.heads import EmbeddingModel
from cwcl_sk.encoders.students.generic import build_mlp
from cwcl_sk.training import autocast

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
