"""A small ctypes binding to libespeak-ng, the formant speech synthesiser.

The shared library and its voice data come from the PyPI package ``espeakng-loader``
(``espeakng_loader.get_library_path()`` and ``get_data_path()``), so nothing is needed from the
operating system. Only the handful of calls below are bound; their C declarations are those of
``espeak-ng/speak_lib.h`` (1.49 and later):

- ``int espeak_Initialize(espeak_AUDIO_OUTPUT output, int buflength, const char *path,
  int options)`` returns the sample rate (22050 Hz), or -1 on failure;
- ``void espeak_SetSynthCallback(int (*callback)(short *wav, int numsamples, espeak_EVENT *))``:
  in ``AUDIO_OUTPUT_SYNCHRONOUS`` mode the callback receives the int16 samples, block by block,
  on the calling thread, before ``espeak_Synth`` returns;
- ``espeak_ERROR espeak_SetVoiceByName(const char *name)``, ``espeak_SetParameter(parameter,
  value, relative)``, ``espeak_Synth(...)``, ``espeak_Synchronize()``, ``espeak_Terminate()``;
- ``const espeak_VOICE **espeak_ListVoices(espeak_VOICE *voice_spec)`` and
  ``const char *espeak_Info(const char **path_data)`` for the catalogue and the version.

Why every utterance gets a freshly loaded library
-------------------------------------------------
libespeak-ng keeps synthesis state in static variables that neither ``espeak_Terminate`` nor a
new ``espeak_Initialize`` resets: the phase of the pitch "flutter" table, the automatic gain
control, the breath-noise filters. Two syntheses of the same text with the same voice in one
loaded library therefore differ by a few samples in length and in every sample value, and the
output of a text depends on everything synthesised before it. Unloading the library and loading
it again gives fresh static data, and the output becomes a function of (text, voice, rate,
pitch) alone, the same in every process. The cost is about 4 ms a load (reading the phoneme
tables), small beside what is done with the audio afterwards.

The library is loaded from a private copy in a temporary folder, because the operating system
shares one loaded instance per path: another package of the process (a phonemiser, a TTS
front-end) holding ``espeakng_loader``'s copy open would otherwise keep its state alive between
our loads and share its global state with us outside our lock.

All access goes through :data:`_LOCK`: the library has a single global state (current voice,
parameters, callback), so one thread at a time may use it.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

__all__ = ["INSTALL_HINT", "Catalogue", "catalogue", "synthesize"]

INSTALL_HINT = (
    'pip install espeakng-loader (or pip install "cwcl-sk[speech]"), which bundles libespeak-ng '
    "and its voices"
)

# Values of the C enums used here (espeak-ng/speak_lib.h).
_AUDIO_OUTPUT_SYNCHRONOUS = 2  # samples come through the callback before espeak_Synth returns
_INITIALIZE_DONT_EXIT = 0x8000  # report a missing data folder instead of calling exit()
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAMETER_RATE = 1
_PARAMETER_PITCH = 3
_EE_OK = 0


class _Voice(ctypes.Structure):
    """``espeak_VOICE``; ``languages`` is kept as a raw address because it holds NUL bytes."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        # A list of (priority byte, NUL-terminated language tag) pairs, ended by a 0 byte.
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)

_LOCK = threading.Lock()
_private_library: tuple[str, str] | None = None  # (path of the private copy, data folder)
_catalogue: Catalogue | None = None


@dataclass(frozen=True)
class Catalogue:
    """What the bundled data offers, read once per process.

    Attributes
    ----------
    version : str
        The libespeak-ng version, e.g. ``"1.52.0"``.
    sample_rate : int
        The rate of the int16 samples the library produces (22050 Hz).
    languages : dict of str to str
        Lower-case language voice name (its main language tag, e.g. ``"en-us"``) -> the
        identifier espeak loads it by (e.g. ``"gmw/en-US"``).
    aliases : dict of str to str
        Further tags a voice answers to (``"en"`` -> ``"en-gb"``) -> the voice name.
    variants : dict of str to str
        Lower-case variant name (``"f3"``, ``"klatt"``) -> its file name in ``voices/!v``.
    """

    version: str
    sample_rate: int
    languages: dict[str, str]
    aliases: dict[str, str]
    variants: dict[str, str]


