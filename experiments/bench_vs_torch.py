"""jaxnas's search step against an independent PyTorch implementation of the same step
(``experiments/torch_reference.py``), side by side in one process, on the NAS-Bench-201 or
the DARTS supernet.

    pip install -e ".[bench]"   # PyTorch; on a CPU-only machine: pip install torch==2.13.0 first
    python -m experiments.bench_vs_torch --space=nb201 --method=all [--C=16 --cells=5 --batch=64]
    python -m experiments.bench_vs_torch --space=darts --method=all --C=16 --cells=8 --batch=32

Methods (one search step = an architecture update and a weight update; the passes each side
runs are counted in ``torch_reference.Search``'s docstrings, and jaxnas runs the same ones):
``first_order`` (DARTS first order, alpha first), ``darts2_exact`` (DARTS second order by a
double backward), ``darts2_fd`` (the finite difference of DARTS's code), ``neumann`` (iDARTS
with T = 1 and K = 2), ``neumann_jvp`` (the same with each second-order product its own jvp:
``strategy.linearize=False``), ``neumann_loop`` and ``neumann_jvp_loop`` (the two with the
products in one ``lax.scan``: ``strategy.neumann_loop=True``; one more, unused, HVP each).
jaxnas runs its real jitted step (``make_step`` of the strategy as ``darts``, ``darts2``,
``idarts`` build it), without augmentation, on the same random batches (uint8 images; the
PyTorch side normalizes them the same way). Both sides are warmed up
(``--warmup`` steps; jaxnas's first includes compilation, reported), then timed in turns, one
step each per round, for ``--rounds`` rounds; the table gives medians and the ratio PyTorch /
jaxnas (above 1: jaxnas is faster). PyTorch runs where JAX does
(``--torch_device=auto``: on the GPU when JAX's default backend is one, with
``cudnn.benchmark`` as DARTS's code sets it; else on the CPU with ``--threads`` threads, default
every core, as XLA does); each PyTorch step is synchronized before its clock stops, as
``block_until_ready`` does for jaxnas's. The peak resident memory of the process after each row
is reported (it only grows, so it bounds both sides' together), and on a GPU each side's peak
device memory.
"""

import platform
import resource
import statistics
import time

import jax
import numpy as np
from absl import app, flags
from ml_collections import ConfigDict

from experiments import bench_common
from experiments.tables import markdown_table
from jaxnas.data import data_mesh, replicated
from jaxnas.engine.optim import cosine_by_epoch, weight_optimizer
from jaxnas.engine.search_loop import init_state, make_step
from jaxnas.strategies import SearchProblem, get_strategy

METHODS = {  # name -> (jaxnas strategy, its options, the PyTorch step)
    "first_order": ("darts", {"alpha_first": True}, "first_order"),
    "darts2_exact": ("darts2", {"hvp": "exact"}, "darts2_exact"),
    "darts2_fd": ("darts2", {"hvp": "finite_difference"}, "darts2_finite_difference"),
    "neumann": ("idarts", {"inner_steps": 1, "neumann_terms": 2}, "neumann"),
    "neumann_jvp": ("idarts", {"inner_steps": 1, "neumann_terms": 2, "linearize": False},
                    "neumann"),
    "neumann_loop": ("idarts", {"inner_steps": 1, "neumann_terms": 2, "neumann_loop": True},
                     "neumann"),
    "neumann_jvp_loop": ("idarts", {"inner_steps": 1, "neumann_terms": 2, "linearize": False,
                                    "neumann_loop": True}, "neumann"),
}
MEAN, STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
LR = 0.025

_METHOD = flags.DEFINE_list("method", ["all"], f"Methods: all or some of {list(METHODS)}.")
_ROUNDS = flags.DEFINE_integer("rounds", 5, "Timed rounds.")
_WARMUP = flags.DEFINE_integer("warmup", 2, "Untimed steps per side first.")
_THREADS = flags.DEFINE_integer("threads", 0, "PyTorch threads (0: every core).")
_TORCH_DEVICE = flags.DEFINE_enum("torch_device", "auto", ["auto", "cpu", "cuda"],
                                  "PyTorch's device (auto: cuda when JAX runs on a GPU).")


def jax_step(method, batches):
    """The jitted jaxnas step of ``method`` and its state, replicated on the devices."""
    name, options, _ = METHODS[method]
    space = bench_common.flag_space()
    strategy = get_strategy(name, space, None, **options)
    schedule = cosine_by_epoch(LR, 0.001, 50, 1000)
    optim_w = ConfigDict(dict(lr=LR, momentum=0.9, nesterov=True, weight_decay=5e-4,
                              grad_clip=5.0))
    problem = SearchProblem(space.supernet(10), MEAN, STD, False, 0,
                            weight_optimizer(optim_w, schedule), schedule, 50000, 0.0, 0.9,
                            5e-4)
    image = batches["train"]["image"].shape[2:]
    state = init_state(0, strategy, space, problem, image)
    mesh = data_mesh()
    per_step = {"train": strategy.train_batches, "val": 1}
    return make_step(strategy, problem, per_step, mesh), jax.device_put(state, replicated(mesh))


