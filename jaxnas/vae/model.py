"""A D-VAE-style graph variational autoencoder of cell DAGs (Zhang et al., NeurIPS 2019; E²NAS,
Zhang thesis Sec. 4.3.1.1, Eq. 4.6).

Encoder: asynchronous message passing in the DAG's topological order. Vertex v gets the gated
sum of its predecessors' messages, ``h_v^in = sum_{u->v} g(h_u) * m(h_u)`` (g a sigmoid gate, m a
linear map), and updates ``h_v = GRU_e(x_v, h_v^in)`` with ``x_v`` its one-hot type. The graph
state is the output vertex's; with ``bidirectional`` (D-VAE's option, which the E²NAS code
turns on) a second pass over the reversed DAG ends at the input vertex and a linear layer merges
the two states. Two linear heads give the mean and log-variance of ``q(z | G)``.

Decoder: ``h_0 = tanh(W z)`` is the input state of vertex 0 (the start). The operation vertices
``i = 1..N-2`` come one at a time: the type from an MLP of the previous vertex's state; then
``h_i = GRU_d(x_i, 0)`` and, for ``j = i-1`` down to 0, the edge ``j -> i`` with probability
``sigmoid(MLP(h_j, h_i))``, after which ``h_i = GRU_d(x_i, sum of the messages of the edges
added so far)``. The output vertex comes last, fed by every vertex without an out-edge (the
thesis's fixed vertex count). The encoder's forward pass and the decoder share g and m, as in
D-VAE.

The decoder's ``x_i`` is the one-hot type and the one-hot position ``i``. Without the position,
two vertices of one type and the same predecessors (in an NB201 cell, the operations on the
edges 0->1 and 0->2) have the same state, and the decoder cannot tell which of them feeds a
later vertex. By default the encoder reads types only (Eq. 4.6's ``x_uid`` is left out), so it
gives the same result for every topological order that lists a DAG. With ``positions`` it reads
the one-hot position too (Eq. 4.6's ``x_uid``), for DAG forms in which a vertex's position
carries meaning its edges do not: in the DARTS form (``jaxnas.vae.darts_dag``) vertices 2k and
2k + 1 are the two operations summed into node k, and two nodes that no other node reads have
the same edges whichever of them is which.

Every method takes a batch: DAGs types [B, N], adj [B, N, N]; latents [B, Z]. All are pure and
jit-able (``vae.apply({"params": params}, ..., method="encode")`` or ``vae.bind(...)``).
"""

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.vae.dag import Dag


class DagProbs(NamedTuple):
    """The decoder's distributions along one decoded path, differentiable in z.

    types: [B, N, T], row i the distribution of vertex i's type (the start and end rows one-hot);
    adj: [B, N, N], ``adj[b, j, i]`` the probability of the edge ``j -> i`` for ``1 <= i <= N-2``,
    the output vertex's column its deterministic in-edges (0 or 1), zero elsewhere.
    """

    types: jax.Array
    adj: jax.Array


class ElboTerms(NamedTuple):
    """The evidence lower bound ``ELBO = -(nll + kl)`` of each DAG, in two terms [B]:
    ``nll = -log p(G | z)`` at one ``z ~ q(z | G)``, ``kl = KL(q(z | G) || N(0, I))``."""

    nll: jax.Array
    kl: jax.Array

    def loss(self, kl_weight: float = 1.0) -> jax.Array:
        """The batch mean of ``nll + kl_weight * kl``: -ELBO at ``kl_weight = 1`` (D-VAE trains
        with 0.005)."""
        return jnp.mean(self.nll + kl_weight * self.kl)


