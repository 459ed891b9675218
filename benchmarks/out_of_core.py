"""Peak memory of training on a corpus read from disk, at two corpus sizes.

A corpus of short synthetic clips (tones and noise, 16-bit wav files, one distinct caption
each) is written once; then each configuration is fitted for one epoch in a fresh process
whose peak resident memory (``ru_maxrss``) is reported beside the corpus size:

- ``files``: ``fit(paths, texts)`` with a list of file paths (decoded per batch) and a
  ``cache_dir`` (the teacher's embeddings of the training pairs memory-mapped from disk);
- ``in memory``: the same clips loaded into arrays first, ``fit(clips, texts)``, the
  baseline that grows with the corpus.

The claim under test: with files, peak memory does not grow with the corpus (the issue's
bar: the ratio of peak memory at the large size to the small one is below 1.3). Each fit
runs on one thread. The teacher encodes every caption once, in a process of its own before
the fits, into the disk cache in ``--work-dir`` that every fit then reads: the fits' peaks
are those of training, not of the teacher's encoding.

Run from the repository root::

    python -m benchmarks.out_of_core --quick        # 300 and 1,500 clips, a minute
    python -m benchmarks.out_of_core                # 10,000 and 50,000 clips

Results go to ``benchmarks/results/out_of_core.json`` (``--quick``: ``out_of_core_quick``).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .results import RESULTS, machine, table_lines, write_results

RATE = 16000
SECONDS = (0.3, 0.7)  # clip lengths, drawn uniformly
CONFIGURATIONS = ("files", "in memory")
_WORDS = ("low", "soft", "bright", "noisy", "rising", "falling", "steady", "short", "deep")


def caption(index: int) -> str:
    """A distinct caption per clip, so that the teacher side grows with the corpus too."""
    words = [_WORDS[(index // 9**k) % 9] for k in range(3)]
    return f"{' '.join(words)} sound number {index}"


def write_corpus(folder: Path, size: int) -> list[str]:
    """``size`` wav files under ``folder`` (kept between runs); their paths."""
    import soundfile

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(size):
        path = folder / f"{index:06d}.wav"
        if not path.exists():
            rng = np.random.default_rng(index)
            t = np.arange(int(rng.uniform(*SECONDS) * RATE)) / RATE
            tone = np.sin(2 * np.pi * rng.uniform(100, 3000) * t) * rng.uniform(0.1, 0.8)
            clip = tone + rng.uniform(0, 0.2) * rng.normal(size=t.size)
            partial = path.with_suffix(".partial.wav")
            soundfile.write(partial, np.clip(clip, -1, 1).astype(np.float32), RATE)
            partial.replace(path)
        paths.append(str(path))
    return paths


def encode_captions(size: int, work_dir: Path) -> dict:
    """Fill the teacher's disk cache with the captions of ``size`` clips (before any fit)."""
    import torch

    from cwcl_sk.encoders.registry import make_teacher

    torch.set_num_threads(1)
    teacher = make_teacher("bert", {}, torch.device("cpu"))
    cache_dir = work_dir / "teacher-cache"
    teacher.cache_dir = cache_dir
    started = time.perf_counter()
    teacher.encode_unique_on_disk([caption(index) for index in range(size)], cache_dir)
    return {"n_captions": size, "seconds": time.perf_counter() - started}


def fit_once(configuration: str, size: int, work_dir: Path) -> dict:
    """One fit in this process; its time and this process's peak memory."""
    import torch

    from cwcl_sk import CWCLAligner
    from cwcl_sk.inputs import load_audio

    torch.set_num_threads(1)
    paths = write_corpus(work_dir / "clips", size)
    texts = [caption(index) for index in range(size)]
    X = paths if configuration == "files" else load_audio(paths, RATE)
    aligner = CWCLAligner(
        teacher="bert",
        student="mel-cnn",
        max_epochs=1,
        batch_size=128,
        device="cpu",
        random_state=0,
        cache_dir=work_dir / "teacher-cache",
    )
    started = time.perf_counter()
    aligner.fit(X, texts)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    return {
        "configuration": configuration,
        "n_clips": size,
        "peak_rss_mb": peak / 2**20,
        "fit_seconds": seconds,
        "train_loss": aligner.history_[-1]["train_loss"],
    }


