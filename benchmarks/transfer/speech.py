"""Speak the corpus sentences to audio files and a manifest, once, resumably.

Every clip is planned before any is spoken: its sentence, voice, speaking rate and pitch come
from the seed alone, and its file is named by a hash of them. A run speaks only the clips whose
file is missing, writing each under a temporary name and renaming it into place, so a run that
is interrupted leaves whole files and the next run carries on. ``manifest.jsonl`` (``path``,
``text``, ``voice``, ``rate``, ``pitch``; paths relative to the folder, as
:func:`cwcl_sk.cli.read_manifest` reads them) is written last, once every clip exists.

The voices are the spoken-intents task's training voices; its evaluation voices are never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..tasks.spoken_intents import EVAL_VOICES, PITCH, RATE, TRAIN_VOICES

__all__ = ["MANIFEST", "SpeechSettings", "plan_clips", "speak_corpus"]

#: The manifest's name inside the corpus folder.
MANIFEST = "manifest.jsonl"
SAMPLING_RATE = 16000


@dataclass(frozen=True)
class SpeechSettings:
    """How the corpus is spoken.

    Each sentence is spoken by ``voices_per_sentence`` distinct voices drawn from ``voices``,
    with a rate (words per minute) and a pitch drawn uniformly, as whole numbers, from the
    ``(low, high)`` ranges ``rate`` and ``pitch``, at ``sampling_rate`` Hz; ``seed`` makes
    every draw.
    """

    voices: tuple = TRAIN_VOICES
    voices_per_sentence: int = 1
    rate: tuple = RATE
    pitch: tuple = PITCH
    sampling_rate: int = SAMPLING_RATE
    seed: int = 0


def plan_clips(sentences, settings: SpeechSettings = SpeechSettings()) -> list[dict]:
    """One record per clip: ``text``, ``voice``, ``rate``, ``pitch`` and ``path`` (relative).

    Sentence ``i`` uses the ``i``-th draws of the seed's generator, so the plan of a prefix of
    ``sentences`` is a prefix of the plan.
    """
    voices, voices_per_sentence = list(settings.voices), settings.voices_per_sentence
    rate, pitch = settings.rate, settings.pitch
    held_out = sorted(set(voices) & set(EVAL_VOICES))
    if held_out:
        raise ValueError(f"voices include {held_out}, which are held out for evaluation.")
    if not isinstance(voices_per_sentence, int) or not 1 <= voices_per_sentence <= len(voices):
        raise ValueError(
            f"voices_per_sentence must be an integer from 1 to {len(voices)} (the number of "
            f"voices), got {voices_per_sentence!r}."
        )
    random = np.random.default_rng(settings.seed)
    plan = []
    for text in sentences:
        # A fixed number of draws per sentence keeps each sentence's settings independent of
        # how many sentences follow it.
        order = random.permutation(len(voices))[:voices_per_sentence]
        draws = random.random((voices_per_sentence, 2))
        for voice_index, (rate_draw, pitch_draw) in zip(order, draws, strict=True):
            clip = {
                "text": text,
                "voice": voices[voice_index],
                "rate": round(rate[0] + rate_draw * (rate[1] - rate[0])),
                "pitch": round(pitch[0] + pitch_draw * (pitch[1] - pitch[0])),
            }
            clip["path"] = f"clips/{_clip_name(clip, settings.sampling_rate)}.flac"
            plan.append(clip)
    return plan


def _clip_name(clip: dict, sampling_rate: int) -> str:
    description = json.dumps({**clip, "sampling_rate": sampling_rate}, sort_keys=True)
    return hashlib.sha256(description.encode("utf-8")).hexdigest()[:24]


def _write_flac(path: Path, clip: np.ndarray, sampling_rate: int) -> None:
    import soundfile

    # A temporary name in the same folder, then a rename: an interrupted run never leaves a
    # half-written clip under a final name, which a resumed run would take as done.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".flac")
    os.close(handle)
    try:
        soundfile.write(temporary, clip, sampling_rate, format="FLAC", subtype="PCM_16")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def speak_corpus(
    sentences, folder, settings: SpeechSettings = SpeechSettings(), verbose: int = 0
) -> dict:
    """Speak every clip of :func:`plan_clips` into ``folder`` that is not there yet.

    Parameters
    ----------
    sentences : sequence of str
        The corpus sentences.
    folder : str or path-like
        Created if missing; the clips go to ``folder/clips/`` as 16-bit FLAC files, and the
        manifest to ``folder/manifest.jsonl``.
    settings : SpeechSettings, default=SpeechSettings()
        The voices, rates, pitches, sampling rate and seed.
    verbose : int, default=0
        Show a progress bar when positive.

    Returns
    -------
    summary : dict
        ``n_clips``, ``written``, ``skipped`` (already there), ``synthesis_seconds`` and
        ``seconds_per_clip`` (of the written clips; None when none was written), ``manifest``
        and the settings.
    """
    from tqdm.auto import tqdm

    from cwcl_sk.datasets import synthesize_speech

    folder = Path(folder)
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    plan = plan_clips(sentences, settings)
    written = 0
    seconds = 0.0
    for clip in tqdm(plan, desc="speaking the corpus", unit="clip", disable=not verbose):
        path = folder / clip["path"]
        if path.is_file():
            continue
        started = time.perf_counter()
        (audio,) = synthesize_speech(
            [clip["text"]],
            voices=clip["voice"],
            rate=clip["rate"],
            pitch=clip["pitch"],
            sampling_rate=settings.sampling_rate,
        )
        _write_flac(path, audio, settings.sampling_rate)
        seconds += time.perf_counter() - started
        written += 1
    manifest = folder / MANIFEST
    temporary = manifest.with_name(f".tmp-{MANIFEST}")
    temporary.write_text("".join(json.dumps(clip) + "\n" for clip in plan))
    os.replace(temporary, manifest)
    return {
        "n_clips": len(plan),
        "written": written,
        "skipped": len(plan) - written,
        "synthesis_seconds": seconds,
        "seconds_per_clip": seconds / written if written else None,
        "manifest": str(manifest),
        **asdict(settings),
    }
