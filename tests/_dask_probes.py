"""Functions run inside Dask worker processes by tests/test_dask.py (``client.run``).

They live in a module of their own so that workers import them by name, as they import the
library, instead of unpickling a test module.
"""

from cwcl_sk.encoders.teachers import frozen, text

_COUNTS = {"loads": 0, "encoded": 0, "disk_hits": 0}


def install_counters() -> None:
    """Count, in this process, teacher loads, texts encoded and rows read from a disk cache."""
    if getattr(text, "_counting", False):
        return
    load, encode, disk_get = (
        text._load_sentence_transformer,
        frozen.SentenceTransformerTeacher._encode_unique,
        frozen._DiskCache.get,
    )

    def counting_load(*args, **kwargs):
        _COUNTS["loads"] += 1
        return load(*args, **kwargs)

    def counting_encode(self, items):
        _COUNTS["encoded"] += len(items)
        return encode(self, items)

    def counting_disk_get(self, item):
        row = disk_get(self, item)
        _COUNTS["disk_hits"] += row is not None
        return row

    text._load_sentence_transformer = counting_load
    frozen.SentenceTransformerTeacher._encode_unique = counting_encode
    frozen._DiskCache.get = counting_disk_get
    text._counting = True


def counts() -> dict:
    """The counts so far in this process."""
    return dict(_COUNTS)


def forget_embeddings() -> None:
    """Empty this process's in-memory embedding cache and the encode counters."""
    frozen.clear_teacher_cache()
    _COUNTS["encoded"] = _COUNTS["disk_hits"] = 0
