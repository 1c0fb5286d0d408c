"""The common inputs of a comparison: drawn once per group, mapped onto every implementation.

:func:`draw` runs the anchor spec's own input generator (the domains the catalog already knows:
probabilities at exactly 0 and 1, saturating logits, zero vectors) under hypothesis with a seed
derived from the run's seed and the group. The parent process draws each group's examples once and
the worker processes that evaluate its members read them (:func:`save`, :func:`load`);
:func:`digest` lets the parent verify that every worker saw the same examples. Parameters drawn
per example (``Group.shared``) are drawn first, from the anchor's parameter space.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..catalog.spec import Case
from . import convert
from .groups import Group, Member


@dataclass(frozen=True)
class Canonical:
    """One example: canonical inputs by role, and the shared parameters drawn with them."""
    index: int
    roles: dict[str, np.ndarray]
    shared: dict[str, Any]

    @property
    def size(self) -> int:
        return int(sum(np.size(v) for v in self.roles.values()))

    def magnitude(self) -> float:
        finite = [np.abs(v[np.isfinite(v)]).sum() for v in map(np.asarray, self.roles.values())
                  if np.issubdtype(np.asarray(v).dtype, np.number)]
        return float(sum(finite))


#: a directory of drawn examples, one file per group, that worker processes load instead of drawing
CASES_ENV = "LOSSCHECK_COMPARE_CASES"


def _path(directory: str, key: str) -> str:
    return os.path.join(directory, hashlib.sha256(key.encode()).hexdigest()[:24] + ".pkl")


def save(directory: str, key: str, cases: list[Canonical]) -> None:
    with open(_path(directory, key), "wb") as f:
        pickle.dump(cases, f)


def load(group: Group, examples: int, seed: int) -> list[Canonical]:
    """The examples the parent process drew for ``group`` (:data:`CASES_ENV`), else drawn here.

    Hypothesis' generation depends on the modules a process has imported (it samples constants
    found in their source), so a worker that has run other checks would draw other examples from
    the same seed: the parent draws once and the workers read its draws."""
    directory = os.environ.get(CASES_ENV)
    if directory and os.path.exists(_path(directory, group.key)):
        with open(_path(directory, group.key), "rb") as f:
            return pickle.load(f)
    return draw(group, examples, seed)


def group_seed(seed: int, group: Group) -> int:
    return zlib.crc32(f"{seed}|compare|{group.key}".encode())


def draw(group: Group, examples: int, seed: int) -> list[Canonical]:
    """``examples`` canonical examples of ``group`` (fewer when hypothesis exhausts a small space)."""
    from hypothesis import HealthCheck, Phase, assume, given, settings
    from hypothesis import seed as hseed
    from hypothesis import strategies as st

    from .. import catalog
    from ..catalog.build import draw_params

    anchor_member = group.member(group.anchor)
    spec = catalog.get(anchor_member.spec_id)
    space = dict(getattr(spec.draw, "space", {}) or {})
    inputs_of = getattr(spec.draw, "inputs", None)
    if inputs_of is None:
        raise ValueError(f"{spec.id} has no pinnable input generator (catalog.build.drawer)")
    out: list[Canonical] = []

    @hseed(group_seed(seed, group))
    @settings(max_examples=examples, database=None, deadline=None, phases=(Phase.generate,),
              suppress_health_check=list(HealthCheck), derandomize=False)
    @given(st.data())
    def generate(data):
        shared = draw_params(data, {k: space[k] for k in group.shared})
        arrays = dict(inputs_of(data, {**anchor_member.params, **shared}))
        arrays.pop("__params__", None)     # weights, masks: not part of the common setting
        roles = {role: np.asarray(arrays[arg]) for role, arg in anchor_member.bind.items() if arg in arrays}
        assume(set(roles) == set(group.roles) and (group.domain is None or group.domain[0](roles)))
        out.append(Canonical(len(out), roles, shared))

    from ..strategies import reproducible

    with np.errstate(all="ignore"), reproducible():
        generate()
    return out


def digest(cases: list[Canonical]) -> str:
    """A hash of the examples' inputs and parameters (equal in every process that drew them)."""
    h = hashlib.sha256()
    for c in cases:
        for role in sorted(c.roles):
            a = np.ascontiguousarray(c.roles[role])
            h.update(f"{role}{a.dtype}{a.shape}".encode())
            h.update(a.tobytes())
        h.update(repr(sorted(c.shared.items())).encode())
    return h.hexdigest()[:16]


def member_case(member: Member, canonical: Canonical) -> tuple[Case, dict[str, list]]:
    """The member's :class:`Case` for a canonical example, and per role the intermediate arrays of
    its conversion chain (for pulling gradients back to the canonical inputs)."""
    inputs, stages = {}, {}
    for role, arg in member.bind.items():
        x, st = convert.apply(member.chain(role), canonical.roles[role], canonical.roles)
        inputs[arg], stages[role] = x, st
    return Case(inputs, {**member.params, **canonical.shared}), stages
