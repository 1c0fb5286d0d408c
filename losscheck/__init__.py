"""losscheck: prove loss functions right, or show exactly how they are wrong.

Importing this package imports no framework: torch, TensorFlow, Keras and JAX are loaded only by
the check that needs them.
"""
__version__ = "0.1.0"

from .audit.declare import declare  # noqa: E402  (no framework: a no-op decorator for `losscheck audit`)


def __getattr__(name: str):
    """``losscheck.parametrize_catalog`` (the pytest helper), imported on first use."""
    if name == "parametrize_catalog":
        from .pytest_support import parametrize_catalog

        return parametrize_catalog
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
