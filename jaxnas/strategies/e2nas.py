"""E²NAS: differentiable search in the latent space of a graph VAE, with probabilistic
exploration and architecture complementation (Zhang thesis ch. 4, Algorithm 4; spec 002
section 3), on NAS-Bench-201 and in the DARTS space, and E²NAS-R's depth regularizer.

The architecture state holds a latent ``z`` [n] (alpha_theta) per cell type of the space
(``{"cell": z}`` on NB201, ``{"normal": z, "reduce": z}`` in the DARTS space), all decoded by
one graph VAE trained offline on the space's cells (``jaxnas.vae``; ``python -m
experiments.train_vae``; ``jaxnas.vae.codecs`` reads a decoding as a valid cell). Each step:

1. The decoder maps each ``z`` to a cell (argmax decoding): the path alpha_i, int32 [E] per
   cell type (``jaxnas.spaces.paths``).
2. The complementary path alpha_i^c (Fig. 4.2, ``complementation.complementary_ops``) is drawn
   against alpha_{i-1}, the path of the step before (at the first step, alpha_i itself).
3. One single-path weight step on a train batch minimizes Eq. 4.12,
   ``(1 - eps) L(alpha_i) + eps (L(alpha_i^c) + L(alpha_{i-1}))`` (only their operations are
   updated; Eq. 4.12's ``eta R`` is the weight optimizer's weight decay).
4. Each ``z`` and its point's residual norm join its cell type's archive A of visited
   architectures (a FIFO of ``archive_size``).
5. The latents move along Eq. 4.15's direction ``(1 - gamma) grad L_val + gamma grad log p_A(x)
   + zeta grad L_depth`` on a val batch, through the update rule (Adam with GDAS's settings, as
   the authors' code updates its latent). ``log p_A`` is the GPND density of Eq. 4.10
   (``jaxnas.vae.gpnd``) at the decoded cell's point ``x``, with p_Z and p_R fitted to A
   (``exploration.archive_log_density``), summed over the cell types (the thesis does not say
   how the DARTS space's two cells share the density; each is scored against its own archive);
   descending it moves ``z`` to where A is thin. ``gamma`` is Sig_gamma(b) of Eq. 4.16 with t
   the fraction of the search done (``exploration="sigmoid"``), or a constant (Table 4.2's
   gamma rows). Without E²NAS-R (``depth_weight`` zeta = 0) the last term is Eq. 4.7's absent
   one. E²NAS-R (zeta = 0.05, DARTS space only: every NB201 DAG has the same edges) adds
   ``jaxnas.vae.depth.depth_loss`` of each cell type's latent: minus the expected depth of
   ``depth_samples`` (M = 10) cells decoded by sampling from ``z + delta``, ``delta ~ N(0,
   depth_noise^2 I)`` (the thesis gives no scale).

The gradient of L_val with respect to ``z`` through the discrete decoder (spec 3.6), ``mode``:

- ``"ste_logits"`` (the authors' NB201 code): ``z`` is also read as [E, K] operation logits,
  and the supernet sees ``onehot(alpha_i) - sg(softmax(z)) + softmax(z)``: the value is the
  decoded path, the gradient that of the softmax, which bypasses the decoder. Needs n = E K (30
  on NB201; the DARTS space's 14 x 8 does not fit the VAE's latent, so it takes the next mode).
- ``"decoder_st"``: the supernet sees ``onehot(alpha_i) - sg(p) + p`` with ``p`` [E, K] the
  decoder's operation distributions along the decoded path (``DVAE.decode_probs``) placed on the
  edges the path uses (zero on the others), so the gradient flows through the decoder. No Gumbel
  noise: the hard part is the decoded path that the weight step trains, in both modes.

The final architecture is the decoding of the final latents. Following the thesis where the
authors' NB201 code differs: the archive keeps 1000 members (the code: 50) and the density's
volume term has Eq. 4.10's sign.
"""

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxnas import transforms
from jaxnas.spaces import paths
from jaxnas.strategies.base import step_key, tree_norm
from jaxnas.strategies.complementation import complementary_ops, complementation_weights
from jaxnas.strategies.exploration import (archive_log_density, exploration_schedule,
                                           latent_archive, remember)
from jaxnas.strategies.options import check_choice, check_integer, update_rule
from jaxnas.strategies.single_path import SinglePathSearch
from jaxnas.trees import tree_index, tree_stack
from jaxnas.vae.codecs import codec_for
from jaxnas.vae.depth import chain_depth, depth_loss
from jaxnas.vae.gpnd import dag_point, decoder_map, gpnd_terms
from jaxnas.vae.model import DVAE

