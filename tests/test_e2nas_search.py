"""The E²NAS strategy (``jaxnas.strategies.e2nas``): the latent step of Eq. 4.7 against closed
forms on a stand-in loss, Eq. 4.12's paths, and a whole search on the digits that resumes
bit-exact and derives the cell its final latent decodes to."""

import json

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from experiments.configs import e2nas_nb201, quickstart, vae_nb201
from jaxnas.engine import search
from jaxnas.spaces import get_space
from jaxnas.spaces.genotypes import NB201Genotype
from jaxnas.spaces.ops import NB201_OPS
from jaxnas.strategies import get_strategy, update_rule
from jaxnas.strategies.e2nas import E2NASSearch
from jaxnas.strategies.exploration import archive_log_density, latent_archive, remember
from jaxnas.vae import DVAE, init_params
from jaxnas.vae.gpnd import dag_point, decoder_map, gpnd_terms
from jaxnas.vae.train import load_vae, train_vae

K = len(NB201_OPS)
LR, WEIGHT_DECAY, ADAM_EPS = 3e-4, 1e-3, 1e-8  # optim_alpha's Adam defaults (GDAS's)


@pytest.fixture(scope="module")
def space():
    return get_space(name="nb201", C=4, N=1)


@pytest.fixture(scope="module")
def vae_and_params():
    vae = DVAE(num_ops=K, num_vertices=8, hidden=8, latent=30)
    return vae, init_params(vae, jax.random.key(0))


def _strategy(space, vae_and_params, **options):
    vae, params = vae_and_params
    return E2NASSearch(space, update_rule(None, ("adam",)), vae, params, **options)


class StandInProblem:
    """The pieces of ``SearchProblem`` that ``update_arch`` uses, with the val loss replaced by
    the linear ``sum_k sum(C_k * weights_k)`` over the cell types so that its gradient has a
    closed form; ``coefficients``: ``{cell_key: C_k}``."""

    def __init__(self, coefficients, planned_steps=10):
        self.coefficients, self.planned_steps = coefficients, planned_steps

    def images(self, key, images):
        del key
        return images

    def loss(self, params, batch_stats, weights, x, y):
        del params, x, y
        loss = sum(jnp.sum(self.coefficients[k] * weights[k]) for k in weights)
        return loss, (batch_stats, jnp.float32(0))

    def progress(self, step):
        return jnp.minimum(step / self.planned_steps, 1.0)


def _arch_step(strategy, steps=(0,), seed=0):
    """The state after ``train_path``, the stand-in problem, and ``update_arch``'s result on
    that state at each of ``steps`` (one compiled program for all)."""
    arch = strategy.init(jax.random.key(seed), None)
    arch, _, path = strategy.train_path(arch, None, None, 0)
    arch = strategy.with_path(arch, path)
    batches = {"val": {"image": jnp.zeros((1, 2, 8, 8, 1)), "label": jnp.zeros((1, 2), int)}}
    c = np.random.default_rng(seed).normal(size=(6, K))
    problem = StandInProblem({"cell": jnp.asarray(c, jnp.float32)})

    @jax.jit
    def update(step):
        state = type("State", (), dict(arch=arch, step=step, rng=jax.random.key(1), params={},
                                       batch_stats={}))  # the fields update_arch reads
        return strategy.update_arch(state, batches, problem)

    results = [update(jnp.int32(step)) for step in steps]
    return arch, problem, results[0] if len(steps) == 1 else results


def _first_adam_update(z, grad):
    """The first step of optim_alpha's rule, ``add_decayed_weights`` then Adam: with the
    gradient g + wd z, Adam's bias-corrected moments are g and g^2."""
    g = grad + WEIGHT_DECAY * np.asarray(z, np.float64)
    return -LR * g / (np.abs(g) + ADAM_EPS)


