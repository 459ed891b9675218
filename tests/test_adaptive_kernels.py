"""Calibrated, mixed and label-aware kernels, and the target diagnostics."""

import math
import unittest.mock

import numpy as np
import pytest
import torch
from sklearn.base import clone

from cwcl_sk import CWCLAligner, contrastive_loss, cwcl_loss
from cwcl_sk.diagnostics import kernel_diagnostics, looks_collapsed, target_statistics
from cwcl_sk.kernels import (
    CappedExpKernel,
    ExpKernel,
    MixtureKernel,
    PerplexityKernel,
    label_weights,
    resolve_kernel,
    target_matrix,
)

REQUESTS = [
    "wake me up at seven", "what is the weather tomorrow", "play some jazz music",
    "turn off the kitchen lights", "how many calories are in an apple",
    "send an email to my boss", "what time is it in tokyo", "set a timer for ten minutes",
    "tell me a joke", "order a pizza for dinner", "remind me to call mom",
    "how tall is the eiffel tower", "book a taxi to the airport", "volume up",
    "read my new messages", "what is on my calendar today",
]  # fmt: skip


def random_teacher(n_items, dim=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(n_items, dim, generator=generator), dim=1)


def similarity_of(embeddings):
    return (embeddings @ embeddings.T).clamp(-1, 1)


@pytest.mark.parametrize("batch_size", [64, 512])
@pytest.mark.parametrize("perplexity", [2.0, 8.0])
def test_perplexity_kernel_gives_the_chosen_effective_positives(batch_size, perplexity):
    # Before symmetrisation each row has exactly the chosen perplexity; after it, close to it.
    targets = target_matrix(random_teacher(batch_size), PerplexityKernel(perplexity=perplexity))
    effective = target_statistics(targets)["effective_positives"]
    assert effective == pytest.approx(perplexity, rel=0.15)


def test_perplexity_kernel_adapts_to_the_similarity_scale():
    # Similarities squeezed into a narrow high band (as MiniLM's unrelated sentences score
    # cos 0..0.5) would flatten a fixed-kappa kernel, but not a calibrated one.
    embeddings = random_teacher(128)
    squeezed = 0.6 + 0.4 * similarity_of(embeddings)
    fixed = ExpKernel(kappa=0.1)(squeezed)
    calibrated = PerplexityKernel(perplexity=4.0)(squeezed)
    fixed_stats = target_statistics(fixed / fixed.sum(1, keepdim=True))
    calibrated_stats = target_statistics(calibrated / calibrated.sum(1, keepdim=True))
    assert fixed_stats["effective_positives"] > 20
    assert calibrated_stats["effective_positives"] == pytest.approx(4.0, rel=0.2)


def test_perplexity_kernel_is_symmetric_and_non_negative():
    weights = PerplexityKernel()(similarity_of(random_teacher(32)))
    torch.testing.assert_close(weights, weights.T)
    assert (weights >= 0).all()


def test_perplexity_larger_than_batch_is_clipped_to_uniform():
    targets = target_matrix(random_teacher(8), PerplexityKernel(perplexity=100.0))
    assert target_statistics(targets)["relative_entropy"] > 0.99


def test_perplexity_below_one_is_rejected():
    with pytest.raises(ValueError, match="perplexity"):
        PerplexityKernel(perplexity=0.5)(torch.eye(3))


def effective_positives_per_row(weights):
    targets = weights / weights.sum(dim=1, keepdim=True)
    return (-(targets * targets.clamp_min(1e-30).log()).sum(dim=1)).exp()


def test_capped_exp_equals_exp_where_no_row_exceeds_the_cap():
    similarity = similarity_of(random_teacher(64))  # dim 16: a few positives per row at most
    assert effective_positives_per_row(ExpKernel(kappa=0.1)(similarity)).max() < 4.0
    torch.testing.assert_close(
        CappedExpKernel(kappa=0.1, max_positives=4.0)(similarity), ExpKernel(kappa=0.1)(similarity)
    )


@pytest.mark.parametrize("batch_size", [64, 512])
@pytest.mark.parametrize("max_positives", [2.0, 4.0])
def test_capped_exp_rows_never_exceed_the_cap(batch_size, max_positives):
    # Squeezed similarities (unrelated items at cos 0.6..1) flatten a fixed kappa, and more so
    # at the larger batch; the capped rows stay at the cap whatever the batch size.
    squeezed = 0.6 + 0.4 * similarity_of(random_teacher(batch_size))
    assert effective_positives_per_row(ExpKernel(kappa=0.1)(squeezed)).min() > 2 * max_positives
    weights = CappedExpKernel(kappa=0.1, max_positives=max_positives)(squeezed)
    positives = effective_positives_per_row(weights)
    assert positives.max() <= max_positives * 1.001
    # Each pair takes the sharper row's kappa, so a row ends a little under its cap, not far.
    assert positives.mean() > 0.75 * max_positives


def test_capped_exp_is_symmetric_with_unit_diagonal():
    squeezed = 0.6 + 0.4 * similarity_of(random_teacher(48))
    weights = CappedExpKernel()(squeezed)
    torch.testing.assert_close(weights, weights.T)
    torch.testing.assert_close(torch.diagonal(weights), torch.ones(48))
    assert ((weights >= 0) & (weights <= 1)).all()


