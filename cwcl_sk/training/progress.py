"""Progress bars of training: one over epochs, one over the batches of an epoch."""

from __future__ import annotations

__all__ = ["progress_bar"]


def progress_bar(verbose: int, total: int, description: str, leave: bool = True):
    """A tqdm bar of ``total`` steps when ``verbose > 0``, else None.

    The notebook widget inside Jupyter, text elsewhere.
    """
    if verbose <= 0:
        return None
    from tqdm.auto import tqdm  # imported late: tqdm's notebook check costs at import

    return tqdm(total=total, desc=description, unit=description.rstrip("es"), leave=leave)
