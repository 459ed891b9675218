"""A small spoken-commands corpus, synthesised offline: smart-home requests by many voices.

Ten intents ("lights on", "play music", "set an alarm", ...) are each phrased three ways
("turn on the lights", "switch the lights on", "lights on please"), and every phrasing is
spoken by every voice with its speaking rate and pitch drawn at random. Training and
evaluation voices are disjoint (:data:`TRAIN_VOICES`, :data:`TEST_VOICES`, different accents
and timbres), so a score on the evaluation voices measures what carries over to speakers the
student never heard, not how well it memorised one synthesiser setting.

A student is trained on the clips paired with their transcripts and classified zero-shot by
the intent names, which are never spoken: the teacher has to bridge "switch the lights on"
to "lights on", and the student has to hear which request it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.utils import check_random_state

from .speech import synthesize_speech

__all__ = [
    "INTENTS",
    "TEST_VOICES",
    "TRAIN_VOICES",
    "SpokenCommands",
    "make_spoken_commands",
]

#: Intent name (the label prompt) -> the ways a user might say it. Names read as intents, not
#: as transcripts, so zero-shot classification never sees a training sentence as a prompt.
INTENTS = {
    "lights on": ("turn on the lights", "switch the lights on", "lights on please"),
    "lights off": ("turn off the lights", "switch off the lamp", "kill the lights"),
    "play music": ("play some music", "put on a song", "I want to hear some jazz"),
    "stop music": ("stop the music", "pause the song", "stop playing"),
    "set an alarm": ("set my alarm", "wake me up at seven", "set an alarm for six tomorrow"),
    "weather forecast": ("what is the weather like", "will it rain today", "is it cold outside"),
    "current time": ("what time is it", "tell me the time", "what is the time now"),
    "volume up": ("turn the volume up", "make it louder", "louder please"),
    "volume down": ("turn the volume down", "make it quieter", "that is too loud"),
    "phone call": ("call my mother", "phone my sister", "make a phone call"),
}

#: Voices spoken in training: four accents, male and female timbres.
TRAIN_VOICES = (
    "en-us",
    "en-us+f2",
    "en-us+m3",
    "en-us+f4",
    "en-gb",
    "en-gb+f3",
    "en-gb+m1",
    "en-gb-x-rp+m2",
    "en-gb-x-rp+f1",
    "en-029",
    "en-029+f1",
    "en-us+m7",
)

#: Voices held out for evaluation: an accent never heard in training (Scottish, New York) or
#: a timbre never heard with its accent.
TEST_VOICES = ("en-gb-scotland", "en-us-nyc+m5", "en-gb+f4")


@dataclass
class SpokenCommands:
    """Clips of spoken requests with what was said, its intent and who said it.

    Attributes
    ----------
    clips : list of ndarray of shape (n_samples_i,)
        Mono float32 audio at ``sampling_rate``.
    texts : list of str
        The transcript of each clip: the teacher-side training caption.
    intents : ndarray of shape (n_clips,)
        Index of each clip's intent in ``intent_names``.
    voices : ndarray of shape (n_clips,)
        The voice that spoke each clip.
    intent_names : list of str
        The label prompt of each intent (the keys of :data:`INTENTS`).
    sampling_rate : int
    """

    clips: list
    texts: list
    intents: np.ndarray
    voices: np.ndarray
    intent_names: list
    sampling_rate: int

    @property
    def labels(self) -> dict:
        """``{intent index: intent name}``, the ``labels`` of a ZeroShotClassifier."""
        return dict(enumerate(self.intent_names))


def make_spoken_commands(
    voices: Sequence[str] = TRAIN_VOICES,
    repetitions: int = 1,
    rate=(140, 220),
    pitch=(30, 70),
    sampling_rate: int = 16000,
    random_state=None,
    cache_dir=None,
    verbose: int = 0,
) -> SpokenCommands:
    """Synthesise every phrasing of :data:`INTENTS` with every voice.

    Parameters
    ----------
    voices : sequence of str, default=TRAIN_VOICES
        espeak-ng voices (see :func:`~cwcl_sk.datasets.list_voices`); each speaks every
        phrasing ``repetitions`` times. Use :data:`TEST_VOICES` for an evaluation set.
    repetitions : int, default=1
        Utterances of each phrasing per voice, each with its own rate and pitch.
    rate : float or (float, float), default=(140, 220)
        Words per minute, or a range to draw from per utterance.
    pitch : float or (float, float), default=(30, 70)
        Pitch (0-100, 50 is the voice's own), or a range to draw from per utterance.
    sampling_rate : int, default=16000
    random_state : int, RandomState instance or None, default=None
        Draws the rate and pitch of every utterance.
    cache_dir : str or path-like, optional
        Passed to :func:`~cwcl_sk.datasets.synthesize_speech`: clips are stored there and
        read back by later calls.
    verbose : int, default=0
        Show a progress bar over the voices when positive.

    Returns
    -------
    corpus : SpokenCommands
        ``len(voices) * repetitions * 30`` clips, voice by voice.

    Raises
    ------
    ImportError
        If the synthesiser is not installed (``pip install "cwcl-sk[speech]"``).

    Examples
    --------
    >>> from cwcl_sk.datasets import TEST_VOICES, make_spoken_commands
    >>> corpus = make_spoken_commands(TEST_VOICES[:1], random_state=0)
    >>> len(corpus.clips), corpus.texts[0], corpus.intent_names[corpus.intents[0]]
    (30, 'turn on the lights', 'lights on')
    """
    if isinstance(voices, str):
        voices = [voices]
    if not isinstance(repetitions, int) or repetitions < 1:
        raise ValueError(f"repetitions must be a positive integer, got {repetitions!r}.")
    intent_names = list(INTENTS)
    sentences = [(index, text) for index, name in enumerate(intent_names) for text in INTENTS[name]]
    utterances = [
        (voice, index, text)
        for voice in voices
        for _ in range(repetitions)
        for index, text in sentences
    ]
    random = check_random_state(random_state)
    texts = [text for _, _, text in utterances]
    speakers = [voice for voice, _, _ in utterances]
    clips = [None] * len(utterances)
    from tqdm.auto import tqdm

    # One call per voice: synthesize_speech draws a voice per text from a list, and here
    # every voice must speak every sentence.
    for voice in tqdm(
        list(dict.fromkeys(speakers)), desc="synthesising voices", unit="voice", disable=not verbose
    ):
        positions = [position for position, speaker in enumerate(speakers) if speaker == voice]
        spoken = synthesize_speech(
            [texts[position] for position in positions],
            voices=voice,
            rate=rate,
            pitch=pitch,
            sampling_rate=sampling_rate,
            random_state=random.randint(2**31 - 1),
            cache_dir=cache_dir,
        )
        for position, clip in zip(positions, spoken, strict=True):
            clips[position] = clip
    return SpokenCommands(
        clips=clips,
        texts=texts,
        intents=np.array([index for _, index, _ in utterances]),
        voices=np.array(speakers),
        intent_names=intent_names,
        sampling_rate=sampling_rate,
    )
