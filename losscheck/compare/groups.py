"""Which catalog specs compute the same mathematical loss, and how to call each on common inputs.

A :class:`Group` is one mathematical loss: its canonical input roles (``prediction``, ``target``,
``anchor``, ...), the spec whose input generator draws them (the *anchor*), and its
:class:`Member` implementations, each with the argument that takes every role, the conversion from
the canonical form (:mod:`.convert`) and the common parameter setting it is called with.

Groups come from the catalog, as ``ResultTable.cross_framework`` groups rows: by the oracle
function with the framework semantics stripped (``classification.binary_cross_entropy(log_clamp=-100)``
-> ``classification.binary_cross_entropy``), keeping the parameters that change the mathematics
(``squared=True``, ``half=True``). :data:`MATH_LOSSES` joins oracle functions that are one loss in
another input form -- binary cross-entropy on probabilities and on logits, softmax cross-entropy
with one-hot, soft and index targets, KL divergence on probabilities and log-probabilities -- and
adds the ways of calling one spec in both forms (Keras' ``from_logits``).

The common setting: torch ``reduction='mean'``, Keras classes ``reduction='sum_over_batch_size'``
(the default, no sample weight), every other parameter at its documented default (:data:`DEFAULTS`)
unless the group overrides it, and parameters that every member takes (``delta``, ``margin``)
drawn once per example and passed to all. Implementations that return per-element or per-sample
values (optax, Keras functions) are compared through the mean of what they return.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Mapping

import numpy as np

from ..report.table import base_reference
from .convert import CONVERSIONS

#: oracle argument names -> canonical role
ROLE_OF = {"y_true": "target", "targets": "target", "target": "target", "labels": "target",
           "y_pred": "prediction", "predictions": "prediction", "input": "prediction", "probs": "prediction",
           "logits": "prediction", "log_predictions": "prediction", "scores": "prediction"}
#: arguments that are not inputs of the loss's mathematics (Keras' sample_weight)
IGNORED_ARGS = ("sample_weight",)
#: reference parameters that change the mathematics, not a framework's semantics
MATH_PARAMS = ("squared", "half")
#: documented defaults, per framework, of parameters that not every member takes
DEFAULTS: dict[str, dict[str, Any]] = {
    "torch": {"reduction": "mean", "ignore_index": -100, "label_smoothing": 0.0, "log_target": False, "p": 2.0,
              "eps": 1e-6, "swap": False, "margin": 1.0, "distance_function": "default", "delta": 1.0,
              "beta": 1.0, "full": False, "log_input": True},
    "keras": {"reduction": "sum_over_batch_size", "from_logits": False, "label_smoothing": 0.0, "axis": -1,
              "ignore_class": None, "delta": 1.0},
    "optax": {"axis": -1, "epsilon": 0.0, "norm_degree": 2, "margin": 1.0, "eps": 1e-6, "delta": 1.0},
}
#: never drawn per example even when every member takes them: their meaning differs between frameworks
NOT_SHARED = ("reduction", "axis")


class NotComparable(Exception):
    """A spec cannot be called on the group's common inputs; the message says why."""


@dataclass(frozen=True)
class Variant:
    """A further way to call a spec inside a math loss (``from_logits=True``)."""
    params: Mapping[str, Any]
    convert: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    label: str = ""


@dataclass(frozen=True)
class MathLoss:
    """Oracle functions that compute one mathematical loss in different input forms.

    ``refs``: base reference -> {role: conversion chain from the canonical form}. ``anchor``: the
    member (spec id, with ``[label]`` for a variant) whose generator draws the canonical inputs; it
    takes them without conversion.
    ``params``: spec id, base reference or framework -> parameter overrides. ``extra``: spec id ->
    further :class:`Variant` members. ``domain``: (predicate on the canonical inputs by role, what
    it requires): examples outside every member's documented domain are not drawn.
    """
    key: str
    title: str
    refs: Mapping[str, Mapping[str, tuple[str, ...]]]
    anchor: str
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    extra: Mapping[str, tuple[Variant, ...]] = field(default_factory=dict)
    domain: tuple[Callable[[Mapping[str, Any]], bool], str] | None = None


