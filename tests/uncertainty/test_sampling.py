import pytest
import torch
from torch import nn

from crackal.models import create_model
from crackal.models.outputs import class_probabilities
from crackal.models.segmenter import Segmenter
from crackal.uncertainty import (
    StatsAccumulator,
    batch_statistics_from,
    ensemble,
    entropy,
    head_only,
    mc_batchnorm,
    mc_dropout,
    stats_from_samples,
)


def tiny_unet(dropout=0.5, seed=0, downscale=1):
    torch.manual_seed(seed)
    return create_model("unet", 2, base_channels=8, depth=2, dropout=dropout, downscale=downscale).eval()


def test_binary_output_is_expanded_so_entropy_is_not_zero():
    logits = torch.zeros(1, 1, 2, 2)  # one sigmoid channel at p = 0.5
    probs = class_probabilities(logits)
    assert probs.shape == (1, 2, 2, 2)
    assert torch.allclose(entropy(probs), torch.full((1, 2, 2), 0.6931), atol=1e-4)


def test_entropy_zero_log_zero():
    assert entropy(torch.tensor([[1.0, 0.0]])).item() == 0.0


def test_accumulated_moments_match_the_full_stack():
    samples = torch.rand(3, 2, 4, 5, 7)
    samples = samples / samples.sum(1, keepdim=True)
    stats = stats_from_samples(samples)
    torch.testing.assert_close(stats.mean, samples.mean(-1))
    torch.testing.assert_close(stats.mean_sq, (samples**2).mean(-1))
    torch.testing.assert_close(stats.mean_entropy, entropy(samples).mean(-1))


@pytest.mark.parametrize("downscale", [1, 2])
def test_head_only_and_full_paths_draw_the_same_samples(downscale):
    model = tiny_unet(downscale=downscale)
    assert head_only(model)
    x = torch.randn(2, 3, 40, 52)
    torch.manual_seed(123)
    head = mc_dropout(model, x, iterations=8, path="head")
    torch.manual_seed(123)
    full = mc_dropout(model, x, iterations=8, path="full")
    torch.testing.assert_close(head.mean, full.mean, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(head.mean_entropy, full.mean_entropy, atol=1e-5, rtol=1e-4)


def test_head_only_and_full_paths_agree_in_distribution():
    model = tiny_unet()
    with torch.no_grad():
        model.classifier.weight *= 20  # an untrained head barely reacts to dropout
    x = torch.randn(1, 3, 32, 32)
    # 2000 draws each: the variance estimates are within about 3 % of the truth, so their ratio is
    # within 0.15 of 1 at three standard errors (300 draws left it a hair inside a 0.1 bound)
    torch.manual_seed(1)
    head = mc_dropout(model, x, iterations=2000, path="head")
    torch.manual_seed(2)  # independent draws
    full = mc_dropout(model, x, iterations=2000, path="full")
    variance_head = head.mean_sq - head.mean**2
    variance_full = full.mean_sq - full.mean**2
    print("variance", float(variance_head.mean()), "mean gap", float((head.mean - full.mean).abs().mean()),
          "variance ratio", float(variance_head.mean() / variance_full.mean()))
    assert variance_head.mean() > 1e-3
    assert (head.mean - full.mean).abs().mean() < 0.02
    assert (variance_head.mean() / variance_full.mean() - 1).abs() < 0.15


def test_dropout_in_the_trunk_needs_the_full_path():
    trunk = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Dropout2d(0.5), nn.ReLU())
    model = Segmenter(trunk, nn.Conv2d(4, 1, 1), dropout=0.0, stride=1).eval()
    assert not head_only(model)
    with pytest.raises(ValueError, match="head-only path"):
        mc_dropout(model, torch.randn(1, 3, 8, 8), path="head")
    stats = mc_dropout(model, torch.randn(1, 3, 8, 8), iterations=10)  # auto -> full
    assert ((stats.mean_sq - stats.mean**2) > 0).any()


def test_mc_dropout_leaves_the_model_as_it_was():
    model = tiny_unet()
    mc_dropout(model, torch.randn(1, 3, 16, 16), iterations=2)
    assert not model.training and not model.dropout.training


def test_mc_batchnorm_normalises_with_the_labelled_batch():
    model = tiny_unet(dropout=0.0)
    first_conv, first_bn = model.trunk.down[0][0], model.trunk.down[0][1]
    before = first_bn.running_mean.clone()
    reference = torch.randn(4, 3, 16, 16) * 2 + 1
    with batch_statistics_from(model, reference):
        with torch.no_grad():
            expected = first_conv(reference).mean((0, 2, 3))
        torch.testing.assert_close(first_bn.running_mean, expected, atol=1e-5, rtol=1e-4)
        assert not model.training
    torch.testing.assert_close(first_bn.running_mean, before)


def test_mc_batchnorm_samples_differ_with_the_reference_batches():
    model = tiny_unet(dropout=0.0)
    generator = torch.Generator().manual_seed(0)
    stats = mc_batchnorm(model, torch.randn(2, 3, 16, 16), lambda: torch.randn(3, 3, 16, 16, generator=generator), iterations=5)
    assert (stats.mean_sq - stats.mean**2).mean() > 0


def test_ensemble_of_identical_models_has_no_disagreement():
    a, b = tiny_unet(seed=0), tiny_unet(seed=0)
    stats = ensemble([a, b], torch.randn(1, 3, 16, 16))
    torch.testing.assert_close(stats.mean_sq, stats.mean**2, atol=1e-6, rtol=1e-5)
    c = tiny_unet(seed=1)
    stats = ensemble([a, c], torch.randn(1, 3, 16, 16))
    assert (stats.mean_sq - stats.mean**2).max() > 1e-6


def test_accumulator_needs_samples():
    with pytest.raises(ValueError):
        StatsAccumulator().result()
