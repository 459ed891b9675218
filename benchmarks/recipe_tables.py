"""Layouts of the default speech student's tables: its speed, and the ASR cascade beside it.

:mod:`benchmarks.tables` registers them; they live here so that the scripts that write the
result files (``default_speed.py``, ``asr_cascade.py``) and the table registry share them
without importing each other.
"""

from __future__ import annotations

__all__ = ["asr_cascade", "asr_cascade_note", "default_speed", "default_speed_note"]


def _met(value: float, target: float) -> str:
    return "yes" if value <= target else "no"


def _threads(count: int) -> str:
    return f"{count} thread" if count == 1 else f"{count} threads"


def default_speed(result: dict) -> tuple[list[str], list[list[str]]]:
    """The fit and predict times beside their targets, then any unseen-speaker folds."""
    settings, summary = result["settings"], result["summary"]
    rows = [
        [
            f"fit, {settings['fit_clips']:,} clips, {_threads(settings['fit_threads'])}",
            f"{summary['fit_seconds']:.0f} s",
            f"{summary['fit_cpu_seconds'] / settings['fit_threads']:.0f} s",
            f"≤ {summary['fit_target_seconds']:.0f} s",
            _met(summary["fit_seconds"], summary["fit_target_seconds"]),
        ],
        [
            f"predict, per clip ({settings['predict_clips']} clips), "
            f"{_threads(settings['predict_threads'])}",
            f"{summary['predict_ms_per_clip']:.1f} ms",
            f"{summary['predict_cpu_ms_per_clip']:.1f} ms",
            f"≤ {summary['predict_target_ms']:.0f} ms",
            _met(summary["predict_ms_per_clip"], summary["predict_target_ms"]),
        ],
    ]
    for fold in summary["unseen_speakers"]:
        rows.append(
            [
                f"zero-shot accuracy, speaker {fold['speaker']} held out ({fold['clips']} "
                f"clips; fit {fold['fit_seconds']:.0f} s)",
                f"{fold['accuracy']:.3f}",
                "",
                "",
                "",
            ]
        )
    return ["measure", "wall time", "CPU time / threads", "target", "met"], rows


def default_speed_note(result: dict) -> str:
    """The recipe that ran and how busy the machine was."""
    settings = result["settings"]
    recipe = settings["recipe"]
    return (
        f"*The default recipe: learning rate {recipe['learning_rate']:g}, "
        f"{recipe['max_epochs']} epochs, temperature {recipe['temperature']:g}, "
        f"{', '.join(f'{k}={v}' for k, v in recipe['student_options'].items()) or 'no options'};"
        f" 1-minute load average {settings['load_average_before']} before and "
        f"{settings['load_average_after']} after the run: with other jobs on the cores the "
        "wall times are upper bounds; the process's CPU time over its threads is about what "
        'the machine to itself would take. "met" reads the wall time.*'
    )


def asr_cascade(result: dict) -> tuple[list[str], list[list[str]]]:
    """Per task: the cascade, the aligned student and the text-only limit."""
    header = ["task", "system", "accuracy", "of text limit", "ms / clip, 1 thread", "source"]
    rows = []
    for task in result["summary"]:
        limit = task["text_limit"]
        student_ms = task["student_ms_per_clip"]
        for system, accuracy, reference, milliseconds, source in (
            ("ASR cascade (Whisper tiny.en greedy + MiniLM)", task["cascade_accuracy"], limit,
             task["cascade_ms_per_clip"], "this run"),
            (task["student_label"], task["student_accuracy"], task["student_text_limit"],
             student_ms, task["student_source"]),
            ("text-only limit (gold transcripts)", limit, limit, None, "this run"),
        ):  # fmt: skip
            rows.append(
                [
                    task["task"],
                    system,
                    f"{accuracy:.3f}",
                    f"{accuracy / reference:.0%}",
                    "" if milliseconds is None else f"{milliseconds:.1f}",
                    source,
                ]
            )
    return header, rows


def _ratio(task: dict) -> float:
    return task["cascade_ms_per_clip"] / task["student_ms_per_clip"]


def asr_cascade_note(result: dict) -> str:
    """What was measured on how many clips, and the latency ratios."""
    settings = result["settings"]
    ratios = "; ".join(
        f"{task['task']}: the cascade takes {_ratio(task):.0f} times the student's time per clip"
        for task in result["summary"]
    )
    tasks = "; ".join(f"{task['task']}: {task['clips']:,} clips" for task in result["summary"])
    per_speaker = "; ".join(
        f"{task['task']}, per speaker: "
        + ", ".join(f"{name} {value:.3f}" for name, value in task["per_speaker"].items())
        for task in result["summary"]
        if "per_speaker" in task
    )
    return (
        f"*Cascade accuracy and both timings measured in this run ({tasks}; "
        f"{settings['selection']}); the student's accuracy is that of the committed result file "
        "named, and its share of the text limit is taken against that file's limit. "
        f"{ratios}. Cascade accuracy {per_speaker}. 1-minute load average "
        f"{settings['load_average_before']} before and {settings['load_average_after']} "
        "after: times are upper bounds.*"
    )