def torch_step(method, batches, device):
    """``step()`` of the PyTorch reference for ``method`` on the same batches, on ``device``;
    it returns when the step's work is done."""
    import torch

    from experiments.torch_reference import Search

    def tensors(batch):
        x = torch.tensor(batch["image"][0], dtype=torch.float32).permute(0, 3, 1, 2) / 255.0
        x = (x - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]
        return (x.contiguous().to(device),
                torch.tensor(batch["label"][0], dtype=torch.long).to(device))

    search = Search(bench_common.SPACE.value, bench_common.C.value, bench_common.CELLS.value, LR,
                    device=device)
    step = getattr(search, METHODS[method][2])
    train, val = tensors(batches["train"]), tensors(batches["val"])
    synchronize = torch.cuda.synchronize if device == "cuda" else lambda: None

    def run():
        step(train, val)
        synchronize()

    return run


def _torch_device() -> str:
    """``--torch_device``, auto resolved: cuda when JAX runs on a GPU and PyTorch sees one."""
    import torch

    if _TORCH_DEVICE.value != "auto":
        if _TORCH_DEVICE.value == "cuda" and not torch.cuda.is_available():
            raise app.UsageError("--torch_device=cuda, but PyTorch sees no CUDA device; install "
                                 "a CUDA build of torch or use --torch_device=cpu.")
        return _TORCH_DEVICE.value
    return "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"


def _peak_memory_mb(device: str) -> str:
    """The process's peak resident memory, and on a GPU each side's peak device memory (MB)."""
    rss = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}"
    if device != "cuda":
        return rss
    import torch

    jax_peak = (jax.devices()[0].memory_stats() or {}).get("peak_bytes_in_use", 0)
    return (f"{rss}; GPU jaxnas {jax_peak / 2**20:.0f}, "
            f"PyTorch {torch.cuda.max_memory_allocated() / 2**20:.0f}")


def main(argv):
    del argv
    methods = list(METHODS) if _METHOD.value == ["all"] else _METHOD.value
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise app.UsageError(f"Unknown --method {unknown}; use all or some of {list(METHODS)}.")
    import torch

    device = _torch_device()
    torch.set_num_threads(_THREADS.value or torch.get_num_threads())
    torch.backends.cudnn.benchmark = True  # as DARTS's train_search.py sets it
    rng = np.random.default_rng(0)
    size, batch = bench_common.IMAGE.value, bench_common.BATCH.value
    batches = {k: {"image": rng.integers(0, 255, (1, batch, size, size, 3), dtype=np.uint8),
                   "label": rng.integers(0, 10, (1, batch)).astype(np.int32)}
               for k in ("train", "val")}
    rows = []
    for method in methods:
        start = time.perf_counter()
        step, state = jax_step(method, batches)
        state = jax.block_until_ready(step(state, batches)[0])
        compile_s = time.perf_counter() - start
        for _ in range(_WARMUP.value - 1):
            state = jax.block_until_ready(step(state, batches)[0])
        reference = torch_step(method, batches, device)
        for _ in range(_WARMUP.value):
            reference()
        times = {"jaxnas": [], "torch": []}
        for _ in range(_ROUNDS.value):
            t0 = time.perf_counter()
            state = jax.block_until_ready(step(state, batches)[0])
            times["jaxnas"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            reference()
            times["torch"].append(time.perf_counter() - t0)
        ms = {k: 1e3 * statistics.median(v) for k, v in times.items()}
        rows.append((method, ms["torch"], ms["jaxnas"], compile_s, _peak_memory_mb(device)))
        print(f"done {method}: torch {ms['torch']:.1f} ms, jaxnas {ms['jaxnas']:.1f} ms, "
              f"compile {compile_s:.1f} s, memory {rows[-1][-1]}", flush=True)
    print(f"\n{bench_common.SPACE.value} C={bench_common.C.value} cells="
          f"{bench_common.CELLS.value} batch={batch}, "
          f"{_ROUNDS.value} rounds after {_WARMUP.value} warm-up steps, "
          f"{platform.processor() or platform.machine()}, jax {jax.__version__} on "
          f"{jax.devices()[0].device_kind}, torch {torch.__version__} on {device}"
          f"{'' if device == 'cuda' else f' with {torch.get_num_threads()} threads'}\n")
    print(markdown_table(
        ["method", "PyTorch ms", "jaxnas ms", "speed (PyTorch / jaxnas)",
         "jaxnas compile + first step (s)",
         "peak RSS so far (MB)" + ("; peak GPU memory so far" if device == "cuda" else "")],
        [[method, _ms(t_ms), _ms(j_ms), f"{t_ms / j_ms:.2f}x", f"{compile_s:.1f}", memory]
         for method, t_ms, j_ms, compile_s, memory in rows]))


def _ms(milliseconds: float) -> str:
    return f"{milliseconds:.1f}" if milliseconds < 100 else f"{milliseconds:.0f}"


if __name__ == "__main__":
    app.run(main)