def _assert_first_adam_step(arch, new, grad):
    z = arch.latent["cell"]
    np.testing.assert_allclose(np.asarray(new.latent["cell"], np.float64) - np.asarray(z),
                               _first_adam_update(z, grad), rtol=1e-3, atol=1e-8)


def _density_grad(strategy, arch):
    """grad log p_A at the latent, with A the archive after it remembers the latent: built
    from the GPND pieces."""
    vae, params = strategy.vae, arch.vae_params
    decoder = decoder_map(vae, params)
    z = arch.latent["cell"]
    point = dag_point(vae, vae.apply({"params": params}, z[None], method=DVAE.decode))[0]
    norm = gpnd_terms(decoder, z, point, lambda v: 0.0, lambda r: 0.0).residual_norm
    archive = remember(latent_archive(30, strategy.archive_size), z, norm)
    return jax.grad(lambda v: archive_log_density(archive, decoder, v, point).log_density)(z)


def test_the_latent_moves_along_eq_4_7_with_gamma_sig_gamma_of_the_search_fraction(
        space, vae_and_params):
    strategy = _strategy(space, vae_and_params, b=10.0)
    steps = (0, 5, 9)  # gamma near 1, 0.5 and near 0
    arch, problem, results = _arch_step(strategy, steps)
    # ste_logits: d/dz sum(C * (onehot - sg(s) + s)), s = softmax(z as [6, 5]), is the softmax
    # Jacobian applied to C: s * (C - sum(s * C)) row by row.
    z = np.asarray(arch.latent["cell"], np.float64)
    s = jax.nn.softmax(z.reshape(6, K), -1)
    c = np.asarray(problem.coefficients["cell"], np.float64)
    val_grad = (s * (c - np.sum(s * c, -1, keepdims=True))).ravel()
    density_grad = np.asarray(_density_grad(strategy, arch), np.float64)
    assert np.all(np.isfinite(density_grad)) and np.linalg.norm(density_grad) > 0
    for step, (new, metrics) in zip(steps, results):
        gamma = 1 - 1 / (1 + np.exp(-(2 * step / problem.planned_steps - 1) * 10))
        np.testing.assert_allclose(metrics["gamma"], gamma, rtol=1e-5)
        np.testing.assert_allclose(metrics["arch/val_grad_norm"], np.linalg.norm(val_grad),
                                   rtol=1e-5)
        np.testing.assert_allclose(metrics["arch/density_grad_norm"],
                                   np.linalg.norm(density_grad),
                                   rtol=1e-3)  # float32 through a Gram matrix of rank 8 of 30
        np.testing.assert_allclose(metrics["val_loss"], np.sum(c * np.eye(K)[arch.path["cell"]]),
                                   rtol=1e-5)
        _assert_first_adam_step(arch, new, (1 - gamma) * val_grad + gamma * density_grad)
        assert int(new.archive["cell"].size) == 1 and int(metrics["arch/archive_size"]) == 1
        np.testing.assert_array_equal(new.archive["cell"].paths["latent"][0],
                                      arch.latent["cell"])


def test_a_constant_gamma_is_the_configured_one(space, vae_and_params):
    strategy = _strategy(space, vae_and_params, exploration="constant", gamma=0.2)
    for step in (0, 9):
        assert float(strategy._gamma(StandInProblem(None), step)) == np.float32(0.2)


def test_the_decoder_st_gradient_flows_through_the_decoders_operation_probabilities(
        space, vae_and_params):
    strategy = _strategy(space, vae_and_params, mode="decoder_st", exploration="constant",
                         gamma=0.0)
    arch, problem, (new, metrics) = _arch_step(strategy)
    vae, params = vae_and_params

    def expected_loss(v):  # sum(C * p(v)) over the op vertices of the decoded path
        probs = vae.apply({"params": params}, v[None], method=DVAE.decode_probs)
        return jnp.sum(problem.coefficients["cell"] * probs.types[0, 1:-1, :K])

    grad = np.asarray(jax.grad(expected_loss)(arch.latent["cell"]), np.float64)
    assert np.linalg.norm(grad) > 0
    np.testing.assert_allclose(metrics["arch/val_grad_norm"], np.linalg.norm(grad), rtol=1e-4)
    _assert_first_adam_step(arch, new, grad)


