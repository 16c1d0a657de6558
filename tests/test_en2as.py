"""EN²AS (Zhang thesis ch. 2; spec 002 sections 1.2 and 1.6) as a strategy: the random warm-up
fills the archive with the trained paths, then each step is Eq. 2.6 on one member (the others
untouched) and trains the path the member decodes to; resume with the archive; bad values."""

import jax
import numpy as np
import pytest

from jaxnas.spaces import get_space
from jaxnas.strategies import get_strategy, novelty
from tests.test_nsas import run_steps


@pytest.fixture(scope="module")
def en2as_run():
    """EN²AS with S=3, k=2, n=4 on the tiny NB201 supernet: the setup, 6 states, 5 metrics
    (the step of the search of test_en2as_resumes_bit_exact_with_its_archive)."""
    return run_steps({"strategy.name": "en2as", "strategy.archive_size": 3, "strategy.k": 2,
                      "strategy.num_perturbations": 4, "strategy.gamma": 0.5,
                      "strategy.population": 4, "strategy.sample_size": 2,
                      "strategy.cycles": 2}, 5)


def test_warm_up_adds_the_trained_random_paths(en2as_run):
    _, states, metrics = en2as_run
    assert [int(s.arch.archive.size) for s in states] == [0, 1, 2, 3, 3, 3]
    for i in range(3):  # member i is the encoding of the path trained at step i + 1
        np.testing.assert_array_equal(states[3].arch.archive.paths["cell"][i],
                                      np.asarray(states[i + 1].arch.path["cell"], np.float32))
    assert [float(m["arch/novelty"]) for m in metrics[:3]] == [0.0, 0.0, 0.0]


def test_after_the_warm_up_one_member_takes_an_es_step(en2as_run):
    setup, states, metrics = en2as_run
    strategy = setup.strategy
    before, after = states[3], states[4]
    changed = [i for i in range(3) if not np.array_equal(
        before.arch.archive.paths["cell"][i], after.arch.archive.paths["cell"][i])]
    assert len(changed) <= 1  # only the chosen member moves
    # Recompute the step from its key: the same member, the same ES update, the same path.
    key = jax.random.fold_in(jax.random.fold_in(before.rng, before.step), 2)
    _, k_member, k_es = jax.random.split(key, 3)
    index = int(jax.random.randint(k_member, (), 0, 3))
    archive, path, es = novelty.en2as_step(
        k_es, before.arch.archive, index, strategy.encoding, strategy._distance, 2, 4, 1.0, 0.5)
    np.testing.assert_allclose(after.arch.archive.paths["cell"], archive.paths["cell"],
                               rtol=1e-6)
    np.testing.assert_array_equal(after.arch.path["cell"], path["cell"])
    member = before.arch.archive.paths["cell"][index]
    np.testing.assert_allclose(archive.paths["cell"][index],
                               member + 0.5 * np.asarray(es.grad["cell"]), rtol=1e-6)
    np.testing.assert_allclose(float(metrics[3]["arch/novelty"]), float(np.mean(es.novelty)),
                               rtol=1e-6)
    assert float(metrics[3]["arch/novelty"]) > 0


@pytest.mark.slow
def test_en2as_resumes_bit_exact_with_its_archive(tiny_config, resumed_search):
    # en2as_run's settings (its step is this search's program): the warm-up fills the archive
    # of 3 in steps 1-3, the resume from the checkpoint at step 4 takes ES steps 5-8.
    config = tiny_config(**{"strategy.name": "en2as", "max_steps": 8, "checkpoint_every": 4,
                            "strategy.archive_size": 3, "strategy.k": 2,
                            "strategy.num_perturbations": 4, "strategy.gamma": 0.5,
                            "strategy.population": 4, "strategy.sample_size": 2,
                            "strategy.cycles": 2})
    full, _ = resumed_search(config, stop=5)
    assert int(full.state.arch.archive.size) == 3


@pytest.mark.parametrize("options,match", [
    ({"archive_size": 1}, "archive_size"), ({"k": 0}, "k"), ({"archive_size": 5, "k": 5}, "k"),
    ({"sigma": 0.0}, "sigma"), ({"gamma": -1.0}, "gamma"), ({"distance": "cosine"}, "distance"),
    ({"num_perturbations": 0}, "num_perturbations"),
])
def test_bad_en2as_values_are_named(options, match):
    with pytest.raises(ValueError, match=match):
        get_strategy("en2as", get_space("nb201", C=4, N=1), None, **options)


def test_en2as_darts_encoding_needs_the_full_cell():
    with pytest.raises(ValueError, match="14-edge"):
        get_strategy("en2as", get_space("darts", C=4, layers=3, edges="fixed"), None)
