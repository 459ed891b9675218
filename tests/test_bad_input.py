"""Every kind of bad input gets a clear error that names what is wrong.

The table below is the one documented in docs/bad_input.md (a test keeps the two in step):
each row gives the mistake, the error type, and the words the message must contain (the
argument's name at least). Where the call can still do the right thing (recompute a bad cache
entry, truncate a long text) the row's type is a warning the call must give.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from cwcl_sk import CWCLAligner, ZeroShotClassifier, clear_teacher_cache

FAST = {"max_epochs": 1, "batch_size": 8, "device": "cpu", "random_state": 0}
RNG = np.random.default_rng(0)
FEATURES = RNG.normal(size=(12, 4))
EMBEDDINGS = RNG.normal(size=(12, 6))
TEXTS = ["red", "green", "blue"] * 4


@dataclass(frozen=True)
class BadInput:
    """One row of the table: what goes wrong, and what the user is told."""

    case: str
    action: object
    error: type
    mentions: tuple


def fit_features(X=FEATURES, y=EMBEDDINGS, **params):
    return lambda: CWCLAligner(teacher="precomputed", **{**FAST, **params}).fit(X, y)


def fit_texts(X=FEATURES, y=TEXTS, **params):
    return lambda: CWCLAligner(**{**FAST, **params}).fit(X, y)


def with_nan(array):
    array = np.array(array, dtype=float)
    array[2, 1] = np.nan
    return array


def with_inf(array):
    array = np.array(array, dtype=float)
    array[1, 0] = np.inf
    return array


CLIP = (0.1 * np.sin(np.arange(4000) / 10)).astype(np.float32)
AUDIO_TEXTS = ["turn on the lights", "play some music"]


def fit_audio(X, **params):
    return lambda: CWCLAligner(student="mel-cnn", **{**FAST, **params}).fit(X, AUDIO_TEXTS)


def one_corrupt_among_audio_files():
    """Three short .wav files, the second of which holds text, not audio."""
    import tempfile

    import soundfile

    folder = Path(tempfile.mkdtemp())
    paths = [folder / name for name in ("first.wav", "second.wav", "third.wav")]
    for path in paths:
        soundfile.write(path, CLIP, 16000)
    paths[1].write_text("this is not a wav file")
    return [str(path) for path in paths]


def corrupt_audio_files():
    """Two .wav files that hold text, not audio."""
    import tempfile

    folder = Path(tempfile.mkdtemp())
    paths = [folder / "first.wav", folder / "second.wav"]
    for path in paths:
        path.write_text("this is not a wav file")
    return [str(path) for path in paths]


IMAGE = np.full((8, 8), 0.5, dtype=np.float32)


def fit_images(X, **params):
    return lambda: CWCLAligner(student="cnn", **{**FAST, **params}).fit(X, AUDIO_TEXTS)


def corrupt_image_files():
    """Two .png files that hold text, not pixels."""
    import tempfile

    folder = Path(tempfile.mkdtemp())
    paths = [folder / "first.png", folder / "second.png"]
    for path in paths:
        path.write_text("this is not a png file")
    return [str(path) for path in paths]


def with_pixel(value, dtype=np.float32):
    image = IMAGE.astype(dtype)
    image[3, 4] = value
    return [IMAGE.astype(dtype), image]


def with_sample(value):
    clip = CLIP.copy()
    clip[5] = value
    return [CLIP, clip]


def fitted_features_aligner():
    return CWCLAligner(teacher="precomputed", **FAST).fit(FEATURES, EMBEDDINGS)


def fitted_text_aligner():
    return CWCLAligner(**FAST).fit(FEATURES, TEXTS)


def wrong_shape_kernel(similarity):
    return torch.ones(len(similarity) + 1, len(similarity))


def negative_kernel(similarity):
    return similarity - 2.0


STEREO_CLIP = np.stack([CLIP, CLIP], axis=1)  # (n_samples, 2), as soundfile reads stereo
LONG_TEXT = " ".join(["word"] * 400)  # ~400 tokens, beyond MiniLM's 256


def fit_texts_afresh(y):
    """Fit on texts no embedding cache of this process holds, so the teacher encodes them."""

    def action():
        clear_teacher_cache()
        return fit_texts(y=y)()

    return action


def fit_with_poisoned_cache_entry():
    """Fill a cache_dir, copy one text's entry over another's, then fit again."""
    import shutil
    import tempfile

    folder = tempfile.mkdtemp()
    clear_teacher_cache()
    CWCLAligner(**FAST, cache_dir=folder).fit(FEATURES, TEXTS)
    first, second = sorted(Path(folder).glob("*/*/*.npz"))[:2]
    shutil.copyfile(first, second)
    clear_teacher_cache()
    return CWCLAligner(**FAST, cache_dir=folder).fit(FEATURES, TEXTS)


TABLE = [
    BadInput("X and y of different lengths", fit_features(y=EMBEDDINGS[:-1]), ValueError,
             ("X", "y", "12", "11")),
    BadInput("empty X", fit_features(X=np.empty((0, 4)), y=np.empty((0, 6))), ValueError,
             ("X", "0 sample")),
    BadInput("X with no features", fit_features(X=np.empty((12, 0))), ValueError,
             ("X", "0 feature")),
    BadInput("NaN in X", fit_features(X=with_nan(FEATURES)), ValueError, ("X", "NaN")),
    BadInput("inf in X", fit_features(X=with_inf(FEATURES)), ValueError, ("X", "inf")),
    BadInput("1-D X", fit_features(X=FEATURES[:, 0]), ValueError, ("X", "2-D", "Reshape")),
    BadInput("3-D X for a feature student", fit_features(X=FEATURES[:, :, None]), ValueError,
             ("X", "3-D")),
    BadInput("object dtype X with non-numbers",
             fit_features(X=np.array([["a"] * 4] * 12, dtype=object)), TypeError,
             ("X", "not numbers")),
    BadInput("complex X", fit_features(X=FEATURES + 1j), ValueError, ("X", "Complex")),
    BadInput("y is None", fit_features(y=None), ValueError, ("requires y",)),
    BadInput("text y that is not strings", fit_texts(y=list(range(12))), TypeError,
             ("y[0]", "string")),
    BadInput("empty string in text y", fit_texts(y=["red"] * 11 + [" "]), ValueError,
             ("y[11]", "empty")),
    BadInput("precomputed y of the wrong shape", fit_features(y=np.ones(12)), ValueError,
             ("y", "2-D")),
    BadInput("non-finite precomputed y", fit_features(y=with_nan(EMBEDDINGS)), ValueError,
             ("y", "NaN")),
    BadInput("all-zero row in precomputed y", fit_features(y=np.zeros((12, 6))), ValueError,
             ("y", "row 0")),
    BadInput("unknown student alias", fit_features(student="transformer-xl"), ValueError,
             ("student", "transformer-xl", "mlp")),
    BadInput("unknown teacher (not an alias, folder or cached id)",
             fit_texts(teacher="no-such-teacher"), OSError, ("teacher", "minilm")),
    BadInput("uncached hub id while offline", fit_texts(teacher="some-org/some-model"), OSError,
             ("teacher", "some-org/some-model", "precomputed")),
    BadInput("teacher of an unsupported type", fit_texts(teacher=3.5), TypeError, ("teacher",)),
    BadInput("unknown student option", fit_features(student__width=3), ValueError,
             ("student__width", "student__hidden_sizes")),
    BadInput("unknown keyword parameter", fit_features(temprature=0.1), ValueError,
             ("temprature",)),
    BadInput("temperature <= 0", fit_features(temperature=0.0), ValueError, ("temperature",)),
    BadInput("non-finite temperature", fit_features(temperature=float("inf")), ValueError,
             ("temperature",)),
    BadInput("batch_size < 1", fit_features(batch_size=0), ValueError, ("batch_size",)),
    BadInput("max_epochs < 1", fit_features(max_epochs=0), ValueError, ("max_epochs",)),
    BadInput("learning_rate <= 0", fit_features(learning_rate=-1.0), ValueError,
             ("learning_rate",)),
    BadInput("unknown loss", fit_features(loss="triplet"), ValueError, ("loss", "cwcl")),
    BadInput("unknown direction", fit_features(direction="up"), ValueError, ("direction",)),
    BadInput("unknown kernel name", fit_features(kernel="gaussian"), ValueError,
             ("kernel", "exp", "linear")),
    BadInput("kernel of an unsupported type", fit_features(kernel=3), TypeError, ("kernel",)),
    BadInput("kernel callable returning the wrong shape", fit_features(kernel=wrong_shape_kernel),
             ValueError, ("kernel", "shape")),
    BadInput("kernel callable returning negative weights", fit_features(kernel=negative_kernel),
             ValueError, ("kernel", "negative")),
    BadInput("kernel matrix not (n_samples, n_samples)", fit_features(kernel=np.eye(5)),
             ValueError, ("kernel", "(12, 12)")),
    BadInput("validation_fraction out of range", fit_features(validation_fraction=1.5),
             ValueError, ("validation_fraction",)),
    BadInput("early_stopping without validation pairs", fit_features(early_stopping=True),
             ValueError, ("early_stopping", "validation")),
    BadInput("device='cuda' without a GPU", fit_features(device="cuda"), ValueError,
             ("device", "cuda")),
    BadInput("unknown device name", fit_features(device="tpu"), ValueError, ("device",)),
    BadInput("transform before fit", lambda: CWCLAligner().transform(FEATURES), NotFittedError,
             ("fit",)),
    BadInput("transform with input of the other modality (texts to a feature student)",
             lambda: fitted_features_aligner().transform(TEXTS), TypeError, ("X",)),
    BadInput("transform with a different number of features",
             lambda: fitted_features_aligner().transform(FEATURES[:, :3]), ValueError,
             ("X", "3 features", "expecting 4")),
    BadInput("ZeroShotClassifier labels missing a class",
             lambda: ZeroShotClassifier(fitted_text_aligner(), labels={0: "red"}).fit(
                 FEATURES, [0, 1] * 6), ValueError, ("labels", "[1]")),
    BadInput("template without {}",
             lambda: ZeroShotClassifier(fitted_text_aligner(), templates="a colour").fit(
                 FEATURES, [0, 1] * 6), ValueError, ("templates", "{}")),
    BadInput("continuous y for ZeroShotClassifier",
             lambda: ZeroShotClassifier(fitted_text_aligner()).fit(
                 FEATURES, np.linspace(0, 1, 12)), ValueError, ("label type",)),
    BadInput("unknown parameter in set_params", lambda: CWCLAligner().set_params(temprature=1),
             ValueError, ("temprature",)),
    BadInput("NaN in an audio clip", fit_audio(with_sample(np.nan)), ValueError,
             ("X[1]", "NaN")),
    BadInput("inf in an audio clip", fit_audio(with_sample(np.inf)), ValueError, ("X[1]", "inf")),
    BadInput("empty audio clip", fit_audio([CLIP, CLIP[:0]]), ValueError,
             ("X[1]", "empty clip")),
    BadInput("3-D audio array", fit_audio(np.zeros((2, 3, 4000), np.float32)), ValueError,
             ("X", "3-D")),
    BadInput("complex audio samples", fit_audio([CLIP.astype(np.complex64), CLIP]), ValueError,
             ("X[0]", "Complex")),
    BadInput("missing audio file", fit_audio(["no-such-file.wav", "no-such-file-either.wav"]),
             FileNotFoundError, ("X[0]", "no such audio file")),
    BadInput("unreadable or corrupt audio file", lambda: fit_audio(corrupt_audio_files())(),
             ValueError, ("X[0]", "could not be decoded")),
    BadInput("unreadable file among files read on demand, skipped",
             lambda: CWCLAligner(student="mel-cnn", on_bad_input="skip", **FAST).fit(
                 one_corrupt_among_audio_files(), [*AUDIO_TEXTS, "stop"]),
             UserWarning, ("1 of 3", "could not be read", "X[1]", "skipped_inputs_")),
    BadInput("unknown on_bad_input", fit_audio([CLIP, CLIP], on_bad_input="ignore"), ValueError,
             ("on_bad_input", "skip")),
    BadInput("audio paths and arrays mixed", fit_audio([CLIP, "no-such-file.wav"]), TypeError,
             ("X", "mixes file paths and arrays")),
    BadInput("missing image file", fit_images(["no-such-file.png", "no-such-file-either.png"]),
             FileNotFoundError, ("X[0]", "no such image file")),
    BadInput("unreadable or corrupt image file", lambda: fit_images(corrupt_image_files())(),
             ValueError, ("X[0]", "could not be decoded as an image")),
    BadInput("one 2-D array given as a set of images", fit_images(IMAGE), ValueError,
             ("X", "2-D", "grayscale image")),
    BadInput("image of an integer dtype other than uint8", fit_images(with_pixel(3, np.int16)),
             TypeError, ("X[0]", "int16", "uint8")),
    BadInput("NaN in an image", fit_images(with_pixel(np.nan)), ValueError, ("X[1]", "NaN")),
    BadInput("empty image", fit_images([IMAGE, IMAGE[:0]]), ValueError,
             ("X[1]", "empty image")),
    BadInput("float image outside [0, 1]", fit_images([IMAGE, IMAGE * 255]), ValueError,
             ("X[1]", "[0, 1]", "/ 255")),
    BadInput("image with 5 channels", fit_images([IMAGE, np.zeros((8, 8, 5))]), ValueError,
             ("X[1]", "5 channels")),
    BadInput("images of mixed kinds (array and PIL image)",
             lambda: fit_images([IMAGE, __import__("PIL.Image").Image.new("L", (8, 8))])(),
             TypeError, ("X", "mixes kinds", "X[1] is a PIL image")),
    BadInput("image paths and arrays mixed", fit_images([IMAGE, "no-such-file.png"]), TypeError,
             ("X", "mixes file paths and images")),
    BadInput("validation_data that is not a pair",
             lambda: CWCLAligner(teacher="precomputed", **FAST).fit(
                 FEATURES, EMBEDDINGS, validation_data=FEATURES), ValueError,
             ("validation_data", "pair")),
    BadInput("sampling_rate above 384 kHz", fit_audio([CLIP, CLIP], sampling_rate=10**9),
             ValueError, ("sampling_rate", ">= 1000 and <= 384000", "1000000000")),
    BadInput("sampling_rate below 1 kHz", fit_audio([CLIP, CLIP], sampling_rate=1), ValueError,
             ("sampling_rate", ">= 1000 and <= 384000", "got 1")),
    BadInput("stereo clip given as a 2-D (n_samples, 2) array", fit_audio(STEREO_CLIP),
             ValueError, ("X", "(4000, 2)", "X.mean(axis=1)")),
    BadInput("mono clip given as a 2-D (n_samples, 1) column", fit_audio(CLIP[:, None]),
             ValueError, ("X", "(4000, 1)", "X[:, 0]")),
    BadInput("1-sample audio clip", fit_audio([CLIP, CLIP[:1]]), ValueError,
             ("X[1]", "too short", "1 samples", "32.0 ms")),
    BadInput("learning_rate above 10", fit_features(learning_rate=1e39), ValueError,
             ("learning_rate", "> 0.0 and <= 10", "1e+39")),
    BadInput("negative random_state", fit_features(random_state=-1), ValueError,
             ("random_state", ">= 0 and <= 4294967295", "got -1")),
    BadInput("random_state given as a NumPy Generator",
             fit_features(random_state=np.random.default_rng(0)), TypeError,
             ("random_state", "RandomState", "Generator")),
    BadInput("encoder options given as a dict named encoder_options",
             fit_features(encoder_options={"student__hidden_sizes": (8,)}), ValueError,
             ("encoder_options", "student__")),
    BadInput("ZeroShotClassifier X and y of different lengths (fitted aligner)",
             lambda: ZeroShotClassifier(fitted_text_aligner()).fit(FEATURES[:-1], [0, 1] * 6),
             ValueError, ("X", "y", "11", "12")),
    BadInput("ZeroShotClassifier temperature <= 0",
             lambda: ZeroShotClassifier(fitted_text_aligner(), temperature=0.0).fit(
                 FEATURES, [0, 1] * 6), ValueError, ("temperature", "ZeroShotClassifier", "> 0")),
    BadInput("ZeroShotClassifier labels of an unsupported type",
             lambda: ZeroShotClassifier(fitted_text_aligner(), labels=3).fit(
                 FEATURES, [0, 1] * 6), TypeError, ("labels", "Mapping", "callable")),
    BadInput("text with a lone surrogate (not encodable)",
             fit_texts(y=[*TEXTS[:-1], "blue\ud800"]), ValueError, ("y[11]", "UTF-8")),
    BadInput("texts longer than the teacher's 256-token limit",
             fit_texts_afresh([*TEXTS[:-1], LONG_TEXT]), UserWarning,
             ("1 of 4 distinct texts", "256 tokens", "truncated")),
    BadInput("poisoned entry in cache_dir (another text's embedding)",
             fit_with_poisoned_cache_entry, UserWarning,
             ("cache entry", ".npz", "key does not match", "computed again")),
]  # fmt: skip


def saved_folder(edit=None, checkpoint=False):
    """A fitted aligner saved to a fresh folder, then ``edit(folder)`` applied to tamper."""
    import tempfile

    folder = Path(tempfile.mkdtemp()) / "model"
    aligner = fitted_features_aligner()
    aligner.save_checkpoint(folder) if checkpoint else aligner.save(folder)
    if edit is not None:
        edit(folder)
    return folder


def edit_json(name, edit):
    def tamper(folder):
        path = folder / name
        record = __import__("json").loads(path.read_text())
        edit(record)
        path.write_text(__import__("json").dumps(record))

    return tamper


def truncate(name):
    def tamper(folder):
        path = folder / name
        path.write_bytes(path.read_bytes()[:40])

    return tamper


def poison_weights(folder):
    from safetensors.torch import load_file, save_file

    path = folder / "student.safetensors"
    tensors = load_file(str(path))
    name = next(iter(tensors))
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    save_file(tensors, str(path))


def load_tampered(edit):
    return lambda: CWCLAligner.load(saved_folder(edit))


def resume_from_checkpoint(X=FEATURES, y=EMBEDDINGS, resume_mismatch="raise", **params):
    return lambda: CWCLAligner(teacher="precomputed", **{**FAST, **params}).fit(
        X, y, resume_from=saved_folder(checkpoint=True), resume_mismatch=resume_mismatch
    )


def save_to_link():
    import tempfile

    folder = Path(tempfile.mkdtemp())
    (folder / "real").mkdir()
    (folder / "link").symlink_to(folder / "real")
    fitted_features_aligner().save(folder / "link")


def save_over_other_files():
    import tempfile

    folder = Path(tempfile.mkdtemp())
    (folder / "notes.txt").write_text("not a model")
    fitted_features_aligner().save(folder)


# Saved folders and checkpoints: each mistake names the file and the field.
TABLE += [
    BadInput("truncated fitted.json", load_tampered(truncate("fitted.json")), ValueError,
             ("fitted.json", "not valid JSON")),
    BadInput("missing field in fitted.json",
             load_tampered(edit_json("fitted.json", lambda record: record.pop("embedding_dim_"))),
             ValueError, ("fitted.json", "'embedding_dim_'", "missing")),
    BadInput("field of the wrong type in fitted.json",
             load_tampered(edit_json("fitted.json", lambda record: record.update(
                 temperature_="hot"))), ValueError, ("fitted.json", "'temperature_'")),
    BadInput("saved folder of another format version",
             load_tampered(edit_json("config.json", lambda record: record.update(
                 format_version=99))), ValueError, ("config.json", "format_version", "99")),
    BadInput("saved settings that do not match the saved weights",
             load_tampered(edit_json("config.json", lambda record: record["parameters"].update(
                 student__hidden_sizes={"value": [8], "tuple": True}))), ValueError,
             ("student.safetensors", "shape", "do not belong together")),
    BadInput("NaN in saved weights", load_tampered(poison_weights), ValueError,
             ("student.safetensors", "NaN")),
    BadInput("truncated weights file", load_tampered(truncate("student.safetensors")),
             ValueError, ("student.safetensors", "not a readable safetensors file")),
    BadInput("save() to a symbolic link", save_to_link, ValueError,
             ("directory", "symbolic link")),
    BadInput("save() into a folder of other files", save_over_other_files, ValueError,
             ("directory", "other contents")),
    BadInput("resume_from with other training pairs",
             resume_from_checkpoint(X=FEATURES[::-1], y=EMBEDDINGS[::-1]), ValueError,
             ("resume_from", "training pairs", "resume_mismatch")),
    BadInput("resume_from with another batch_size", resume_from_checkpoint(batch_size=4),
             ValueError, ("resume_from", "batch_size=8 there, 4 here")),
    BadInput("unknown resume_mismatch", resume_from_checkpoint(resume_mismatch="maybe"),
             ValueError, ("resume_mismatch", "'allow'")),
    BadInput("batch_size=1 (no negatives)", fit_features(batch_size=1), ValueError,
             ("batch_size=1", "no negatives", ">= 2")),
]  # fmt: skip


ERRORS = [row for row in TABLE if not issubclass(row.error, Warning)]
WARNINGS = [row for row in TABLE if issubclass(row.error, Warning)]


@pytest.mark.parametrize("row", ERRORS, ids=[row.case for row in ERRORS])
def test_bad_input_raises_a_clear_error(row):
    if "GPU" in row.case and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(row.error) as raised:
        row.action()
    message = str(raised.value)
    for words in row.mentions:
        assert words in message, f"{words!r} not in: {message}"


@pytest.mark.parametrize("row", WARNINGS, ids=[row.case for row in WARNINGS])
def test_recoverable_bad_input_gives_one_clear_warning(row):
    with pytest.warns(row.error) as record:
        row.action()
    messages = [str(warning.message) for warning in record if warning.category is row.error]
    matching = [message for message in messages if row.mentions[0] in message]
    assert len(matching) == 1, messages
    for words in row.mentions:
        assert words in matching[0], f"{words!r} not in: {matching[0]}"


def test_table_has_at_least_25_kinds():
    assert len(TABLE) >= 25


def test_documented_table_lists_every_case():
    documented = (Path(__file__).parents[1] / "docs" / "bad_input.md").read_text()
    rows = re.findall(r"^\| (.+?) \|", documented, flags=re.MULTILINE)
    assert [row.case for row in TABLE] == [row for row in rows if row not in ("mistake", "---")]


def write_documented_table(path: Path) -> None:
    """Write docs/bad_input.md from TABLE, with each row's actual message as the example."""
    import tempfile
    import warnings

    lines = [
        "# Bad input: what you are told",
        "",
        "Every mistake below raises at the call that makes it, with a message that names the",
        "argument and what was expected; where the call can still do the right thing (a bad",
        "cache entry is computed again, a long text is truncated) it warns instead, once.",
        "`tests/test_bad_input.py` runs each row and checks the error or warning type and the",
        "words of the message; a test keeps this page and that table in step (regenerate it with",
        "`python tests/test_bad_input.py`).",
        "",
        "| mistake | error | message (example) |",
        "|---|---|---|",
    ]
    for row in TABLE:
        try:
            with warnings.catch_warnings(record=True) as record:
                warnings.simplefilter("always")
                row.action()
            given = [str(item.message) for item in record if item.category is row.error]
            message = next((text for text in given if row.mentions[0] in text), "(no error)")
        except Exception as error:  # the message is what we document
            message = str(error)
        # Temporary folders get random names: show one fixed name, so the page is stable.
        message = message.replace(tempfile.gettempdir(), "/tmp")
        message = re.sub(r"/tmp/tmp\w+", "/tmp/example", message)
        message = " ".join(message.replace("|", "\\|").split())
        if len(message) > 180:
            message = message[:177] + "..."
        lines.append(f"| {row.case} | `{row.error.__name__}` | {message} |")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    write_documented_table(Path(__file__).parents[1] / "docs" / "bad_input.md")
