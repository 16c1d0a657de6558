"""E²NAS in the DARTS space: the graph VAE trained on drawn DARTS cells, the encoder's positions,
the latent step of the two cells with E²NAS-R's depth term, the complementary cells, and the
genotype derived from the latents."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import e2nas_cnn, vae_darts
from jaxnas.spaces import get_space
from jaxnas.spaces.genotypes import DARTS_EDGES, DartsGenotype
from jaxnas.spaces.ops import DARTS_OPS
from jaxnas.strategies import update_rule
from jaxnas.strategies.base import step_key
from jaxnas.strategies.e2nas import E2NASSearch
from jaxnas.vae import DVAE, init_params
from jaxnas.vae.codecs import DartsCodec
from jaxnas.vae.depth import depth_loss
from jaxnas.vae.train import cell_sets, load_vae, train_vae
from tests.test_e2nas_search import StandInProblem

CODEC = DartsCodec()
NONE = DARTS_OPS.index("none")


def _tiny_vae_config(**changes):
    c = vae_darts.get_config("small")
    c.model.hidden = 8
    c.update(cells=128, eval_cells=32, epochs=1, log_every=2, checkpoint_every=2,
             prior_samples=16, **changes)
    return c


@pytest.fixture(scope="module")
def vae_workdir(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("vae_darts"))
    train_vae(_tiny_vae_config(), workdir)
    return workdir


def test_a_darts_vae_trains_on_drawn_cells_and_checks_other_draws(vae_workdir):
    report = json.load(open(f"{vae_workdir}/report.json"))
    assert (report["space"], report["checked_cells"]) == ("darts", "held-out")
    assert (report["training_cells"], report["cells"], report["steps"]) == (128, 32, 4)
    assert 0 <= report["prior_valid_fraction"] <= 1
    vae, _ = load_vae(vae_workdir)
    assert (vae.num_vertices, vae.num_ops, vae.positions) == (11, 8, True)
    codec, train, checked = cell_sets(_tiny_vae_config())
    again = cell_sets(_tiny_vae_config())
    np.testing.assert_array_equal(train, again[1])  # a function of the seed
    assert train.shape == (128, 14) and checked.shape == (32, 14)
    assert not {tuple(c) for c in train} & {tuple(c) for c in checked}  # 10^9 cells: no overlap
    other = cell_sets(_tiny_vae_config(seed=1))[1]
    assert not np.array_equal(train, other)


def test_the_configs_are_the_nb201_vaes_on_darts_cells():
    full, small = vae_darts.get_config(), vae_darts.get_config("small")
    assert (full.space, full.model.hidden, full.model.latent, full.model.positions) == (
        "darts", 501, 30, True)
    assert (full.lr, full.batch_size, full.cells, full.epochs) == (1e-4, 32, 50_000, 20)
    assert (small.model.latent, small.space) == (30, "darts")
    with pytest.raises(ValueError, match=r"Unknown config argument 'tiny'"):
        vae_darts.get_config("tiny")


def _twins():
    """A cell whose nodes 4 and 5 read only the inputs and no node reads them, and the same
    cell with the two nodes swapped: different paths whose DAGs differ only by vertex order."""
    edge = {pair: e for e, pair in enumerate(DARTS_EDGES)}
    cell = np.full(14, NONE)
    cell[[edge[0, 2], edge[1, 2], edge[0, 3], edge[2, 3]]] = [1, 2, 3, 4]
    twin = cell.copy()
    cell[[edge[0, 4], edge[1, 4], edge[0, 5], edge[1, 5]]] = [5, 6, 7, 1]
    twin[[edge[0, 4], edge[1, 4], edge[0, 5], edge[1, 5]]] = [7, 1, 5, 6]
    return CODEC.dags(np.stack([cell, twin]))


@pytest.mark.parametrize("positions", [False, True])
def test_only_an_encoder_that_reads_positions_tells_swapped_nodes_apart(positions):
    dags = _twins()
    assert not np.array_equal(dags.types[0], dags.types[1])
    vae = DVAE(num_ops=8, num_vertices=11, hidden=16, latent=4, positions=positions)
    params = init_params(vae, jax.random.key(0))
    mean, _ = vae.apply({"params": params}, dags, method=DVAE.encode)
    gap = float(jnp.max(jnp.abs(mean[0] - mean[1])))
    if positions:
        assert gap > 1e-3
    else:
        assert gap < 1e-5  # the two DAGs are isomorphic: same types, edges relabelled


# ------------------------------------------------------------------ the latent step


@pytest.fixture(scope="module")
def darts_space():
    return get_space(name="darts", C=4, layers=3)


@pytest.fixture(scope="module")
def vae_and_params():
    vae = DVAE(num_ops=8, num_vertices=11, hidden=8, latent=6, positions=True)
    return vae, init_params(vae, jax.random.key(0))


def test_the_darts_latent_step_adds_e2nas_r_depth_gradient(darts_space, vae_and_params):
    """gamma = 0: the direction is grad L_val (through the decoder's op distributions on the
    decoded cells' edges) plus zeta grad L_depth with the step's depth key; each part's norm is
    checked against its own computation."""
    vae, params = vae_and_params
    strategy = E2NASSearch(darts_space, update_rule(None, ("adam",)), vae, params,
                           mode="decoder_st", exploration="constant", gamma=0.0,
                           depth_weight=0.05, depth_samples=4, depth_noise=0.5)
    arch = strategy.init(jax.random.key(3), None)
    arch = arch._replace(latent=jax.tree.map(lambda z: 300 * z, arch.latent))  # spread out
    arch, _, path = strategy.train_path(arch, None, None, 0)
    arch = strategy.with_path(arch, path)
    rng = np.random.default_rng(0)
    coefficients = {k: jnp.asarray(rng.normal(size=(14, 8)), jnp.float32)
                    for k in ("normal", "reduce")}
    batches = {"val": {"image": jnp.zeros((1, 2, 8, 8, 1)), "label": jnp.zeros((1, 2), int)}}
    state = type("State", (), dict(arch=arch, step=jnp.int32(4), rng=jax.random.key(1),
                                   params={}, batch_stats={}))
    new, metrics = jax.jit(lambda: strategy.update_arch(state, batches,
                                                        StandInProblem(coefficients)))()

    def val_loss(latents):  # sum(C * p) over the edges the decoded cells use
        total = 0.0
        for k in ("normal", "reduce"):
            probs = vae.apply({"params": params}, latents[k][None], method=DVAE.decode_probs)
            dag = vae.apply({"params": params}, latents[k][None], method=DVAE.decode)
            _, vertices = CODEC.decoded_cell(dag, probs)
            total = total + jnp.sum(coefficients[k] * CODEC.soft_weights(probs, vertices)[0])
        return total

    val_grad = jax.jit(jax.grad(val_loss))(arch.latent)  # one program, not op by op
    np.testing.assert_allclose(metrics["arch/val_grad_norm"],
                               np.sqrt(sum(np.sum(np.square(g)) for g in
                                           jax.tree.leaves(val_grad))), rtol=1e-4)

    def decode_probs(z, key):
        return vae.apply({"params": params}, z, key, method=DVAE.decode_probs)

    keys = jax.random.split(step_key(state, 6), 2)  # the step's depth key, by cell type
    depth = [jax.jit(jax.value_and_grad(lambda z, kk=kk: depth_loss(
        decode_probs, z, kk, CODEC.chain, 0.5, 4, 0.05)))(arch.latent[k])
        for k, kk in zip(("normal", "reduce"), keys)]
    np.testing.assert_allclose(metrics["arch/depth_loss"], sum(d for d, _ in depth), rtol=1e-5)
    np.testing.assert_allclose(metrics["arch/depth_grad_norm"],
                               np.sqrt(sum(np.sum(np.square(g)) for _, g in depth)), rtol=1e-4)
    assert float(metrics["arch/depth_grad_norm"]) > 0
    # A decoded DAG has at most 2 chain edges into a node (one per operation vertex), so at
    # most 8 per cell: -zeta L_depth of the two cells lies in [-0.05 * 16, 0].
    assert -0.05 * 16 <= float(metrics["arch/depth_loss"]) < 0
    assert 1 <= float(metrics["arch/depth"]) <= 4  # valid cells: node 2 always reads c_{k-1}
    for k in ("normal", "reduce"):
        assert int(new.archive[k].size) == 1
        np.testing.assert_array_equal(new.archive[k].paths["latent"][0], arch.latent[k])


def test_the_darts_weight_step_complements_each_cell(darts_space, vae_and_params):
    vae, params = vae_and_params
    strategy = E2NASSearch(darts_space, update_rule(None, ("adam",)), vae, params,
                           mode="decoder_st")
    arch = strategy.init(jax.random.key(0), None)
    _, terms = strategy.weight_terms(arch, None, arch.path, jax.random.key(1))
    (_, current), (_, complement), (_, previous) = terms
    for k in ("normal", "reduce"):  # alpha_{i-1} = alpha_i at the first step: all ops change
        used = np.asarray(current[k]) != NONE
        np.testing.assert_array_equal(np.asarray(complement[k]) != NONE, used)
        assert np.all(np.asarray(complement[k])[used] != np.asarray(previous[k])[used])


def test_bad_darts_options_are_named(darts_space, vae_and_params):
    vae, params = vae_and_params
    with pytest.raises(ValueError, match=r"reads the latent as 14 x 8 operation logits"):
        E2NASSearch(darts_space, update_rule(None, ("adam",)), vae, params)
    nb201 = get_space(name="nb201", C=4, N=1)
    nb201_vae = DVAE(num_ops=5, num_vertices=8, hidden=8, latent=30)
    with pytest.raises(ValueError, match=r"depth_weight is 0.05.*every nb201 cell has the same"):
        E2NASSearch(nb201, update_rule(None, ("adam",)), nb201_vae, None, depth_weight=0.05)
    with pytest.raises(ValueError, match=r"depth_samples"):
        E2NASSearch(darts_space, update_rule(None, ("adam",)), vae, params, mode="decoder_st",
                    depth_samples=0)


# ------------------------------------------------------------------ derivation and configs


def test_the_derived_genotype_is_the_cells_the_latents_decode_to(darts_space, vae_workdir):
    """The trained VAE's decodings of the two latents, read as cells, are the weights the
    strategy reports and the genotype the space derives from them. (A whole DARTS-space search
    compiles for many minutes on a CPU; the engine's resume is checked on NB201 in
    test_e2nas_search, with the same dict-of-cells state.)"""
    vae, params = load_vae(vae_workdir)
    strategy = E2NASSearch(darts_space, update_rule(None, ("adam",)), vae, params,
                           mode="decoder_st", init_scale=1.0)
    arch = strategy.init(jax.random.key(5), None)
    genotype = darts_space.derive(jax.device_get(strategy.arch_weights(arch)))
    for k in ("normal", "reduce"):
        z = arch.latent[k][None]
        dag = vae.apply({"params": params}, z, method=DVAE.decode)
        probs = vae.apply({"params": params}, z, method=DVAE.decode_probs)
        cell = np.asarray(CODEC.decoded_cell(dag, probs)[0][0])
        np.testing.assert_array_equal(arch.path[k], cell)
        expected = sorted((DARTS_OPS[op], src, dst) for (src, dst), op in zip(DARTS_EDGES, cell)
                          if op != NONE)
        assert sorted(genotype.edges(k)) == expected
    assert isinstance(genotype, DartsGenotype)


def test_the_cnn_configs_build_the_papers_search(vae_workdir):
    from jaxnas.engine import build

    for args, weight in (("", 0.0), ("r", 0.05), ("r,digits", 0.05)):
        config = e2nas_cnn.get_config(args)
        config.dataset = "digits"  # the paper's CIFAR-10 needs a download
        config.strategy.vae = vae_workdir
        strategy = build(config).strategy
        assert (strategy.name, strategy.mode, strategy.epsilon, strategy.b,
                strategy.depth_weight, strategy.depth_samples) == (
            "e2nas", "decoder_st", 0.5, 10.0, weight, 10)
        assert strategy.cell_keys == ("normal", "reduce")
    full = e2nas_cnn.get_config()
    assert (full.epochs, full.batch_size, full.space.C, full.space.layers) == (100, 32, 16, 8)
    with pytest.raises(ValueError, match=r"':r', ':digits' or both.*'gumbel'"):
        e2nas_cnn.get_config("gumbel")
