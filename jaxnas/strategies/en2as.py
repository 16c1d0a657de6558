"""EN²AS, efficient novelty-driven NAS (Zhang thesis ch. 2; spec 002 section 1; Algorithm 1).

The supernet is trained one path per step. For the first S steps the path is drawn uniformly and
its encoding joins the archive; after that a uniformly chosen archive member takes one step of
Eq. 2.6, along the ES estimate (Eq. 2.5; ``n`` perturbations of scale ``sigma``, step size
``gamma``) of the gradient of its expected novelty, the mean distance of its decoded path to the
``k`` nearest other members (Eq. 2.4), and the path it decodes to is trained
(``novelty.en2as_step``). Members are continuous encodings (NB201: one real per edge; DARTS: the
16 reals per cell ``[input1, op1, input2, op2]`` of the authors' code); the distance is the
edge-match distance (default) or the L2 distance of the one-hot encodings. The final
architecture is selected as RandomNAS does: regularized evolution (default) or random search on
the supernet's val accuracy (``RandomNASSearch``, whose paths EN²AS replaces).
"""

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxnas.spaces import paths
from jaxnas.strategies import novelty
from jaxnas.strategies.options import check_choice, check_integer
from jaxnas.strategies.randomnas import RandomNASSearch, Selection

DISTANCES = ("edge_match", "l2")


class EN2ASState(NamedTuple):
    """Attributes: archive: S continuous members (encodings); path: the last trained path;
    novelty: the mean novelty of the last ES step's perturbations (0 during the warm-up)."""

    archive: novelty.Archive
    path: dict
    novelty: jax.Array


@dataclasses.dataclass(frozen=True)
class EN2ASSearch(RandomNASSearch):
    """RandomNAS with novelty-driven paths. Attributes (besides RandomNAS's space and
    selection): archive_size: S (the random warm-up's length and the archive's capacity);
    num_perturbations: n; sigma; gamma: the ES step size; k: the kNN of novelty; distance:
    "edge_match" or "l2"."""

    name: str = "en2as"
    archive_size: int = 1000
    num_perturbations: int = 10
    sigma: float = 1.0
    gamma: float = 0.01
    k: int = 10
    distance: str = "edge_match"

    def __post_init__(self):
        check_choice("distance", self.distance, DISTANCES)
        for field, minimum in (("archive_size", 2), ("num_perturbations", 1), ("k", 1)):
            check_integer(field, getattr(self, field), minimum)
        if self.k >= self.archive_size:
            raise ValueError(f"config.strategy.k ({self.k}) must be below archive_size "
                             f"({self.archive_size}): novelty averages over the k nearest "
                             "other members.")
        if not self.sigma > 0 or not self.gamma > 0:
            raise ValueError(f"config.strategy.sigma and gamma must be > 0, got sigma="
                             f"{self.sigma!r}, gamma={self.gamma!r}.")
        if self.space.ops[0] != "none":
            raise ValueError(f"EN²AS needs 'none' as the first operation of the space, got "
                             f"{self.space.ops}.")
        if self.space.name == "darts" and len(self.space.edge_list) != 14:
            raise ValueError("EN²AS's DARTS encoding needs the 14-edge cell; set "
                             "config.space.edges='all'.")

    @property
    def encoding(self):
        if self.space.name == "darts":
            return novelty.DartsNodeEncoding(len(self.space.ops))
        return novelty.PerEdgeEncoding(len(self.space.ops))

    @property
    def _distance(self):
        if self.distance == "l2":
            return novelty.OneHotL2()
        return novelty.EdgeMatch(novelty.CellEdges({key: self.space.edge_list
                                                    for key in self.space.arch_shapes()}))

    def init(self, key, arch_shapes):
        path = paths.sample_path(self.space, key)
        widths = {name: w.shape[-1] for name, w in self.encoding.encode(path).items()}
        archive = novelty.empty_archive(widths, self.archive_size, jnp.float32)
        return EN2ASState(archive, path, jnp.float32(0))

    def train_path(self, arch, key, problem, step):
        del problem, step
        k_sample, k_member, k_es = jax.random.split(key, 3)

        def warm_up():
            path = paths.sample_path(self.space, k_sample)
            archive = novelty.add(arch.archive, self.encoding.encode(path))
            return archive, path, jnp.float32(0)

        def explore():
            index = jax.random.randint(k_member, (), 0, self.archive_size)
            archive, path, es = novelty.en2as_step(
                k_es, arch.archive, index, self.encoding, self._distance, self.k,
                self.num_perturbations, self.sigma, self.gamma)
            return archive, path, jnp.mean(es.novelty)

        archive, path, score = jax.lax.cond(arch.archive.size < self.archive_size, warm_up,
                                            explore)
        return arch._replace(archive=archive, novelty=score), path, path

    def update_arch(self, state, batches, problem):
        del batches, problem
        return state.arch, {"arch/novelty": state.arch.novelty,
                            "arch/archive_size": state.arch.archive.size}


def en2as(space, optim_alpha=None, archive_size: int = 1000, num_perturbations: int = 10,
          sigma: float = 1.0, gamma: float = 0.01, k: int = 10, distance: str = "edge_match",
          selection: str = "evolution", num_candidates: int = 100, population: int = 20,
          sample_size: int = 5, cycles: int = 80, eval_batches: int = 1) -> EN2ASSearch:
    """The ``en2as`` registry entry (no gradient update rule: ``optim_alpha`` is unused)."""
    del optim_alpha
    return EN2ASSearch(space, Selection(selection, num_candidates, population, sample_size,
                                        cycles, eval_batches),
                       archive_size=archive_size, num_perturbations=num_perturbations,
                       sigma=sigma, gamma=gamma, k=k, distance=distance)