def edge_decisions(num_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """``(sources, targets)`` int [P]: the edges ``j -> i`` the decoder decides (``i = 1..N-2``,
    ``j < i``), P = (N-2)(N-1)/2."""
    pairs = [(j, i) for i in range(1, num_vertices - 1) for j in range(i)]
    return np.array([j for j, _ in pairs]), np.array([i for _, i in pairs])


class GatedMessage(nn.Module):
    """``g(h) * m(h)``: the message a vertex of state h [..., D] sends; [..., hidden]."""

    hidden: int

    @nn.compact
    def __call__(self, h):
        return nn.sigmoid(nn.Dense(self.hidden, name="gate")(h)) * nn.Dense(self.hidden,
                                                                           name="map")(h)


class DVAE(nn.Module):
    """The graph VAE of DAGs with ``num_vertices`` vertices and ``num_ops`` operation types
    (vertex types: operations ``0..num_ops-1``, start ``num_ops``, end ``num_ops + 1``);
    ``positions``: the encoder reads each vertex's position too (see the module docstring)."""

    num_ops: int
    num_vertices: int
    hidden: int = 501
    latent: int = 30
    bidirectional: bool = True
    positions: bool = False

    def __post_init__(self):
        for name, minimum in (("num_ops", 1), ("num_vertices", 3), ("hidden", 1), ("latent", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                    or value < minimum:
                raise ValueError(f"DVAE {name} must be an integer >= {minimum}, got {value!r}.")
        super().__post_init__()

    @property
    def num_types(self) -> int:
        return self.num_ops + 2

    def setup(self):
        self.forward_gru = nn.GRUCell(self.hidden)
        self.forward_message = GatedMessage(self.hidden)
        if self.bidirectional:
            self.backward_gru = nn.GRUCell(self.hidden)
            self.backward_message = GatedMessage(self.hidden)
            self.merge = nn.Dense(self.hidden)
        self.mean_head = nn.Dense(self.latent)
        self.logvar_head = nn.Dense(self.latent)
        self.latent_to_state = nn.Dense(self.hidden)
        self.decoder_gru = nn.GRUCell(self.hidden)
        self.type_head = nn.Sequential([nn.Dense(2 * self.hidden), nn.relu,
                                        nn.Dense(self.num_ops)])
        self.edge_from = nn.Dense(4 * self.hidden, use_bias=False)
        self.edge_to = nn.Dense(4 * self.hidden)
        self.edge_out = nn.Dense(1)

    # -- shared pieces ---------------------------------------------------------------------

    def _inputs(self, dag: Dag):
        """Types int [B, N] and float adjacency [B, N, N] of ``dag``, its shapes checked."""
        n = self.num_vertices
        if dag.types.shape[-1:] != (n,) or dag.adj.shape[-2:] != (n, n):
            raise ValueError(f"The DAGs have types of shape {dag.types.shape} and adj of shape "
                             f"{dag.adj.shape}, but this DVAE reads {n} vertices "
                             f"(types [B, {n}], adj [B, {n}, {n}]).")
        return jnp.asarray(dag.types), jnp.asarray(dag.adj).astype(jnp.float32)

    def _propagate(self, gru, message, x, adj, first_input):
        """One message-passing pass in the order listed: GRU inputs x [B, N, D], adj [B, N, N],
        the input state of vertex 0 [B, H] -> (states, messages), each [B, N, H]."""
        states, messages = [], []
        for v in range(self.num_vertices):
            h_in = first_input if v == 0 else jnp.einsum("bu,buh->bh", adj[:, :v, v],
                                                         jnp.stack(messages, 1))
            h, _ = gru(h_in, x[:, v])
            states.append(h)
            messages.append(message(h))
        return jnp.stack(states, 1), jnp.stack(messages, 1)

    def _first_decoder_input(self, z):
        """``h_0 = tanh(W z)`` [B, H], the input state of the decoder's start vertex."""
        return jnp.tanh(self.latent_to_state(z))

    def _decoder_input(self, types, position):
        """The decoder's GRU input: one-hot types [..] and one-hot position -> [.., T + N]."""
        where = jax.nn.one_hot(jnp.broadcast_to(position, types.shape), self.num_vertices)
        return jnp.concatenate([jax.nn.one_hot(types, self.num_types), where], -1)

    def _edge_logit(self, source, h):
        """Logit of the edge ``j -> i`` from ``edge_from(h_j)`` [..., 4H] and i's current state
        [..., H] -> [...]."""
        return self.edge_out(nn.relu(source + self.edge_to(h)))[..., 0]

    # -- the encoder -----------------------------------------------------------------------

    def encode(self, dag: Dag):
        """``q(z | G)``: DAGs -> ``(mean, logvar)``, each [B, Z]."""
        types, adj = self._inputs(dag)
        x = jax.nn.one_hot(types, self.num_types)
        if self.positions:
            where = jax.nn.one_hot(jnp.arange(self.num_vertices), self.num_vertices)
            x = jnp.concatenate([x, jnp.broadcast_to(where, types.shape + where.shape[-1:])], -1)
        zeros = jnp.zeros(x.shape[:1] + (self.hidden,), x.dtype)
        state = self._propagate(self.forward_gru, self.forward_message, x, adj, zeros)[0][:, -1]
        if self.bidirectional:
            reverse_adj = jnp.swapaxes(adj[:, ::-1, ::-1], 1, 2)
            back = self._propagate(self.backward_gru, self.backward_message, x[:, ::-1],
                                   reverse_adj, zeros)[0][:, -1]
            state = self.merge(jnp.concatenate([state, back], -1))
        return self.mean_head(state), self.logvar_head(state)

    # -- the decoder -----------------------------------------------------------------------

    def log_likelihood(self, z, dag: Dag):
        """``log p(G | z)`` [B] by teacher forcing, for z [B, Z]: the log-probabilities of the
        types of vertices ``1..N-2`` and of the decided edges into them (the output vertex's
        edges follow from the others)."""
        types, adj = self._inputs(dag)
        n = self.num_vertices
        x = self._decoder_input(types, jnp.arange(n))
        states, messages = self._propagate(self.decoder_gru, self.forward_message, x, adj,
                                           self._first_decoder_input(z))
        type_logp = jax.nn.log_softmax(self.type_head(states[:, :n - 2]))
        ops = types[:, 1:n - 1, None]
        log_p = jnp.take_along_axis(type_logp, ops, -1).sum((1, 2))
        # When j -> i is decided, i's input is the sum of the messages of its edges from j+1..i-1.
        src, dst = edge_decisions(n)
        incoming = adj[..., None] * messages[:, :, None, :]  # [B, u, v, H]: u's message to v
        from_later = jnp.cumsum(incoming[:, ::-1], axis=1)[:, ::-1]  # sums over u >= j
        h, _ = self.decoder_gru(from_later[:, src + 1, dst], x[:, dst])
        logits = self._edge_logit(self.edge_from(states)[:, src], h)
        target = adj[:, src, dst]
        return log_p + jnp.sum(target * jax.nn.log_sigmoid(logits)
                               + (1 - target) * jax.nn.log_sigmoid(-logits), -1)

    def generate(self, z, key=None) -> tuple[Dag, DagProbs]:
        """Decodes z [B, Z] vertex by vertex, each choice the most likely (``key`` None) or
        sampled with ``key`` -> ``(decode(z, key), decode_probs(z, key))`` in one pass."""
        n, batch = self.num_vertices, z.shape[0]
        src, _ = edge_decisions(n)
        keys = iter(jax.random.split(key, n - 2 + len(src))) if key is not None else None
        start = jnp.full((batch,), self.num_ops, jnp.int32)
        h, _ = self.decoder_gru(self._first_decoder_input(z), self._decoder_input(start, 0))
        types, type_probs = [start], [jax.nn.one_hot(start, self.num_types)]
        messages, sources = [self.forward_message(h)], [self.edge_from(h)]
        adj = jnp.zeros((batch, n, n), bool)
        adj_probs = jnp.zeros((batch, n, n), z.dtype)
        for i in range(1, n - 1):
            logits = self.type_head(h)
            t = (jnp.argmax(logits, -1) if keys is None
                 else jax.random.categorical(next(keys), logits)).astype(jnp.int32)
            x = self._decoder_input(t, i)
            h_in = jnp.zeros((batch, self.hidden), z.dtype)
            h, _ = self.decoder_gru(h_in, x)
            for j in reversed(range(i)):
                p = jax.nn.sigmoid(self._edge_logit(sources[j], h))
                edge = p > 0.5 if keys is None else jax.random.bernoulli(next(keys), p)
                h_in = h_in + edge[:, None] * messages[j]
                h, _ = self.decoder_gru(h_in, x)
                adj, adj_probs = adj.at[:, j, i].set(edge), adj_probs.at[:, j, i].set(p)
            types.append(t)
            type_probs.append(jnp.pad(jax.nn.softmax(logits), ((0, 0), (0, 2))))
            messages.append(self.forward_message(h))
            sources.append(self.edge_from(h))
        sinks = ~jnp.any(adj[:, :n - 1, :n - 1], axis=2)
        adj = adj.at[:, :n - 1, n - 1].set(sinks)
        adj_probs = adj_probs.at[:, :n - 1, n - 1].set(sinks.astype(z.dtype))
        end = jnp.full((batch,), self.num_ops + 1, jnp.int32)
        types.append(end)
        type_probs.append(jax.nn.one_hot(end, self.num_types))
        return Dag(jnp.stack(types, 1), adj), DagProbs(jnp.stack(type_probs, 1), adj_probs)

    def decode(self, z, key=None) -> Dag:
        """Latents z [B, Z] -> DAGs: the most likely type and edge at each step, or sampled ones
        with a ``key``."""
        return self.generate(z, key)[0]

    def decode_probs(self, z, key=None) -> DagProbs:
        """The decoder's distributions along the path ``decode(z, key)`` takes, differentiable
        in z (the choices themselves are constant)."""
        return self.generate(z, key)[1]

    # -- the objective ---------------------------------------------------------------------

    def elbo(self, dag: Dag, key) -> ElboTerms:
        """The ELBO's terms for DAGs, with ``z ~ q(z | G)`` drawn by reparameterization with
        ``key``."""
        mean, logvar = self.encode(dag)
        z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, mean.shape, mean.dtype)
        kl = -0.5 * jnp.sum(1 + logvar - mean ** 2 - jnp.exp(logvar), -1)
        return ElboTerms(-self.log_likelihood(z, dag), kl)


def init_params(vae: DVAE, key):
    """The initial parameters of ``vae`` (jitted: op by op, the unrolled passes take seconds)."""
    n = vae.num_vertices
    dag = Dag(jnp.zeros((1, n), jnp.int32), jnp.zeros((1, n, n), bool))
    return jax.jit(lambda key: vae.init(key, dag, key, method=DVAE.elbo)["params"])(key)
