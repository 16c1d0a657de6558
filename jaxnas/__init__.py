"""jaxnas: differentiable neural architecture search in JAX/Flax."""

__version__ = "0.1.0"
