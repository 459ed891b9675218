"""Data for cross-modal transfer: spoken corpora synthesised from text, offline.

- :func:`synthesize_speech` speaks a list of texts with espeak-ng (voices, rate and pitch varied
  per text), returning clips ready for an audio student;
- :func:`list_voices` and :func:`list_voice_variants` name the voices it accepts, and
  :data:`ENGLISH_VOICES` is a recommended set of distinct English "speakers";
- :func:`make_spoken_commands` synthesises a small spoken-commands corpus (ten smart-home
  intents, three phrasings each) with disjoint training and evaluation voices.

Synthesis needs ``pip install "cwcl-sk[speech]"`` (the package ``espeakng-loader``).
"""

from .commands import (
    INTENTS,
    TEST_VOICES,
    TRAIN_VOICES,
    SpokenCommands,
    make_spoken_commands,
)
from .speech import ENGLISH_VOICES, list_voice_variants, list_voices, synthesize_speech

__all__ = [
    "ENGLISH_VOICES",
    "INTENTS",
    "TEST_VOICES",
    "TRAIN_VOICES",
    "SpokenCommands",
    "list_voice_variants",
    "list_voices",
    "make_spoken_commands",
    "synthesize_speech",
]
