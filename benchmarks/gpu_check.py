"""Exercise the CUDA paths of the training engine and print a compact JSON summary.

    python -m benchmarks.gpu_check            # needs a CUDA GPU; about a minute on an H200
    python -m benchmarks.gpu_check --device cpu --quick   # checks this script itself

Checks, each reported as ``ok`` (with its numbers) or with the error it raised:

- ``fit_bf16`` and ``fit_16_mixed``: ``CWCLAligner.fit`` with ``precision="bf16"`` and
  ``"16-mixed"`` (GradScaler) learns (loss falls, recall@1 rises) and ``transform`` returns
  float32 unit vectors;
- ``grad_cache_equivalence``: GradCache (chunks of 128) trains the same model as the plain
  batch of 1024 (float32, TF32 off);
- ``grad_cache_memory``: peak ``torch.cuda.max_memory_allocated`` of one step at batch 4096
  with chunks of 256 over a plain batch of 256;
- ``speed_bf16``: the ratios of ``benchmarks/speed.py`` (loss, fit, transform) in bf16;
- ``speech_students``: small randomly initialised wav2vec2 and Whisper checkpoints, saved and
  loaded back by path, and ``mel-cnn``, fitted on raw clips in bf16 with GradCache; GradCache
  against the plain batch for wav2vec2 with its dropout on (float32: the chunks replay the
  CUDA random state); and Whisper's cached frozen layers against no cache.

The summary is also written to ``benchmarks/results/gpu_check.json``. Exit status 0 when
every check ran, 1 when one raised, 2 when there is no CUDA device.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from cwcl_sk import CWCLAligner

from . import overheads
from .results import RESULTS, write_results

FULL = {
    "samples": 16384,
    "features": 64,
    "epochs": 5,
    "memory_frames": 1000,
    "memory_batch": 4096,
    "memory_chunk": 256,
}
QUICK = {**FULL, "samples": 1024, "epochs": 2, "memory_frames": 20, "memory_batch": 512}
SPEECH = {"clips": 256, "batch": 64, "chunk": 16}
SPEECH_QUICK = {"clips": 32, "batch": 16, "chunk": 4}


def fit_with_precision(precision: str, device: str, config: dict) -> dict:
    X, teacher = overheads.feature_pairs(config["samples"], config["features"], 384, seed=1)
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
    X, teacher = overheads.feature_pairs(4096, config["features"], 384, seed=2)
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
        student=overheads.FrameStudent(frames),
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
    config = {
        **(overheads.QUICK if quick else overheads.FULL),
        "device": device,
        "precision": "bf16",
    }
    rows = [overheads.loss_ratio(config), *overheads.fit_ratio(config)]
    return {
        item["name"]: {"value": item["value"], "target": item["target"], **item["details"]}
        for item in rows
    }


def tone_clips(n_clips: int, seed: int = 0) -> list[np.ndarray]:
    """Noisy 16 kHz tones of 0.2 to 1 s at one of eight pitches."""
    rng = np.random.default_rng(seed)
    clips = []
    for index in range(n_clips):
        time_axis = np.arange(rng.integers(3200, 16000)) / 16000
        tone = np.sin(2 * np.pi * 150.0 * 1.25 ** (index % 8) * time_axis)
        clips.append((0.3 * tone + 0.02 * rng.normal(size=time_axis.size)).astype(np.float32))
    return clips


# Small wav2vec2 with every source of randomness on: dropout, LayerDrop and SpecAugment.
RANDOM_WAV2VEC2 = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 128,
    "conv_dim": (32,) * 7,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 4,
    "mask_time_prob": 0.3,
    "mask_time_length": 2,
}
NO_RANDOMNESS = {
    "hidden_dropout": 0.0,
    "attention_dropout": 0.0,
    "activation_dropout": 0.0,
    "feat_proj_dropout": 0.0,
    "layerdrop": 0.0,
    "mask_time_prob": 0.0,
}


def save_speech_checkpoints(folder: Path) -> dict:
    """Small random wav2vec2 and Whisper checkpoints, saved as a user's local folders."""
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2Model,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperModel,
    )

    torch.manual_seed(0)
    Wav2Vec2Model(Wav2Vec2Config(**RANDOM_WAV2VEC2)).save_pretrained(folder / "wav2vec2")
    whisper = WhisperConfig(
        d_model=64,
        encoder_layers=2,
        encoder_attention_heads=4,
        encoder_ffn_dim=128,
        decoder_layers=1,
        decoder_attention_heads=4,
        decoder_ffn_dim=64,
        num_mel_bins=80,
        dropout=0.1,
    )
    WhisperModel(whisper).save_pretrained(folder / "whisper")
    WhisperFeatureExtractor(feature_size=80).save_pretrained(folder / "whisper")
    return {"wav2vec2": folder / "wav2vec2", "whisper": folder / "whisper"}


