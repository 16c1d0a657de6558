"""Single-path execution (issue: single-path search, section 1): a single-path supernet against
the mixed supernet and the discrete network, the straight-through edge's gradient by hand, masked
weight steps that leave the unchosen operations bit-identical, and one compilation for every
path. The canonical convolution of its edges is tested in test_canonical_conv.py."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnas.engine.optim import cosine_by_epoch
from jaxnas.spaces import (DARTS_OPS, NB201_OPS, get_space, inherit_variables, init_variables,
                           nb201_network)
from jaxnas.spaces.cells import Edge
from jaxnas.spaces.paths import path_genotype, path_weights
from jaxnas.spaces.single_path import op_owners, path_mask
from jaxnas.strategies import SearchProblem
from tests.test_spaces import DARTS_GENOTYPE, NB201_GENOTYPE


@pytest.fixture(scope="module")
def nb201_single():
    """An NB201 single-path supernet (C=4, N=2) with trained-looking variables."""
    space = get_space("nb201", C=4, N=2)
    net = space.supernet(5, single_path=True)
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 8, 8, 3))
    codes = {"cell": jnp.asarray([NB201_OPS.index(op) for op in NB201_GENOTYPE.ops], jnp.int32)}
    variables = init_variables(net, jax.random.PRNGKey(1), x, codes, train=True)
    return space, net, x, codes, variables


@pytest.mark.parametrize("train", [False, True])
def test_nb201_single_path_is_the_mixed_supernet_and_the_discrete_network(nb201_single, train):
    space, net, x, codes, variables = nb201_single
    mixed = space.supernet(5)
    one_hot = path_weights(space, codes)
    network = nb201_network(NB201_GENOTYPE, C=4, N=2, num_classes=5, affine=False)
    inherited = inherit_variables(variables, network, x)
    mutable = ["batch_stats"] if train else False

    def logits(module, v, *args):
        out = module.apply(v, x, *args, train=train, mutable=mutable)
        return out[0] if train else out

    by_code = logits(net, variables, codes)
    np.testing.assert_array_equal(by_code, logits(net, variables, one_hot))
    np.testing.assert_allclose(by_code, logits(mixed, variables, one_hot), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(by_code, logits(network, inherited), rtol=1e-5, atol=1e-6)
    assert path_genotype(space, codes) == NB201_GENOTYPE
    other = {"cell": jnp.full((6,), NB201_OPS.index("skip_connect"), jnp.int32)}
    assert not np.allclose(logits(net, variables, other), by_code, atol=1e-3)


def test_nb201_single_path_hessian_vector_product_is_the_mixed_supernets(nb201_single):
    # Forward over reverse through the edges' lax.switch (the canonical convolution's JVP).
    space, net, x, codes, variables = nb201_single
    one_hot = path_weights(space, codes)
    params, rest = variables["params"], {"batch_stats": variables["batch_stats"]}
    keys = iter(jax.random.split(jax.random.PRNGKey(3), len(jax.tree.leaves(params))))
    v = jax.tree.map(lambda p: jax.random.normal(next(keys), p.shape), params)

    def hvp(module, weights):
        loss = lambda p: jnp.sum(jnp.tanh(module.apply({"params": p, **rest}, x, weights)) ** 2)
        return jax.jit(lambda p: jax.jvp(jax.grad(loss), (p,), (v,))[1])(params)

    got, want = hvp(net, codes), hvp(space.supernet(5), one_hot)
    scale = max(float(jnp.abs(w).max()) for w in jax.tree.leaves(want))
    assert scale > 0
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5 * scale)


def test_darts_single_path_is_the_discrete_network():
    space = get_space("darts", C=4, layers=3)
    net = space.supernet(5, single_path=True)
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 16, 16, 3))
    chosen = {cell: {(src, dst): op for op, src, dst in DARTS_GENOTYPE.edges(cell)}
              for cell in ("normal", "reduce")}
    codes = {cell: jnp.asarray([DARTS_OPS.index(chosen[cell].get(edge, "none"))
                                for edge in space.edge_list], jnp.int32)
             for cell in ("normal", "reduce")}
    variables = init_variables(net, jax.random.PRNGKey(2), x, codes, train=True)
    mixed_out, _ = space.supernet(5).apply(variables, x, path_weights(space, codes), train=True,
                                           mutable=["batch_stats"])
    out, _ = net.apply(variables, x, codes, train=True, mutable=["batch_stats"])
    np.testing.assert_allclose(out, mixed_out, rtol=1e-5, atol=1e-5)
    assert path_genotype(space, codes) == DARTS_GENOTYPE


def test_straight_through_edge_gradient_by_hand():
    """``w[i] op_i(x) + sum_{k != i} w[k]``: d/dw[i] = sum(g * op_i(x)), d/dw[k] = sum(g)."""
    edge = Edge(NB201_OPS, 3, single_path=True)
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 5, 3))
    g = jax.random.normal(jax.random.PRNGKey(1), (2, 5, 5, 3))
    weights = jnp.asarray([0.0, 0.0, 0.0, 1.0, 0.0])  # nor_conv_3x3
    variables = edge.init(jax.random.PRNGKey(2), x, weights)
    grad = jax.grad(lambda w: jnp.sum(g * edge.apply(variables, x, w)))(weights)
    conv_out = Edge(("nor_conv_3x3",), 3).apply(
        {"params": {"nor_conv_3x3": variables["params"]["nor_conv_3x3"]},
         "batch_stats": {"nor_conv_3x3": variables["batch_stats"]["nor_conv_3x3"]}}, x)
    want = np.full(5, float(jnp.sum(g)))
    want[3] = float(jnp.sum(g * conv_out))
    np.testing.assert_allclose(grad, want, rtol=1e-5)


def _problem(net):
    schedule = cosine_by_epoch(0.1, 0.01, 2, 5)
    optim = optax.chain(optax.add_decayed_weights(5e-4), optax.trace(0.9),
                        optax.scale_by_schedule(lambda c: -schedule(c)))
    return SearchProblem(net, (0.0,) * 3, (1.0,) * 3, False, 0, optim, schedule)


def test_masked_weight_step_leaves_unchosen_operations_bit_identical(nb201_single):
    space, net, x, codes, variables = nb201_single
    problem = _problem(net)
    params, batch_stats = variables["params"], variables["batch_stats"]
    opt = problem.tx_w.init(params)
    # A first step on another path fills the momentum buffers of its operations.
    other = {"cell": jnp.asarray([1, 2, 3, 4, 2, 3], jnp.int32)}
    owners = op_owners(space, params)
    y = jnp.arange(4) % 5
    step = jax.jit(problem.weight_step)
    first = step(params, batch_stats, opt, other, x, y, None, path_mask(owners, other))
    second = step(first.params, first.batch_stats, first.opt_w, codes, x, y, None,
                  path_mask(owners, codes))
    chosen = jax.tree.map(lambda o: o is None or int(codes["cell"][o[1]]) == o[2], owners,
                          is_leaf=lambda o: o is None or isinstance(o, tuple))
    trace = lambda opt_w: opt_w[1].trace  # noqa: E731
    moved = {"params": 0, "frozen": 0}
    for keep, old, new, m_old, m_new in zip(
            jax.tree.leaves(chosen), jax.tree.leaves(first.params),
            jax.tree.leaves(second.params), jax.tree.leaves(trace(first.opt_w)),
            jax.tree.leaves(trace(second.opt_w))):
        if keep:
            moved["params"] += int(not np.array_equal(old, new))
        else:
            np.testing.assert_array_equal(new, old)
            np.testing.assert_array_equal(m_new, m_old)
            moved["frozen"] += int(np.any(m_old != 0))
    assert moved["params"] > 10 and moved["frozen"] > 0  # momentum existed and was kept
    # Batch statistics: only the chosen operations' (and the shared ones') move.
    for path, old in jax.tree_util.tree_leaves_with_path(first.batch_stats):
        names = [p.key for p in path]
        new = second.batch_stats
        for name in names:
            new = new[name]
        if "edge_1_0" in names and "nor_conv_1x1" in names:  # edge (0, 1) chose nor_conv_3x3
            np.testing.assert_array_equal(new, old)


def test_one_compilation_serves_every_path(nb201_single):
    space, net, x, codes, variables = nb201_single
    traces = []

    @jax.jit
    def loss(params, path):
        traces.append(1)
        out, _ = net.apply({"params": params, "batch_stats": variables["batch_stats"]}, x, path,
                           train=True, mutable=["batch_stats"])
        return jnp.sum(out)

    grad = jax.jit(jax.grad(loss))
    for seed in range(3):
        path = {"cell": jax.random.randint(jax.random.PRNGKey(seed), (6,), 0, 5)}
        loss(variables["params"], path)
        grad(variables["params"], path)
    assert len(traces) == 1  # the gradient reuses the loss's trace; no path retraces


def test_gumbel_samples_follow_the_softmax():
    from jaxnas.strategies import gumbel_straight_through

    logits = jnp.asarray([[1.0, 0.0, -1.0, 0.5, 2.0]])
    n = 4000
    samples = jax.vmap(lambda k: gumbel_straight_through(k, logits, 0.7))(
        jax.random.split(jax.random.PRNGKey(0), n))
    counts = np.asarray(jnp.sum(samples[:, 0], axis=0))
    expected = n * np.asarray(jax.nn.softmax(logits[0]))
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    assert chi2 < 18.47  # the 0.999 quantile of chi-square with 4 degrees of freedom
    np.testing.assert_allclose(np.sum(np.asarray(samples), -1), 1.0, atol=1e-6)