MODES = ("ste_logits", "decoder_st")
EXPLORATIONS = ("sigmoid", "constant")
_VAE_CONFIGS = {"nb201": "vae_nb201.py", "darts": "vae_darts.py"}


class E2NASState(NamedTuple):
    """Attributes, each a dict by cell type (``space.arch_shapes()``'s keys): latent: z [n];
    archive: the visited architectures (``exploration.latent_archive``); path: the last weight
    step's path alpha_i, int32 [E]; previous: alpha_{i-1}. rule: the update rule's state;
    vae_params: the graph VAE's parameters (constant; in the state so that a resumed search
    decodes with the VAE it started with)."""

    latent: dict
    rule: Any
    archive: dict
    path: dict
    previous: dict
    vae_params: Any


@dataclasses.dataclass(frozen=True)
class E2NASSearch(SinglePathSearch):
    """Attributes: space (NAS-Bench-201, or the DARTS space with its 8 operations and 14 edges);
    rule: the latent's update rule; vae, vae_params: the graph VAE trained on the space's cells;
    mode: "ste_logits" or "decoder_st"; epsilon: Eq. 4.12's replay share; exploration: "sigmoid"
    (Sig_gamma(b)) or "constant" (``gamma``); archive_size: |A|; shrinkage: of p_Z's covariance;
    init_scale: the initial latents' standard deviation; depth_weight: E²NAS-R's zeta (0: plain
    E²NAS); depth_samples: its M; depth_noise: the standard deviation of its delta."""

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
    depth_weight: float = 0.0
    depth_samples: int = 10
    depth_noise: float = 0.1
    name: str = "e2nas"

    def __post_init__(self):
        codec = codec_for(self.space.name)
        if (tuple(self.space.ops) != codec.ops
                or getattr(self.space, "edges", "all") != "all"
                or not getattr(self.space, "uniform", True)):
            raise ValueError(f"E²NAS searches a space whose cells its graph VAE encodes: "
                             f"NAS-Bench-201 with its five operations, or the DARTS space with its "
                             f"eight on all 14 edges (no reduce_ops or edge_ops). Got the "
                             f"{self.space.name!r} space with operations {self.space.ops}.")
        if (self.vae.num_vertices, self.vae.num_ops) != (codec.num_vertices, codec.num_ops):
            raise ValueError(f"The graph VAE reads DAGs of {self.vae.num_vertices} vertices and "
                             f"{self.vae.num_ops} operation types, not {self.space.name} cells "
                             f"({codec.num_vertices} and {codec.num_ops}); train one with "
                             f"python -m experiments.train_vae --config=experiments/configs/"
                             f"{_VAE_CONFIGS[codec.name]}.")
        check_choice("mode", self.mode, MODES)
        check_choice("exploration", self.exploration, EXPLORATIONS)
        complementation_weights(self.epsilon)
        check_integer("archive_size", self.archive_size, 1)
        check_integer("depth_samples", self.depth_samples, 1)
        edges, ops = next(iter(self.space.arch_shapes().values()))
        if self.mode == "ste_logits" and self.vae.latent != edges * ops:
            raise ValueError(f"config.strategy.mode 'ste_logits' reads the latent as {edges} x "
                             f"{ops} operation logits, but the VAE's latent has "
                             f"{self.vae.latent} dimensions; use mode 'decoder_st' or a VAE "
                             f"with latent {edges * ops}.")
        if self.depth_weight and codec.chain is None:
            raise ValueError(f"config.strategy.depth_weight is {self.depth_weight!r}, but "
                             f"E²NAS-R's depth regularizer needs cells whose depth varies: every "
                             f"{self.space.name} cell has the same edges. Set it to 0 (the "
                             "thesis uses it in the DARTS space only).")
        for field, ok in (("b", self.b > 0), ("gamma", 0 <= self.gamma <= 1),
                          ("shrinkage", 0 <= self.shrinkage <= 1),
                          ("init_scale", self.init_scale >= 0),
                          ("depth_weight", self.depth_weight >= 0),
                          ("depth_noise", self.depth_noise >= 0)):
            if not ok:
                raise ValueError(f"config.strategy.{field} is out of range: "
                                 f"{getattr(self, field)!r} (b > 0; gamma and shrinkage in "
                                 "[0, 1]; init_scale, depth_weight and depth_noise >= 0).")
        object.__setattr__(self, "rule", optax.with_extra_args_support(self.rule))

    @property
    def codec(self):
        return codec_for(self.space.name)

    @property
    def cell_keys(self) -> tuple[str, ...]:
        return tuple(sorted(self.space.arch_shapes()))

    def _decode(self, vae_params, latents: dict, key=None):
        """``(path, dags, probs, vertices)`` of the latents ``{key: z [n]}`` (argmax decoding,
        or sampled with ``key``): the path ``{key: int32 [E]}`` they decode to, and the DAGs
        [C, ...], the decoder's distributions and each edge's vertex [C, E] of the C cell
        types in ``cell_keys`` order."""
        z = jnp.stack([latents[k] for k in self.cell_keys])
        dags, probs = _generate(self.vae, vae_params, z, key)
        cells, vertices = self.codec.decoded_cell(dags, probs)
        return dict(zip(self.cell_keys, cells)), dags, probs, vertices

    def init(self, key, arch_shapes):
        del arch_shapes
        keys = jax.random.split(key, len(self.cell_keys))
        latents = {k: self.init_scale * jax.random.normal(kk, (self.vae.latent,), jnp.float32)
                   for k, kk in zip(self.cell_keys, keys)}
        path = self._decode(self.vae_params, latents)[0]
        archives = {k: latent_archive(self.vae.latent, self.archive_size) for k in latents}
        return E2NASState(latents, self.rule.init(latents), archives, path, path,
                          self.vae_params)

    def arch_weights(self, arch, key=None):
        """One-hot weights of the cells the latents decode to (a sampled decoding given a
        key)."""
        return paths.path_weights(self.space, self._decode(arch.vae_params, arch.latent, key)[0])

    def train_path(self, arch, key, problem, step):
        del key, problem, step
        path = self._decode(arch.vae_params, arch.latent)[0]
        return arch._replace(previous=arch.path), path, path

    def weight_terms(self, arch, weights, path, key):
        """Eq. 4.12's three paths: alpha_i, alpha_i^c and alpha_{i-1} (alpha_i alone at
        epsilon 0)."""
        if self.epsilon == 0:
            return arch, [(1.0, path)]
        num_ops, unused = len(self.codec.ops), self.codec.unused_op
        keys = jax.random.split(key, len(self.cell_keys))
        complement = {k: complementary_ops(kk, path[k], arch.previous[k], num_ops, unused)
                      for k, kk in zip(self.cell_keys, keys)}
        current, replay, previous = complementation_weights(self.epsilon)
        return arch, [(current, path), (replay, complement), (previous, arch.previous)]

    def _soft(self, vae_params, latents: dict) -> dict:
        """The soft part ``{key: [E, K]}`` of the straight-through weights (see ``mode``)."""
        if self.mode == "ste_logits":
            return {k: jax.nn.softmax(z.reshape(self.space.arch_shapes()[k]), -1)
                    for k, z in latents.items()}
        _, _, probs, vertices = self._decode(vae_params, latents)
        soft = self.codec.soft_weights(probs, vertices)
        return dict(zip(self.cell_keys, soft))

    def _gamma(self, problem, step):
        if self.exploration == "constant":
            return jnp.float32(self.gamma)
        return exploration_schedule(1.0, self.b)(problem.progress(step))

    def _stack(self, tree: dict):
        """``{key: pytree}`` -> one pytree with a leading cell-type axis (``cell_keys`` order):
        the cell types share one traced program under ``vmap``."""
        return tree_stack([tree[k] for k in self.cell_keys])

    def _unstack(self, stacked) -> dict:
        return {k: tree_index(stacked, i) for i, k in enumerate(self.cell_keys)}

    def _depth_loss(self, vae_params, latents, key) -> jax.Array:
        """zeta L_depth (Eq. 4.14) of the latents [C, n], summed over the cell types, float []."""
        def decode_probs(z, k):
            return self.vae.apply({"params": vae_params}, z, k, method=DVAE.decode_probs)

        def one(z, k):
            return depth_loss(decode_probs, z, k, self.codec.chain, self.depth_noise,
                              self.depth_samples, self.depth_weight)

        return jnp.sum(jax.vmap(one)(latents, jax.random.split(key, len(latents))))

    def update_arch(self, state, batches, problem):
        """Remembers the latents in the archives, then one Eq. 4.15 step of them on a val
        batch."""
        arch, z = state.arch, state.arch.latent
        x_val = problem.images(step_key(state, 1), batches["val"]["image"][0])
        y_val = batches["val"]["label"][0]
        hard = paths.path_weights(self.space, arch.path)

        def val_loss(v):
            soft = self._soft(arch.vae_params, v)
            weights = jax.tree.map(lambda h, p: h - jax.lax.stop_gradient(p) + p, hard, soft)
            loss, (_, acc) = problem.loss(state.params, state.batch_stats, weights, x_val, y_val)
            return loss, acc

        (loss, acc), val_grad = jax.value_and_grad(val_loss, has_aux=True)(z)
        decoder = decoder_map(self.vae, arch.vae_params)
        _, dags, _, _ = self._decode(arch.vae_params, z)
        points, latents = dag_point(self.vae, dags), self._stack(z)  # [C, m], [C, n]
        norms = jax.vmap(lambda v, x: gpnd_terms(decoder, v, x, lambda _: 0.0,
                                                 lambda _: 0.0).residual_norm)(latents, points)
        archive = jax.vmap(remember)(self._stack(arch.archive), latents, norms)

        def log_density(v):
            return jnp.sum(jax.vmap(lambda a, u, x: archive_log_density(
                a, decoder, u, x, self.shrinkage).log_density)(archive, v, points))

        gamma = self._gamma(problem, state.step)
        density, density_grad = jax.value_and_grad(log_density)(latents)
        direction = jax.tree.map(lambda g, d: (1.0 - gamma) * g + gamma * d, val_grad,
                                 self._unstack(density_grad))  # Eq. 4.7
        metrics = {}
        if self.depth_weight:  # Eq. 4.15
            depth, depth_grad = jax.value_and_grad(self._depth_loss, argnums=1)(
                arch.vae_params, latents, step_key(state, 6))
            direction = jax.tree.map(jnp.add, direction, self._unstack(depth_grad))
            metrics.update({"arch/depth_loss": depth,
                            "arch/depth_grad_norm": tree_norm(depth_grad)})
        if self.codec.chain is not None:
            metrics["arch/depth"] = jnp.mean(chain_depth(dags.adj.astype(jnp.float32),
                                                         self.codec.chain))
        updates, rule = self.rule.update(direction, arch.rule, z,
                                         progress=problem.progress(state.step))
        metrics.update({
            "val_loss": loss, "val_accuracy": acc, "gamma": gamma,
            "alpha_grad_norm": tree_norm(direction),
            "arch/val_grad_norm": tree_norm(val_grad),
            "arch/density_grad_norm": tree_norm(density_grad),
            "arch/log_density": density,
            "arch/residual_norm": jnp.mean(norms),
            "arch/archive_size": archive.size[0],
            "arch/edges_changed": sum(jnp.sum(arch.path[k] != arch.previous[k])
                                      for k in self.cell_keys),
            **transforms.collect_metrics(rule)})
        return arch._replace(latent=optax.apply_updates(z, updates), rule=rule,
                             archive=self._unstack(archive)), metrics