def speech_bf16_fit(aligner: CWCLAligner, clips, teacher, device: str) -> dict:
    started = time.perf_counter()
    aligner.fit(clips, teacher)
    seconds = time.perf_counter() - started
    embeddings = aligner.transform(clips)
    losses = [record["train_loss"] for record in aligner.history_]
    assert embeddings.dtype == np.float32, embeddings.dtype
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-3)
    assert all(np.isfinite(losses)), losses
    assert aligner.device_.type == torch.device(device).type, aligner.device_
    return {"first_loss": losses[0], "last_loss": losses[-1], "seconds": seconds}


def random_state_replay(aligner: CWCLAligner, clips, device: str) -> dict:
    """GradCache's replay on a real student: same masks when replayed, others when not."""
    from cwcl_sk.encoders.students.audio import speech_inputs
    from cwcl_sk.training.devices import to_device as _to_device
    from cwcl_sk.training.seeding import ReplayableRandomState as _RandomState

    inputs = speech_inputs()
    batch = _to_device(inputs.collate(inputs.prepare(clips), np.arange(len(clips))), device)
    model = aligner.student_.to(device).train()
    with torch.no_grad():
        state = _RandomState(torch.device(device))
        first = model(batch)
        with state.replay():
            second = model(batch)
        third = model(batch)
    return {
        "replayed_max_abs_difference": float((first - second).abs().max()),
        "fresh_draw_max_abs_difference": float((first - third).abs().max()),
    }


def fit_difference(first: CWCLAligner, second: CWCLAligner, clips, teacher) -> dict:
    """How far two fits that should be the same computation end apart."""
    first.fit(clips, teacher)
    second.fit(clips, teacher)
    losses = np.array(
        [[record["train_loss"] for record in fitted.history_] for fitted in (first, second)]
    )
    return {
        "loss_max_relative_difference": float(np.abs(losses[0] / losses[1] - 1).max()),
        "embedding_max_abs_difference": float(
            np.abs(first.transform(clips) - second.transform(clips)).max()
        ),
    }


def speech_students(device: str, quick: bool) -> dict:
    config = SPEECH_QUICK if quick else SPEECH
    clips = tone_clips(config["clips"])
    teacher = np.random.default_rng(1).normal(size=(8, 384)).astype(np.float32)
    teacher = teacher[np.arange(len(clips)) % 8]  # one target per pitch
    base = {"teacher": "precomputed", "batch_size": config["batch"], "device": device}
    report, fitted = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        paths = save_speech_checkpoints(Path(folder))
        wav2vec2 = {"student": "wav2vec2", "student__name_or_path": paths["wav2vec2"]}
        whisper = {
            "student": "whisper",
            "student__name_or_path": paths["whisper"],
            "student__trainable_layers": 1,
        }
        students = {"wav2vec2": wav2vec2, "whisper": whisper, "mel-cnn": {"student": "mel-cnn"}}
        bf16 = {"max_epochs": 3, "learning_rate": 1e-3, "precision": "bf16", "random_state": 0}
        for name, options in students.items():
            fitted[name] = CWCLAligner(**base, **options, **bf16, mini_batch_size=config["chunk"])
            report[f"{name}_bf16"] = speech_bf16_fit(fitted[name], clips, teacher, device)
        replay = random_state_replay(fitted["wav2vec2"], clips[:8], device)
        report["wav2vec2_replay"] = replay

        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        fp32 = {**base, "max_epochs": 2, "random_state": 0}
        # GradCache against the plain batch: equal only when nothing is drawn at random,
        # since chunks draw their masks in other calls than the whole batch does.
        still = {**wav2vec2, **{f"student__{key}": value for key, value in NO_RANDOMNESS.items()}}
        report["wav2vec2_grad_cache"] = fit_difference(
            CWCLAligner(**fp32, **still),
            CWCLAligner(**fp32, **still, mini_batch_size=config["chunk"]),
            clips,
            teacher,
        )
        # Cached frozen layers run without dropout (documented), so compare without it.
        whisper = {**whisper, "student__dropout": 0.0}
        report["whisper_frozen_cache"] = fit_difference(
            CWCLAligner(**fp32, **whisper),
            CWCLAligner(**fp32, **whisper, student__cache_frozen=False),
            clips,
            teacher,
        )
    assert replay["replayed_max_abs_difference"] < 1e-5, replay
    assert replay["fresh_draw_max_abs_difference"] > 1e-3, replay
    for name in ("wav2vec2_grad_cache", "whisper_frozen_cache"):
        # AdamW's first steps move a weight by about the learning rate whatever the size of
        # its gradient, so float rounding alone can leave differences of about 1e-4.
        assert report[name]["loss_max_relative_difference"] < 1e-4, (name, report[name])
        assert report[name]["embedding_max_abs_difference"] < 1e-3, (name, report[name])
    return report


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
        "speech_students": run_check(speech_students, args.device, args.quick),
    }
    summary["seconds"] = time.perf_counter() - started
    text = json.dumps(summary, default=float)
    settings = {"device": args.device, "quick": args.quick}
    results = {"settings": settings, "summary": json.loads(text)}
    write_results(RESULTS / ("gpu_check_quick" if args.quick else "gpu_check"), text, results)
    print(text)
    return (
        0
        if all(value.get("ok", True) for value in summary.values() if isinstance(value, dict))
        else 1
    )


if __name__ == "__main__":
    sys.exit(main())
