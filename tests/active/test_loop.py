import shutil

import numpy as np
import pytest
from PIL import Image

from crackal.active import segmentation_round as round_module
from crackal.active.config import ALConfig
from crackal.active.labels import export_queue, import_labels
from crackal.active.loop import run_loop, run_round
from crackal.active.project import create_project
from crackal.active.store import ProjectStore, open_project
from crackal.errors import CrackalError
from tests.active.conftest import fast_config, make_project


def counts(root):
    store = ProjectStore(root)
    try:
        return len(store.labelled()), len(store.queue()), len(store.unlabelled()), [r["state"] for r in store.rounds()]
    finally:
        store.close()


def test_simulation_rounds(tmp_path, al_data):
    root = make_project(tmp_path / "p", al_data)
    assert counts(root) == (0, 4, 10, [])
    result = run_round(root)
    assert result.round == 1 and result.labelled == 4 and len(result.selected) == 3
    assert set(result.metrics) >= {"strict", "tol2", "loss"}
    assert counts(root) == (4, 3, 7, ["done"])
    reason = run_loop(root, rounds=3)
    assert reason == "3 rounds done"
    assert counts(root)[0] == 10 and counts(root)[3] == ["done"] * 3
    store = ProjectStore(root)
    labelled = store.labelled()
    assert {r.labelled_by for r in labelled} == {"oracle"}
    assert sorted({r.labelled_round for r in labelled}) == [0, 2, 3]
    rounds = store.rounds()
    assert all(r["class_weights"] and r["checkpoint"] for r in rounds)
    assert rounds[0]["class_weights"] != rounds[2]["class_weights"]  # recomputed from each round's labels
    store.close()


def test_same_seed_same_selections(tmp_path, al_data):
    chosen = []
    for name in ("a", "b"):
        root = make_project(tmp_path / name, al_data, seed=7)
        run_loop(root, rounds=2)
        store = ProjectStore(root)
        chosen.append(sorted((r.labelled_round, r.name) for r in store.labelled()))
        store.close()
    assert chosen[0] == chosen[1]


def test_budget_stops_the_loop(tmp_path, al_data):
    root = make_project(tmp_path / "p", al_data, budget=7)
    assert run_loop(root) == "label budget of 7 images reached"
    assert counts(root)[0] == 7


@pytest.mark.parametrize("phase", ["train", "evaluate", "score", "finish"])
def test_a_crash_in_any_phase_loses_nothing(tmp_path, al_data, monkeypatch, phase):
    root = make_project(tmp_path / "p", al_data)
    run_round(root)
    before = counts(root)
    targets = {
        "train": (round_module, "train"),
        "evaluate": (round_module, "evaluate_model"),
        "score": (round_module, "score_pool"),
        "finish": (ProjectStore, "finish_round"),
    }
    owner, name = targets[phase]
    original = getattr(owner, name)

    def crash(*args, **kwargs):
        if phase == "finish":  # killed inside the transaction, after part of its writes
            with args[0].transaction() as tx:
                tx.execute("UPDATE rounds SET state = 'done'")
                raise KeyboardInterrupt("killed")
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(owner, name, crash)
    with pytest.raises(KeyboardInterrupt):
        run_round(root)
    monkeypatch.setattr(owner, name, original)
    labelled, queued, pool, states = counts(root)
    assert labelled == before[0] + before[1]  # the queue was labelled before the crash and stays labelled
    assert states[0] == "done" and states[-1] != "done"
    result = run_round(root)  # picks up the interrupted round
    assert result.round == 2 and counts(root)[3] == ["done", "done"]
    assert counts(root)[0] == labelled and counts(root)[1] == 3


def test_human_labelling_project(tmp_path, al_data):
    from crackal.data.layout import find_pairs

    pairs = find_pairs(al_data)
    pool = [(p.name, p.image, None) for p in pairs[:14]]
    held = [(p.name, p.image, p.mask) for p in pairs[14:]]
    config = fast_config(simulation=False, initial=3, query_size=2)
    root = tmp_path / "human"
    create_project(root, pool, held, config).close()
    with pytest.raises(CrackalError, match="3 images wait for labels"):
        run_round(root)
    store, _ = open_project(root)
    out = export_queue(store, tmp_path / "queue", ALConfig.from_dict(store.settings()))
    assert len(list((out / "images").iterdir())) == 3 and (out / "queue.csv").is_file()
    # the labeller copies the true masks over the empty pre-annotations
    truth = {p.name: p.mask for p in pairs}
    for mask in (out / "masks").iterdir():
        shutil.copyfile(truth[mask.stem], mask)
    assert import_labels(store, out, 2, labeller="ana") == 3
    assert {r.labelled_by for r in store.labelled()} == {"ana"}
    store.close()
    result = run_round(root)
    assert result.labelled == 3 and len(result.selected) == 2


