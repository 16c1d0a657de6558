"""How well a NAS-Bench-201 supernet ranks architectures: inherited-weight accuracy vs benchmark.

Each architecture is scored by the searched supernet (mixed or single-path) with one-hot
architecture weights, so it computes that architecture's discrete network with the supernet's
weights, on the search's val half or the test split, and by its NAS-Bench-201 accuracy. Batch
norm uses the supernet's running statistics (eval mode) or each batch's own statistics (``bn``;
the running statistics of a single-path supernet mix the activations of many paths). Kendall tau
between the two scores measures how far the supernet's ranking can be trusted (Yu et al., ICLR
2020); s-tau, the mean Kendall tau between the supernet rankings of N runs, how stable it is
(Zhang thesis Sec 2.4.4).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.analysis.ranking import kendall_tau, stability_tau
from jaxnas.benchmarks.nb201 import column_name, parse_arch_str
from jaxnas.data.augment import normalize
from jaxnas.spaces.frozen import BN_MODES, frozen_logits
from jaxnas.spaces.genotypes import NB201_EDGES, NB201Genotype
from jaxnas.spaces.ops import NB201_OPS

SPLITS = ("val", "test")


@dataclasses.dataclass(frozen=True)
class RankingResult:
    """The scores of n architectures, in the order they were given.

    Attributes:
      arch_strs: n NB201 arch strings.
      supernet_accuracy: float64 (n,), accuracy in % with the supernet's inherited weights.
      benchmark_accuracy: float64 (n,), accuracy in % from the table's ``benchmark_column``.
      kendall_tau: Kendall tau-b between the two; NaN when either is constant (no order).
      split: "val" (the search's val half of the training set) or "test".
      num_examples: the number of images each architecture was scored on.
      benchmark_column: the NB201 table column, e.g. "c10_test_200".
      bn: the batch-norm statistics of the supernet scores, "running" or "batch" (``BN_MODES``).
    """

    arch_strs: tuple[str, ...]
    supernet_accuracy: np.ndarray
    benchmark_accuracy: np.ndarray
    kendall_tau: float
    split: str
    num_examples: int
    benchmark_column: str
    bn: str


def nb201_space_of(setup):
    """The search space of the search ``setup``; a ValueError unless it is NAS-Bench-201's."""
    if setup.space.name != "nb201":
        raise ValueError(f"The search uses the {setup.space.name!r} space; ranking against "
                         "NAS-Bench-201 needs a search in the nb201 space "
                         "(config.space.name = 'nb201').")
    return setup.space


def sample_nb201_archs(n: int, seed: int, ops: Sequence[str] = NB201_OPS) -> list[str]:
    """``n`` distinct NB201 arch strings drawn uniformly from the cells over ``ops`` (one op per
    edge; len(ops)**6 cells), the same for the same ``(n, seed, ops)``."""
    ops = tuple(ops)
    unknown = [op for op in ops if op not in NB201_OPS]
    if unknown or not ops:
        raise ValueError(f"ops must be NB201 operations, got {ops}; choose from {NB201_OPS}.")
    total = len(ops) ** len(NB201_EDGES)
    if not 1 <= n <= total:
        raise ValueError(f"Cannot sample {n} distinct architectures: there are {total} cells "
                         f"over the ops {ops}; ask for 1 to {total}.")
    codes = np.random.default_rng([seed, 0x201]).choice(total, size=n, replace=False)
    digits = lambda code: [(code // len(ops) ** e) % len(ops) for e in range(len(NB201_EDGES))]
    return [NB201Genotype(tuple(ops[d] for d in digits(code))).arch_str
            for code in codes.tolist()]


def one_hot_weights(arch: Any, ops: Sequence[str]) -> dict[str, np.ndarray]:
    """``{"cell": float32 [6, len(ops)]}``: the architecture weights that select ``arch`` (an
    arch string or genotype) in a supernet over ``ops``."""
    arch_ops = parse_arch_str(arch)
    missing = sorted(set(arch_ops) - set(ops))
    if missing:
        raise ValueError(f"Architecture {arch} uses {missing}, which the supernet does not have "
                         f"(its ops are {tuple(ops)}); rank only cells over those ops.")
    weights = np.zeros((len(NB201_EDGES), len(ops)), np.float32)
    weights[np.arange(len(NB201_EDGES)), [list(ops).index(op) for op in arch_ops]] = 1.0
    return {"cell": weights}


def make_correct_count(net, mean, std, bn: str = "running"):
    """The jitted ``count(variables, arch_weights, images, labels, valid) -> int32 scalar``: the
    number of valid images that ``net`` classifies right.

    images: uint8 [nb, B, H, W, C]; labels: int [nb, B]; valid: bool [nb, B] (False on padding).
    ``bn``: "running" (eval mode, the running statistics in ``variables``) or "batch" (each batch
    normalized by its own statistics, as in training; nothing is updated, and padding would
    enter the statistics). ``arch_weights`` is an argument, so one compilation serves every
    architecture.
    """
    if bn not in BN_MODES:
        raise ValueError(f"Unknown bn {bn!r}; use 'running' (the supernet's running batch-norm "
                         "statistics) or 'batch' (each batch's own statistics).")

    def batch_count(variables, arch_weights, batch):
        images, labels, valid = batch
        logits = frozen_logits(net, variables, normalize(images, mean, std), arch_weights, bn)
        return jnp.sum((jnp.argmax(logits, -1) == labels) & valid, dtype=jnp.int32)

    @jax.jit
    def count(variables, arch_weights, images, labels, valid):
        counts = jax.lax.map(lambda b: batch_count(variables, arch_weights, b),
                             (images, labels, valid))
        return jnp.sum(counts)

    return count


def _split_arrays(setup, split: str):
    """uint8 images [n, H, W, C] and labels [n] of the search's val half or of the test split."""
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; use one of {SPLITS}.")
    if split == "test":
        rows = setup.dataset.test.read(np.arange(len(setup.dataset.test)))
    else:
        rows = setup.dataset.train.read(setup.streams["val"].indices)
    return rows["image"], rows["label"]


def _scored_arrays(setup, split: str, batch_size: int, bn: str):
    """The images and labels of ``split`` that are scored: all of them with running statistics;
    with batch statistics the whole batches of ``batch_size`` only (all images when there are no
    more than ``batch_size``), so that every batch's statistics come from as many images."""
    images, labels = _split_arrays(setup, split)
    if bn == "batch" and len(labels) > batch_size:
        n = len(labels) // batch_size * batch_size
        images, labels = images[:n], labels[:n]
    return images, labels


def _batched(images: np.ndarray, labels: np.ndarray, batch_size: int):
    """Pads to whole batches: images [nb, B, ...], labels [nb, B], valid [nb, B]."""
    n = len(labels)
    size = min(batch_size, n)
    nb = -(-n // size)
    pad = nb * size - n
    valid = np.arange(nb * size) < n
    images = np.concatenate([images, np.zeros((pad,) + images.shape[1:], images.dtype)])
    labels = np.concatenate([labels, np.zeros(pad, labels.dtype)])
    return (images.reshape((nb, size) + images.shape[1:]), labels.reshape(nb, size),
            valid.reshape(nb, size))


def evaluate_nb201_architectures(setup, state, archs: Sequence[Any], split: str = "val",
                                 batch_size: int = 256, bn: str = "running") -> np.ndarray:
    """Accuracy in % (float64 (n,)) of each of ``archs`` (arch strings or genotypes) with the
    weights of the supernet in ``state``, on ``split`` ("val": the search's val half; "test": the
    test split), in batches of ``batch_size``. ``bn``: "running" (the supernet's batch
    statistics, eval mode) or "batch" (each batch's own statistics, nothing updated; the images
    past the last whole batch are left out). One compilation for all architectures."""
    space = nb201_space_of(setup)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    count = make_correct_count(setup.problem.plain_net, setup.problem.mean, setup.problem.std, bn)
    weights = [one_hot_weights(arch, space.ops) for arch in archs]
    images, labels = _scored_arrays(setup, split, batch_size, bn)
    batches = jax.device_put(_batched(images, labels, batch_size))
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    counts = [count(variables, w, *batches) for w in weights]
    return 100.0 * np.asarray(jax.device_get(counts), np.float64) / len(labels)


def rank_nb201_architectures(setup, state, archs: Sequence[Any], table,
                             metric: tuple[str, str] = ("cifar10", "test"), split: str = "val",
                             batch_size: int = 256, bn: str = "running") -> RankingResult:
    """Scores ``archs`` (n >= 2 arch strings or genotypes) by the supernet of the search
    (``setup, state`` as from ``jaxnas.engine.load_search``; ``split``, ``batch_size`` and ``bn`` as
    in ``evaluate_nb201_architectures``) and by ``table`` (an ``NB201Table``) at ``metric`` =
    (dataset, metric) as in ``column_name``, and their Kendall tau."""
    nb201_space_of(setup)
    if len(archs) < 2:
        raise ValueError(f"Ranking needs at least 2 architectures, got {len(archs)}.")
    column = column_name(*metric)
    rows = [table.query(arch) for arch in archs]
    benchmark = np.array([getattr(row, column) for row in rows], np.float64)
    supernet = evaluate_nb201_architectures(setup, state, archs, split, batch_size, bn)
    ordered = all(np.ptp(scores) > 0 for scores in (supernet, benchmark))
    tau = kendall_tau(supernet, benchmark) if ordered else float("nan")
    num_examples = len(_scored_arrays(setup, split, batch_size, bn)[1])
    return RankingResult(tuple(row.arch_str for row in rows), supernet, benchmark, tau, split,
                         num_examples, column, bn)


def supernet_stability_tau(results: Sequence[RankingResult]) -> float:
    """s-tau of the supernet rankings of N >= 2 runs (Zhang thesis Sec 2.4.4): the mean Kendall
    tau of their ``supernet_accuracy`` over the N (N - 1) / 2 pairs of runs. ``results`` must rank
    the same architectures, in the same order, on the same split with the same ``bn``; NaN when a
    run's supernet accuracies are all equal (that run has no order)."""
    if len(results) < 2:
        raise ValueError(f"s-tau compares the supernet rankings of N >= 2 runs, got "
                         f"{len(results)}; rank the same architectures with several runs.")
    first = results[0]
    for k, result in enumerate(results[1:], 1):
        if result.arch_strs != first.arch_strs:
            raise ValueError(f"Run {k} ranks other architectures than run 0; s-tau compares "
                             "rankings of the same architectures, in the same order.")
        if (result.split, result.bn) != (first.split, first.bn):
            raise ValueError(f"Run {k} is scored on {result.split} with {result.bn} batch-norm "
                             f"statistics, run 0 on {first.split} with {first.bn}; score every "
                             "run the same way.")
    if any(np.ptp(result.supernet_accuracy) == 0 for result in results):
        return float("nan")
    return stability_tau([result.supernet_accuracy for result in results])
