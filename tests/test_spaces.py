"""Search spaces: operations, supernets against discrete networks, initialization, spaces."""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas.spaces import (DARTS_OPS, NB201_OPS, DartsGenotype, NB201Genotype, darts_network,
                           darts_supernet, get_space, inherit_variables, init_variables,
                           nb201_network, nb201_supernet)
from jaxnas.spaces.ops import make_op, torch_kernel_bound


def _images(shape, seed=0):
    return jax.random.normal(jax.random.PRNGKey(seed), shape)


@pytest.mark.parametrize("name", sorted(set(NB201_OPS + DARTS_OPS) | {"conv_3x1_1x3",
                                                                       "sep_conv_7x7"}))
@pytest.mark.parametrize("stride", [1, 2])
def test_operation_shapes(name, stride):
    x = _images((2, 8, 8, 4))
    op = make_op(name, 4, stride, affine=True)
    out, _ = op.init_with_output(jax.random.PRNGKey(0), x, train=True)
    assert out.shape == (2, 8 // stride, 8 // stride, 4)
    if name == "none":
        assert not np.any(out)
    if name == "skip_connect" and stride == 1:
        np.testing.assert_array_equal(out, x)


def test_unknown_operation_is_named():
    with pytest.raises(ValueError, match="'conv_9x9'"):
        make_op("conv_9x9", 4, 1, True)


def test_pool_excludes_padding_from_averages():
    # A constant image stays constant under avg pooling only if the zero padding is not counted.
    x = jnp.ones((1, 4, 4, 1))
    out, _ = make_op("avg_pool_3x3", 1, 1, True).init_with_output(jax.random.PRNGKey(0), x)
    np.testing.assert_allclose(out, 1.0, rtol=1e-6)


def _one_hot(ops, chosen):
    """[len(chosen), len(ops)] one-hot rows for the chosen operation names."""
    return jnp.asarray([[float(op == c) for op in ops] for c in chosen])


NB201_GENOTYPE = NB201Genotype.from_arch_str(
    "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|")


@pytest.mark.parametrize("train", [False, True])
def test_nb201_supernet_with_one_hot_weights_is_the_discrete_network(train):
    x = _images((4, 8, 8, 3))
    supernet = nb201_supernet(C=4, N=2, num_classes=5)
    weights = {"cell": _one_hot(NB201_OPS, NB201_GENOTYPE.ops)}
    variables = init_variables(supernet, jax.random.PRNGKey(1), x, weights)
    # Non-trivial running statistics, so that eval mode depends on them.
    _, updates = supernet.apply(variables, x, weights, train=True, mutable=["batch_stats"])
    variables = {**variables, **updates}
    network = nb201_network(NB201_GENOTYPE, C=4, N=2, num_classes=5, affine=False)
    inherited = inherit_variables(variables, network, x)
    mutable = ["batch_stats"] if train else False
    out_super = supernet.apply(variables, x, weights, train=train, mutable=mutable)
    out_net = network.apply(inherited, x, train=train, mutable=mutable)
    if train:
        out_super, out_net = out_super[0], out_net[0]
    np.testing.assert_allclose(out_super, out_net, rtol=1e-5, atol=1e-5)
    # And a different architecture gives a different function (the test can fail).
    other = {"cell": _one_hot(NB201_OPS, ("skip_connect",) * 6)}
    assert not np.allclose(supernet.apply(variables, x, other), out_super, atol=1e-3)


DARTS_GENOTYPE = DartsGenotype(
    normal=(("sep_conv_3x3", 0), ("dil_conv_5x5", 1), ("skip_connect", 0), ("max_pool_3x3", 2),
            ("sep_conv_5x5", 1), ("avg_pool_3x3", 3), ("skip_connect", 2), ("dil_conv_3x3", 4)),
    normal_concat=(2, 3, 4, 5),
    reduce=(("max_pool_3x3", 0), ("sep_conv_3x3", 1), ("avg_pool_3x3", 0), ("skip_connect", 2),
            ("skip_connect", 0), ("dil_conv_3x3", 1), ("max_pool_3x3", 3), ("sep_conv_5x5", 4)),
    reduce_concat=(2, 3, 4, 5))


def _darts_one_hot(genotype, cell):
    """[14, 8] weights: the genotype's op on its edges, ``none`` on the others."""
    chosen = {(src, dst): op for op, src, dst in genotype.edges(cell)}
    rows = [chosen.get((src, dst), "none") for dst in range(2, 6) for src in range(dst)]
    return _one_hot(DARTS_OPS, rows)


def test_darts_supernet_with_one_hot_weights_is_the_discrete_network():
    x = _images((2, 16, 16, 3))
    supernet = darts_supernet(C=4, layers=3, num_classes=5)
    weights = {c: _darts_one_hot(DARTS_GENOTYPE, c) for c in ("normal", "reduce")}
    variables = init_variables(supernet, jax.random.PRNGKey(2), x, weights)
    network = darts_network(DARTS_GENOTYPE, C=4, layers=3, num_classes=5, affine=False,
                            pool_bn=True)
    inherited = inherit_variables(variables, network, x)
    out_super, _ = supernet.apply(variables, x, weights, train=True, mutable=["batch_stats"])
    out_net, _ = network.apply(inherited, x, train=True, mutable=["batch_stats"])
    np.testing.assert_allclose(out_super, out_net, rtol=1e-5, atol=1e-5)
    # The derivation recovers the genotype from its own one-hot weights (equal weights keep the
    # edge order, so the genes of a node are listed by input).
    assert get_space("darts", C=4, layers=3).derive(weights) == DARTS_GENOTYPE


def test_inherit_rejects_a_network_of_another_width():
    x = _images((2, 8, 8, 3))
    supernet = nb201_supernet(C=4, N=1, num_classes=5)
    weights = {"cell": jnp.full((6, 5), 0.2)}
    variables = init_variables(supernet, jax.random.PRNGKey(0), x, weights)
    with pytest.raises(ValueError, match="width"):
        inherit_variables(variables, nb201_network(NB201_GENOTYPE, C=8, N=1, num_classes=5,
                                                   affine=False), x)


def test_init_variables_draws_what_net_init_draws():
    x = _images((2, 8, 8, 3))
    net = nb201_supernet(C=8, N=1, num_classes=10)
    weights = {"cell": jnp.full((6, 5), 0.2)}
    fast = flax.traverse_util.flatten_dict(init_variables(net, jax.random.PRNGKey(0), x, weights))
    slow = flax.traverse_util.flatten_dict(net.init(jax.random.PRNGKey(0), x, weights))
    assert fast.keys() == slow.keys()
    for path, value in slow.items():
        assert fast[path].shape == value.shape and fast[path].dtype == value.dtype
        if path[-1] == "kernel":
            bound = torch_kernel_bound(value.shape)
            assert np.max(np.abs(fast[path])) <= bound
            if value.size >= 500:  # U(-b, b) has standard deviation b / sqrt(3)
                assert abs(np.std(fast[path]) - bound / np.sqrt(3)) < 0.1 * bound
        else:
            np.testing.assert_array_equal(fast[path], value)
    kernels = [v for p, v in fast.items() if p[-1] == "kernel"]
    assert len({np.asarray(k).tobytes() for k in kernels}) == len(kernels)  # all distinct


def test_nb201_parameter_count_matches_the_closed_form():
    # Discrete NB201 network, all nor_conv_3x3, C=16, N=5, 10 classes, affine BN (by hand):
    # stem 3*3*3*16 + 2*16; per stage s with c = 16*2^s: 5 cells x 6 edges x (9c^2 + 2c);
    # reduction blocks into c: 9*(c/2)*c + 2c + 9c^2 + 2c + (c/2)*c; last BN 2*64; dense 64*10+10.
    genotype = NB201Genotype(("nor_conv_3x3",) * 6)
    net = nb201_network(genotype, C=16, N=5, num_classes=10)
    shapes = jax.eval_shape(lambda: net.init(jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3))))
    count = sum(x.size for x in jax.tree.leaves(shapes["params"]))
    expected = 3 * 3 * 3 * 16 + 2 * 16
    for c in (16, 32, 64):
        expected += 5 * 6 * (9 * c * c + 2 * c)
    for c in (32, 64):
        expected += 9 * (c // 2) * c + 2 * c + 9 * c * c + 2 * c + (c // 2) * c
    expected += 2 * 64 + 64 * 10 + 10
    assert count == expected


def test_darts_supernet_shapes_and_auxiliary_head():
    x = _images((2, 32, 32, 3))
    space = get_space("darts", C=4, layers=3, ops=("none", "skip_connect", "sep_conv_3x3"),
                      auxiliary=True)
    net = space.supernet(num_classes=7)
    weights = {k: jnp.full(s, 1.0 / s[1]) for k, s in space.arch_shapes().items()}
    variables = init_variables(net, jax.random.PRNGKey(0), x, weights, train=True)
    (logits, aux), _ = net.apply(variables, x, weights, train=True, mutable=["batch_stats"])
    assert logits.shape == (2, 7) and aux.shape == (2, 7)
    assert net.apply(variables, x, weights, train=False).shape == (2, 7)


@pytest.mark.parametrize("name,options", [
    ("nb201", dict(C=4, N=1)),
    ("darts", dict(C=2, layers=3, ops=("none", "skip_connect", "conv_1x1", "max_pool_3x3"),
                   scan=False)),
    ("darts", dict(C=2, layers=3, ops=("none", "skip_connect", "conv_1x1", "max_pool_3x3"),
                   scan=True)),
])
def test_a_rematerialized_supernet_has_the_same_variables_values_and_gradients(name, options):
    # Remat recomputes each cell's forward pass (nn.remat), or in a scanned DARTS cell each
    # edge's (jax.checkpoint in the scan body), in the backward pass: the same function of the
    # same parameters (paths included), so outputs and gradients agree to float rounding.
    x = _images((2, 8, 8, 3))
    plain, remat = (get_space(name, remat=r, **options) for r in (False, True))
    weights = {k: jax.nn.softmax(jax.random.normal(jax.random.PRNGKey(i), s))
               for i, (k, s) in enumerate(sorted(plain.arch_shapes().items()))}
    variables = init_variables(plain.supernet(5), jax.random.PRNGKey(1), x, weights)
    shapes = lambda net: jax.tree.map(jnp.shape, jax.eval_shape(  # noqa: E731
        lambda: net.init(jax.random.PRNGKey(1), x, weights)))
    assert shapes(remat.supernet(5)) == shapes(plain.supernet(5))

    def loss(net, params, weights):
        logits, _ = net.apply({**variables, "params": params}, x, weights, train=True,
                              mutable=["batch_stats"])
        return jnp.mean(logits ** 2)

    grads = [jax.jit(jax.value_and_grad(lambda p, w, s=space: loss(s.supernet(5), p, w),
                                        argnums=(0, 1)))(variables["params"], weights)
             for space in (plain, remat)]
    for a, b in zip(jax.tree.leaves(grads[0]), jax.tree.leaves(grads[1])):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_nb201_scans_its_stages_by_default_except_the_cpus_mixed_supernet(monkeypatch):
    # scan=None (the configs' default) scans every stage of more than one cell on a GPU or TPU,
    # and on the CPU the single-path supernet's only: the CPU's mixed step runs faster unrolled.
    # remat=None recomputes the scanned cells' activations on the CPU, whose step is bound by
    # memory traffic, and not on a GPU or TPU, nor in unrolled stages.
    space, unrolled = get_space("nb201", C=4, N=2), get_space("nb201", C=4, N=2, scan=False)
    assert space.scan is None and space.remat is None
    for backend, mixed_scan, remat in (("cpu", False, True), ("gpu", True, False),
                                       ("tpu", True, False)):
        monkeypatch.setattr(jax, "default_backend", lambda b=backend: b)
        mixed, single = space.supernet(5), space.supernet(5, single_path=True)
        assert mixed.scan is mixed_scan and mixed.remat is (mixed_scan and remat), backend
        assert single.scan is True and single.remat is remat, backend
        one_cell = get_space("nb201", C=4, N=1)
        for net in (unrolled.supernet(5), unrolled.supernet(5, single_path=True),
                    one_cell.supernet(5), one_cell.supernet(5, single_path=True)):
            assert net.scan is False and net.remat is False, backend
        asked = get_space("nb201", C=4, N=2, scan=True).supernet(5)
        assert asked.scan is True and asked.remat is remat, backend
    kept = get_space("nb201", C=4, N=2, scan=True, remat=False).supernet(5)
    assert kept.scan is True and kept.remat is False


@pytest.mark.parametrize("remat", [False, True])
def test_scanned_nb201_stages_equal_the_unrolled_supernet(remat):
    # space.scan runs a stage's cells as one lax.scan over their stacked variables: the same
    # variables (paths included), outputs, batch statistics, gradients and Hessian-vector
    # products as the cells called one by one.
    x = _images((2, 8, 8, 3))
    plain, scan = (get_space("nb201", C=4, N=2, remat=remat, scan=s) for s in (False, True))
    weights = {"cell": jax.nn.softmax(jax.random.normal(jax.random.PRNGKey(3), (6, 5)))}
    variables = init_variables(plain.supernet(5), jax.random.PRNGKey(1), x, weights)
    shapes = lambda net: jax.tree.map(jnp.shape, jax.eval_shape(  # noqa: E731
        lambda: net.init(jax.random.PRNGKey(1), x, weights)))
    assert shapes(scan.supernet(5)) == shapes(plain.supernet(5))
    # Distinct statistics per cell (a key per leaf), so that a mix-up between cells would show.
    leaves, tree = jax.tree.flatten(variables["batch_stats"])
    stats = jax.tree.unflatten(tree, [s + jax.random.uniform(jax.random.PRNGKey(i), s.shape)
                                      for i, s in enumerate(leaves)])
    v = jax.tree.map(lambda p: 1e-2 * jnp.cos(jnp.arange(p.size).reshape(p.shape)),
                     variables["params"])

    def results(space, single_path=False):
        net = space.supernet(5, single_path=single_path)
        arch = {"cell": jnp.array([1, 2, 0, 4, 3, 2])} if single_path else weights

        def loss(params, arch):
            logits, new = net.apply({"params": params, "batch_stats": stats}, x, arch,
                                    train=True, mutable=["batch_stats"])
            return jnp.mean(logits ** 2), new

        (value, new), grads = jax.value_and_grad(loss, argnums=(0,) if single_path else (0, 1),
                                                 has_aux=True)(variables["params"], arch)
        out = [value, new, grads, net.apply({"params": variables["params"],
                                             "batch_stats": stats}, x, arch)]
        if not single_path:
            out.append(jax.jvp(lambda p: jax.grad(lambda q: loss(q, arch)[0])(p),
                               (variables["params"],), (v,))[1])
        return out

    for single_path in (False, True):
        expected, got = (jax.jit(lambda s=s: results(s, single_path))() for s in (plain, scan))
        assert jax.tree.structure(got) == jax.tree.structure(expected)
        for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(got)):
            # float32 rounding, relative to each array's largest element (in float64 the two
            # agree to 1e-13 of it)
            np.testing.assert_allclose(b, a, rtol=0, atol=1e-4 * float(np.max(np.abs(a))))