def test_bad_imports_change_nothing(tmp_path, al_data):
    root = make_project(tmp_path / "p", al_data)
    store, _ = open_project(root)
    labels = tmp_path / "labels"
    labels.mkdir()
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(labels / "not_in_project.png")
    with pytest.raises(CrackalError, match="no image called 'not_in_project'"):
        import_labels(store, labels, 2)
    (labels / "not_in_project.png").unlink()
    name = store.queue()[0][0].name
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(labels / f"{name}.png")
    Image.fromarray(np.zeros((32, 64), np.uint8)).save(labels / f"{store.queue()[1][0].name}.png")
    with pytest.raises(CrackalError, match="mask is 64x32 but image"):
        import_labels(store, labels, 2)
    assert len(store.labelled()) == 0 and not list((root / "labels").iterdir())
    store.close()


def test_bad_project_input(tmp_path, al_data):
    with pytest.raises(CrackalError, match="pool is empty"):
        create_project(tmp_path / "a", [], [("h", al_data / "images" / "synth_000.png", al_data / "masks" / "synth_000.png")], ALConfig())
    with pytest.raises(CrackalError, match="strategy must be one of bald, .*; got 'guess'"):
        ALConfig(strategy="guess")
    with pytest.raises(CrackalError, match="no crackal project"):
        run_round(tmp_path / "nothing")
    make_project(tmp_path / "p", al_data)
    with pytest.raises(CrackalError, match="already holds a project"):
        make_project(tmp_path / "p", al_data)


def test_coreset_cold_start(tmp_path, al_data):
    root = make_project(tmp_path / "p", al_data, cold_start="coreset")
    assert counts(root)[1] == 4


def test_downscaled_network_in_the_loop(tmp_path, al_data):
    from crackal.runs.checkpoint import load_model

    root = make_project(tmp_path / "p", al_data, downscale=2, cold_start="coreset")
    result = run_round(root)
    assert len(result.selected) == 3 and result.pool_uncertainty > 0
    model, _ = load_model(root / "rounds" / "001")
    assert model.downscale == 2
    with pytest.raises(CrackalError, match="downscale must be one of 1, 2, 4, 8; got 3"):
        ALConfig(train={"downscale": 3})
    with pytest.raises(CrackalError, match="train has no option 'downscale'"):
        ALConfig(task="detection", train={"downscale": 2})


@pytest.mark.parametrize("method,strategy", [("mc_batchnorm", "variance"), ("ensemble", "entropy"), ("mc_dropout", "margin")])
def test_other_uncertainty_methods_in_the_loop(tmp_path, al_data, method, strategy):
    root = make_project(tmp_path / "p", al_data, method=method, strategy=strategy, ensemble_size=2,
                        selection="stochastic", reduction="topk")
    result = run_round(root)
    assert len(result.selected) == 3 and result.pool_uncertainty > 0
    if method == "ensemble":
        assert (root / "rounds" / "001" / "member1" / "checkpoints" / "best.pt").is_file()


def test_strategies_of_one_seed_share_the_first_round(tmp_path, al_data):
    from crackal.active.simulate import share_first_round, share_first_round_of_seed

    first = make_project(tmp_path / "bald" / "seed0", al_data, strategy="bald")
    second = make_project(tmp_path / "random" / "seed0", al_data, strategy="random")
    assert not share_first_round_of_seed(tmp_path, second)  # round 1 not trained yet: nothing to share
    run_round(first)
    other_seed = make_project(tmp_path / "random" / "seed1", al_data, strategy="random", seed=1)
    ensemble = make_project(tmp_path / "ensemble" / "seed0", al_data, strategy="random", method="ensemble", ensemble_size=2)
    assert not share_first_round_of_seed(tmp_path, other_seed)  # other initial images
    assert not share_first_round(first, ensemble)  # another training set-up
    assert share_first_round_of_seed(tmp_path, second) and not share_first_round_of_seed(tmp_path, second)
    result = run_round(second)
    a = ProjectStore(first).rounds()[0]
    assert result.metrics == a["metrics"] and a["class_weights"] == ProjectStore(second).rounds()[0]["class_weights"]
    last = "rounds/001/checkpoints/last.pt"
    assert (first / last).read_bytes() == (second / last).read_bytes()  # not retrained (timings would differ)


def test_a_round_with_the_imagenet_encoder_and_diverse_batches(tmp_path, al_data):
    from crackal.runs.checkpoint import load_model

    root = make_project(tmp_path / "p", al_data, arch="smp_unet", encoder="tu-tf_efficientnet_lite0", encoder_weights="auto",
                        selection="diverse", diversity_candidates=2, cold_start="coreset")
    result = run_round(root)
    assert result.labelled == 4 and len(result.selected) == 3 and result.pool_uncertainty > 0
    model, state = load_model(root / "rounds" / "001")
    assert state["config"]["encoder_weights"] == "imagenet" and model.input_norm.scale == 0.5
    assert counts(root)[:3] == (4, 3, 7)
    with pytest.raises(CrackalError, match="diverse needs a segmentation model"):
        ALConfig(task="detection", selection="diverse")
