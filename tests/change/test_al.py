"""Change-detection active learning: per-tile uncertainty, the balanced start, the loop."""

import json

import numpy as np
import pytest
import torch

from crackal.change.al import ChangeALConfig, balanced_start, run_change_al, score_unlabelled
from crackal.change.simulate import simulate_change
from crackal.change.train import ChangeTrainConfig, build_change_model, tensors
from crackal.data.bitemporal import CHANGED, UNCHANGED, TileSet
from crackal.errors import CrackalError
from crackal.uncertainty.sampling import batch_statistics_from

TINY = ChangeTrainConfig(base_channels=4, depth=2, steps=2, epochs=0, batch_size=4)


def _tiles(n=24, changed=6, size=16, seed=0) -> TileSet:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 255, (n, size, size, 6), dtype=np.uint8)
    masks = np.zeros((n, size, size), np.uint8)
    masks[:changed, 4:10, 4:10] = 1  # 14 % changed
    images[:changed, 4:10, 4:10, 3:] = 0  # dark in the second date
    labels = np.array([CHANGED] * changed + [UNCHANGED] * (n - changed), np.int8)
    return TileSet(images, masks, labels, [f"t{i}" for i in range(n)])


def _models(count):
    models = []
    for seed in range(count):
        torch.manual_seed(seed)
        model = build_change_model(TINY)
        for m in model.modules():  # non-trivial BatchNorm statistics
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
        models.append(model.eval())
    return models


def _tile_variance(prob_samples):
    """Mean over pixels and the two classes of the variance across samples, for each tile."""
    p = torch.stack(prob_samples)  # (S, N, H, W) change probability
    var = p.var(0, unbiased=False)  # the background channel has the same variance
    return var.mean((1, 2)).numpy()


def test_ensemble_variance_is_computed_per_tile():
    tiles, models = _tiles(), _models(3)
    config = ChangeALConfig(strategy="variance", method="ensemble", ensemble_size=3, train=TINY)
    unlabelled = np.arange(5, 12)
    scores = score_unlabelled(models, tiles, unlabelled, tiles.subset([0, 20]), config, seed=0)
    x = tensors(tiles.images[unlabelled])
    with torch.no_grad():
        expected = _tile_variance([torch.sigmoid(m(x)[:, 0]) for m in models])
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-9)
    assert scores.shape == (7,) and len(np.unique(scores.round(9))) == 7  # one score per tile


def test_mc_batchnorm_variance_is_computed_per_tile():
    tiles, model = _tiles(), _models(1)[0]
    labelled = tiles.subset(np.arange(12, 24))
    config = ChangeALConfig(strategy="variance", method="mc_batchnorm", iterations=4, train=TINY)
    unlabelled = np.arange(0, 6)
    scores = score_unlabelled([model], tiles, unlabelled, labelled, config, seed=3)
    # the same passes by hand: each normalised with a random batch of labelled tiles
    from crackal.change.al import _reference_batches

    draw, x, samples = _reference_batches(labelled, 3), tensors(tiles.images[unlabelled]), []
    with torch.no_grad():
        for _ in range(4):
            with batch_statistics_from(model, draw()):
                samples.append(torch.sigmoid(model(x)[:, 0]))
    np.testing.assert_allclose(scores, _tile_variance(samples), rtol=1e-4, atol=1e-9)
    assert (scores > 0).all()  # BatchNorm statistics vary between passes


def test_balanced_start():
    labels = np.array([CHANGED] * 5 + [UNCHANGED] * 20 + [-1] * 3)
    picks = balanced_start(labels, 4, seed=1)
    assert len(picks) == 8 and (labels[picks] == CHANGED).sum() == 4 and (labels[picks] == UNCHANGED).sum() == 4
    assert picks == balanced_start(labels, 4, seed=1)
    with pytest.raises(CrackalError, match="needs 6 changed tiles but the pool has 5"):
        balanced_start(labels, 6, seed=0)


@pytest.mark.parametrize("strategy,method", [("variance", "ensemble"), ("entropy", "mc_batchnorm"), ("random", "ensemble")])
def test_loop_tracks_balance_and_resumes(tmp_path, strategy, method):
    pool, test = _tiles(seed=0), _tiles(n=8, changed=4, seed=1)
    config = ChangeALConfig(strategy=strategy, method=method, ensemble_size=2, iterations=2, initial_per_class=2,
                            query_size=3, rounds=3, train=TINY)
    state = run_change_al(pool, test, config, tmp_path / "run")
    assert [r["labelled"] for r in state["rounds"]] == [4, 7, 10]
    first = state["rounds"][0]
    assert first["changed_share"] == 0.5 and first["changed_tiles"] == 2 and 0 <= first["auc"] <= 1
    assert len(list((tmp_path / "run" / "models").glob("*.pt"))) == 3 * config.members
    again = run_change_al(pool, test, ChangeALConfig(**{**config.to_dict(), "rounds": 4}), tmp_path / "run")
    assert again["rounds"][:3] == state["rounds"] and len(again["rounds"]) == 4  # continued, not redone


def test_simulation_shares_round_one_and_writes_a_report(tmp_path):
    pool, test = _tiles(seed=0), _tiles(n=8, changed=4, seed=1)
    report = simulate_change(pool, test, tmp_path, ["variance:mc_batchnorm", "random"], seeds=1, initial_per_class=2,
                             query_size=3, rounds=2, train=TINY)
    summary = json.loads((tmp_path / "report.json").read_text())
    assert set(summary["strategies"]) == {"mc_batchnorm-variance", "random"} and summary["reference_auc"] is not None
    # round 1 of both strategies is one model (same tiles, same seed), plus round 2 of each and the reference
    assert len(list((tmp_path / "models").glob("*.pt"))) == 4
    assert (tmp_path / "learning_curves.png").is_file() and "changed share" in report.read_text()


def test_unknown_options_are_user_errors():
    with pytest.raises(CrackalError, match="strategy must be one of variance, entropy, random; got 'bald'"):
        ChangeALConfig(strategy="bald")
    with pytest.raises(CrackalError, match="method must be one of"):
        ChangeALConfig(method="mc_dropout")


def test_the_segmentation_trainer_refuses_the_pair_model():
    from crackal.runs.config import TrainConfig

    with pytest.raises(CrackalError, match="siamese_unet takes image pairs"):
        TrainConfig(arch="siamese_unet")
