"""Accuracy against parameters of the final cells of several TND-NAS searches (a beta sweep): a
Pareto picture.

    python -m experiments.tnd_pareto --workdirs=runs/tnd_b0,runs/tnd_b06,runs/tnd_b1 \
        [--trained=runs/train_b0,runs/train_b06,runs/train_b1] --out=pareto.png

Each search's point is its final cell: with ``--trained`` (the retraining workdirs of the same
cells, in the same order), the retrained network's parameters and test accuracy from its
``report.json``; without, the parameters of the search's evaluation network (``eval_C``,
``eval_layers``) and the val accuracy of the argmax cell with the supernet's weights at the last
logged step of the last stage (one val batch: a rough score). Prints the points and the front.
"""

import json
import os

from absl import app, flags

from experiments import cli
from jaxnas.analysis import pareto_front
from jaxnas.engine import load_search
from jaxnas.engine.train_loop import network_size
from jaxnas.files import read_jsonl
from jaxnas.spaces import load_genotype
from jaxnas.viz import plot_pareto

_WORKDIRS = flags.DEFINE_list("workdirs", None, "The TND-NAS search workdirs, comma-separated.")
_TRAINED = flags.DEFINE_list("trained", [], "Their retraining workdirs, in the same order.")
_OUT = flags.DEFINE_string("out", "pareto.png", "Where to write the figure.")
flags.mark_flags_as_required(["workdirs"])


def search_point(workdir: str) -> tuple[float, float, str]:
    """``(parameters in M, accuracy in %, label)`` of a finished staged search's final cell."""
    genotype_path = os.path.join(workdir, "genotype.json")
    if not os.path.exists(genotype_path):
        raise FileNotFoundError(f"{workdir!r} has no genotype.json: the search has not ended "
                                "(or is not a search workdir).")
    stages = sorted(d for d in os.listdir(workdir) if d.startswith("stage"))
    last = os.path.join(workdir, stages[-1]) if stages else workdir
    setup, _ = load_search(last)
    strategy = setup.config.strategy
    if strategy.name != "tnd":
        raise ValueError(f"{workdir!r} holds a {strategy.name!r} search, not a TND-NAS one.")
    genotype = load_genotype(genotype_path)
    network = setup.space.network(genotype, setup.dataset.num_classes, C=strategy.eval_C,
                                  layers=strategy.eval_layers)
    params = network_size(network, setup.dataset.image_shape)[0]
    records = [r for _, r in read_jsonl(os.path.join(last, "metrics.jsonl"))[0]
               if "argmax_accuracy" in r]
    if not records:
        raise ValueError(f"{last!r} logged no architecture step (argmax_accuracy).")
    return params / 1e6, 100.0 * records[-1]["argmax_accuracy"], f"beta={strategy.beta:g}"


def trained_point(workdir: str, label: str) -> tuple[float, float, str]:
    path = os.path.join(workdir, "report.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{workdir!r} has no report.json: the training has not ended.")
    with open(path, encoding="utf-8") as f:
        report = json.load(f)
    return report["params"] / 1e6, 100.0 * report["test_accuracy"], label


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if _TRAINED.value and len(_TRAINED.value) != len(_WORKDIRS.value):
        raise app.UsageError(f"--trained names {len(_TRAINED.value)} workdirs for "
                             f"{len(_WORKDIRS.value)} searches; give one per search, in order.")
    points = [search_point(w) for w in _WORKDIRS.value]
    if _TRAINED.value:
        points = [trained_point(t, p[2]) for t, p in zip(_TRAINED.value, points)]
    ylabel = "test accuracy (%)" if _TRAINED.value else "val accuracy, supernet weights (%)"
    plot_pareto(points, _OUT.value, ylabel=ylabel,
                title="TND-NAS: final cells of a beta sweep")
    front = set(pareto_front([p[0] for p in points], [p[1] for p in points]).tolist())
    for i, (params, accuracy, label) in enumerate(points):
        print(f"{label:>12}  {params:8.3f} M  {accuracy:6.2f} %{'  front' if i in front else ''}")
    print(f"wrote {_OUT.value}")


if __name__ == "__main__":
    cli.run(main)
