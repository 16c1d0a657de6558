"""Defaults shared by the search configs: DARTS's optimizer settings and the run controls."""

import os
from pathlib import Path

import ml_collections


def shared_nb201_table() -> str:
    """The shared NAS-Bench-201 CSV table: ``$JAXNAS_SHARED/data/nb201/nb201_merged.csv``, with
    ``JAXNAS_SHARED`` defaulting to ``../shared`` beside the repository."""
    shared = os.environ.get("JAXNAS_SHARED") or Path(__file__).resolve().parents[3] / "shared"
    return str(Path(shared) / "data" / "nb201" / "nb201_merged.csv")


def search_defaults() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.dataset = "tfds:cifar10"
    c.data_dir = ""  # tfds data dir; "" = the tfds default
    c.num_classes = 0  # classes of an npz set without a num_classes array (0: from its labels)
    # "memory": the whole set in host memory (digits, npz, tfds sets that fit); "grain": streamed
    # from tfds:NAME or arrayrecord:DIR by grain, for sets that do not fit (README, "Streaming
    # data"), with image_size (0: the images' own, fixed size), data_threads reading threads and
    # data_workers worker processes (0: none) per process.
    c.data_pipeline = "memory"
    c.image_size = 0
    c.data_threads = 4
    c.data_workers = 0
    c.train_portion = 0.5  # DARTS's split of the training set into train / val halves
    c.augment = True  # pad-4 random crop + horizontal flip
    c.cutout = 0
    c.batch_size = 64
    c.epochs = 50
    c.max_steps = 0  # stop early after this many steps (0: run all epochs)
    c.epoch_steps = 0  # steps per epoch (0: one pass over the train half; fewer: short epochs)
    # A staged search (jaxnas.engine.stages): empty for a search of one supernet.
    c.stages = ml_collections.ConfigDict()
    c.aux_weight = 0.4  # loss weight of a search-time auxiliary head, if the space has one
    # Drop-path of the weight steps (DARTS space): this probability in the last epoch, rising
    # linearly from 0 as in DARTS's evaluation (0: none).
    c.drop_path = 0.0

    # The space's name and size come from each config. scan: repeated pieces as one lax.scan,
    # compiled once (NB201: a stage's cells, unset: when a stage has more than one, but on a
    # CPU in the single-path supernet only, the mixed one's step running faster unrolled; DARTS:
    # a cell's edges of one stride, unset: wherever the strategy allows). remat: recompute
    # activations in the backward pass instead of storing them (less memory, more compute;
    # unset: in scanned DARTS cells, and in scanned NB201 stages on a CPU, where it is faster).
    c.space = ml_collections.ConfigDict(dict(remat=ml_collections.config_dict.placeholder(bool),
                                             scan=ml_collections.config_dict.placeholder(bool)))
    c.strategy = ml_collections.ConfigDict({"name": "darts"})

    c.optim_w = ml_collections.ConfigDict(dict(
        lr=0.025, lr_min=0.001, momentum=0.9, nesterov=False, weight_decay=3e-4, grad_clip=5.0))
    # The strategy's architecture update rule (jaxnas.strategies.options): Adam with L2 decay.
    c.optim_alpha = ml_collections.ConfigDict(dict(name="adam", lr=3e-4, b1=0.5, b2=0.999,
                                                   weight_decay=1e-3))

    c.log_every = 50  # steps
    c.checkpoint_every = 500  # steps
    c.keep_checkpoints = 3
    c.eigenvalue_every = 0  # steps between alpha-Hessian eigenvalue estimates (0: never)
    c.eigenvalue_iters = 20
    c.nb201_table = ""  # path of the NAS-Bench-201 CSV table, for NB201 lookups
    return c