@dataclass(frozen=True)
class Member:
    spec_id: str
    framework: str
    bind: Mapping[str, str]                   # role -> the spec's argument name
    params: Mapping[str, Any]                 # the common setting, without the shared drawn parameters
    convert: Mapping[str, tuple[str, ...]]    # role -> conversion chain ('' roles: none)
    label: str = ""

    @property
    def name(self) -> str:
        return f"{self.spec_id}[{self.label}]" if self.label else self.spec_id

    def chain(self, role: str) -> tuple[str, ...]:
        return tuple(self.convert.get(role, ()))


@dataclass(frozen=True)
class Group:
    key: str
    title: str
    anchor: str
    roles: tuple[str, ...]
    shared: tuple[str, ...]
    members: tuple[Member, ...]
    excluded: tuple[tuple[str, str], ...] = ()   # (spec id, why it is not comparable)
    domain: tuple[Callable[[Mapping[str, Any]], bool], str] | None = None

    @property
    def frameworks(self) -> set[str]:
        return {m.framework for m in self.members}

    def member(self, name: str) -> Member:
        return next(m for m in self.members if m.name == name)

    def spec_ids(self) -> list[str]:
        return list(dict.fromkeys(m.spec_id for m in self.members))

    def restricted(self, ids) -> "Group":
        """The group with only the members of the specs ``ids`` (the draw is unchanged)."""
        keep = set(ids)
        return Group(self.key, self.title, self.anchor, self.roles, self.shared,
                     tuple(m for m in self.members if m.spec_id in keep),
                     tuple(e for e in self.excluded if e[0].split("[", 1)[0] in keep), self.domain)


_LOGITS = {"from_logits": True}
_SOFTMAX = ("softmax",)
#: Keras' categorical losses draw (and document) two or more classes; with one, Keras squeezes the class axis
_TWO_CLASSES = (lambda roles: np.shape(roles["prediction"])[-1] >= 2, "two or more classes")

MATH_LOSSES: tuple[MathLoss, ...] = (
    MathLoss(
        "binary_cross_entropy", "binary cross-entropy (logits and probabilities)",
        refs={"classification.binary_cross_entropy_with_logits": {},
              "classification.binary_cross_entropy": {"prediction": ("sigmoid",)}},
        anchor="torch.nn.BCEWithLogitsLoss",
        extra={k: (Variant(_LOGITS, {}, "from_logits=True"),)
               for k in ("keras.losses.BinaryCrossentropy", "keras.losses.binary_crossentropy")}),
    MathLoss(
        "softmax_cross_entropy", "softmax cross-entropy with probability (soft or one-hot) targets",
        refs={"classification.softmax_cross_entropy": {},
              "classification.safe_softmax_cross_entropy": {},
              "classification.categorical_cross_entropy": {"prediction": _SOFTMAX},
              "classification.cross_entropy": {"prediction": ("class_second",), "target": ("class_second",)}},
        anchor="keras.losses.categorical_crossentropy[from_logits=True]", domain=_TWO_CLASSES,
        extra={k: (Variant(_LOGITS, {}, "from_logits=True"),)
               for k in ("keras.losses.CategoricalCrossentropy", "keras.losses.categorical_crossentropy")}),
    MathLoss(
        "sparse_softmax_cross_entropy", "softmax cross-entropy with class-index targets",
        refs={"classification.softmax_cross_entropy_with_integer_labels": {},
              "classification.sparse_categorical_cross_entropy": {"prediction": _SOFTMAX},
              "classification.cross_entropy": {"prediction": ("class_second",), "target": ("float",)},
              "classification.nll_loss": {"prediction": ("log_softmax", "class_second")},
              "classification.softmax_cross_entropy": {"target": ("one_hot",)},
              "classification.categorical_cross_entropy": {"prediction": _SOFTMAX, "target": ("one_hot",)}},
        anchor="optax.losses.softmax_cross_entropy_with_integer_labels", domain=_TWO_CLASSES,
        extra={**{k: (Variant(_LOGITS, {}, "from_logits=True"),)
                  for k in ("keras.losses.SparseCategoricalCrossentropy",
                            "keras.losses.sparse_categorical_crossentropy")},
               **{k: (Variant(_LOGITS, {"target": ("one_hot",)}, "from_logits=True"),)
                  for k in ("keras.losses.CategoricalCrossentropy", "keras.losses.categorical_crossentropy")}}),
    MathLoss(
        "kl_divergence", "KL divergence KL(target || prediction), prediction given as log-probabilities",
        refs={"divergence.kl_div": {}, "divergence.kl_divergence": {},
              "divergence.kl_divergence_keras": {"prediction": ("exp",)}},
        anchor="torch.nn.functional.kl_div",
        params={"torch": {"reduction": "batchmean", "log_target": False}}),
)

