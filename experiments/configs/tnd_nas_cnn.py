"""TND-NAS in the DARTS CNN space on CIFAR-10 (Lyu et al., spec 000): three stages of 5, 12 and
20 cells at C=24 (fresh weights, logits and optimizers per stage), 25 epochs each of which the
first 10 train the weights alone; 10 normal candidates (every convolution) and 6 reduction
candidates (no convolution) on every edge, dropping the 4/3/2 normal and 2/2/1 reduction
operations of lowest probability after each stage, so that one operation per edge remains and
the cell keeps every edge whose operation is not ``none`` (any number of inputs per node).
The logits move by REINFORCE on M=10 sampled cells per step with the reward
``Acc * (Params / P)^beta``, P = 4.4M, 3.2M, 1.8M per stage and beta = -0.6, Params counted on
the evaluation network (C=24, 20 cells, no auxiliary head); Adam 6e-3, (0.5, 0.999), 1e-3,
clip 5, an EMA baseline (0.95). Weights: batch 128, SGD 0.025 cosine to 0, momentum 0.9,
wd 4e-5 (A14), clip 5.

``:cifar100`` takes beta = -0.75, -0.85, -0.85 per stage on CIFAR-100; ``:accuracy`` rewards the
accuracy alone (beta = 0). Table V: TND-NAS CIFAR-10 (M) 2.70 % test error with 3.2M parameters.

    python -m experiments.search --config=experiments/configs/tnd_nas_cnn.py --workdir=runs/tnd_nas
"""

import ml_collections

from experiments.configs.common import search_defaults
from jaxnas.spaces.ops import TND_NORMAL_OPS, TND_REDUCE_OPS

VARIANTS = ("", "cifar100", "accuracy")


def get_config(variant: str = ""):
    if variant not in VARIANTS:
        raise ValueError(f"tnd_nas_cnn.py takes no argument, ':cifar100' or ':accuracy', got "
                         f"{variant!r}.")
    c = search_defaults()
    c.dataset = "tfds:cifar100" if variant == "cifar100" else "tfds:cifar10"
    c.batch_size = 128
    c.epochs = 25  # per stage
    c.space.name = "darts"
    c.space.C = 24
    c.space.layers = 5
    c.space.ops = TND_NORMAL_OPS
    c.space.reduce_ops = TND_REDUCE_OPS
    c.optim_w.lr_min = 0.0
    c.optim_w.weight_decay = 4e-5
    c.optim_alpha = ml_collections.ConfigDict(dict(name="adam", lr=6e-3, b1=0.5, b2=0.999,
                                                   weight_decay=1e-3))
    c.strategy = ml_collections.ConfigDict(dict(
        name="tnd", num_samples=10, warmup_epochs=10, param_target=4.4e6,
        beta=0.0 if variant == "accuracy" else -0.6, baseline="ema", grad_clip=5.0, eval_C=24,
        eval_layers=20))
    per_stage = {"param_target": (4.4e6, 3.2e6, 1.8e6)}
    if variant == "cifar100":
        per_stage["beta"] = (-0.75, -0.85, -0.85)
    c.stages = ml_collections.ConfigDict(dict(
        drop=dict(normal=(4, 3, 2), reduce=(2, 2, 1)), space=dict(layers=(5, 12, 20)),
        strategy=per_stage, final="single"))
    c.log_every = 50
    c.checkpoint_every = 500
    return c
