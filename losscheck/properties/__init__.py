"""Property families. Each module exposes ``NAME`` and ``check(spec, case, dtype, runtime)``,
which returns a :class:`~.common.Measurement` or raises a :class:`~.common.Finding`."""
from . import gradient, value

PROPERTIES = {m.NAME: m.check for m in (value, gradient)}

__all__ = ["PROPERTIES"]
