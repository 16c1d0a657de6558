"""The Pareto files of DDAS and CADAM (spec 001 section 2.1 step 7): every architecture a run
visited, the fronts of (val accuracy, FLOPs) and (val accuracy, parameters), and the selectors of
ambiguity 24, as ``pareto.json``, with ``pareto_flops.png`` and ``pareto_params.png``."""

import os

import numpy as np

from jaxnas import viz
from jaxnas.analysis.pareto import fronts, highest_score
from jaxnas.files import write_json
from jaxnas.strategies.shrinking import single_op_genotype
from jaxnas.strategies.supernet_env import Visited

_AXES = {"flops": ("FLOPs (M)", 1e6), "params": ("parameters (M)", 1e6)}


def visited_points(space, visited: Visited, steps=None) -> list[dict]:
    """One dict per row of ``visited`` (host arrays): ``genotype`` (every edge whose op is not
    ``none``), ``val_accuracy`` (%), ``val_loss``, ``params``, ``flops`` and ``step`` (the row's
    step: ``steps[i]``, or the row index)."""
    ops = space.ops
    points = []
    for i in range(int(visited.size)):
        cells = {kind: [(ops[int(c)],) for c in codes[i]] for kind, codes in
                 visited.paths.items()}
        points.append({"genotype": str(single_op_genotype(cells, space.edge_list)),
                       "val_accuracy": 100.0 * float(visited.accuracy[i]),
                       "val_loss": float(visited.loss[i]), "params": float(visited.params[i]),
                       "flops": float(visited.flops[i]),
                       "step": int(i if steps is None else steps[i])})
    return points


def write_pareto(workdir: str, space, visited: Visited, steps=None) -> list[str]:
    """Writes ``pareto.json`` (``points``, ``fronts`` {cost: indices}, ``selectors``) and one
    plot per cost; returns the paths written (none when nothing was visited)."""
    visited = Visited(*[np.asarray(x) if not isinstance(x, dict) else
                        {k: np.asarray(v) for k, v in x.items()} for x in visited])
    points = visited_points(space, visited, steps)
    if not points:
        return []
    found = fronts(points)
    path = os.path.join(workdir, "pareto.json")
    write_json(path, {"points": points, "fronts": found, "selectors": {
        "highest_val_accuracy": highest_score(points),
        "best_retrained": "re-train the front's cells (experiments.train), then "
                          "jaxnas.analysis.pareto.best_retrained"}})
    written = [path]
    for cost, (label, unit) in _AXES.items():
        plot = os.path.join(workdir, f"pareto_{cost}.png")
        viz.plot_pareto([(p[cost] / unit, p["val_accuracy"], "") for p in points], plot,
                        xlabel=label, ylabel="val accuracy (%)",
                        title=f"val accuracy against {label.split(' ')[0]} "
                              f"({len(points)} architectures)")
        written.append(plot)
    return written