@pytest.mark.parametrize("reduction,remat", [(False, False), (True, True)])
def test_scanned_darts_cells_equal_the_unrolled_cell(reduction, remat):
    # space.scan runs a DARTS cell's edges of each stride as one lax.scan over a buffer of its
    # nodes: the same variables (paths included), outputs, batch statistics, gradients (in the
    # parameters, the inputs and the mixing weights) and Hessian-vector products as the edges
    # called one by one, with each edge recomputed in the backward pass (remat) or not. A
    # normal cell is one scan, a reduction cell two (its 8 strided edges from the inputs, then
    # the 6 between intermediate nodes).
    from jaxnas.spaces.darts import DartsCell

    plain, scan = (darts_supernet(C=4, layers=3, scan=s).normal for s in (False, True))
    cells = [DartsCell(spec, 4, reduction, reduction_prev=False, affine=False, pool_bn=True,
                       remat_edges=remat and spec.scan) for spec in (plain, scan)]
    s0, s1 = _images((2, 8, 8, 6), 1), _images((2, 8, 8, 4), 2)
    weights = jax.nn.softmax(jax.random.normal(jax.random.PRNGKey(3), (14, len(DARTS_OPS))))
    variables = cells[0].init(jax.random.PRNGKey(1), s0, s1, weights)
    shapes = lambda c: jax.tree.map(jnp.shape, jax.eval_shape(  # noqa: E731
        lambda: c.init(jax.random.PRNGKey(1), s0, s1, weights)))
    assert shapes(cells[1]) == shapes(cells[0])
    leaves, tree = jax.tree.flatten(variables["batch_stats"])
    stats = jax.tree.unflatten(tree, [s + jax.random.uniform(jax.random.PRNGKey(i), s.shape)
                                      for i, s in enumerate(leaves)])
    v = jax.tree.map(lambda p: 1e-2 * jnp.cos(jnp.arange(p.size).reshape(p.shape)),
                     variables["params"])

    def results(cell):
        def loss(params, inputs, weights):
            out, new = cell.apply({"params": params, "batch_stats": stats}, *inputs, weights,
                                  train=True, mutable=["batch_stats"])
            return jnp.mean(jnp.sin(out)), new

        (value, new), grads = jax.value_and_grad(loss, (0, 1, 2), has_aux=True)(
            variables["params"], (s0, s1), weights)
        hvp = jax.jvp(lambda p: jax.grad(lambda q: loss(q, (s0, s1), weights)[0])(p),
                      (variables["params"],), (v,))[1]
        return [value, new, grads, hvp,
                cell.apply({"params": variables["params"], "batch_stats": stats}, s0, s1,
                           weights)]

    expected, got = results(cells[0]), results(cells[1])
    assert jax.tree.structure(got) == jax.tree.structure(expected)
    for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(got)):
        # float32 rounding, relative to each array's largest element
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-4 * float(np.max(np.abs(a))))


