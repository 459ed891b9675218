"""A labelled progress bar over epochs, as a training callback.

``CWCLAligner(verbose=1)`` shows a bar labelled ``epochs``; when several fits run one after
another (a comparison, a demo) the bars look alike. :class:`EpochProgress` shows the same bar
under a label of your choosing, through the public callback interface::

    CWCLAligner(callbacks=[("progress", EpochProgress("CWCL, exp kernel"))])
"""

from __future__ import annotations

from .callbacks import Callback

__all__ = ["EpochProgress"]


class EpochProgress(Callback):
    """Show a progress bar over the epochs of a fit, labelled with ``description``.

    Parameters
    ----------
    description : str, default="epochs"
        The bar's label, e.g. the configuration being trained.
    leave : bool, default=True
        Keep the finished bar on screen; False removes it, for output that prints its own
        summary line after each fit.

    Examples
    --------
    >>> from cwcl_sk import CWCLAligner
    >>> from cwcl_sk.progress import EpochProgress
    >>> aligner = CWCLAligner(callbacks=[("progress", EpochProgress("CL baseline"))])
    """

    def __init__(self, description: str = "epochs", leave: bool = True):
        self.description = description
        self.leave = leave

    def on_train_begin(self, estimator, history: list) -> None:
        """Open the bar for the epochs this fit will run."""
        from tqdm.auto import tqdm  # the notebook widget inside Jupyter, text elsewhere

        # A resumed or continued fit starts from the epochs already in its history.
        total = max(int(getattr(estimator, "max_epochs", 0) or 0) - len(history), 0) or None
        self._bar = tqdm(total=total, desc=self.description, unit="epoch", leave=self.leave)

    def on_epoch_end(self, estimator, record: dict) -> None:
        """Advance the bar and show the epoch's loss (and validation numbers, if any)."""
        bar = getattr(self, "_bar", None)
        if bar is None:
            return
        shown = ("train_loss", "valid_loss", "valid_r1")
        bar.set_postfix({key: f"{record[key]:.4f}" for key in shown if key in record})
        bar.update()

    def on_train_end(self, estimator, history: list) -> None:
        """Close the bar; the callback keeps no state between fits (it pickles and clones)."""
        bar = getattr(self, "_bar", None)
        if bar is not None:
            bar.close()
        self._bar = None
