"""losscheck: prove loss functions right, or show exactly how they are wrong.

Importing this package imports no framework: torch, TensorFlow, Keras and JAX are loaded only by
the check that needs them.
"""
__version__ = "0.1.0"
