"""The single-path searches RandomNAS and GDAS (spec 002 sections 0.5, 2.5): steps that train
only the sampled path, GDAS's temperature schedule, selection by scoring candidates, resume, and
bad options."""

import json

import jax
import numpy as np
import pytest

from jaxnas.data import data_mesh, replicated, to_global
from jaxnas.engine.search_loop import build, make_step
from jaxnas.spaces import get_space
from jaxnas.spaces.paths import path_genotype
from jaxnas.spaces.single_path import op_owners
from jaxnas.strategies import get_strategy


def _config(tiny_config, name, **overrides):
    options = {"strategy.name": name, "epochs": 3, "max_steps": 8, "log_every": 2,
               "checkpoint_every": 4}
    if name == "randomnas":
        options.update({"strategy.population": 4, "strategy.sample_size": 2,
                        "strategy.cycles": 3})
    config = tiny_config(**options)
    for key, value in overrides.items():
        config[key] = value
    return config


@pytest.mark.parametrize("name", ["randomnas", "gdas"])
def test_one_step_moves_only_the_sampled_path(tiny_config, name):
    # The step of the search of the resume test below (make_step on sharded batches).
    setup = build(_config(tiny_config, name))
    mesh = data_mesh()
    state = jax.device_put(setup.initial_state(), replicated(mesh))
    x = np.zeros((1, 16, 8, 8, 1), np.uint8) + np.arange(16, dtype=np.uint8)[
        None, :, None, None, None]
    batches = {"train": {"image": x, "label": (np.arange(16, dtype=np.int32) % 10)[None]}}
    if setup.strategy.val_batches:
        batches["val"] = batches["train"]
    step = make_step(setup.strategy, setup.problem, setup.per_step, mesh)
    before = jax.device_get(state)  # the step donates the state it is given
    new, metrics = step(state, to_global(batches, mesh, 1))
    state = before
    path = jax.device_get(new.arch.path)
    owners = op_owners(setup.space, state.params)
    moved = {"chosen": 0, "unchosen": 0}
    for owner, old, after in zip(
            jax.tree.leaves(owners, is_leaf=lambda o: o is None or isinstance(o, tuple)),
            jax.tree.leaves(state.params), jax.tree.leaves(new.params)):
        if owner is None:
            continue
        chosen = int(path[owner[0]][owner[1]]) == owner[2]
        moved["chosen" if chosen else "unchosen"] += int(not np.array_equal(old, after))
    assert moved["chosen"] > 0 and moved["unchosen"] == 0
    assert np.isfinite(metrics["train_loss"])
    if name == "gdas":  # the architecture moved through the straight-through sample
        assert not np.allclose(new.arch.alpha["cell"], state.arch.alpha["cell"])
        assert float(metrics["tau"]) == 10.0


def test_gdas_temperature_falls_linearly_per_epoch(tiny_config):
    setup = build(_config(tiny_config, "gdas", epochs=3))
    per_epoch = setup.steps_per_epoch
    taus = [float(setup.strategy.tau(setup.problem, step))
            for step in (0, per_epoch - 1, per_epoch, 2 * per_epoch, 3 * per_epoch - 1)]
    np.testing.assert_allclose(taus, [10.0, 10.0, 5.05, 0.1, 0.1], rtol=1e-5)


@pytest.mark.slow
def test_randomnas_selects_by_scoring_candidates_and_resumes_bit_exact(tiny_config,
                                                                      resumed_search, tmp_path):
    config = _config(tiny_config, "randomnas")
    full, _ = resumed_search(config, stop=4)
    with open(tmp_path / "full" / "selection.json") as f:
        candidates = json.load(f)["candidates"]
    with open(tmp_path / "full" / "genotype.json") as f:
        saved = json.load(f)
    assert len(candidates) == 4 + 3  # the population, then one child per cycle
    best = max(candidates, key=lambda c: c["val_accuracy"])
    assert saved["selection"]["val_accuracy"] == best["val_accuracy"]
    assert saved["arch_str"] == str(full.genotype)
    assert any(c["genotype"] == str(full.genotype) and c["val_accuracy"] == best["val_accuracy"]
               for c in candidates)


@pytest.mark.slow
def test_gdas_resumes_bit_exact_and_derives_the_argmax(tiny_config, resumed_search):
    full, _ = resumed_search(_config(tiny_config, "gdas"), stop=5)
    alpha = np.asarray(full.state.arch.alpha["cell"])
    space = get_space("nb201", C=4, N=1)
    assert full.genotype == path_genotype(space, {"cell": np.argmax(alpha, -1)})


@pytest.mark.parametrize("name,options,match", [
    ("gdas", {"tau_min": 0.0}, "tau_min"),
    ("gdas", {"tau_min": 2.0, "tau_max": 1.0}, "tau_max"),
    ("randomnas", {"selection": "bayesian"}, "selection"),
    ("randomnas", {"population": 3, "sample_size": 4}, "sample_size"),
    ("randomnas", {"num_candidates": 0}, "num_candidates"),
    ("randomnas", {"cycles": -1}, "cycles"),
])
def test_bad_single_path_options_are_named(name, options, match):
    with pytest.raises(ValueError, match=match):
        get_strategy(name, get_space("nb201", C=4, N=1), None, **options)