@functools.partial(jax.jit, static_argnums=0)
def _generate(vae: DVAE, params, z, key):
    """``vae.generate`` jitted: traced once, for the host's calls (logging, derivation) and the
    step's alike."""
    return vae.apply({"params": params}, z, key, method=DVAE.generate)


def e2nas(space, optim_alpha=None, vae: str = "", mode: str = "ste_logits",
          epsilon: float = 0.5, exploration: str = "sigmoid", b: float = 10.0,
          gamma: float = 0.5, archive_size: int = 1000, shrinkage: float = 0.1,
          init_scale: float = 1e-3, depth_weight: float = 0.0, depth_samples: int = 10,
          depth_noise: float = 0.1) -> E2NASSearch:
    """The ``e2nas`` registry entry: ``vae`` the workdir of a graph VAE trained on the space's
    cells; ``optim_alpha``: Adam on the latents (GDAS's 3e-4, (0.5, 0.999), 1e-3)."""
    if not isinstance(vae, str) or not vae:
        raise ValueError("config.strategy.vae must be the workdir of a trained graph VAE, got "
                         f"{vae!r}; train one with python -m experiments.train_vae "
                         "--config=experiments/configs/vae_nb201.py:small --workdir=runs/vae_small "
                         "(vae_darts.py for the DARTS space) and pass "
                         "--config.strategy.vae=runs/vae_small.")
    from jaxnas.vae.train import load_vae  # beside the engine: see jaxnas.vae.train

    model, params = load_vae(vae)
    return E2NASSearch(space, update_rule(optim_alpha, ("adam",)), model, params, mode,
                       epsilon, exploration, b, gamma, archive_size, shrinkage, init_scale,
                       depth_weight, depth_samples, depth_noise)
