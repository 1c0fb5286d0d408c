"""The record of one planted bug: a buggy loss, the diagnosis family it must produce, and its
correct twin, checked the same way."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

#: the check battery a ``via="check"`` mutant (and its twin) runs against its reference
CHECK_PROPERTIES = ("value", "gradient", "batch", "numerics")
VIAS = ("check", "audit")


@dataclass(frozen=True)
class Mutant:
    """A planted bug.

    ``via="check"``: ``losscheck.userloss.check_callable(buggy, reference, properties, params, inputs)``
    (hypothesis against the reference's oracle). ``via="audit"``: the audit of one loss, in process
    (``losscheck.audit.checks.audit_subject``), with ``reference`` as ``--reference`` when given and
    ``audit_inputs`` as ``--inputs``. ``family`` is the code family (V G B A N D P X) a finding must have.
    """
    name: str
    family: str
    bug: str                                   # what is wrong, in one line
    buggy: Callable
    correct: Callable
    reference: str | None = None
    via: str = "check"
    params: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, str] | None = None    # check_callable's inputs= (user name -> reference argument)
    audit_inputs: str | None = None            # the audit's --inputs text
    properties: tuple[str, ...] = CHECK_PROPERTIES
    framework: str = ""                        # set by the corpus module: torch, keras or jax

    def __post_init__(self):
        if self.family not in "VGBANDPX" or len(self.family) != 1:
            raise ValueError(f"{self.name}: family {self.family!r} is not one of V G B A N D P X")
        if self.via not in VIAS:
            raise ValueError(f"{self.name}: via {self.via!r} is not one of {VIAS}")
        if self.via == "check" and not self.reference:
            raise ValueError(f"{self.name}: a check mutant needs a reference")
