"""jaxnas: differentiable neural architecture search in JAX/Flax."""

from setuptools import find_packages, setup

setup(
    name="jaxnas",
    version="0.1.0",
    description="Differentiable neural architecture search in JAX/Flax: the DARTS family, "
    "single-path, latent-space and RL searches, and exact bilevel hypergradients.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["jaxnas", "jaxnas.*", "experiments", "experiments.*"]),
    python_requires=">=3.10",
    install_requires=[
        "jax>=0.5",
        "flax>=0.10",
        "optax>=0.2.4",
        "chex>=0.1.88",
        "orbax-checkpoint>=0.11",
        "ml_collections>=0.1.1",
        "absl-py>=2.0",
        "numpy>=1.26",
        "tensorflow-datasets>=4.9.7",
        "grain>=0.2.6",  # the streaming pipeline (config.data_pipeline="grain")
        "array_record>=0.5",  # the ArrayRecord files it reads
        "scikit-learn>=1.3",
        "matplotlib>=3.8",
        "tensorboardX>=2.6",
        "filelock>=3.0",  # the size limit of JAX's compilation cache (experiments/cli.py)
    ],
    # bench: the PyTorch reference of experiments/bench_vs_torch.py (on a CPU-only machine,
    # install torch's CPU build first: plain `torch` may pull a CUDA build of several GB).
    extras_require={"test": ["pytest>=8", "pytest-xdist>=3.5"], "bench": ["torch>=2.1"]},
)