def test_capped_exp_keeps_exact_duplicates_as_the_only_positives():
    # Ten captions whose teacher embeddings are alike (cos 0.8), each repeated six times: the
    # exp kernel spreads most of a row over other captions, the capped one keeps the duplicates.
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(10, 8, generator=generator)
    captions = torch.nn.functional.normalize(noise * 0.3 + 1.0, dim=1)
    teacher = captions[torch.arange(60) % 10]
    same = (torch.arange(60)[:, None] % 10 == torch.arange(60)[None, :] % 10).float()
    exp_targets = target_matrix(teacher, "exp")
    capped_targets = target_matrix(teacher, "capped-exp")
    assert (exp_targets * (1 - same)).sum(dim=1).min() > 0.5
    assert (capped_targets * (1 - same)).sum(dim=1).max() < 1e-3
    torch.testing.assert_close(capped_targets, same / 6, atol=1e-3, rtol=0)


def test_capped_exp_on_repeated_captions_trains_as_cl():
    # Identical teacher rows give identical logits, so CL's loss (and its gradient) equals that
    # of targets spread over the duplicates, which is what the capped kernel builds here.
    generator = torch.Generator().manual_seed(1)
    captions = torch.nn.functional.normalize(torch.randn(10, 8, generator=generator) + 2.0, dim=1)
    teacher = captions[torch.arange(80) % 10]  # 8 clips per caption, captions alike
    student = torch.randn(80, 8, generator=generator, requires_grad=True)
    losses = {}
    for name in ("cl", "capped", "exp"):
        embeddings = torch.nn.functional.normalize(student, dim=1)
        if name == "cl":
            loss = contrastive_loss(embeddings, teacher, temperature=0.07)
        else:
            kernel = "capped-exp" if name == "capped" else "exp"
            loss = cwcl_loss(embeddings, teacher, temperature=0.07, kernel=kernel)
        (gradient,) = torch.autograd.grad(loss, student)
        losses[name] = (loss.detach(), gradient)
    torch.testing.assert_close(losses["capped"][0], losses["cl"][0])
    torch.testing.assert_close(losses["capped"][1], losses["cl"][1])
    assert not torch.allclose(losses["exp"][0], losses["cl"][0], atol=1e-3)


@pytest.mark.parametrize(
    "params, name", [({"max_positives": 0.5}, "max_positives"), ({"kappa": 0.0}, "kappa")]
)
def test_capped_exp_rejects_bad_parameters_by_name(params, name):
    with pytest.raises(ValueError, match=name):
        CappedExpKernel(**params)(torch.eye(3))


def test_capped_exp_parameters_are_searchable():
    aligner = CWCLAligner(kernel=CappedExpKernel())
    aligner.set_params(kernel__max_positives=2.0, kernel__kappa=0.05)
    cloned = clone(aligner)
    assert (cloned.kernel.max_positives, cloned.kernel.kappa) == (2.0, 0.05)
    assert cloned.kernel is not aligner.kernel


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_mixture_kernel_keeps_alpha_on_the_diagonal(alpha):
    similarity = similarity_of(random_teacher(16))
    weights = MixtureKernel(kernel="linear", alpha=alpha)(similarity)
    soft = (1 + similarity) / 2
    soft = soft / soft.sum(1, keepdim=True)
    expected = alpha * torch.eye(16) + (1 - alpha) * soft
    torch.testing.assert_close(weights, expected)
    torch.testing.assert_close(weights.sum(1), torch.ones(16))


def test_mixture_alpha_outside_unit_interval_is_rejected():
    with pytest.raises(ValueError, match="alpha"):
        MixtureKernel(alpha=1.5)(torch.eye(2))


def test_mixture_nested_parameters_are_searchable():
    aligner = CWCLAligner(kernel=MixtureKernel(kernel=ExpKernel(kappa=0.1), alpha=0.5))
    aligner.set_params(kernel__alpha=0.8, kernel__kernel__kappa=0.02)
    cloned = clone(aligner)
    assert cloned.kernel.alpha == 0.8
    assert cloned.kernel.kernel.kappa == 0.02


def test_new_kernels_are_reachable_by_name():
    assert isinstance(resolve_kernel("perplexity"), PerplexityKernel)
    assert isinstance(resolve_kernel("mixture"), MixtureKernel)
    assert isinstance(resolve_kernel("capped-exp"), CappedExpKernel)


def test_label_weights_mark_same_class_pairs():
    weights = label_weights([0, 1, 0, 2], different=0.1)
    expected = np.array(
        [[1, 0.1, 1, 0.1], [0.1, 1, 0.1, 0.1], [1, 0.1, 1, 0.1], [0.1, 0.1, 0.1, 1]]
    )
    np.testing.assert_allclose(weights, expected)


