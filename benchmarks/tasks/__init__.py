"""The benchmark tasks: data, students and scoring, shared by the scripts that run them.

One module a task (:mod:`.digit_images`, :mod:`.spoken_digits`, :mod:`.spoken_intents`);
here, the losses every task compares.
"""

__all__ = ["LOSSES"]

# Every loss a benchmark may compare, as CWCLAligner parameters. "CWCL identity" is CL computed
# by the CWCL code (a consistency check); the kernels are documented in cwcl_sk.kernels.
LOSSES = {
    "CL": {"loss": "clip"},
    "CWCL exp": {"loss": "cwcl", "kernel": "exp"},
    "CWCL capped-exp": {"loss": "cwcl", "kernel": "capped-exp"},
    "CWCL linear": {"loss": "cwcl", "kernel": "linear"},
    "CWCL identity": {"loss": "cwcl", "kernel": "identity"},
    "CWCL perplexity": {"loss": "cwcl", "kernel": "perplexity"},
    "CWCL mixture": {"loss": "cwcl", "kernel": "mixture"},
}
