"""Command line: ``python -m cwcl_sk demo``."""

from __future__ import annotations

import argparse
import os
import sys

__all__ = ["main"]


def _demo(arguments: argparse.Namespace) -> int:
    # The demo's teacher ships with the package: never wait on the network for it.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from .demo import format_table, run_demo

    print(
        "cwcl_sk demo: an MLP student on scikit-learn's 8x8 digits is aligned to the bundled "
        "all-MiniLM-L6-v2 text teacher with the CLIP loss and with CWCL, then classifies the "
        "held-out 30% zero-shot from label prompts it never saw as captions.\n",
        flush=True,
    )
    results = run_demo(
        max_epochs=arguments.epochs, random_state=arguments.seed, verbose=arguments.verbose
    )
    print(format_table(results))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m cwcl_sk``."""
    parser = argparse.ArgumentParser(
        prog="python -m cwcl_sk",
        description="Cross-modal transfer with the Continuously Weighted Contrastive Loss.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="train CL and CWCL students offline and print zero-shot accuracy",
        description="Align an MLP on scikit-learn's digits to the bundled MiniLM teacher with "
        "the CLIP loss and CWCL, and print zero-shot accuracy, caption retrieval R@1 and time.",
    )
    demo.add_argument("--epochs", type=int, default=30, help="training epochs (default: 30)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.add_argument("--verbose", type=int, default=0, help="1 shows progress bars")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv=None) -> int:
    """Entry point of ``python -m cwcl_sk`` and the ``cwcl-sk`` script."""
    arguments = build_parser().parse_args(argv)
    return arguments.handler(arguments)


if __name__ == "__main__":
    sys.exit(main())
