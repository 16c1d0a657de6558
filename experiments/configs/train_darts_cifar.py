"""Retraining a DARTS-space cell on CIFAR-10: DARTS's evaluation protocol (Liu et al., 2019; the
Zhang thesis, section 6; Amended-DARTS, section 4). 20 cells, C=36, auxiliary head at 2/3 depth
(loss weight 0.4), drop-path rising linearly to 0.2, cutout 16, SGD 0.025 cosine to 0, 600 epochs.

    python -m experiments.train --genotype=DARTS_V2 \
        --config=experiments/configs/train_darts_cifar.py --workdir=runs/darts_v2

TND-NAS (000_tnd_nas.md, section 4): --config.space.C=24 --config.batch_size=128
--config.drop_path=0.3 (C=16 for its S model). The other training configs start from this one.
"""

import ml_collections


def get_config():
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
    c.space = ml_collections.ConfigDict(dict(name="darts", C=36, layers=20))
    c.imagenet_stem = False  # DARTS's ImageNet stem: three stride-2 3x3 convs
    c.aux_weight = 0.4  # loss weight of the auxiliary head at 2/3 depth (0: no head)
    c.drop_path = 0.2  # drop-path probability in the last epoch, from 0 linearly (0: none)
    c.label_smoothing = 0.0
    c.augment = True  # pad-4 random crop + horizontal flip
    c.cutout = 16
    c.batch_size = 96
    c.epochs = 600
    c.max_steps = 0  # stop early after this many steps (0: run all epochs)

    # schedule: "cosine" (lr -> lr_min), "exponential" (lr * decay ** epoch) or "linear"
    # (lr -> lr_min), all stepped once per epoch.
    c.optim_w = ml_collections.ConfigDict(dict(
        schedule="cosine", lr=0.025, lr_min=0.0, decay=0.97, momentum=0.9, nesterov=False,
        weight_decay=3e-4, grad_clip=5.0))

    c.eval_every = 10  # epochs between test evaluations (0: only at the end)
    c.log_every = 100  # steps
    c.checkpoint_every = 1000  # steps
    c.keep_checkpoints = 3
    return c