def test_the_weight_step_trains_the_current_complementary_and_previous_paths(
        space, vae_and_params):
    strategy = _strategy(space, vae_and_params, epsilon=0.5)
    arch = strategy.init(jax.random.key(0), None)
    for seed in range(20):
        rng = np.random.default_rng(seed)
        current, previous = rng.integers(0, K, 6), rng.integers(0, K, 6)
        state = arch._replace(previous={"cell": jnp.asarray(previous, jnp.int32)})
        _, terms = strategy.weight_terms(state, None, {"cell": jnp.asarray(current)},
                                         jax.random.key(seed))
        assert [c for c, _ in terms] == [0.5, 0.5, 0.5]
        got_current, complement, got_previous = (np.asarray(p["cell"]) for _, p in terms)
        np.testing.assert_array_equal(got_current, current)
        np.testing.assert_array_equal(got_previous, previous)
        # Coverage: alpha_i's (edge, op) weights lie in alpha_{i-1}'s or alpha_i^c's;
        # disjointness: alpha_{i-1} and alpha_i^c share none.
        assert np.all((current == previous) | (current == complement))
        assert np.all(complement != previous)
    _, alone = _strategy(space, vae_and_params, epsilon=0.0).weight_terms(
        arch, None, {"cell": jnp.zeros(6, jnp.int32)}, jax.random.key(0))
    assert [c for c, _ in alone] == [1.0]


@pytest.mark.parametrize("options,match", [
    ({"mode": "gumbel"}, r"config.strategy.mode .*'gumbel'"),
    ({"exploration": "linear"}, r"config.strategy.exploration .*'linear'"),
    ({"epsilon": 1.5}, r"epsilon .* \[0, 1\], got 1.5"),
    ({"gamma": -0.1}, r"config.strategy.gamma is out of range: -0.1"),
    ({"b": 0.0}, r"config.strategy.b is out of range: 0.0"),
    ({"archive_size": 0}, r"archive_size"),
])
def test_bad_options_are_named(space, vae_and_params, options, match):
    with pytest.raises(ValueError, match=match):
        _strategy(space, vae_and_params, **options)


def test_a_vae_that_does_not_fit_is_refused(space):
    small = DVAE(num_ops=K, num_vertices=8, hidden=8, latent=8)
    with pytest.raises(ValueError, match=r"reads the latent as 6 x 5 operation logits.*latent "
                                         r"has 8 dimensions"):
        E2NASSearch(space, update_rule(None, ("adam",)), small, None)
    wrong = DVAE(num_ops=K, num_vertices=6, hidden=8, latent=30)
    with pytest.raises(ValueError, match=r"DAGs of 6 vertices"):
        E2NASSearch(space, update_rule(None, ("adam",)), wrong, None)
    darts = get_space(name="darts", C=4, layers=3)
    with pytest.raises(ValueError, match=r"DAGs of 8 vertices and 5 operation types, not darts "
                                         r"cells \(11 and 8\).*vae_darts.py"):
        E2NASSearch(darts, update_rule(None, ("adam",)), small, None)
    fewer = get_space(name="darts", C=4, layers=3, ops=("none", "skip_connect", "sep_conv_3x3"))
    with pytest.raises(ValueError, match=r"DARTS space with its eight.*'darts' space with "
                                         r"operations \('none', 'skip_connect'"):
        E2NASSearch(fewer, update_rule(None, ("adam",)), small, None)


def test_a_missing_vae_is_named(space, tmp_path):
    with pytest.raises(ValueError, match=r"config.strategy.vae must be the workdir .*train_vae"):
        get_strategy("e2nas", space)
    with pytest.raises(FileNotFoundError, match=r"holds no VAE run .*train_vae"):
        get_strategy("e2nas", space, vae=str(tmp_path / "nothing"))


