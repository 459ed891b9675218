"""Command line: ``python -m cwcl_sk demo | fit | predict`` (see :mod:`cwcl_sk.cli`)."""

from __future__ import annotations

import sys

from .cli import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