#: documented behaviour that makes implementations of one loss differ, beyond a spec's Deviation:
#: (group key, framework) -> what the framework documents
SEMANTICS = {
    ("margin.hinge", "keras"): "binary {0, 1} labels are converted to {-1, 1} (documented: "
                               "https://keras.io/api/losses/hinge_losses/)",
    ("margin.hinge", "optax"): "targets are used as given (documented for {-1, 1}): a 0 target gives max(1 - 0, 0) = 1",
    ("regression.cosine_similarity", "keras"): "returns the negative cosine similarity, a loss to minimise "
                                               "(https://keras.io/api/losses/regression_losses/)",
    ("regression.cosine_similarity", "optax"): "returns the cosine similarity",
    ("kl_divergence", "torch"): "reduction='batchmean' divides the summed divergence by the size of the first axis, "
                                "also for an unbatched 1-D input",
    ("kl_divergence", "keras"): "sums over the last axis and averages over the others",
    ("kl_divergence", "optax"): "sums over the last axis (one value per sample)",
}

#: anchors of the groups formed by one oracle function (default: see :func:`_default_anchor`)
ANCHORS = {"margin.hinge": "keras.losses.hinge", "regression.cosine_similarity": "keras.losses.cosine_similarity",
           "embedding.triplet_margin": "torch.nn.TripletMarginLoss"}


def math_key(reference: str) -> str:
    """The oracle function with framework semantics stripped, keeping :data:`MATH_PARAMS`:
    ``margin.hinge(squared=True)`` stays, ``embedding.triplet_margin(eps_shift=eps)`` does not."""
    base = base_reference(reference)
    m = re.search(r"\((.*)\)", str(reference))
    kept = [p.strip() for p in (m.group(1).split(",") if m else ())
            if p.split("=", 1)[0].strip() in MATH_PARAMS]
    return f"{base}({', '.join(kept)})" if kept else base


def roles_of(spec) -> dict[str, str]:
    """role -> argument name, for the spec's loss inputs."""
    out = {}
    for a in spec.args:
        if a.name in IGNORED_ARGS:
            continue
        out[ROLE_OF.get(a.oracle_name, a.oracle_name)] = a.name
    return out


def _space(spec) -> dict:
    return dict(getattr(spec.draw, "space", {}) or {})


def _overrides(spec, math: MathLoss | None) -> dict:
    if math is None:
        return {}
    out = dict(math.params.get(spec.framework, {}))
    out.update(math.params.get(base_reference(spec.reference), {}))
    out.update(math.params.get(spec.id, {}))
    return out


def setting(spec, shared, overrides) -> dict:
    """The common parameters of ``spec`` (shared ones excluded: they are drawn per example)."""
    params = dict(getattr(spec.draw, "fixed", {}) or {})
    for name in _space(spec):
        if name in overrides:
            params[name] = overrides[name]
        elif name in shared:
            continue
        elif name in DEFAULTS.get(spec.framework, {}):
            params[name] = DEFAULTS[spec.framework][name]
        else:
            raise NotComparable(f"no common setting for its parameter {name!r}")
    return params


def _default_anchor(specs) -> str:
    def rank(s):
        last = s.id.rsplit(".", 1)[-1]
        keras_fn = s.framework == "keras" and last[:1].islower()
        order = {"torch": 0, "optax": 2}.get(s.framework, 1 if keras_fn else 3)
        return order, ".functional." in s.id, s.id
    return min(specs, key=rank).id