# ------------------------------------------------------------------ the whole search


@pytest.fixture(scope="module")
def vae_workdir(tmp_path_factory):
    config = vae_nb201.get_config("small")
    config.model.hidden = 8
    config.update(max_steps=2, log_every=1, checkpoint_every=2, eval_every=0, prior_samples=0)
    workdir = str(tmp_path_factory.mktemp("vae"))
    train_vae(config, workdir)
    return workdir


def _search_config(vae, **strategy):
    c = quickstart.get_config()
    c.space.C, c.batch_size, c.epochs, c.epoch_steps = 4, 16, 2, 2
    c.log_every, c.checkpoint_every, c.eigenvalue_every = 1, 2, 0
    c.strategy = ml_collections.ConfigDict(
        {**e2nas_nb201.get_config().strategy.to_dict(), "vae": vae, **strategy})
    return c


@pytest.mark.slow
def test_a_search_resumes_bit_exact_and_derives_the_cell_its_latent_decodes_to(
        vae_workdir, tmp_path):
    config = _search_config(vae_workdir)
    full = search(config, str(tmp_path / "full"))
    config.max_steps = 3
    search(config, str(tmp_path / "part"))
    config.max_steps = 0
    resumed = search(config, str(tmp_path / "part"))
    chex.assert_trees_all_equal(jax.device_get(full.state), jax.device_get(resumed.state))

    arch = full.state.arch
    assert int(full.state.step) == 4 and int(arch.archive["cell"].size) == 4
    vae, params = load_vae(vae_workdir)
    chex.assert_trees_all_equal(jax.device_get(arch.vae_params), jax.device_get(params))
    decoded = vae.apply({"params": params}, arch.latent["cell"][None], method=DVAE.decode)
    cell = NB201Genotype(tuple(NB201_OPS[t] for t in np.asarray(decoded.types[0, 1:-1])))
    saved = json.loads((tmp_path / "full" / "genotype.json").read_text())
    assert saved["arch_str"] == cell.arch_str == str(full.genotype)
    # The archive holds the latents of the steps, oldest first: the first is the initial one,
    # 1e-3 N(0, I) with the strategy's key of init_state, split by cell type (one here).
    k_arch = jax.random.split(jax.random.PRNGKey(config.seed), 3)[1]
    np.testing.assert_allclose(arch.archive["cell"].paths["latent"][0],
                               1e-3 * jax.random.normal(jax.random.split(k_arch, 1)[0], (30,)),
                               rtol=1e-6)
    logged = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").open()]
    assert [m["step"] for m in logged] == [1, 2, 3, 4]
    assert all(np.isfinite(m["arch/log_density"]) for m in logged)


def test_the_configs_build_the_papers_search(vae_workdir):
    from jaxnas.engine import build

    for args, mode in (("", "ste_logits"), ("decoder_st", "decoder_st"),
                       ("decoder_st,digits", "decoder_st")):
        config = e2nas_nb201.get_config(args)
        config.dataset = "digits"  # the paper's CIFAR-10 needs a download
        config.strategy.vae = vae_workdir
        setup = build(config)
        strategy = setup.strategy
        assert (strategy.name, strategy.mode, strategy.epsilon, strategy.exploration, strategy.b,
                strategy.archive_size) == ("e2nas", mode, 0.5, "sigmoid", 10.0, 1000)
        assert {k: tuple(v) for k, v in setup.space.arch_shapes().items()} == {"cell": (6, K)}
    full = e2nas_nb201.get_config()
    assert (full.epochs, full.batch_size, full.space.C, full.space.N) == (240, 64, 16, 5)
    with pytest.raises(ValueError, match=r"':decoder_st', ':digits' or both.*'gumbel'"):
        e2nas_nb201.get_config("gumbel")
