"""The search interface (Search API v2): strategy-owned state, the mode and samples of the
architecture weights, run-time decisions to move the architecture without recompiling, the one
clock of the weight learning rate, and a strategy written outside jaxnas (the README's
examples, executed)."""

import pathlib
import re

import jax
import numpy as np
import optax
import pytest

from jaxnas.data import data_mesh, replicated, to_global
from jaxnas.engine import build, search
from jaxnas.engine.search_loop import make_step
from jaxnas.spaces import get_space
from jaxnas.strategies import STRATEGIES, BilevelSearch, get_strategy

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _readme_block(heading: str) -> str:
    """The first python code block after the README heading ``heading``."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(heading):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def _steps(setup, state, count, seed=0):
    """Runs ``count`` steps of ``setup``'s jitted step (the search's program: ``make_step`` on
    sharded batches) on random digits batches; the states and metrics after each, and how often
    the step was traced."""
    traces = []
    strategy = setup.strategy
    original = strategy.step
    object.__setattr__(strategy, "step", lambda *a: (traces.append(1), original(*a))[1])
    mesh = data_mesh()
    step = make_step(strategy, setup.problem, setup.per_step, mesh)
    state = jax.device_put(state, replicated(mesh))
    rng, out = np.random.default_rng(seed), []
    for _ in range(count):
        batch = lambda n: {"image": rng.integers(0, 255, (n, 16, 8, 8, 1), dtype=np.uint8),  # noqa
                           "label": rng.integers(0, 10, (n, 16)).astype(np.int32)}
        batches = {"train": batch(setup.per_step["train"]), "val": batch(1)}
        state, metrics = step(state, to_global(batches, mesh, 1))
        out.append((jax.device_get(state), jax.device_get(metrics)))
    object.__delattr__(strategy, "step")
    return out, len(traces)


def test_the_architecture_moves_at_run_time_decisions_without_recompiling(tiny_config):
    config = tiny_config(**{"strategy.name": "constrained", "strategy.schedule": "fimt",
                            "strategy.fimt_tau0": 30.0})
    setup = build(config)
    history, traces = _steps(setup, setup.initial_state(), 25)
    updates = [int(m["arch/alpha_updates"]) for _, m in history]
    moved = np.diff([0] + updates)
    assert traces == 1
    assert set(moved) == {0, 1} and 2 <= sum(moved) <= 20  # both decisions, one program
    # The architecture moved exactly at the steps the FIMT rule says: ewma < tau before the step.
    for (before, _), (after, metrics) in zip(history, history[1:]):
        sched = before.arch.schedule
        expected = bool(sched.ewma < sched.tau)
        assert int(after.arch.updates) - int(before.arch.updates) == expected
        changed = not np.array_equal(before.arch.alpha["cell"], after.arch.alpha["cell"])
        assert changed == expected


def test_one_clock_the_weight_learning_rate_counts_weight_updates(tiny_config):
    # test_strategies.py::test_idarts_search_resumes_equal's search (the same program).
    config = tiny_config(**{"strategy.name": "idarts", "strategy.inner_steps": 2,
                            "strategy.neumann_terms": 1, "epochs": 1})
    setup = build(config)
    history, _ = _steps(setup, setup.initial_state(), 3)
    schedule = setup.problem.w_lr
    for k, (state, metrics) in enumerate(history):
        count = int(optax.tree_utils.tree_get(state.opt_w, "count"))
        assert count == 2 * (k + 1)  # T = 2 weight updates per search step
        assert metrics["lr"] == pytest.approx(float(schedule(2 * k)))
        assert float(setup.problem.weight_lr(state.opt_w)) == pytest.approx(
            float(schedule(count)))


def test_weight_steps_run_as_one_scan_of_canonical_convolutions(tiny_config):
    # T = 3 weight steps: one lax.scan whose body is one weight step, every convolution in it
    # canonical (XLA:CPU runs other convolutions' gradients far slower in a loop body). That the
    # scanned steps equal T steps by hand: test_strategies.py::test_one_step_is_its_composition.
    config = tiny_config(**{"strategy.name": "idarts", "strategy.inner_steps": 3,
                            "strategy.neumann_terms": 1})
    setup = build(config)
    batch = lambda n: {"image": np.zeros((n, 16, 8, 8, 1), np.uint8),  # noqa: E731
                       "label": np.zeros((n, 16), np.int32)}
    batches = {"train": batch(3), "val": batch(1)}
    jaxpr = jax.make_jaxpr(lambda s, b: setup.strategy.step(s, b, setup.problem))(
        setup.initial_state(), batches)
    scans = [eqn for eqn in jaxpr.eqns if eqn.primitive.name == "scan"]
    assert len(scans) == 1 and scans[0].params["length"] == 3
    body = str(scans[0].params["jaxpr"])
    assert "canonical_conv" in body and "conv_general_dilated" not in body


def test_arch_weights_are_the_mode_without_a_key_and_samples_with_one():
    space = get_space("nb201", C=4, N=1)
    balenas = get_strategy("balenas", space, {"name": "vadam", "num_data": 100})
    arch = balenas.init(jax.random.PRNGKey(0), space.arch_shapes())
    mode = balenas.arch_weights(arch)["cell"]
    np.testing.assert_allclose(mode, jax.nn.softmax(arch.alpha["cell"], -1), rtol=1e-6)
    np.testing.assert_array_equal(balenas.arch_weights(arch)["cell"], mode)
    key = jax.random.PRNGKey(3)
    sample = balenas.arch_weights(arch, key)["cell"]
    assert not np.allclose(sample, mode, atol=1e-3)
    np.testing.assert_array_equal(balenas.arch_weights(arch, key)["cell"], sample)
    assert not np.allclose(balenas.arch_weights(arch, jax.random.PRNGKey(4))["cell"], sample)
    darts = get_strategy("darts")
    arch = darts.init(jax.random.PRNGKey(0), space.arch_shapes())
    np.testing.assert_array_equal(darts.arch_weights(arch, key)["cell"],
                                  darts.arch_weights(arch)["cell"])  # a deterministic relaxation


def test_the_readme_strategy_written_outside_jaxnas_searches(tmp_path, tiny_config):
    namespace = {}
    exec(_readme_block("#### Writing a strategy"), namespace)  # noqa: S102
    try:
        result = search(tiny_config(**{"strategy.name": "uniform_paths", "max_steps": 12}),
                        str(tmp_path / "run"))
        assert result.steps == 12 and np.isfinite(result.metrics["train_loss"])
        assert int(result.state.step) == 12 and result.state.arch["cell"].shape == (6, 5)
        # Its samples are one-hot architectures; its mode is uniform.
        strategy = namespace["UniformPaths"]()
        sample = strategy.arch_weights(result.state.arch, jax.random.PRNGKey(0))["cell"]
        np.testing.assert_array_equal(np.sort(np.asarray(sample), -1)[:, -1], 1.0)
        np.testing.assert_allclose(strategy.arch_weights(result.state.arch)["cell"], 0.2)
        with pytest.raises(ValueError, match="no differentiable architecture parameters"):
            build(tiny_config(**{"strategy.name": "uniform_paths", "eigenvalue_every": 5}))
        with pytest.raises(ValueError, match="registered already"):
            namespace["register_strategy"]("uniform_paths", lambda space, optim_alpha: None)
    finally:
        STRATEGIES.pop("uniform_paths", None)


def test_the_readme_composed_update_rule_builds_its_search():
    namespace = {}
    exec(_readme_block("#### Composing an update rule"), namespace)  # noqa: S102
    strategy, space = namespace["strategy"], namespace["space"]
    assert isinstance(strategy, BilevelSearch)
    arch = strategy.init(jax.random.PRNGKey(0), space.arch_shapes())
    assert optax.tree_utils.tree_get(arch.rule, "mask")["normal"].shape == (14, 7)
    assert optax.tree_utils.tree_get(arch.rule, "z")["normal"].shape == (14, 7)
    assert float(arch.alpha["normal"].mean()) == pytest.approx(1 / 7, abs=1e-3)  # CRB's init