def _locate_library() -> tuple[str, str]:
    """Copy the bundled library to a private temporary folder; return (copy, data folder).

    Called with ``_LOCK`` held. The copy is made once per process, and again if a temporary
    file cleaner removed it.
    """
    global _private_library
    if _private_library is not None and os.path.isfile(_private_library[0]):
        return _private_library
    try:
        import espeakng_loader
    except ImportError as error:
        raise ImportError(
            f"Speech synthesis needs the espeak-ng synthesiser: {INSTALL_HINT}."
        ) from error
    try:
        library_path = espeakng_loader.get_library_path()
        data_path = espeakng_loader.get_data_path()
    except Exception as error:  # the loader raises RuntimeError or OSError for a broken install
        raise RuntimeError(
            f"espeakng-loader is installed but its library or voice data cannot be found "
            f"({error}); reinstall it: {INSTALL_HINT}."
        ) from error
    if not os.path.isfile(library_path):
        raise RuntimeError(
            f"espeakng-loader is installed but {library_path} is missing; reinstall it: "
            f"{INSTALL_HINT}."
        )
    folder = tempfile.mkdtemp(prefix="cwcl_sk-espeak-")
    atexit.register(_remove_folder, folder, os.getpid())
    private_path = os.path.join(folder, os.path.basename(library_path))
    shutil.copyfile(library_path, private_path)
    _private_library = (private_path, data_path)
    return _private_library


def _remove_folder(folder: str, owner_pid: int) -> None:
    # A forked child that exits normally runs its parent's atexit hooks: leave the copy to the
    # process that made it, which may still be using it.
    if os.getpid() == owner_pid:
        shutil.rmtree(folder, ignore_errors=True)


def _reset_lock_in_child() -> None:
    # A fork taken while another thread synthesises would leave the child's copy of the lock
    # held forever.
    global _LOCK
    _LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX only
    os.register_at_fork(after_in_child=_reset_lock_in_child)


def _declare(library: ctypes.CDLL) -> None:
    """Give ctypes the C signatures, so arguments are converted and checked."""
    library.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    library.espeak_Initialize.restype = ctypes.c_int
    library.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
    library.espeak_SetSynthCallback.restype = None
    library.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    library.espeak_SetVoiceByName.restype = ctypes.c_int
    library.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    library.espeak_SetParameter.restype = ctypes.c_int
    library.espeak_Synth.argtypes = [
        ctypes.c_void_p,  # text
        ctypes.c_size_t,  # size of the text buffer in bytes
        ctypes.c_uint,  # position to start at
        ctypes.c_int,  # what the position counts (characters)
        ctypes.c_uint,  # end position (0: the end)
        ctypes.c_uint,  # flags: text encoding, SSML, phoneme input
        ctypes.POINTER(ctypes.c_uint),  # unique identifier out (unused)
        ctypes.c_void_p,  # user data passed to the callback's events (unused)
    ]
    library.espeak_Synth.restype = ctypes.c_int
    library.espeak_Synchronize.restype = ctypes.c_int
    library.espeak_Terminate.restype = ctypes.c_int
    library.espeak_ListVoices.argtypes = [ctypes.POINTER(_Voice)]
    library.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
    library.espeak_Info.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
    library.espeak_Info.restype = ctypes.c_char_p
    if hasattr(library, "espeak_ng_SetRandSeed"):  # espeak-ng >= 1.52
        library.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        library.espeak_ng_SetRandSeed.restype = None


def _unload(library: ctypes.CDLL) -> None:
    """Close the handle so that the next load starts from the library's initial static data."""
    import _ctypes

    if sys.platform == "win32":
        _ctypes.FreeLibrary(library._handle)
    else:
        _ctypes.dlclose(library._handle)


@contextmanager
def _session(chunks: list[bytes] | None = None) -> Iterator[tuple[ctypes.CDLL, int]]:
    """Load and initialise a fresh library; yield it and its sample rate. Hold ``_LOCK``."""
    library_path, data_path = _locate_library()
    try:
        library = ctypes.CDLL(library_path)
    except OSError as error:
        raise RuntimeError(
            f"libespeak-ng could not be loaded from {library_path} ({error}); {INSTALL_HINT}."
        ) from error

    def collect(samples, n_samples, events):
        # Called with n_samples == 0 (and possibly a NULL buffer) for event-only blocks.
        if chunks is not None and n_samples > 0:
            chunks.append(ctypes.string_at(samples, 2 * n_samples))
        return 0  # 0: continue synthesis

    # The ctypes callback object must stay referenced while the library may call it.
    callback = _SYNTH_CALLBACK(collect)
    try:
        _declare(library)
        sample_rate = library.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, os.fsencode(data_path), _INITIALIZE_DONT_EXIT
        )
        if sample_rate <= 0:
            raise RuntimeError(
                f"libespeak-ng failed to initialise with the voice data in {data_path}; "
                f"reinstall it: {INSTALL_HINT}."
            )
        try:
            library.espeak_SetSynthCallback(callback)
            yield library, sample_rate
        finally:
            library.espeak_Terminate()
    finally:
        _unload(library)


