"""Tests for the loss modules CWCLLoss and ContrastiveLoss: the functions' values and gradients."""

import copy
import math
import re
from pathlib import Path

import pytest
import torch

import cwcl_sk
from cwcl_sk.kernels import ExpKernel
from cwcl_sk.losses import (
    DIRECTIONS,
    ContrastiveLoss,
    CWCLLoss,
    contrastive_loss,
    cwcl_loss,
)

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide" / "cwcl.md"
KERNELS = ["capped-exp", "linear", ExpKernel(kappa=0.05), "identity"]


def _pair(n=12, d=6, seed=0, dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    student = torch.randn(n, d, generator=generator, dtype=dtype, requires_grad=True)
    teacher = torch.randn(n, d, generator=generator, dtype=dtype, requires_grad=True)
    return student, teacher


def _loss_and_gradients(compute, inputs):
    loss = compute(*inputs)
    return (loss.detach(), *torch.autograd.grad(loss, inputs))


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("kernel", KERNELS, ids=str)
def test_cwcl_module_equals_the_function_forward_and_backward(kernel, direction):
    student, teacher = _pair(seed=1)
    module = CWCLLoss(kernel=kernel, temperature=0.1, direction=direction)
    expected = _loss_and_gradients(
        lambda s, t: cwcl_loss(s, t, 0.1, kernel, direction), (student, teacher)
    )
    actual = _loss_and_gradients(module, (student, teacher))
    for got, wanted in zip(actual, expected, strict=True):
        torch.testing.assert_close(got, wanted, rtol=0, atol=0)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_contrastive_module_equals_the_function_forward_and_backward(direction):
    student, teacher = _pair(seed=2)
    module = ContrastiveLoss(temperature=0.1, direction=direction)
    expected = _loss_and_gradients(
        lambda s, t: contrastive_loss(s, t, 0.1, direction), (student, teacher)
    )
    actual = _loss_and_gradients(module, (student, teacher))
    for got, wanted in zip(actual, expected, strict=True):
        torch.testing.assert_close(got, wanted, rtol=0, atol=0)


def _learned_and_functional(module_class, function, direction, seed):
    """Loss and gradients (student, logit scale) of the module and of the function."""
    student, teacher = _pair(seed=seed)
    module = module_class(temperature=0.05, direction=direction, learn_temperature=True)
    loss = module(student, teacher)
    module_result = (loss.detach(), *torch.autograd.grad(loss, (student, module.logit_scale)))
    # The function, given the temperature exp(-logit_scale) of a logit scale of its own.
    logit_scale = torch.tensor(math.log(1 / 0.05), requires_grad=True)
    loss = function(student, teacher, logit_scale.neg().exp(), direction=direction)
    function_result = (loss.detach(), *torch.autograd.grad(loss, (student, logit_scale)))
    return module_result, function_result


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize(
    ("module_class", "function"),
    [(CWCLLoss, cwcl_loss), (ContrastiveLoss, contrastive_loss)],
    ids=["cwcl", "contrastive"],
)
def test_learned_temperature_gives_the_functions_loss_and_gradients(
    module_class, function, direction
):
    module_result, function_result = _learned_and_functional(module_class, function, direction, 3)
    for got, wanted in zip(module_result, function_result, strict=True):
        torch.testing.assert_close(got, wanted)
    assert float(module_result[2]) != 0.0  # the temperature does receive a gradient


@pytest.mark.parametrize("module_class", [CWCLLoss, ContrastiveLoss])
def test_learned_temperature_is_the_only_parameter_and_starts_at_the_given_value(module_class):
    module = module_class(temperature=0.05, learn_temperature=True)
    assert [name for name, _ in module.named_parameters()] == ["logit_scale"]
    assert float(module.temperature.detach()) == pytest.approx(0.05)
    assert list(module_class(temperature=0.05).parameters()) == []


def test_learned_temperature_is_saved_and_restored_with_the_state_dict():
    module = CWCLLoss(temperature=0.05, learn_temperature=True)
    with torch.no_grad():
        module.logit_scale.fill_(math.log(20.0))
    restored = CWCLLoss(temperature=0.07, learn_temperature=True)
    restored.load_state_dict(module.state_dict())
    assert float(restored.temperature.detach()) == pytest.approx(0.05)
    assert float(copy.deepcopy(module).temperature.detach()) == pytest.approx(0.05)


def test_a_parameter_given_as_temperature_is_trained_with_the_module():
    temperature = torch.nn.Parameter(torch.tensor(0.1))
    module = ContrastiveLoss(temperature=temperature)
    assert list(module.parameters()) == [temperature]
    student, teacher = _pair(seed=4)
    module(student, teacher).backward()
    assert temperature.grad is not None


def test_modules_are_exported_from_the_package_top_level():
    assert cwcl_sk.CWCLLoss is CWCLLoss
    assert cwcl_sk.ContrastiveLoss is ContrastiveLoss
    assert CWCLLoss.__module__ == "cwcl_sk.losses"  # pickled and documented under that path


def test_repr_shows_kernel_temperature_and_direction():
    text = repr(CWCLLoss(kernel="linear", temperature=0.1, direction="teacher_to_student"))
    assert text == "CWCLLoss(kernel='linear', temperature=0.1, direction='teacher_to_student')"


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": "0.1"}, "temperature"),
        ({"direction": "rows"}, "direction"),
        ({"kernel": "gaussian"}, "kernel"),
        ({"learn_temperature": "yes"}, "learn_temperature"),
    ],
)
def test_bad_arguments_fail_at_construction_naming_the_argument(arguments, match):
    with pytest.raises((TypeError, ValueError), match=match):
        CWCLLoss(**arguments)


def test_bad_embeddings_raise_naming_the_argument():
    with pytest.raises(ValueError, match="teacher_embeddings"):
        CWCLLoss()(torch.randn(4, 3), torch.randn(4))


@pytest.mark.slow
def test_guide_plain_pytorch_example_runs_and_lowers_the_loss():
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL)
    (example,) = [block for block in blocks if "CWCLLoss" in block]
    namespace = {"__name__": "__guide__"}
    exec(compile(example, str(GUIDE), "exec"), namespace)
    losses = namespace["losses"]
    assert losses[-1] < losses[0] / 2
    assert float(namespace["loss_fn"].temperature.detach()) >= 0.01 - 1e-6
