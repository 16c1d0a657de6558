"""E²NAS: differentiable search in the latent space of a graph VAE, with probabilistic
exploration and architecture complementation (Zhang thesis ch. 4, Algorithm 4; spec 002
section 3), on NAS-Bench-201.

The architecture state is a latent ``z`` [n] (alpha_theta) of a graph VAE trained offline on
every NB201 cell (``jaxnas.vae``; ``python -m experiments.train_vae``). Each step:

1. The decoder maps ``z`` to a cell (argmax decoding): the path alpha_i, ``{"cell": int32
   [6]}``, its operation vertices' types.
2. The complementary path alpha_i^c (Fig. 4.2, ``complementation.complementary_ops``) is drawn
   against alpha_{i-1}, the path of the step before (at the first step, alpha_i itself).
3. One single-path weight step on a train batch minimizes Eq. 4.12,
   ``(1 - eps) L(alpha_i) + eps (L(alpha_i^c) + L(alpha_{i-1}))`` (only their operations are
   updated; Eq. 4.12's ``eta R`` is the weight optimizer's weight decay).
4. ``z`` and its point's residual norm join the archive A of visited architectures (a FIFO of
   ``archive_size``).
5. ``z`` moves along Eq. 4.7's direction ``(1 - gamma) grad L_val + gamma grad log p_A(x)`` on a
   val batch, through the update rule (Adam with GDAS's settings, as the authors' code updates
   its latent). ``log p_A`` is the GPND density of Eq. 4.10 (``jaxnas.vae.gpnd``) at the decoded
   cell's point ``x``, with p_Z and p_R fitted to A (``exploration.archive_log_density``);
   descending it moves ``z`` to where A is thin. ``gamma`` is Sig_gamma(b) of Eq. 4.16 with t
   the fraction of the search done (``exploration="sigmoid"``), or a constant (Table 4.2's
   gamma rows).

The gradient of L_val with respect to ``z`` through the discrete decoder (spec 3.6), ``mode``:

- ``"ste_logits"`` (the authors' code): ``z`` is also read as [6, 5] operation logits, and the
  supernet sees ``onehot(alpha_i) - sg(softmax(z)) + softmax(z)``: the value is the decoded
  path, the gradient that of the softmax, which bypasses the decoder. Needs n = 30.
- ``"decoder_st"``: the supernet sees ``onehot(alpha_i) - sg(p) + p`` with ``p`` [6, 5] the
  decoder's operation distributions along the decoded path (``DVAE.decode_probs``), so the
  gradient flows through the decoder. No Gumbel noise: the hard part is the decoded path that
  the weight step trains, in both modes.

The final architecture is the decoding of the final ``z``. Following the thesis where the
authors' NB201 code differs: the archive keeps 1000 members (the code: 50) and the density's
volume term has Eq. 4.10's sign. E²NAS-R's depth regularizer (``jaxnas.vae.depth``) applies to
the DARTS space only (every NB201 DAG has the same edges, so the depth is constant there), and
a DARTS-space VAE does not exist yet.
"""

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxnas import transforms
from jaxnas.spaces import paths
from jaxnas.spaces.ops import NB201_OPS
from jaxnas.strategies import novelty
from jaxnas.strategies.base import step_key, tree_norm
from jaxnas.strategies.complementation import complementary_ops, complementation_weights
from jaxnas.strategies.exploration import (archive_log_density, exploration_schedule,
                                           latent_archive, remember)
from jaxnas.strategies.options import check_choice, check_integer, update_rule
from jaxnas.strategies.single_path import SinglePathSearch
from jaxnas.vae.dag import NB201_NUM_VERTICES
from jaxnas.vae.gpnd import dag_point, decoder_map, gpnd_terms
from jaxnas.vae.model import DVAE

MODES = ("ste_logits", "decoder_st")
EXPLORATIONS = ("sigmoid", "constant")


class E2NASState(NamedTuple):
    """Attributes: latent: z [n]; rule: the update rule's state; archive: the visited
    architectures (``exploration.latent_archive``); path: the last weight step's path alpha_i
    ``{"cell": int32 [6]}``; previous: alpha_{i-1}; vae_params: the graph VAE's parameters
    (constant; in the state so that a resumed search decodes with the VAE it started with)."""

    latent: jax.Array
    rule: Any
    archive: novelty.Archive
    path: dict
    previous: dict
    vae_params: Any


