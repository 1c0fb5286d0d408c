"""Property families. Each module exposes ``NAME`` and ``check(spec, case, dtype, runtime)``,
which returns a :class:`~.common.Measurement` or raises a :class:`~.common.Finding`."""
from . import batch, compiled, device, gradient, numerics, value

PROPERTIES = {m.NAME: m.check for m in (value, gradient, batch, numerics, device, compiled)}
PROPERTIES[batch.RANK_MISMATCH] = batch.rank_mismatch
#: the activation/loss compatibility analysis (losscheck/compat.py): run once per loss, not a search
COMPAT = "compat"
NAMES = (*PROPERTIES, COMPAT)
#: what `losscheck check` runs unless told otherwise
DEFAULT = ("value", "gradient")

__all__ = ["COMPAT", "DEFAULT", "NAMES", "PROPERTIES"]
