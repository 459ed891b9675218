"""The example sentences of WordNet 3.0: the source text of the general paired speech corpus.

WordNet's glosses quote short examples of each word in use ("it may rain in which case the
picnic will be canceled", "Keep an eye on the baby, please!"): 48,224 distinct ones, written
by lexicographers about every part of the vocabulary rather than for any task, and free to
redistribute under the WordNet 3.0 licence. They are kept in :data:`EXAMPLES_FILE`, extracted
unchanged (in the order of the data files) by :func:`extract_examples`, so the corpus needs no
download; its header carries the licence. To make the list again from the database files
(Debian's ``wordnet-base`` installs them in ``/usr/share/wordnet``)::

    python -m benchmarks.transfer.wordnet /usr/share/wordnet
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

__all__ = ["EXAMPLES_FILE", "extract_examples", "read_examples", "write_examples"]

#: The committed list: the licence as ``#`` lines, then one example a line.
EXAMPLES_FILE = Path(__file__).with_name("wordnet_examples.txt")

# One data file per part of speech, read in this order.
_DATA_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")
_QUOTED = re.compile(r'"([^"]*)"')

_HEADER = """\
Example sentences quoted in the glosses of WordNet 3.0 (data.noun, data.verb, data.adj,
data.adv), extracted unchanged by benchmarks/transfer/wordnet.py, one a line, each once,
in the order of the data files. Source: WordNet 3.0, Princeton University,
https://wordnet.princeton.edu (as packaged by Debian, wordnet-base 1:3.0).

WordNet Release 3.0. This software and database is being provided to you, the LICENSEE, by
Princeton University under the following license. By obtaining, using and/or copying this
software and database, you agree that you have read, understood, and will comply with these
terms and conditions.:

Permission to use, copy, modify and distribute this software and database and its
documentation for any purpose and without fee or royalty is hereby granted, provided that you
agree to comply with the following copyright notice and statements, including the disclaimer,
and that the same appear on ALL copies of the software, database and documentation, including
modifications that you make for internal use or for distribution.

WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved.

THIS SOFTWARE AND DATABASE IS PROVIDED "AS IS" AND PRINCETON UNIVERSITY MAKES NO
REPRESENTATIONS OR WARRANTIES, EXPRESS OR IMPLIED. BY WAY OF EXAMPLE, BUT NOT LIMITATION,
PRINCETON UNIVERSITY MAKES NO REPRESENTATIONS OR WARRANTIES OF MERCHANT- ABILITY OR FITNESS
FOR ANY PARTICULAR PURPOSE OR THAT THE USE OF THE LICENSED SOFTWARE, DATABASE OR
DOCUMENTATION WILL NOT INFRINGE ANY THIRD PARTY PATENTS, COPYRIGHTS, TRADEMARKS OR OTHER
RIGHTS.

The name of Princeton University or Princeton may not be used in advertising or publicity
pertaining to distribution of the software and/or database. Title to copyright in this
software, database and any associated documentation shall at all times remain with Princeton
University and LICENSEE agrees to preserve same.
"""


def extract_examples(wordnet_dir) -> list[str]:
    """The distinct example sentences of a WordNet database, in the order of its data files.

    Parameters
    ----------
    wordnet_dir : str or path-like
        A folder holding WordNet's ``data.noun``, ``data.verb``, ``data.adj`` and ``data.adv``.

    Returns
    -------
    examples : list of str
        Every double-quoted example of every gloss, stripped, first occurrence only.
    """
    folder = Path(wordnet_dir)
    missing = [name for name in _DATA_FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"wordnet_dir: {folder} lacks {missing} (expected a WordNet 3.0 database folder, "
            "such as /usr/share/wordnet from Debian's wordnet-base)."
        )
    examples: list[str] = []
    seen: set[str] = set()
    for name in _DATA_FILES:
        with (folder / name).open(encoding="utf-8") as file:
            for line in file:
                # The licence heads each file as lines starting with two spaces; a synset line
                # ends with " | " and its gloss, where the examples are quoted.
                if line.startswith("  ") or " | " not in line:
                    continue
                gloss = line.split(" | ", 1)[1]
                for quoted in _QUOTED.findall(gloss):
                    example = quoted.strip()
                    if example and example not in seen:
                        seen.add(example)
                        examples.append(example)
    return examples


def write_examples(examples, path=EXAMPLES_FILE) -> None:
    """Write ``examples`` one a line under the source and licence header (``#`` lines)."""
    header = "".join(f"# {line}".rstrip() + "\n" for line in _HEADER.splitlines())
    Path(path).write_text(header + "".join(f"{example}\n" for example in examples))


def read_examples(path=EXAMPLES_FILE) -> list[str]:
    """The examples of a list written by :func:`write_examples`, header lines left out."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line and not line.startswith("#")]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wordnet_dir", help="folder of the WordNet 3.0 data.* files")
    parser.add_argument("--output", default=str(EXAMPLES_FILE), help="the list to write")
    arguments = parser.parse_args(argv)
    examples = extract_examples(arguments.wordnet_dir)
    write_examples(examples, arguments.output)
    print(f"{len(examples)} examples written to {arguments.output}")


if __name__ == "__main__":
    main()
