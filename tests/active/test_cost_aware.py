"""Cost-aware selection in the loop: the option, the simulated labeller's times, seconds per round."""

import json

import numpy as np
import pytest

from crackal.active.config import ALConfig
from crackal.active.loop import run_round
from crackal.active.store import ProjectStore
from crackal.errors import OptionError
from tests.active.conftest import FAST, make_project


def test_cost_aware_is_an_option_checked_like_the_others():
    config = ALConfig()
    assert config.cost_aware is False
    assert config.with_settings(["cost_aware=true"]).cost_aware is True
    with pytest.raises(OptionError, match="cost_aware"):
        config.with_settings(["cost_aware=yes"])
    with pytest.raises(OptionError, match="not random"):
        ALConfig(strategy="random", cost_aware=True)
    with pytest.raises(OptionError, match="cost_aware"):
        ALConfig(task="detection", cost_aware=True)
    from crackal.active.simulate import run_options

    assert run_options("bald+diverse+cost") == {"strategy": "bald", "selection": "diverse", "cost_aware": True}
    with pytest.raises(OptionError, match=r"\+cost"):
        run_options("bald+cheap")


def test_a_cost_aware_round_records_its_cost_model(tmp_path, al_data, monkeypatch):
    import crackal.active.effort as effort

    root = make_project(tmp_path / "p", al_data, strategy="bald", cost_aware=True)
    run_round(root)  # 4 simulated times: below MIN_MEASURED, the config's estimate
    store = ProjectStore(root)
    efforts = store.label_efforts()
    assert len(efforts) == 4 and {e["source"] for e in efforts} == {"simulated"}
    assert all(e["active_seconds"] >= 10 for e in efforts)
    cost = store.rounds()[0]["metrics"]["cost_model"]
    assert cost["source"] == "estimate" and cost["intercept"] == 30.0 and cost["measured"] == 4
    assert cost["selected_seconds"] == [30.0] * 3
    store.close()
    monkeypatch.setattr(effort, "MIN_MEASURED", 5)
    run_round(root)  # 7 simulated times: fitted on them
    store = ProjectStore(root)
    cost = store.rounds()[1]["metrics"]["cost_model"]
    assert cost["source"] == "measured" and cost["measured"] == 7 and cost["residual_seconds"] < 0.01
    assert len(cost["selected_seconds"]) == 3 and all(s >= 1 for s in cost["selected_seconds"])
    queued = [record.name for record, _, _ in store.queue()]
    store.close()
    assert len(queued) == 3


def test_a_tiny_simulation_records_labelling_seconds_per_round(tmp_path, al_data):
    from crackal.active.simulate import simulate
    from crackal.data.layout import find_pairs

    report = simulate(find_pairs(al_data), tmp_path / "sim", ["random", "bald", "bald+cost"], seeds=2, rounds=2, heldout=4,
                      reference=False, initial=4, query_size=3, iterations=3, stop_set_size=0,
                      train={**FAST, "crop_size": 32, "base_channels": 4, "samples_per_epoch": 4})
    summary = json.loads((report.parent / "report.json").read_text())
    from crackal.active.report import project_history

    for strategy in ("random", "bald", "bald+cost"):
        history = project_history(tmp_path / "sim" / strategy / "seed0")
        assert len(history["seconds"]) == 2 and history["seconds"][1] > history["seconds"][0] >= 4 * 10
    first = [project_history(tmp_path / "sim" / s / "seed1")["seconds"][0] for s in ("random", "bald", "bald+cost")]
    assert len(set(first)) == 1  # one start per seed
    by_time = summary["by_time"]
    assert len(by_time["hours"]) == 5 and set(by_time["strategies"]) == {"random", "bald", "bald+cost"}
    assert set(by_time["paired"]) == {"bald - random", "bald+cost - random", "bald+cost - bald"}
    paired = by_time["paired"]["bald+cost - bald"]
    assert paired["seeds"] == 2 and len(paired["f1_at_hours"]["mean"]) == 5
    assert "## F1 against labelling time" in report.read_text()
    from crackal.active.time_curves import f1_at_hours

    run = {"seconds": [40.0, 80.0], "f1": [0.2, 0.4]}
    assert f1_at_hours(run, np.array([0, 20, 40]) / 3600).tolist() == pytest.approx([0.2, 0.3, 0.4])  # after the first round