@dataclasses.dataclass(frozen=True)
class E2NASSearch(SinglePathSearch):
    """Attributes: space (NAS-Bench-201); rule: the latent's update rule; vae, vae_params: the
    trained graph VAE; mode: "ste_logits" or "decoder_st"; epsilon: Eq. 4.12's replay share;
    exploration: "sigmoid" (Sig_gamma(b)) or "constant" (``gamma``); archive_size: |A|;
    shrinkage: of p_Z's covariance; init_scale: the initial latent's standard deviation."""

    space: Any
    rule: optax.GradientTransformation
    vae: DVAE
    vae_params: Any = dataclasses.field(repr=False, compare=False)
    mode: str = "ste_logits"
    epsilon: float = 0.5
    exploration: str = "sigmoid"
    b: float = 10.0
    gamma: float = 0.5
    archive_size: int = 1000
    shrinkage: float = 0.1
    init_scale: float = 1e-3
    name: str = "e2nas"

    def __post_init__(self):
        if self.space.name != "nb201" or tuple(self.space.ops) != NB201_OPS:
            raise ValueError(f"E²NAS searches the NAS-Bench-201 space with its five operations "
                             f"(its graph VAE is trained on NB201 cells), got the "
                             f"{self.space.name!r} space with operations {self.space.ops}.")
        if self.vae.num_vertices != NB201_NUM_VERTICES or self.vae.num_ops != len(NB201_OPS):
            raise ValueError(f"The graph VAE reads DAGs of {self.vae.num_vertices} vertices and "
                             f"{self.vae.num_ops} operations, not NB201 cells "
                             f"({NB201_NUM_VERTICES} and {len(NB201_OPS)}); train one with "
                             "python -m experiments.train_vae.")
        check_choice("mode", self.mode, MODES)
        check_choice("exploration", self.exploration, EXPLORATIONS)
        complementation_weights(self.epsilon)
        check_integer("archive_size", self.archive_size, 1)
        edges, ops = self.space.arch_shapes()["cell"]
        if self.mode == "ste_logits" and self.vae.latent != edges * ops:
            raise ValueError(f"config.strategy.mode 'ste_logits' reads the latent as {edges} x "
                             f"{ops} operation logits, but the VAE's latent has "
                             f"{self.vae.latent} dimensions; use mode 'decoder_st' or a VAE "
                             f"with latent {edges * ops}.")
        for field, ok in (("b", self.b > 0), ("gamma", 0 <= self.gamma <= 1),
                          ("shrinkage", 0 <= self.shrinkage <= 1),
                          ("init_scale", self.init_scale >= 0)):
            if not ok:
                raise ValueError(f"config.strategy.{field} is out of range: "
                                 f"{getattr(self, field)!r} (b > 0; gamma and shrinkage in "
                                 "[0, 1]; init_scale >= 0).")
        object.__setattr__(self, "rule", optax.with_extra_args_support(self.rule))

    @property
    def num_ops(self) -> int:
        return self.space.arch_shapes()["cell"][1]

    def _decode(self, vae_params, z, key=None):
        """``(path, dag)``: the cell z [n] decodes to (argmax, or sampled with ``key``)."""
        dag = _decode(self.vae, vae_params, z[None], key)
        return {"cell": dag.types[0, 1:-1]}, dag

    def init(self, key, arch_shapes):
        del arch_shapes
        z = self.init_scale * jax.random.normal(key, (self.vae.latent,), jnp.float32)
        path, _ = self._decode(self.vae_params, z)
        return E2NASState(z, self.rule.init(z), latent_archive(self.vae.latent,
                                                                self.archive_size),
                          path, path, self.vae_params)

    def arch_weights(self, arch, key=None):
        """One-hot weights of the cell the latent decodes to (a sampled decoding given a
        key)."""
        return paths.path_weights(self.space, self._decode(arch.vae_params, arch.latent, key)[0])

    def train_path(self, arch, key, problem, step):
        del key, problem, step
        path, _ = self._decode(arch.vae_params, arch.latent)
        return arch._replace(previous=arch.path), path, path

    def weight_terms(self, arch, weights, path, key):
        """Eq. 4.12's three paths: alpha_i, alpha_i^c and alpha_{i-1} (alpha_i alone at
        epsilon 0)."""
        if self.epsilon == 0:
            return arch, [(1.0, path)]
        complement = {"cell": complementary_ops(key, path["cell"], arch.previous["cell"],
                                                self.num_ops)}
        current, replay, previous = complementation_weights(self.epsilon)
        return arch, [(current, path), (replay, complement), (previous, arch.previous)]

    def _soft(self, vae_params, z):
        """The soft part [6, 5] of the straight-through weights (see ``mode``)."""
        if self.mode == "ste_logits":
            return jax.nn.softmax(z.reshape(self.space.arch_shapes()["cell"]), -1)
        probs = self.vae.apply({"params": vae_params}, z[None], method=DVAE.decode_probs)
        return probs.types[0, 1:-1, :self.num_ops]

    def _gamma(self, problem, step):
        if self.exploration == "constant":
            return jnp.float32(self.gamma)
        return exploration_schedule(1.0, self.b)(problem.progress(step))

    def update_arch(self, state, batches, problem):
        """Remembers the latent in the archive, then one Eq. 4.7 step of it on a val batch."""
        arch, z = state.arch, state.arch.latent
        x_val = problem.images(step_key(state, 1), batches["val"]["image"][0])
        y_val = batches["val"]["label"][0]
        hard = jax.nn.one_hot(arch.path["cell"], self.num_ops)

        def val_loss(v):
            soft = self._soft(arch.vae_params, v)
            weights = {"cell": hard - jax.lax.stop_gradient(soft) + soft}
            loss, (_, acc) = problem.loss(state.params, state.batch_stats, weights, x_val, y_val)
            return loss, acc

        (loss, acc), val_grad = jax.value_and_grad(val_loss, has_aux=True)(z)
        decoder = decoder_map(self.vae, arch.vae_params)
        _, dag = self._decode(arch.vae_params, z)
        point = dag_point(self.vae, dag)[0]
        norm = gpnd_terms(decoder, z, point, lambda v: 0.0, lambda r: 0.0).residual_norm
        archive = remember(arch.archive, z, norm)

        def log_density(v):
            return archive_log_density(archive, decoder, v, point, self.shrinkage).log_density

        gamma = self._gamma(problem, state.step)
        density, density_grad = jax.value_and_grad(log_density)(z)
        direction = (1.0 - gamma) * val_grad + gamma * density_grad  # Eq. 4.7
        updates, rule = self.rule.update(direction, arch.rule, z,
                                         progress=problem.progress(state.step))
        metrics = {"val_loss": loss, "val_accuracy": acc, "gamma": gamma,
                   "alpha_grad_norm": tree_norm(direction),
                   "arch/val_grad_norm": tree_norm(val_grad),
                   "arch/density_grad_norm": tree_norm(density_grad),
                   "arch/log_density": density, "arch/residual_norm": norm,
                   "arch/archive_size": archive.size,
                   "arch/edges_changed": jnp.sum(arch.path["cell"] != arch.previous["cell"]),
                   **transforms.collect_metrics(rule)}
        return arch._replace(latent=optax.apply_updates(z, updates), rule=rule,
                             archive=archive), metrics