def test_label_weights_train_as_a_kernel_matrix(colour_data):
    X, labels, names = colour_data
    texts = [f"a {names[label]} thing, sample {index}" for index, label in enumerate(labels)]
    aligner = CWCLAligner(kernel=label_weights(labels), max_epochs=3, device="cpu")
    aligner.fit(X, texts)
    assert aligner.transform(X).shape == (len(X), 384)


def test_target_statistics_of_identity_and_uniform():
    identity = target_statistics(torch.eye(8))
    assert identity == {
        "diagonal_mass": 1.0,
        "effective_positives": 1.0,
        "relative_entropy": 0.0,
        "batch_size": 8,
    }
    uniform = target_statistics(torch.full((8, 8), 1 / 8))
    assert uniform["effective_positives"] == pytest.approx(8.0)
    assert uniform["relative_entropy"] == pytest.approx(1.0)
    assert uniform["diagonal_mass"] == pytest.approx(1 / 8)


def test_linear_kernel_on_minilm_requests_looks_collapsed():
    from cwcl_sk.encoders import make_teacher

    embeddings = make_teacher("minilm", {}).encode(REQUESTS)
    linear = kernel_diagnostics(embeddings, "linear", batch_size=16, n_batches=2)
    exp = kernel_diagnostics(embeddings, "exp", batch_size=16, n_batches=2)
    assert looks_collapsed(linear)
    assert not looks_collapsed(exp)


def _fit_requests(**params):
    X = np.random.default_rng(0).normal(size=(len(REQUESTS), 5))
    return CWCLAligner(max_epochs=2, batch_size=16, device="cpu", random_state=0, **params).fit(
        X, REQUESTS
    )


def test_fit_warns_when_targets_are_near_uniform():
    with pytest.warns(UserWarning, match=r"kernel='linear' gives near-uniform CWCL targets"):
        aligner = _fit_requests(kernel="linear")
    assert looks_collapsed(aligner.target_statistics_)


def test_fit_with_a_sharp_kernel_does_not_warn(recwarn):
    aligner = _fit_requests(kernel="exp")
    assert not [w for w in recwarn if "near-uniform" in str(w.message)]
    assert aligner.target_statistics_["effective_positives"] < 4


def test_history_records_target_statistics_each_epoch():
    aligner = _fit_requests(kernel="exp")
    for record in aligner.history_:
        assert 0 < record["target_diagonal_mass"] <= 1
        assert record["target_effective_positives"] >= 1
        assert 0 <= record["target_relative_entropy"] <= 1


def test_clip_loss_has_no_target_statistics():
    aligner = _fit_requests(loss="clip")
    assert aligner.target_statistics_ is None
    assert "target_diagonal_mass" not in aligner.history_[-1]


def test_collapse_warning_does_not_suggest_the_kernel_in_use():
    from cwcl_sk import CWCLAligner

    # Distinct but nearly identical teacher rows: every kernel but identity collapses.
    rng = np.random.default_rng(0)
    teacher = 1.0 + 1e-3 * rng.normal(size=(32, 8)).astype(np.float32)
    suggestions = (
        ("exp", "smaller kappa"),
        ("capped-exp", "MixtureKernel"),
        ("linear", "kernel='capped-exp'"),
    )
    for kernel, suggestion in suggestions:
        aligner = CWCLAligner(teacher="precomputed", kernel=kernel, max_epochs=1, batch_size=16)
        with pytest.warns(UserWarning, match=suggestion):
            aligner.fit(teacher[:, :6], teacher)


def test_capped_exp_bisects_only_the_rows_over_the_cap_with_the_same_result():
    from cwcl_sk import kernels

    # Rows 0-5 are near-paraphrases (over a cap of 2 positives), the rest distinct.
    generator = torch.Generator().manual_seed(0)
    base = torch.nn.functional.normalize(torch.randn(1, 32, generator=generator), dim=1)
    close = torch.nn.functional.normalize(
        base + 0.05 * torch.randn(6, 32, generator=generator), dim=1
    )
    far = torch.nn.functional.normalize(torch.randn(10, 32, generator=generator), dim=1)
    teacher = torch.cat([close, far])
    similarity = (teacher @ teacher.T).clamp(-1, 1).fill_diagonal_(1.0)
    kernel = kernels.CappedExpKernel(kappa=0.1, max_positives=2.0)
    bisected = []
    calibrate = kernels._calibrate_log_beta

    def recording(distance, *args):
        bisected.append(len(distance))
        return calibrate(distance, *args)

    with unittest.mock.patch.object(kernels, "_calibrate_log_beta", recording):
        weights = kernel(similarity)
    assert bisected == [6]
    # Reference: every row bisected, the capped rows taking the sharper kappa.
    distance = similarity - 1.0
    log_beta = torch.full((16, 1), -math.log(0.1))
    too_flat = kernels._row_entropy(distance, log_beta) > math.log(2.0)
    _, sharp = calibrate(distance, math.log(2.0), -math.log(0.1), math.log(1e4), 24)
    log_beta = torch.where(too_flat, torch.maximum(sharp, log_beta), log_beta)
    beta = log_beta.exp()
    expected = (distance * torch.maximum(beta, beta.T)).clamp(min=kernels._MIN_EXPONENT).exp()
    assert torch.equal(weights, expected)
