"""Train one CWCLAligner on several processes with torchrun.

Run the same script on every process::

    torchrun --nproc_per_node=2 examples/torchrun_fit.py --output torchrun-run

Two CPU processes train together over gloo (on a machine with 2 GPUs, pass
``--device cuda`` and each process trains on its own GPU over NCCL). The processes share out
every contrastive batch of ``--batch-size`` pairs, gather each other's student embeddings, and
end with the same model, which rank 0 alone writes to ``<output>/model``. Rank 0 also writes a
checkpoint after every epoch to ``<output>/checkpoints``; continue a run that was stopped
from one of them, on the same number of processes or another::

    torchrun --nproc_per_node=2 examples/torchrun_fit.py --output torchrun-run \\
        --resume-from torchrun-run/checkpoints/epoch-0002

The pairs are synthetic so that the script runs anywhere in seconds: features that a linear
map of the "teacher embeddings" produced, with ``teacher="precomputed"``. Put your own pairs
(and a named teacher and student) in their place; every process must be given the same ones.
"""

import argparse
from pathlib import Path

import numpy as np
import torch.distributed

from cwcl_sk import CWCLAligner
from cwcl_sk.distributed import barrier, get_world_size, is_main_process


def synthetic_pairs(n_pairs: int = 512, seed: int = 0):
    """Feature rows and the teacher embeddings they are paired with, alike on every rank."""
    rng = np.random.default_rng(seed)
    teacher_embeddings = rng.normal(size=(n_pairs, 32)).astype(np.float32)
    mixing = rng.normal(size=(32, 20)).astype(np.float32)
    noise = 0.1 * rng.normal(size=(n_pairs, 20)).astype(np.float32)
    return teacher_embeddings @ mixing + noise, teacher_embeddings


def main(arguments) -> None:
    output = Path(arguments.output)
    X, teacher_embeddings = synthetic_pairs()
    aligner = CWCLAligner(
        teacher="precomputed",
        student="mlp",
        batch_size=arguments.batch_size,  # the global batch, shared out over the processes
        max_epochs=arguments.epochs,
        validation_fraction=0.2,
        device=arguments.device,
        random_state=0,  # the same seed on every rank; rank 0's is used when None
        checkpoint_dir=output / "checkpoints",  # written by rank 0 only
    )
    # fit joins the process group that torchrun describes, trains the student wrapped in
    # DistributedDataParallel, and returns on every rank with the same model.
    aligner.fit(X, teacher_embeddings, resume_from=arguments.resume_from)

    # Every rank may call save: only rank 0 writes, so the model is saved once.
    aligner.save(output / "model")
    # The other ranks return from save at once; wait for rank 0's files before any rank
    # reads them.
    barrier()
    if is_main_process():
        for record in aligner.history_:
            print(
                f"epoch {record['epoch']}: train_loss {record['train_loss']:.4f}  "
                f"valid_loss {record['valid_loss']:.4f}  valid_r1 {record['valid_r1']:.3f}"
            )
        loaded = CWCLAligner.load(output / "model")
        recall = loaded.score(X, teacher_embeddings)
        print(f"{get_world_size()} processes; the model saved to {output / 'model'}")
        print(f"recall@1 of the saved model among all {len(X)} pairs: {recall:.3f}")
    if torch.distributed.is_initialized():
        # Leave the group together: a rank that tears its connections down while rank 0 is
        # still scoring can abort at exit ("terminate called without an active exception").
        barrier()
        torch.distributed.destroy_process_group()


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="torchrun-run", help="folder for model and checkpoints")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128, help="the global batch")
    parser.add_argument("--device", default="cpu", help="cpu (gloo) or cuda (NCCL)")
    parser.add_argument("--resume-from", default=None, help="a checkpoint folder to continue")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse_arguments())