def run_in_child(configuration: str, size: int, work_dir: Path) -> dict:
    """:func:`fit_once` in a fresh Python process, so that peaks of runs never mix."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.out_of_core",
        "--child",
        configuration,
        str(size),
        "--work-dir",
        str(work_dir),
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=False)
    if output.returncode != 0:
        raise RuntimeError(f"{configuration} at {size} clips failed:\n{output.stderr[-3000:]}")
    return json.loads(output.stdout.strip().splitlines()[-1])


def summarise(runs: list[dict], sizes) -> list[dict]:
    """Per configuration: peak memory at each size and the large-to-small ratio."""
    rows = []
    small, large = sizes
    for configuration in CONFIGURATIONS:
        peaks = {run["n_clips"]: run for run in runs if run["configuration"] == configuration}
        if small in peaks and large in peaks:
            rows.append(
                {
                    "configuration": configuration,
                    "peak_rss_mb": {str(size): peaks[size]["peak_rss_mb"] for size in sizes},
                    "fit_seconds": {str(size): peaks[size]["fit_seconds"] for size in sizes},
                    "ratio": peaks[large]["peak_rss_mb"] / peaks[small]["peak_rss_mb"],
                }
            )
    return rows


def table(summary: list[dict], sizes) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the table in the docs."""
    small, large = (f"{size:,}" for size in sizes)
    header = [
        "corpus",
        f"peak memory, {small} clips",
        f"peak memory, {large} clips",
        "ratio",
        f"s / epoch, {small}",
        f"s / epoch, {large}",
    ]
    rows = [
        [
            row["configuration"],
            *(f"{row['peak_rss_mb'][str(size)]:,.0f} MB" for size in sizes),
            f"{row['ratio']:.2f}",
            *(f"{row['fit_seconds'][str(size)]:.0f}" for size in sizes),
        ]
        for row in summary
    ]
    return header, rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="300 and 1,500 clips")
    parser.add_argument("--sizes", type=int, nargs=2, default=None, help="small and large size")
    parser.add_argument(
        "--configurations", nargs="+", default=list(CONFIGURATIONS), choices=CONFIGURATIONS
    )
    parser.add_argument("--work-dir", type=Path, default=RESULTS / "out-of-core-cache")
    parser.add_argument(
        "--child", nargs=2, metavar=("CONFIGURATION", "SIZE"), help=argparse.SUPPRESS
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.child is not None:
        child = encode_captions if args.child[0] == "captions" else fit_once
        arguments = (int(args.child[1]), args.work_dir)
        if child is fit_once:
            arguments = (args.child[0], *arguments)
        print(json.dumps(child(*arguments)))
        return
    sizes = tuple(args.sizes or ((300, 1500) if args.quick else (10_000, 50_000)))
    name = "out_of_core_quick" if args.quick else "out_of_core"
    out = args.out or RESULTS / name
    write_corpus(args.work_dir / "clips", max(sizes))
    # The teacher runs once, here, so that every fit reads its captions from the cache.
    encoding = run_in_child("captions", max(sizes), args.work_dir)
    print(json.dumps(encoding), flush=True)
    runs = []
    for configuration in args.configurations:
        for size in sizes:
            runs.append(run_in_child(configuration, size, args.work_dir))
            print(json.dumps(runs[-1]), flush=True)
    summary = summarise(runs, sizes)
    header, rows = table(summary, sizes)
    results = {
        "settings": {
            "sizes": list(sizes),
            "configurations": args.configurations,
            "student": "mel-cnn",
            "epochs": 1,
            "batch_size": 128,
            "clip_seconds": list(SECONDS),
            "sampling_rate": RATE,
            **machine(1),
        },
        "teacher_encoding": encoding,
        "runs": runs,
        "summary": summary,
    }
    write_results(out, "\n".join(table_lines(header, rows)) + "\n", results)
    print("\n".join(table_lines(header, rows)))


if __name__ == "__main__":
    main()