@functools.partial(jax.jit, static_argnums=0)
def _decode(vae: DVAE, params, z, key):
    """``vae.decode`` jitted: traced once, for the host's calls (logging, derivation) and the
    step's alike."""
    return vae.apply({"params": params}, z, key, method=DVAE.decode)


def e2nas(space, optim_alpha=None, vae: str = "", mode: str = "ste_logits",
          epsilon: float = 0.5, exploration: str = "sigmoid", b: float = 10.0,
          gamma: float = 0.5, archive_size: int = 1000, shrinkage: float = 0.1,
          init_scale: float = 1e-3) -> E2NASSearch:
    """The ``e2nas`` registry entry: ``vae`` the workdir of a trained graph VAE;
    ``optim_alpha``: Adam on the latent (GDAS's 3e-4, (0.5, 0.999), 1e-3)."""
    if not isinstance(vae, str) or not vae:
        raise ValueError("config.strategy.vae must be the workdir of a trained graph VAE, got "
                         f"{vae!r}; train one with python -m experiments.train_vae "
                         "--config=experiments/configs/vae_nb201.py:small --workdir=runs/vae_small "
                         "and pass --config.strategy.vae=runs/vae_small.")
    from jaxnas.vae.train import load_vae  # beside the engine: see jaxnas.vae.train

    model, params = load_vae(vae)
    return E2NASSearch(space, update_rule(optim_alpha, ("adam",)), model, params, mode,
                       epsilon, exploration, b, gamma, archive_size, shrinkage, init_scale)
