"""What the benchmark tasks share: the losses they compare."""

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
