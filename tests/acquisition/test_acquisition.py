import math

import numpy as np
import pytest
import torch

from crackal.acquisition.heuristics import pixel_scores
from crackal.acquisition.reduce import reduce_scores
from crackal.acquisition.score import score_pool
from crackal.acquisition.select import kcenter_greedy, select_random, select_stochastic, select_top
from crackal.errors import CrackalError
from crackal.models import create_model
from crackal.models.outputs import class_probabilities
from crackal.uncertainty import stats_from_samples


def pixel(*samples):
    """Stats of one pixel from class-probability samples."""
    stacked = torch.tensor(samples, dtype=torch.float32).T  # (C, I)
    return stats_from_samples(stacked[None, :, None, None, :])


def h(*p):
    return -sum(x * math.log(x) for x in p if x > 0)


def test_heuristics_against_hand_computed_values():
    stats = pixel([0.9, 0.1], [0.1, 0.9])
    assert pixel_scores(stats, "entropy").item() == pytest.approx(math.log(2), abs=1e-5)
    assert pixel_scores(stats, "bald").item() == pytest.approx(math.log(2) - h(0.9, 0.1), abs=1e-5)
    assert pixel_scores(stats, "variance").item() == pytest.approx(0.16, abs=1e-5)
    assert pixel_scores(stats, "margin").item() == pytest.approx(1.0, abs=1e-5)
    stats = pixel([0.7, 0.3], [0.7, 0.3])
    assert pixel_scores(stats, "bald").item() == pytest.approx(0.0, abs=1e-6)
    assert pixel_scores(stats, "entropy").item() == pytest.approx(h(0.7, 0.3), abs=1e-5)
    assert pixel_scores(stats, "margin").item() == pytest.approx(0.6, abs=1e-5)


def test_known_orderings():
    agree_unsure = pixel([0.5, 0.5], [0.5, 0.5])  # aleatoric: high entropy, no BALD
    disagree = pixel([0.99, 0.01], [0.01, 0.99])  # epistemic: BALD high
    confident = pixel([0.99, 0.01], [0.98, 0.02])
    bald = {k: pixel_scores(s, "bald").item() for k, s in [("a", agree_unsure), ("d", disagree), ("c", confident)]}
    assert bald["d"] > bald["a"] and bald["d"] > bald["c"]
    ent = {k: pixel_scores(s, "entropy").item() for k, s in [("a", agree_unsure), ("c", confident)]}
    assert ent["a"] > ent["c"]
    assert pixel_scores(disagree, "variance").item() > pixel_scores(confident, "variance").item()


def test_binary_model_scores_are_not_zero():
    logits = torch.stack([torch.full((1, 1, 2, 2), 0.3), torch.full((1, 1, 2, 2), -0.3)], -1)
    samples = torch.stack([class_probabilities(logits[..., i]) for i in range(2)], -1)
    stats = stats_from_samples(samples)
    for heuristic in ("bald", "entropy", "variance", "margin"):
        assert pixel_scores(stats, heuristic).min() > 0, heuristic


def test_reductions():
    scores = torch.tensor([[[0.0, 1.0], [2.0, 5.0]]])
    defect = torch.tensor([[[0.0, 0.5], [0.1, 0.9]]])
    assert reduce_scores(scores, "mean").item() == 2.0
    assert reduce_scores(scores, "max").item() == 5.0
    assert reduce_scores(scores, "topk", top_fraction=0.5).item() == 3.5
    assert reduce_scores(scores, "crack_region", defect, region_threshold=0.2).item() == 3.0
    assert reduce_scores(scores, "crack_region", torch.zeros_like(defect)).item() == 0.0
    with pytest.raises(CrackalError, match="reduction must be one of"):
        reduce_scores(scores, "median")