def test_darts_space_scans_its_cells_edges_where_it_can():
    # scan=None (the default) scans uniform candidates without node_bn, drop-path or single
    # path, and remat=None then recomputes each edge; asking for a scan elsewhere is refused by
    # name.
    net = get_space("darts", C=4, layers=3).supernet(5)
    assert net.normal.scan and net.reduce.scan and net.remat
    net = get_space("darts", C=4, layers=3, scan=False).supernet(5)
    assert not net.normal.scan and not net.remat
    assert not get_space("darts", C=4, layers=3, remat=False).supernet(5).remat
    for options, kind in (({"node_bn": True}, {}), ({}, {"drop_path": True}),
                          ({}, {"single_path": True}),
                          ({"reduce_ops": ("none", "max_pool_3x3")}, {})):
        assert not get_space("darts", C=4, layers=3, **options).supernet(5, **kind).normal.scan
        with pytest.raises(ValueError, match="space.scan=True"):
            get_space("darts", C=4, layers=3, scan=True, **options).supernet(5, **kind)


def test_the_derivative_barrier_is_an_identity_to_every_order(monkeypatch):
    from jaxnas.spaces import cells, fusion

    f = lambda x: jnp.sum(jnp.sin(fusion.derivative_barrier(x)) ** 2)  # noqa: E731
    x, v = jnp.array([0.3, -1.2, 2.0]), jnp.array([1.0, 0.5, -2.0])
    # d/dx sum sin^2 = sin(2x); the Hessian is diag(2 cos(2x)).
    np.testing.assert_allclose(jax.jit(jax.grad(f))(x), np.sin(2 * x), rtol=1e-6)
    np.testing.assert_allclose(jax.jvp(jax.grad(f), (x,), (v,))[1], 2 * np.cos(2 * x) * v,
                               rtol=1e-6)
    # A NaN value makes the whole derivative NaN (without the barrier: its own element): a NaN
    # is never hidden.
    assert np.isnan(jax.grad(f)(x.at[0].set(jnp.nan))).all()
    # A supernet's gradient and Hessian-vector product with the barriers at its nodes equal
    # those of the same supernet without them.
    space = get_space("nb201", C=4, N=1)
    x = _images((2, 8, 8, 3))
    weights = {"cell": jax.nn.softmax(jax.random.normal(jax.random.PRNGKey(3), (6, 5)))}
    variables = init_variables(space.supernet(5), jax.random.PRNGKey(1), x, weights)

    def loss(params, weights):
        logits, _ = space.supernet(5).apply({**variables, "params": params}, x, weights,
                                            train=True, mutable=["batch_stats"])
        return jnp.mean(logits ** 2)

    def derivatives():
        grad = jax.grad(loss, argnums=(0, 1))
        tangent = jax.tree.map(jnp.ones_like, (variables["params"], weights))
        return jax.jit(lambda p, w: jax.jvp(lambda p, w: grad(p, w), (p, w), tangent))(
            variables["params"], weights)

    with_barrier = derivatives()
    monkeypatch.setattr(cells, "derivative_barrier", lambda x: x)
    without = derivatives()
    for a, b in zip(jax.tree.leaves(with_barrier), jax.tree.leaves(without)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_fixed_edge_space_keeps_every_edge():
    space = get_space("darts", C=4, layers=3, edges="fixed")
    shapes = space.arch_shapes()
    assert shapes == {"normal": (8, 8), "reduce": (8, 8)}
    rng = np.random.default_rng(0)
    genotype = space.derive({k: rng.random(s) for k, s in shapes.items()})
    assert sorted((src, dst) for _, src, dst in genotype.edges("normal")) == sorted(
        [(1, 2), (0, 2), (2, 3), (0, 3), (3, 4), (0, 4), (4, 5), (0, 5)])


@pytest.mark.parametrize("name,options,match", [
    ("nasnet", {}, "Unknown search space 'nasnet'"),
    ("nb201", {"layers": 8}, r"Unknown option\(s\) \['layers'\]"),
    ("nb201", {"C": 0}, "space.C must be a positive integer"),
    ("darts", {"layers": 2}, "space.layers must be >= 3"),
    ("darts", {"ops": ("none", "conv_9x9")}, "'conv_9x9'"),
    ("darts", {"edges": "some"}, "space.edges"),
])
def test_space_errors(name, options, match):
    with pytest.raises(ValueError, match=match):
        get_space(name, **options)
