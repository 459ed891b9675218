"""Tests for cwcl_sk.losses: CWCL, the contrastive baseline and soft cross-entropy."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cwcl_sk.kernels import ExpKernel, target_matrix
from cwcl_sk.losses import DIRECTIONS, contrastive_loss, cwcl_loss, soft_cross_entropy

TEMPERATURES = [1e-3, 1e-2, 0.07, 1.0, 1e2]


def _pair(n, d, seed=0, dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    student = torch.randn(n, d, generator=generator, dtype=dtype)
    teacher = torch.randn(n, d, generator=generator, dtype=dtype)
    return student, teacher


# --- NumPy reference, float64, straight from the formulas -------------------------------


def _unit_rows(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _log_softmax(v):
    shifted = v - v.max()
    return shifted - np.log(np.exp(shifted).sum())


def _reference_weights(teacher, kernel):
    if isinstance(kernel, np.ndarray):  # precomputed matrix
        return kernel.astype(np.float64)
    q = _unit_rows(teacher)
    similarity = np.clip(q @ q.T, -1.0, 1.0)
    if kernel == "linear":
        return (1.0 + similarity) / 2.0
    if isinstance(kernel, tuple) and kernel[0] == "exp":
        return np.exp((similarity - 1.0) / kernel[1])
    assert kernel == "identity"
    return np.eye(len(q))


def _reference_loss(student, teacher, temperature, kernel, direction):
    """CWCL for one or both directions; with identity weights this is CL."""
    p, q = _unit_rows(student), _unit_rows(teacher)
    n = len(p)
    s = np.array([[p[i] @ q[j] for j in range(n)] for i in range(n)]) / temperature
    w = _reference_weights(teacher, kernel)
    student_to_teacher = 0.0
    for i in range(n):  # student i: softmax over teachers j, targets normalised over j
        log_probs = _log_softmax(s[i, :])
        student_to_teacher -= sum(w[i, j] / w[i, :].sum() * log_probs[j] for j in range(n))
    teacher_to_student = 0.0
    for j in range(n):  # teacher j: softmax over students i, targets normalised over i
        log_probs = _log_softmax(s[:, j])
        teacher_to_student -= sum(w[i, j] / w[:, j].sum() * log_probs[i] for i in range(n))
    return {
        "student_to_teacher": student_to_teacher / n,
        "teacher_to_student": teacher_to_student / n,
        "both": (student_to_teacher + teacher_to_student) / (2 * n),
    }[direction]


def _torch_kernel(kernel):
    return ExpKernel(kappa=kernel[1]) if isinstance(kernel, tuple) else kernel


# --- agreement with the contrastive loss and the reference ------------------------------


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("n", [1, 2, 7, 64])
def test_identity_kernel_cwcl_equals_contrastive_loss(direction, n):
    student, teacher = _pair(n, 16, seed=n)
    expected = contrastive_loss(student, teacher, 0.07, direction=direction)
    actual = cwcl_loss(student, teacher, 0.07, kernel="identity", direction=direction)
    torch.testing.assert_close(actual, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("kernel", ["linear", ("exp", 0.1), ("exp", 0.5)], ids=str)
@pytest.mark.parametrize("temperature", [0.05, 1.0])
def test_cwcl_matches_numpy_reference(kernel, direction, temperature):
    student, teacher = _pair(6, 5, seed=1, dtype=torch.float64)
    actual = cwcl_loss(student, teacher, temperature, _torch_kernel(kernel), direction)
    expected = _reference_loss(student, teacher, temperature, kernel, direction)
    assert float(actual) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_cwcl_matches_numpy_reference_for_float32_inputs(direction):
    student, teacher = _pair(9, 4, seed=2)
    actual = cwcl_loss(student, teacher, 0.07, "linear", direction)
    expected = _reference_loss(student, teacher, 0.07, "linear", direction)
    assert float(actual) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_cwcl_with_asymmetric_precomputed_weights_matches_reference(direction):
    # An asymmetric matrix tells rows from columns: t2s must normalise columns.
    student, teacher = _pair(4, 3, seed=3, dtype=torch.float64)
    weights = np.array([[4.0, 1, 0, 0], [0, 2, 1, 0], [1, 0, 3, 2], [0, 0, 1, 1]])
    actual = cwcl_loss(student, teacher, 0.5, weights, direction)
    expected = _reference_loss(student, teacher, 0.5, weights, direction)
    assert float(actual) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_contrastive_loss_matches_numpy_reference(direction):
    student, teacher = _pair(8, 5, seed=4, dtype=torch.float64)
    actual = contrastive_loss(student, teacher, 0.1, direction)
    expected = _reference_loss(student, teacher, 0.1, "identity", direction)
    assert float(actual) == pytest.approx(expected, rel=1e-10)


def test_both_directions_is_the_average_of_the_two():
    student, teacher = _pair(10, 6, seed=5)
    one_way = [cwcl_loss(student, teacher, direction=d) for d in DIRECTIONS[:2]]
    torch.testing.assert_close(cwcl_loss(student, teacher), (one_way[0] + one_way[1]) / 2)


def test_student_to_teacher_is_soft_cross_entropy_against_target_matrix():
    student, teacher = _pair(10, 6, seed=6)
    logits = torch.nn.functional.normalize(student) @ torch.nn.functional.normalize(teacher).T
    expected = soft_cross_entropy(logits / 0.07, target_matrix(teacher, "exp"))
    actual = cwcl_loss(student, teacher, 0.07, "exp", "student_to_teacher")
    torch.testing.assert_close(actual, expected)


def test_loss_depends_only_on_cosine_similarity():
    student, teacher = _pair(6, 4, seed=7)
    scale = torch.arange(1.0, 7.0).unsqueeze(1)
    torch.testing.assert_close(
        cwcl_loss(student * scale, teacher / scale), cwcl_loss(student, teacher)
    )


def test_perfectly_aligned_pairs_give_zero_contrastive_loss_at_low_temperature():
    embeddings = torch.eye(5)
    assert float(contrastive_loss(embeddings, embeddings, temperature=1e-3)) == 0.0


# --- gradients --------------------------------------------------------------------------


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_cwcl_gradcheck_in_float64(direction):
    student, teacher = _pair(5, 3, seed=8, dtype=torch.float64)
    student.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda s: cwcl_loss(s, teacher, 0.5, ExpKernel(kappa=0.3), direction), (student,)
    )


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_contrastive_loss_gradcheck_in_float64(direction):
    student, teacher = _pair(5, 3, seed=9, dtype=torch.float64)
    student.requires_grad_()
    teacher.requires_grad_()  # CLIP: both towers trained
    assert torch.autograd.gradcheck(
        lambda s, t: contrastive_loss(s, t, 0.5, direction), (student, teacher)
    )


def test_learnable_temperature_gradcheck_in_float64():
    student, teacher = _pair(4, 3, seed=10, dtype=torch.float64)
    temperature = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: cwcl_loss(student, teacher, t), (temperature,))


def test_learnable_float32_temperature_receives_a_gradient():
    student, teacher = _pair(6, 4, seed=11)
    temperature = torch.tensor(0.07, requires_grad=True)
    cwcl_loss(student, teacher, temperature).backward()
    assert temperature.grad is not None and bool(torch.isfinite(temperature.grad))


def test_kernel_weights_are_constants_for_the_teacher_gradient():
    # The teacher gets gradient through the logits only, as if the weights were given.
    student, teacher = _pair(6, 4, seed=12, dtype=torch.float64)
    teacher.requires_grad_()
    unit = torch.nn.functional.normalize(teacher.detach())
    weights = torch.exp((unit @ unit.T - 1.0) / 0.1)
    (grad_kernel,) = torch.autograd.grad(cwcl_loss(student, teacher, 0.1, ExpKernel(0.1)), teacher)
    (grad_given,) = torch.autograd.grad(cwcl_loss(student, teacher, 0.1, weights), teacher)
    torch.testing.assert_close(grad_kernel, grad_given)


# --- numerical robustness ---------------------------------------------------------------


@pytest.mark.parametrize("loss_fn", [cwcl_loss, contrastive_loss])
@pytest.mark.parametrize("temperature", TEMPERATURES)
@pytest.mark.parametrize("n", [1, 32])
def test_loss_and_gradients_are_finite_across_temperatures(loss_fn, temperature, n):
    student, teacher = _pair(n, 8, seed=13)
    student.requires_grad_()
    loss = loss_fn(student, teacher, temperature)
    loss.backward()
    assert bool(torch.isfinite(loss))
    assert bool(torch.isfinite(student.grad).all())


@pytest.mark.parametrize("kernel", ["linear", "exp", "identity"])
def test_single_pair_batch_has_zero_loss(kernel):
    student, teacher = _pair(1, 4, seed=14)
    assert float(cwcl_loss(student, teacher, kernel=kernel)) == 0.0
    assert float(contrastive_loss(student, teacher)) == 0.0


@pytest.mark.parametrize("loss_fn", [cwcl_loss, contrastive_loss])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_inputs_give_float32_loss_and_half_gradients(loss_fn, dtype):
    student, teacher = _pair(32, 16, seed=15)
    reference = loss_fn(student, teacher)
    student_half = student.to(dtype).requires_grad_()
    loss = loss_fn(student_half, teacher.to(dtype))
    loss.backward()
    assert loss.dtype == torch.float32
    assert bool(torch.isfinite(loss))
    torch.testing.assert_close(loss, reference, rtol=2e-2, atol=2e-2)
    assert student_half.grad.dtype == dtype
    assert bool(torch.isfinite(student_half.grad).all())


@pytest.mark.parametrize("loss_fn", [cwcl_loss, contrastive_loss])
def test_loss_stays_float32_under_autocast(loss_fn):
    student, teacher = _pair(16, 8, seed=19)
    reference = loss_fn(student, teacher)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = loss_fn(student, teacher)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, reference)


def test_backward_twice_with_retained_graph_gives_the_same_gradient():
    student, teacher = _pair(6, 4, seed=20)
    student.requires_grad_()
    loss = cwcl_loss(student, teacher)
    (first,) = torch.autograd.grad(loss, student, retain_graph=True)
    (second,) = torch.autograd.grad(loss, student)
    torch.testing.assert_close(first, second)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_cwcl_gradgradcheck_in_float64(direction):
    student, teacher = _pair(4, 3, seed=21, dtype=torch.float64)
    student.requires_grad_()
    assert torch.autograd.gradgradcheck(
        lambda s: cwcl_loss(s, teacher, 0.5, "linear", direction), (student,)
    )


@pytest.mark.parametrize("loss_fn", [cwcl_loss, contrastive_loss])
def test_float64_inputs_give_float64_loss(loss_fn):
    student, teacher = _pair(4, 3, dtype=torch.float64)
    assert loss_fn(student, teacher).dtype == torch.float64


@pytest.mark.parametrize("loss_fn", [cwcl_loss, contrastive_loss])
def test_loss_is_invariant_to_permuting_the_batch(loss_fn):
    student, teacher = _pair(12, 5, seed=16)
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(loss_fn(student[perm], teacher[perm]), loss_fn(student, teacher))


# --- soft_cross_entropy -----------------------------------------------------------------


def test_soft_cross_entropy_matches_its_formula():
    generator = torch.Generator().manual_seed(17)
    logits = torch.randn(5, 7, generator=generator)
    targets = torch.softmax(torch.randn(5, 7, generator=generator), dim=1)
    expected = -(targets * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()
    torch.testing.assert_close(soft_cross_entropy(logits, targets), expected)


def test_soft_cross_entropy_with_one_hot_targets_is_cross_entropy():
    logits = torch.randn(6, 4, generator=torch.Generator().manual_seed(18))
    labels = torch.tensor([0, 3, 1, 2, 2, 0])
    targets = torch.nn.functional.one_hot(labels, 4).float()
    expected = torch.nn.functional.cross_entropy(logits, labels)
    torch.testing.assert_close(soft_cross_entropy(logits, targets), expected)


# --- argument validation ----------------------------------------------------------------


@pytest.mark.parametrize("loss_fn", [cwcl_loss, contrastive_loss])
@pytest.mark.parametrize(
    "temperature",
    [0.0, -1.0, float("nan"), float("inf"), torch.tensor(0.0), torch.tensor([0.1]), "0.1", True],
    ids=["zero", "negative", "nan", "inf", "zero-tensor", "1d-tensor", "string", "bool"],
)
def test_invalid_temperature_raises_value_error_naming_it(loss_fn, temperature):
    student, teacher = _pair(3, 2)
    with pytest.raises(ValueError, match="temperature"):
        loss_fn(student, teacher, temperature)


@pytest.mark.parametrize("loss_fn", [cwcl_loss, contrastive_loss])
def test_unknown_direction_raises_value_error_listing_directions(loss_fn):
    student, teacher = _pair(3, 2)
    with pytest.raises(ValueError, match="direction") as info:
        loss_fn(student, teacher, direction="rows")
    for direction in DIRECTIONS:
        assert direction in str(info.value)


@pytest.mark.parametrize("loss_fn", [cwcl_loss, contrastive_loss])
def test_mismatched_batch_sizes_raise_value_error_with_both_shapes(loss_fn):
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(4, 2\)"):
        loss_fn(torch.randn(3, 2), torch.randn(4, 2))


@pytest.mark.parametrize("loss_fn", [cwcl_loss, contrastive_loss])
def test_mismatched_embedding_dims_raise_value_error_with_both_shapes(loss_fn):
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(3, 5\)"):
        loss_fn(torch.randn(3, 2), torch.randn(3, 5))


@pytest.mark.parametrize("loss_fn", [cwcl_loss, contrastive_loss])
@pytest.mark.parametrize("argument", ["student_embeddings", "teacher_embeddings"])
@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (np.ones((3, 2), dtype=np.float32), TypeError),
        (torch.ones(3), ValueError),
        (torch.ones(3, 2, 1), ValueError),
        (torch.ones(3, 2, dtype=torch.int64), TypeError),
    ],
    ids=["numpy", "1d", "3d", "integer"],
)
def test_invalid_embeddings_raise_naming_the_argument(loss_fn, argument, bad, error):
    kwargs = {"student_embeddings": torch.ones(3, 2), "teacher_embeddings": torch.ones(3, 2)}
    kwargs[argument] = bad
    with pytest.raises(error, match=argument):
        loss_fn(**kwargs)


@pytest.mark.parametrize("loss_fn", [cwcl_loss, contrastive_loss])
def test_empty_batch_raises_value_error(loss_fn):
    with pytest.raises(ValueError, match="N >= 1"):
        loss_fn(torch.ones(0, 2), torch.ones(0, 2))


def test_invalid_kernel_weights_raise_value_error_naming_kernel():
    student, teacher = _pair(3, 2)
    with pytest.raises(ValueError, match="kernel"):
        cwcl_loss(student, teacher, kernel=-torch.ones(3, 3))


def test_zero_weight_column_raises_for_teacher_to_student_direction():
    student, teacher = _pair(3, 2)
    weights = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    cwcl_loss(student, teacher, kernel=weights, direction="student_to_teacher")  # rows fine
    with pytest.raises(ValueError, match="column"):
        cwcl_loss(student, teacher, kernel=weights, direction="teacher_to_student")


# --- properties -------------------------------------------------------------------------


@st.composite
def _batches(draw):
    n = draw(st.integers(1, 6))
    d = draw(st.integers(1, 5))
    elements = st.floats(-10, 10, width=32, allow_subnormal=False)
    student = draw(hnp.arrays(np.float32, (n, d), elements=elements))
    teacher = draw(hnp.arrays(np.float32, (n, d), elements=elements))
    return torch.from_numpy(student), torch.from_numpy(teacher)


_temperatures = st.floats(-3, 2).map(lambda exponent: 10.0**exponent)
_kernels = st.sampled_from(
    ["linear", "exp", "identity", ExpKernel(kappa=1e-3), ExpKernel(kappa=10.0)]
)
_directions = st.sampled_from(DIRECTIONS)
_property = settings(max_examples=30, deadline=None)


@_property
@given(batch=_batches(), temperature=_temperatures, kernel=_kernels, direction=_directions)
def test_property_loss_is_finite_and_non_negative(batch, temperature, kernel, direction):
    loss = cwcl_loss(*batch, temperature, kernel, direction)
    assert math.isfinite(float(loss))
    assert float(loss) >= 0.0


@_property
@given(batch=_batches(), temperature=_temperatures, kernel=_kernels, direction=_directions)
def test_property_gradients_are_finite(batch, temperature, kernel, direction):
    student = batch[0].clone().requires_grad_()
    cwcl_loss(student, batch[1], temperature, kernel, direction).backward()
    assert bool(torch.isfinite(student.grad).all())


@_property
@given(batch=_batches(), temperature=_temperatures, direction=_directions)
def test_property_identity_kernel_equals_contrastive_loss(batch, temperature, direction):
    actual = cwcl_loss(*batch, temperature, "identity", direction)
    expected = contrastive_loss(*batch, temperature, direction)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


@_property
@given(
    batch=_batches(),
    temperature=_temperatures,
    kernel=_kernels,
    direction=_directions,
    seed=st.integers(0, 2**16),
)
def test_property_loss_is_permutation_invariant(batch, temperature, kernel, direction, seed):
    student, teacher = batch
    perm = torch.randperm(len(student), generator=torch.Generator().manual_seed(seed))
    expected = cwcl_loss(student, teacher, temperature, kernel, direction)
    actual = cwcl_loss(student[perm], teacher[perm], temperature, kernel, direction)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)


def test_cwcl_loss_reads_one_value_back_from_the_device_for_its_checks(monkeypatch):
    # On a GPU every read of a tensor's value waits for the device; a training step should
    # not stall on one per check. The capped-exp default adds one read, to limit its
    # bisection to the rows that need it (nonzero reads their positions).
    reads = []
    for name in ("__bool__", "__float__", "__int__", "item", "tolist", "nonzero"):
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _original=original, _name=name):
            reads.append(_name)
            return _original(self, *args)

        monkeypatch.setattr(torch.Tensor, name, counting)
    student, teacher = _pair(16, 4)
    cwcl_loss(student, teacher, kernel="exp")
    assert len(reads) == 1, reads
    reads.clear()
    cwcl_loss(student, teacher)
    assert len(reads) == 2, reads


@pytest.mark.parametrize("kernel", ["exp", "capped-exp", "mixture"])
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_blocked_teacher_similarity_gives_the_full_products_loss_and_gradients(
    kernel, direction, monkeypatch
):
    # Past 512 rows the CPU assembles the teacher similarity from blocks (cwcl_sk._gram).
    from cwcl_sk import _gram

    def run():
        student, teacher = _pair(700, 8, seed=5, dtype=torch.float64)
        student.requires_grad_()
        loss = cwcl_loss(student, teacher, 0.1, kernel=kernel, direction=direction)
        (gradient,) = torch.autograd.grad(loss, student)
        return loss.detach(), gradient

    blocked = run()
    monkeypatch.setattr(_gram, "_LEAF_ROWS", 10_000)  # one product
    for wanted, got in zip(run(), blocked, strict=True):
        torch.testing.assert_close(got, wanted, rtol=1e-12, atol=1e-14)