def test_streaming_scores_equal_whole_array_scores():
    torch.manual_seed(0)
    models = [create_model("unet", 2, base_channels=8, depth=2).eval() for _ in range(2)]
    images = [np.random.default_rng(i).integers(0, 255, (32, 32, 3), dtype=np.uint8) for i in range(5)]
    one = score_pool(models, images, "bald", "mean", method="ensemble", batch_size=1)
    three = score_pool(models, images, "bald", "mean", method="ensemble", batch_size=3)
    from crackal.data.transforms import to_tensor

    x = torch.stack([to_tensor(i) for i in images])
    with torch.no_grad():
        samples = torch.stack([class_probabilities(m(x)) for m in models], -1)
    whole = reduce_scores(pixel_scores(stats_from_samples(samples), "bald"), "mean").numpy()
    np.testing.assert_allclose(one, whole, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(three, whole, rtol=1e-4, atol=1e-7)


def test_mc_dropout_pool_scores_are_seeded():
    model = create_model("unet", 2, base_channels=8, depth=2, dropout=0.5).eval()
    images = [np.random.default_rng(i).integers(0, 255, (32, 32, 3), dtype=np.uint8) for i in range(3)]
    a = score_pool(model, images, "bald", iterations=5, seed=3)
    b = score_pool(model, images, "bald", iterations=5, seed=3)
    np.testing.assert_array_equal(a, b)
    assert (a > 0).all()
    r = score_pool(model, images, "random", seed=3)
    assert r.shape == (3,) and np.array_equal(r, score_pool(model, images, "random", seed=3))


def test_score_pool_errors():
    model = create_model("unet", 2, base_channels=8, depth=2)
    with pytest.raises(CrackalError, match="strategy must be one of .*; got 'coin'"):
        score_pool(model, [], "coin")
    with pytest.raises(CrackalError, match="pool is empty"):
        score_pool(model, [], "bald")
    with pytest.raises(CrackalError, match="MC-BatchNorm needs"):
        score_pool(model, [], "bald", method="mc_batchnorm")


def test_top_and_stochastic_selection():
    scores = np.array([0.1, 0.9, 0.5, 0.0, 0.7])
    assert select_top(scores, 3).tolist() == [1, 4, 2]
    assert select_stochastic(scores, 3, seed=1).tolist() == select_stochastic(scores, 3, seed=1).tolist()
    assert set(select_stochastic(scores, 3, temperature=0.01, seed=1)) == {1, 4, 2}
    assert select_stochastic(scores, 5, seed=2)[-1] == 3  # a zero score comes last
    picks = np.array([select_stochastic(np.array([1.0, 3.0]), 1, seed=s)[0] for s in range(2000)])
    assert (picks == 1).mean() == pytest.approx(0.75, abs=0.04)  # proportional to the score
    assert len(set(select_random(10, 4, seed=0))) == 4


def test_empty_pool_and_bad_batch():
    with pytest.raises(CrackalError, match="pool is empty"):
        select_top(np.array([]), 3)
    with pytest.raises(CrackalError, match="at least 1"):
        select_top(np.array([1.0]), 0)
    with pytest.raises(CrackalError, match="temperature"):
        select_stochastic(np.array([1.0]), 1, temperature=0)


def test_kcenter_covers_the_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]])
    points = np.concatenate([c + rng.normal(0, 0.3, (20, 2)) for c in centres])
    picked = kcenter_greedy(points, 4, seed=0)
    assert sorted({int(i) // 20 for i in picked}) == [0, 1, 2, 3]
    more = kcenter_greedy(points, 2, chosen=picked)
    assert not set(more) & set(picked)


def test_diverse_batches_skip_near_duplicates_that_top_k_would_take():
    from crackal.acquisition.diversity import encoder_embeddings, select_diverse

    rng = np.random.default_rng(0)
    scenes = rng.normal(size=(3, 8)) * 5
    # 12 images: four near-copies of each of three scenes; scene 0's copies score highest
    embeddings = np.repeat(scenes, 4, axis=0) + rng.normal(scale=0.01, size=(12, 8))
    scores = np.array([0.9, 0.89, 0.88, 0.87, 0.5, 0.49, 0.48, 0.47, 0.3, 0.29, 0.28, 0.27])
    top = select_top(scores, 3)
    assert set(top.tolist()) <= {0, 1, 2, 3}  # uncertainty alone: three copies of one scene
    chosen = select_diverse(scores, lambda idx: embeddings[idx], 3, candidates=4, seed=0)
    assert sorted(i // 4 for i in chosen) == [0, 1, 2] and chosen[0] == 0  # one per scene, the most uncertain first
    assert len(select_diverse(scores, lambda idx: embeddings[idx], 20)) == 12
    model = create_model("unet", 2, base_channels=8, depth=2)
    images = [rng.integers(0, 255, (40, 56, 3), dtype=np.uint8) for _ in range(3)]
    assert encoder_embeddings(model, images).shape == (3, 2 * 32)  # mean and max of the bottleneck's 32 channels