def _language_tags(address: int) -> list[tuple[int, str]]:
    """Decode ``espeak_VOICE.languages``: (priority byte, tag, NUL) triples ended by a 0 byte.

    A lower priority number means a better match of the voice for that tag.
    """
    tags = []
    offset = 0
    while (priority := ctypes.string_at(address + offset, 1)[0]) != 0:
        tag = ctypes.string_at(address + offset + 1)  # reads up to the NUL
        tags.append((priority, tag.decode("utf-8", errors="replace").lower()))
        offset += len(tag) + 2
    return tags


def _list(library: ctypes.CDLL, spec: _Voice | None) -> list[_Voice]:
    array = library.espeak_ListVoices(ctypes.byref(spec) if spec is not None else None)
    voices = []
    index = 0
    while array[index]:  # NULL-terminated array of pointers
        voices.append(array[index].contents)
        index += 1
    return voices


def catalogue() -> Catalogue:
    """Read the version and the voices of the bundled data (once per process)."""
    global _catalogue
    with _LOCK:
        if _catalogue is not None:
            return _catalogue
        with _session() as (library, sample_rate):
            version = library.espeak_Info(None).decode()
            languages: dict[str, str] = {}
            best_for_tag: dict[str, tuple[int, str]] = {}
            for voice in _list(library, None):
                identifier = voice.identifier.decode()
                tags = _language_tags(voice.languages)
                # A voice is named by its main (first) language tag; the few voices that share
                # one (two Cantonese voices) fall back to their file name.
                name = tags[0][1] if tags and tags[0][1] not in languages else None
                name = name or identifier.rsplit("/", 1)[-1].lower()
                languages[name] = identifier
                for priority, tag in tags[1:]:
                    # A bare tag goes to the voice that claims it with the best priority, as in
                    # espeak's own selection by language (``"en"`` -> British English).
                    if tag not in best_for_tag or priority < best_for_tag[tag][0]:
                        best_for_tag[tag] = (priority, name)
            # Variants (voices/!v/*) are listed when the spec asks for the "variant" language.
            variant_language = ctypes.c_char_p(b"variant")
            spec = _Voice(languages=ctypes.cast(variant_language, ctypes.c_void_p))
            variants = {}
            for voice in _list(library, spec):
                file_name = voice.identifier.decode().split("/", 1)[-1]
                variants[file_name.lower()] = file_name
        _catalogue = Catalogue(
            version=version,
            sample_rate=sample_rate,
            languages=dict(sorted(languages.items())),
            aliases={tag: name for tag, (_, name) in best_for_tag.items() if tag not in languages},
            variants=dict(sorted(variants.items())),
        )
        return _catalogue


def synthesize(text: str, identifier: str, rate: int, pitch: int) -> np.ndarray:
    """Speak ``text`` with the voice ``identifier`` (``"gmw/en-US+f3"``); int16 at 22050 Hz.

    The voice is set first, then rate and pitch, so that they apply to the voice loaded.
    """
    encoded = text.encode("utf-8") + b"\0"
    chunks: list[bytes] = []
    with _LOCK, _session(chunks) as (library, _):
        status = library.espeak_SetVoiceByName(identifier.encode("utf-8"))
        if status != _EE_OK:
            raise RuntimeError(f"libespeak-ng could not load the voice {identifier!r} ({status}).")
        library.espeak_SetParameter(_PARAMETER_RATE, rate, 0)
        library.espeak_SetParameter(_PARAMETER_PITCH, pitch, 0)
        if hasattr(library, "espeak_ng_SetRandSeed"):
            # The breath noise of some variants comes from espeak's own generator.
            library.espeak_ng_SetRandSeed(0)
        status = library.espeak_Synth(
            encoded, len(encoded), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
        )
        if status != _EE_OK:
            raise RuntimeError(f"libespeak-ng failed to synthesise {text!r} (error {status}).")
        library.espeak_Synchronize()
    return np.frombuffer(b"".join(chunks), dtype=np.int16)