def _build(key, title, anchor, candidates, math: MathLoss | None) -> Group | None:
    """candidates: [(spec, conversions, extra params, label)] in catalog order; ``anchor`` names one."""
    names = {(f"{s.id}[{label}]" if label else s.id): s for s, _, _, label in candidates}
    if anchor not in names:
        return None
    roles = tuple(roles_of(names[anchor]))
    # shared: drawn once per example when every candidate takes it and no one overrides it
    spaces = [set(_space(s)) for s, *_ in candidates]
    several = len({s.framework for s, *_ in candidates}) > 1
    overridden = {k for s, _, extra, _ in candidates for k in {**_overrides(s, math), **extra}}
    shared = set.intersection(*spaces) - overridden - (set(NOT_SHARED) if several else {"reduction"})
    members, excluded = [], []
    for spec, conv, extra, label in candidates:
        try:
            bind = roles_of(spec)
            if set(bind) != set(roles):
                raise NotComparable(f"its inputs ({', '.join(sorted(bind))}) are not this loss's "
                                    f"({', '.join(sorted(roles))})")
            bad = [c for chain in conv.values() for c in chain if c not in CONVERSIONS]
            if bad:
                raise NotComparable(f"unknown conversion {bad[0]!r}")
            params = setting(spec, shared, {**_overrides(spec, math), **extra})
        except NotComparable as exc:
            excluded.append((spec.id if not label else f"{spec.id}[{label}]", str(exc)))
            continue
        members.append(Member(spec.id, spec.framework, bind, params, dict(conv), label))
    if len(members) < 2 or anchor not in {m.name for m in members}:
        return None
    return Group(key, title, anchor, roles, tuple(sorted(shared)), tuple(members), tuple(excluded),
                 math.domain if math is not None else None)


@lru_cache(maxsize=1)
def all_groups() -> dict[str, Group]:
    """Every group of two or more comparable implementations, by key (catalog order)."""
    from .. import catalog

    specs = catalog.all_specs()
    claimed = {ref for m in MATH_LOSSES for ref in m.refs}
    out: dict[str, Group] = {}
    for math in MATH_LOSSES:
        cands = []
        for s in specs:
            ref = base_reference(s.reference)
            if ref in math.refs and math_key(s.reference) == ref:
                cands.append((s, dict(math.refs[ref]), {}, ""))
                for v in math.extra.get(s.id, ()):
                    cands.append((s, dict(v.convert), dict(v.params), v.label))
        g = _build(math.key, math.title, math.anchor, cands, math)
        if g is not None:
            out[g.key] = g
    by_key: dict[str, list] = {}
    for s in specs:
        k = math_key(s.reference)
        if k not in claimed:
            by_key.setdefault(k, []).append(s)
    for k, members in by_key.items():
        if len(members) < 2:
            continue
        g = _build(k, k, ANCHORS.get(k, _default_anchor(members)), [(s, {}, {}, "") for s in members], None)
        if g is not None:
            out[g.key] = g
    return out


def get(key: str) -> Group:
    return all_groups()[key]


def default_groups() -> list[Group]:
    """The groups whose implementations come from two or more frameworks."""
    return [g for g in all_groups().values() if len(g.frameworks) >= 2]


def groups_of(spec_id: str) -> list[Group]:
    return [g for g in all_groups().values() if spec_id in g.spec_ids()]


def select(ids: list[str]) -> tuple[list[Group], list[dict]]:
    """The groups to compare for ``ids`` and the ids that cannot be compared, each with a reason.

    One id: every group it belongs to, whole (the id against every other implementation). Two or
    more: each group holding two or more of them, restricted to them. Unknown ids raise KeyError.
    """
    from .. import catalog

    for i in ids:
        catalog.get(i)          # KeyError with the closest ids
    if len(ids) == 1:
        found = groups_of(ids[0])
        missing = [] if found else [{"id": ids[0], "reason": _alone(ids[0])}]
        return found, missing
    chosen = []
    for g in all_groups().values():
        inside = [i for i in ids if i in g.spec_ids()]
        if len(inside) >= 2:
            chosen.append(g.restricted(inside))
    covered = {i for g in chosen for i in g.spec_ids()}
    missing = [{"id": i, "reason": _apart(i, ids)} for i in ids if i not in covered]
    return chosen, missing


def _alone(spec_id: str) -> str:
    from .. import catalog

    spec = catalog.get(spec_id)
    for g in all_groups().values():
        for name, why in g.excluded:
            if name.split("[", 1)[0] == spec_id:
                return f"not comparable with the other implementations of {g.title}: {why}"
    return f"no other implementation computes {math_key(spec.reference)}"


def _apart(spec_id: str, ids) -> str:
    from .. import catalog

    mine = groups_of(spec_id)
    others = [i for i in ids if i != spec_id]
    if not mine:
        return _alone(spec_id)
    theirs = sorted({math_key(catalog.get(i).reference) for i in others})
    return (f"computes {', '.join(g.title for g in mine)}; the others compute {', '.join(theirs)}: "
            "not the same mathematical loss")
