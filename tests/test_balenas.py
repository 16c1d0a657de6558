"""BaLeNAS (Zhang thesis ch. 5; spec 002 section 4.5): one step against its composition by
hand, the sigma -> 0 limit that is DARTS, the closed-form expected quadratic loss of the
posterior samples, the depth gates and their regularizer, selection from the posterior, and the
strategy in a search (resume, metrics, bad options)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnas import hypergrad as hg
from jaxnas import transforms
from jaxnas.engine.optim import cosine_by_epoch, weight_optimizer
from jaxnas.engine.search_loop import init_state
from jaxnas.spaces import get_space
from jaxnas.strategies import get_strategy, select_from_posterior, step_key, update_rule
from jaxnas.strategies.balenas import depth_gates
from tests.test_strategies import ToySpace, ToySupernet, _toy_batches

VADAM = {"name": "vadam", "lr": 0.01, "b1": 0.5, "b2": 0.999, "num_data": 50,
         "prior_precision": 1.0, "init_precision": 4.0}


def _problem(config):
    from jaxnas.strategies import SearchProblem

    schedule = cosine_by_epoch(0.1, 0.01, 4, 3)
    return SearchProblem(ToySupernet(), (0.5,), (0.25,), False, 0,
                         weight_optimizer(config.optim_w, schedule), schedule)


@pytest.mark.parametrize("num_samples", [1, 3])
def test_one_balenas_step_is_its_composition_by_hand(tiny_config, num_samples):
    problem = _problem(tiny_config())
    strategy = get_strategy("balenas", ToySpace(), VADAM, num_samples=num_samples,
                            hypergradient={"name": "unrolled"})
    state = init_state(0, strategy, ToySpace(), problem, (4, 4, 1))
    batches = _toy_batches(1)
    new, metrics = jax.jit(lambda s, b: strategy.step(s, b, problem))(state, batches)

    # By hand: M samples theta = mu + sigma eps (sigma = 1/sqrt(init_precision) = 0.5 before
    # any update; eps drawn as the strategy's step key prescribes), DARTS second-order
    # hypergradients at each, their mean and mean square into Variational Adam.
    x = lambda images: (images.astype(np.float32) / 255 - 0.5) / 0.25  # noqa: E731
    train = (x(batches["train"]["image"][0]), batches["train"]["label"][0])
    val = (x(batches["val"]["image"][0]), batches["val"]["label"][0])
    mu = state.arch.alpha

    def loss(w, alpha, batch):
        value, (_, acc) = problem.loss(w, state.batch_stats,
                                       {"cell": jax.nn.softmax(alpha["cell"], -1)}, *batch)
        return value, acc

    grads = []
    for m in range(num_samples):
        k_alpha, _ = jax.random.split(jax.random.fold_in(step_key(state, 2), m))
        eps = optax.tree_utils.tree_random_like(k_alpha, mu)
        theta = {"cell": mu["cell"] + 0.5 * eps["cell"]}
        grads.append(hg.hypergradient(hg.Unrolled(0.1, 1), loss, loss, state.params, theta,
                                      train, val, has_aux=True)[0]["cell"])
    grad, curvature = np.mean(grads, 0), np.mean(np.square(grads), 0)
    rule = transforms.vadam(0.01, 50, 0.5, 0.999, 1.0, 4.0)
    updates, _ = rule.update({"cell": jnp.asarray(grad)}, rule.init(mu), mu,
                             curvature={"cell": jnp.asarray(curvature)})
    np.testing.assert_allclose(new.arch.alpha["cell"], mu["cell"] + updates["cell"],
                               rtol=1e-4, atol=1e-7)
    # The weights trained at the mean after the update.
    params = problem.weight_step(state.params, state.batch_stats, state.opt_w,
                                 {"cell": jax.nn.softmax(new.arch.alpha["cell"], -1)},
                                 *train)[0]
    for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_with_sigma_going_to_zero_balenas_takes_the_darts_step(tiny_config):
    # N -> infinity with prior precision -> infinity (prior / N -> 0): sigma = 1e-6, the prior
    # term vanishes and Variational Adam (khan2018) becomes Adam with eps ~ 0: DARTS without
    # alpha weight decay.
    config = tiny_config()
    problem = _problem(config)
    batches = _toy_batches(1)
    limit = {**VADAM, "lr": 3e-3, "num_data": 10 ** 24, "prior_precision": 1e12,
             "init_precision": 1e12}
    balenas = get_strategy("balenas", ToySpace(), limit)
    darts = get_strategy("darts", None, {"name": "adam", "lr": 3e-3, "b1": 0.5,
                                         "weight_decay": 0.0})
    states = {}
    for name, strategy in (("balenas", balenas), ("darts", darts)):
        state = init_state(0, strategy, ToySpace(), problem, (4, 4, 1))
        step = jax.jit(lambda s, b, strategy=strategy: strategy.step(s, b, problem))
        for _ in range(3):
            state, metrics = step(state, batches)
        states[name] = state
        if name == "balenas":
            assert float(metrics["arch/sigma_max"]) <= 1e-6
    np.testing.assert_allclose(states["balenas"].arch.alpha["cell"],
                               states["darts"].arch.alpha["cell"], rtol=1e-4, atol=1e-7)


def test_posterior_samples_give_the_closed_form_expected_quadratic_loss():
    # E_q 1/2 theta^T A theta = 1/2 mu^T A mu + 1/2 sum_j sigma_j^2 A_jj (Eq. 5.18).
    strategy = get_strategy("balenas", ToySpace(), {**VADAM, "init_precision": 2.0})
    arch = strategy.init(jax.random.PRNGKey(0), {"cell": (2, 3)})
    mu = {"cell": jnp.asarray([[0.5, -1.0, 0.2], [1.5, 0.0, -0.3]])}
    std = {"cell": jnp.asarray([[0.1, 0.4, 0.2], [0.3, 0.05, 0.6]])}
    arch = arch._replace(alpha=mu, rule=optax.tree_utils.tree_set(arch.rule, std=std))
    b = np.random.default_rng(0).normal(size=(6, 6))
    a = jnp.asarray(b @ b.T)
    quad = lambda t: 0.5 * t["cell"].ravel() @ a @ t["cell"].ravel()  # noqa: E731
    keys = jax.random.split(jax.random.PRNGKey(1), 100_000)
    values = jax.vmap(lambda k: quad(strategy.sample_alpha(arch, k)))(keys)
    exact = float(quad(mu)) + 0.5 * float(jnp.sum(std["cell"].ravel() ** 2 * jnp.diag(a)))
    error = 4 * float(jnp.std(values)) / np.sqrt(len(keys))
    assert float(jnp.mean(values)) == pytest.approx(exact, abs=error)
    assert abs(float(jnp.mean(values)) - float(quad(mu))) > 4 * error  # the trace term shows


def test_depth_gates_on_the_chain_edges():
    space = get_space("darts", C=4, layers=3)
    gates = depth_gates(space, 2.0 / 3.0, -0.1, 1.1)
    assert [space.edge_list[r] for r in gates.chain] == [(2, 3), (3, 4), (4, 5)]
    alpha = {k: jnp.asarray(np.random.default_rng(0).normal(size=(14, 8)), jnp.float32)
             for k in ("normal", "reduce")}
    mode = gates.weights(alpha)
    rows = list(gates.chain)
    for cell in ("normal", "reduce"):
        w = np.asarray(mode[cell])
        assert np.all(w[rows, 0] == 0)  # the `none` slot is the gate, not an operation
        gate = np.clip(1 / (1 + np.exp(-np.asarray(alpha[cell])[rows, 0])) * 1.2 - 0.1, 0, 1)
        np.testing.assert_allclose(w[rows].sum(-1), gate, rtol=1e-5)
        others = np.array([r for r in range(14) if r not in rows])
        np.testing.assert_allclose(w[others], jax.nn.softmax(alpha[cell][others], -1),
                                   rtol=1e-6)
    samples = np.stack([np.asarray(gates.weights(alpha, k)["normal"])[rows].sum(-1)
                        for k in jax.random.split(jax.random.PRNGKey(2), 2000)])
    assert samples.min() >= 0 and samples.max() <= 1 + 1e-6
    assert np.mean(samples == 0) > 0.01 and np.mean(np.isclose(samples, 1)) > 0.01  # hard


def test_the_depth_penalty_falls_as_the_connection_logits_grow():
    gates = depth_gates(get_space("darts", C=4, layers=3), 2.0 / 3.0, -0.1, 1.1)
    values = []
    for logit in np.linspace(-4, 4, 9):
        alpha = {"normal": jnp.zeros((14, 8)).at[:, 0].set(logit), "reduce": jnp.zeros((14, 8))}
        values.append(float(gates.depth_penalty(alpha)))
    assert np.all(np.diff(values) < 0)
    # -sum sigmoid(logit - tau log(-low / high)) over 3 gated edges of each cell, at logit 0.
    shift = 2.0 / 3.0 * np.log(0.1 / 1.1)
    zero = {"normal": jnp.zeros((14, 8)), "reduce": jnp.zeros((14, 8))}
    assert float(gates.depth_penalty(zero)) == pytest.approx(-6 / (1 + np.exp(shift)), rel=1e-6)


def test_select_from_posterior(nb201_table_path):
    from jaxnas.benchmarks import NB201Table

    table = NB201Table.load(nb201_table_path)
    space = get_space("nb201", C=4, N=1)
    strategy = get_strategy("balenas", space, {**VADAM, "init_precision": 1.0})
    arch = strategy.init(jax.random.PRNGKey(0), space.arch_shapes())  # sigma = 1: diverse
    score = lambda g: table.query(g).c10_test_200  # noqa: E731
    best, value, scored = select_from_posterior(strategy, arch, space, jax.random.PRNGKey(1),
                                                20, score)
    assert scored[0][0] == strategy.derive(arch, space)  # the argmax of the mean comes first
    assert len(scored) > 5 and value == max(s for _, s in scored) == score(best)
    only_mean = select_from_posterior(strategy, arch, space, jax.random.PRNGKey(1), 0, score)
    assert only_mean[0] == strategy.derive(arch, space) and len(only_mean[2]) == 1


@pytest.mark.slow
@pytest.mark.parametrize("order", ["first_order", "second_order"])
def test_balenas_nb201_searches_and_resumes_bit_exact(tmp_path, tiny_config, resumed_search,
                                                     order):
    from experiments.configs import balenas_nb201

    config = tiny_config(epochs=1, max_steps=12)
    reference = balenas_nb201.get_config(order)
    config.strategy, config.optim_alpha = reference.strategy, reference.optim_alpha
    config.optim_alpha.num_data = 718
    full, _ = resumed_search(config, stop=7)
    record = json.loads(open(tmp_path / "full" / "metrics.jsonl").readlines()[-1])
    assert 0 < record["arch/sigma_min"] <= record["arch/sigma_mean"] <= record["arch/sigma_max"]
    assert record["arch/sigma_max"] < 1.0 and record["arch/hessian_trace_term"] > 0
    assert record["arch/alpha_updates"] == 12
    # The genotype is the argmax of the posterior mean.
    ops = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    mean = np.asarray(full.state.arch.alpha["cell"])
    assert list(full.genotype.ops) == [ops[i] for i in mean.argmax(-1)]


@pytest.mark.parametrize("options,match", [
    ({"num_samples": 0}, r"num_samples \(M\) must be an integer >= 1"),
    ({"depth_weight": -0.05}, "depth_weight must be a number >= 0"),
    ({"depth_weight": 0.05}, "The depth regularizer needs the DARTS space"),
    ({"hypergradient": {"name": "implicit"}}, "config.strategy.hypergradient.name must be"),
    ({"hypergradient": {"name": "neumann", "terms": -1}}, "terms must be an integer >= 0"),
    ({"eta": 0.1}, r"Unknown option\(s\) \['eta'\] for strategy 'balenas'"),
])
def test_balenas_option_errors(options, match):
    with pytest.raises(ValueError, match=match):
        get_strategy("balenas", get_space("nb201", C=4, N=1), VADAM, **options)


@pytest.mark.parametrize("rule,match", [
    ({"name": "adam"}, "config.optim_alpha.name 'adam' is not an update rule"),
    ({**VADAM, "form": "vprop"}, "form must be one of"),
    ({**VADAM, "weight_decay": 1e-3}, r"Unknown field\(s\) \['weight_decay'\]"),
    ({**VADAM, "num_data": 0}, "num_data must be an integer >= 1"),
])
def test_balenas_rule_errors(rule, match):
    with pytest.raises(ValueError, match=match):
        get_strategy("balenas", get_space("nb201", C=4, N=1), rule)


def test_update_rules_accept_only_their_strategys_names():
    assert update_rule(None, ("adam",)) is not None
    with pytest.raises(ValueError, match="config.optim_alpha.name must be one of"):
        update_rule({"name": "sgd"}, ("sgd",))


@pytest.mark.parametrize("name", ["balenas_nb201:first_order", "balenas_nb201:second_order",
                                  "balenas_cnn:second_order"])
def test_balenas_configs_carry_the_reference_settings(name):
    import importlib

    from jaxnas.engine import build

    module, order = name.split(":")
    config = importlib.import_module(f"experiments.configs.{module}").get_config(order)
    config.dataset = "digits"
    strategy = build(config).strategy
    assert strategy.num_samples == 1
    assert type(strategy.method(0.025)) is (hg.Unrolled if order == "second_order"
                                            else hg.FirstOrder)
    rule = config.optim_alpha
    assert (rule.name, rule.form, rule.lr, rule.b1, rule.b2, rule.num_data,
            rule.prior_precision, rule.init_precision) == (
        "vadam", "khan2018", 3e-4, 0.5, 0.999, 25000, 1.0, 1.0)
    assert config.strategy.depth_weight == (0.05 if module == "balenas_cnn" else 0.0)
