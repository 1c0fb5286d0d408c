"""What a user's loss takes: each argument's role (prediction, target, embeddings, context), its
domain (reals, probabilities, logits, one-hot, class indices...) and its symbolic shape
(``N`` samples, ``D`` features, ``C`` classes), and how to build plausible inputs and context
tensors for it.

Sources, strongest first: ``--inputs`` (or ``@losscheck.declare(inputs=...)``), annotations
(``Float[Tensor, "N C"]``, ``torch.LongTensor``), the docstring (``y_pred: (N, C) probabilities``),
parameter names, and probing: :func:`plans` lists the hypotheses in that order and the caller keeps
the first one the loss accepts (:mod:`.checks`).

``--inputs`` syntax: comma-separated ``NAME=DOMAIN(DIMS)``, e.g.
``y_pred=probs(N,C),y_true=onehot(N,C)`` or ``pred=reals(N),target=reals(N)``; DIMS are ``N``,
``D``, ``C`` or integers; domains are listed in :data:`DOMAINS`.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from ..userloss import PREDICTION_NAMES, TARGET_NAMES

#: domain -> (what it is, dtype kind)
DOMAINS = {
    "reals": ("real numbers", "float"),
    "positive": ("positive reals", "float"),
    "unit": ("numbers in [0, 1] (independent probabilities)", "float"),
    "probs": ("probability rows (softmax outputs) along the last axis", "float"),
    "logits": ("unnormalised scores (logits)", "float"),
    "log_probs": ("log-probability rows (log_softmax outputs)", "float"),
    "onehot": ("one-hot rows along the last axis", "float"),
    "labels": ("integer class indices in [0, C)", "int"),
    "binary": ("0/1 targets", "float"),
    "sign": ("-1/+1 targets", "float"),
    # context tensors (constants of the loss: no gradient)
    "mask": ("an importance mask with values in {0, 1, 2, 4}", "float"),
    "sample_weights": ("per-sample weights k/8 in [1/8, 2]", "float"),
    "class_weights": ("per-column (class) weights k/8 in [1/8, 2]", "float"),
    "adjacency": ("a symmetric 0/1 adjacency matrix without self-loops", "float"),
    "kernel": ("a weight matrix (values k/8)", "float"),
}
CONTEXT_DOMAINS = ("mask", "sample_weights", "class_weights", "adjacency", "kernel")
DEFAULT_DIMS = {"N": 4, "D": 3, "C": 3}

PREDICTION, TARGET = PREDICTION_NAMES, TARGET_NAMES
EMBEDDINGS = {"embeddings", "embedding", "emb", "embs", "features", "z", "h", "node_embeddings",
              "representations", "vectors", "anchor"}
CONTEXT = {
    "mask": "mask", "masks": "mask", "importance_mask": "mask", "weight_mask": "mask", "importance": "mask",
    "weights": "sample_weights", "sample_weights": "sample_weights", "sample_weight": "sample_weights",
    "per_sample_weights": "sample_weights", "w": "sample_weights",
    "class_weights": "class_weights", "class_weight": "class_weights", "weight": "class_weights",
    "pos_weight": "class_weights",
    "adjacency": "adjacency", "adjacency_matrix": "adjacency", "adj": "adjacency", "adj_matrix": "adjacency",
    "graph": "adjacency",
    "kernel": "kernel",
}
#: plausible values for scalar constructor arguments without a default
SCALARS = {"delta": 1.0, "margin": 1.0, "alpha": 0.25, "gamma": 2.0, "temperature": 0.5, "eps": 1e-7,
           "epsilon": 1e-7, "lambda_reg": 0.01, "lam": 0.01, "lmbda": 0.01, "beta": 1.0, "smoothing": 0.1,
           "label_smoothing": 0.1, "num_classes": 3, "reduction": "mean", "p": 2.0, "q": 0.5}


class InputsError(ValueError):
    """A malformed ``--inputs`` or declared inputs string."""


def role_of_name(name: str) -> str | None:
    n = name.lower()
    if n in PREDICTION:
        return "prediction"
    if n in TARGET:
        return "target"
    if n in EMBEDDINGS:
        return "embeddings"
    if n in CONTEXT:
        return "context"
    return None


def context_domain(name: str) -> str | None:
    return CONTEXT.get(name.lower())


@dataclass
class Tensor:
    """One tensor the loss receives: a call argument or a constructor context tensor."""
    name: str
    role: str                      # prediction | target | embeddings | context | other
    domain: str
    shape: tuple[str, ...]         # symbols N, D, C or integer strings
    source: str                    # --inputs | declare | annotation | docstring | name | position | probe
    where: str = "call"            # call | ctor

    @property
    def differentiable(self) -> bool:
        return self.where == "call" and self.role in ("prediction", "embeddings", "other") \
            and DOMAINS[self.domain][1] == "float"

    def shape_text(self) -> str:
        return "(" + ", ".join(self.shape) + ("," if len(self.shape) == 1 else "") + ")"


@dataclass
class Plan:
    tensors: list[Tensor]
    scalars: dict = field(default_factory=dict)    # constructor scalars we chose (delta=1.0)
    label: str = ""                                # the hypothesis, e.g. "reals (N, D)"

    @property
    def call(self) -> list[Tensor]:
        return [t for t in self.tensors if t.where == "call"]

    @property
    def ctor(self) -> list[Tensor]:
        return [t for t in self.tensors if t.where == "ctor"]

    def by_role(self, role: str) -> list[Tensor]:
        return [t for t in self.tensors if t.role == role]

    @property
    def pools_batch(self) -> bool:
        """Samples interact by design: an adjacency matrix, or embeddings without targets."""
        return any(t.domain == "adjacency" for t in self.tensors) or (
            bool(self.by_role("embeddings")) and not self.by_role("target"))

    @property
    def elementwise(self) -> bool:
        """Prediction and target compared element by element (regression-like domains)."""
        p, t = self.by_role("prediction"), self.by_role("target")
        return bool(p and t) and all(x.domain in ("reals", "positive", "unit", "binary", "sign") for x in p + t) \
            and all(x.shape == p[0].shape for x in p + t)

    def describe(self) -> dict:
        return {t.name: {"role": t.role, "domain": t.domain, "shape": t.shape_text(), "source": t.source,
                         "argument": "constructor" if t.where == "ctor" else "call"} for t in self.tensors}

    def to_json(self) -> dict:
        return {"tensors": [asdict(t) for t in self.tensors], "scalars": self.scalars, "label": self.label}

    @staticmethod
    def from_json(d: dict) -> "Plan":
        return Plan([Tensor(**{**t, "shape": tuple(t["shape"])}) for t in d["tensors"]], d.get("scalars", {}),
                    d.get("label", ""))


# ---- --inputs ----------------------------------------------------------------------------------------

_ITEM = re.compile(r"\s*([A-Za-z_]\w*)\s*=\s*([A-Za-z_]\w*)\s*\(([^()]*)\)\s*")


def parse_inputs(text: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """``"y_pred=probs(N,C),y_true=onehot(N,C)"`` -> {name: (domain, shape)}."""
    out = {}
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _ITEM.match(text, pos)
        if not m:
            raise InputsError(f"cannot read {text[pos:][:40]!r}: expected NAME=DOMAIN(DIMS), e.g. "
                              "y_pred=probs(N,C),y_true=onehot(N,C)")
        name, domain, dims = m.group(1), m.group(2).lower(), m.group(3)
        domain = {"prob": "probs", "probabilities": "probs", "real": "reals", "onehots": "onehot",
                  "indices": "labels", "classes": "labels", "int": "labels", "weights": "sample_weights"}.get(domain, domain)
        if domain not in DOMAINS:
            raise InputsError(f"unknown domain {m.group(2)!r} for {name}; expected one of {', '.join(DOMAINS)}")
        shape = tuple(d.strip() for d in dims.split(",") if d.strip())
        for d in shape:
            if d not in ("N", "D", "C") and not d.isdigit():
                raise InputsError(f"unknown dimension {d!r} in {name}={m.group(2)}({dims}); use N, D, C or integers")
        if name in out:
            raise InputsError(f"{name} is given twice")
        out[name] = (domain, shape)
        pos = m.end()
        if pos < len(text):
            if text[pos] != ",":
                raise InputsError(f"expected ',' after {m.group(0).strip()!r}")
            pos += 1
    if not out:
        raise InputsError("empty inputs specification")
    return out


# ---- hints from annotations and docstrings ---------------------------------------------------------

_DIM_WORDS = {"n": "N", "b": "N", "batch": "N", "batch_size": "N", "samples": "N", "nodes": "N", "num_nodes": "N",
              "c": "C", "classes": "C", "num_classes": "C", "k": "C",
              "d": "D", "dim": "D", "features": "D", "outputs": "D", "m": "D"}
_DOMAIN_WORDS = [("one-hot", "onehot"), ("onehot", "onehot"), ("one hot", "onehot"), ("log-prob", "log_probs"),
                 ("log prob", "log_probs"), ("log_prob", "log_probs"), ("logit", "logits"), ("probabilit", "probs"),
                 ("probs", "probs"), ("softmax", "probs"),
                 ("class ind", "labels"), ("integer", "labels"), ("indices", "labels"), ("binary", "binary"),
                 ("0 or 1", "binary"), ("0/1", "binary"), ("{0,1}", "binary"), ("{0, 1}", "binary"), ("embedding", "reals"), ("positive", "positive")]


def _shape_from(text: str) -> tuple[str, ...] | None:
    m = re.search(r"[\(\[]\s*([A-Za-z_]\w*(?:\s*[, ]\s*(?:[A-Za-z_]\w*|[1-9]\d*))*)\s*,?\s*[\)\]]", text)
    if not m:
        return None
    words = [w for w in re.split(r"[,\s]+", m.group(1)) if w]
    dims = tuple(w if w.isdigit() else _DIM_WORDS.get(w.lower()) for w in words)
    return dims if all(dims) else None


def _domain_from(text: str) -> str | None:
    low = text.lower()
    for word, domain in _DOMAIN_WORDS:
        if word in low:
            return domain
    return None


def hints(params: list[str], doc: str, annotations: dict[str, str]) -> dict[str, dict]:
    """{param: {"domain"?, "shape"?, "source"}} from annotations and the docstring."""
    out: dict[str, dict] = {}
    for p, ann in annotations.items():
        h = {}
        quoted = re.search(r"['\"]([A-Za-z_ ,]+)['\"]", ann)
        if quoted:
            dims = tuple(_DIM_WORDS.get(w.lower()) for w in quoted.group(1).replace(",", " ").split())
            if dims and all(dims):
                h["shape"] = dims
        if re.search(r"\bInt\[|LongTensor|IntTensor|int64|int32", ann):
            h["domain"] = "labels"
        if h:
            out[p] = {**h, "source": "annotation"}
    for line in (doc or "").splitlines():
        # each parameter's own stretch of the line: from its name to the next parameter's name
        found = sorted((m.start(), p) for p in params
                       for m in [re.search(rf"(^|[\s`*(]){re.escape(p)}\b", line)] if m)
        for i, (start, p) in enumerate(found):
            if p in out:
                continue
            segment = line[start:found[i + 1][0] if i + 1 < len(found) else len(line)]
            h = {}
            shape = _shape_from(segment)
            if shape:
                h["shape"] = shape
            domain = _domain_from(segment)
            if domain:
                h["domain"] = domain
            if h:
                out[p] = {**h, "source": "docstring"}
    return out


# ---- the hypotheses ----------------------------------------------------------------------------------

#: (prediction domain, prediction shape, target domain, target shape), generic order for probing
PAIR_HYPOTHESES = [
    ("reals", ("N", "D"), "reals", ("N", "D")),
    ("probs", ("N", "C"), "onehot", ("N", "C")),
    ("logits", ("N", "C"), "labels", ("N",)),
    ("unit", ("N", "D"), "binary", ("N", "D")),
    ("logits", ("N", "C"), "onehot", ("N", "C")),
    ("reals", ("N",), "reals", ("N",)),
    ("probs", ("N", "C"), "labels", ("N",)),
]


def _name_pair(pred: str, target: str | None) -> list[tuple]:
    """Hypotheses suggested by the names: logits -> class indices or one-hot; probs -> one-hot."""
    p = pred.lower()
    t = (target or "").lower()
    if "log_prob" in p or "logprob" in p or p == "log_predictions":
        return [("log_probs", ("N", "C"), "onehot", ("N", "C")), ("log_probs", ("N", "C"), "labels", ("N",))]
    if "logit" in p:
        first = [("logits", ("N", "C"), "labels", ("N",)), ("logits", ("N", "C"), "onehot", ("N", "C")),
                 ("logits", ("N", "D"), "binary", ("N", "D"))]
        return first if "label" in t or "class" in t or t in ("target", "y") else first[1:] + first[:1]
    if "prob" in p:
        return [("probs", ("N", "C"), "onehot", ("N", "C")), ("unit", ("N", "D"), "binary", ("N", "D"))]
    return []


#: the catalog pairings' target builders (losscheck.catalog.pairings) as input domains and shapes
_TARGET_BUILDERS = {"_one_hot": ("onehot", ("N", "C")), "_index": ("labels", ("N",)), "_index_float": ("labels", ("N",)),
                    "_binary": ("binary", ("N", "D")), "_binary_int": ("binary", ("N", "D")),
                    "_distribution": ("probs", ("N", "C")), "_log_distribution": ("log_probs", ("N", "C"))}
_EXPECTED_DOMAIN = {"none": "logits", "softmax": "probs", "sigmoid": "unit", "log_softmax": "log_probs"}


def _body_pair(body_losses: list[dict], pred: str, target: str | None) -> list[tuple]:
    """The documented inputs of the first classification loss the body calls with ``pred`` and
    ``target``: ``categorical_crossentropy(y_true, ops.softmax(y_pred))`` makes y_pred logits and
    y_true one-hot rows."""
    from ..catalog.pairings import for_spec

    for b in body_losses:
        variants = for_spec(b["id"])
        if (b["prediction"], b["target"]) != (pred, target) or not variants:
            continue
        _, pair = next(((pv, pr) for pv, pr in variants if all(b["params"].get(k, v) == v for k, v in pv.items())),
                       variants[0])
        built = _TARGET_BUILDERS.get(next(iter(pair.targets.values())).__name__)
        if built is None:
            continue
        dom = "logits" if b["activation"] else _EXPECTED_DOMAIN[pair.expects]
        shape = ("N", "D") if pair.binary else ("N", "C")
        return [(dom, shape, built[0], built[1] if not pair.binary else shape)]
    return []


def plans(params: list[str], ctor_params: list[str], *, doc: str = "", annotations: dict | None = None,
          override: dict[str, tuple[str, tuple]] | None = None, override_source: str = "--inputs",
          framework: str | None = None, body_losses: list[dict] | None = None) -> list[Plan]:
    """Input hypotheses for a loss with call parameters ``params`` (required ones, in order) and
    required constructor parameters ``ctor_params``, most likely first. An override fixes the
    named arguments; the rest are still inferred. ``body_losses``: the framework losses the loss's
    body calls on its parameters (``discover.body_losses``), whose documented inputs come first."""
    override = dict(override or {})
    unknown = set(override) - set(params) - set(ctor_params)
    if unknown:
        raise InputsError(f"{', '.join(sorted(unknown))}: not an argument of the loss "
                          f"(it takes {', '.join(params + ctor_params) or 'nothing'})")
    hint = hints(params, doc, annotations or {})
    roles = {p: role_of_name(p) or _role_of_domain(override.get(p, (None,))[0]) for p in params}
    if list(roles.values()).count("prediction") > 1:   # two overridden scores: the second is the target
        second = [p for p in params if roles[p] == "prediction"][1]
        roles[second] = "target"
    free = [p for p in params if roles[p] is None and p not in override]
    if free:
        # unknown names: the first two are a prediction and a target, in the framework's order
        order = ["target", "prediction"] if framework in ("keras", "tensorflow") else ["prediction", "target"]
        taken = {r for r in roles.values() if r in ("prediction", "target")}
        for p in free:
            left = [r for r in order if r not in taken]
            roles[p] = left[0] if left else "other"
            taken.add(roles[p])
    sources = {p: ("name" if role_of_name(p) else "position") for p in params}

    pred = next((p for p in params if roles[p] == "prediction"), None)
    target = next((p for p in params if roles[p] == "target"), None)
    hypotheses: list[tuple] = []
    if pred is not None and target is not None:
        explicit = {}
        for p, role in ((pred, "prediction"), (target, "target")):
            if p in override:
                explicit[role] = (*override[p], override_source)
            elif p in hint and "domain" in hint[p]:
                dom = hint[p]["domain"]
                shape = hint[p].get("shape") or (("N",) if dom == "labels" else ("N", "C"))
                if shape[-1] == "1":   # "probabilities (N, 1)": one sigmoid output per sample, not a softmax
                    dom = {"probs": "unit", "onehot": "binary"}.get(dom, dom)
                explicit[role] = (dom, shape, hint[p]["source"])
        if len(explicit) == 2:
            hypotheses = [(explicit["prediction"][:2] + explicit["target"][:2])]
        else:
            first = _body_pair(body_losses or [], pred, target) + _name_pair(pred, target)
            hypotheses = list(dict.fromkeys(first + PAIR_HYPOTHESES))
            if explicit:
                role, (dom, shp, _) = next(iter(explicit.items()))
                hypotheses = [h for h in hypotheses if (h[0], h[1]) == (dom, shp) or (h[2], h[3]) == (dom, shp)
                              or (role == "prediction" and h[0] == dom) or (role == "target" and h[2] == dom)] \
                    or hypotheses
    else:
        hypotheses = [None]

    out = []
    for h in hypotheses:
        tensors = []
        for p in params:
            role = roles[p]
            src = override_source if p in override else hint.get(p, {}).get("source", sources[p])
            if p in override:
                dom, shp = override[p]
            elif role == "prediction" and h is not None:
                dom, shp = h[0], h[1]
            elif role == "target" and h is not None:
                dom, shp = h[2], h[3]
            elif role == "embeddings" or (role == "prediction" and h is None):
                dom, shp = hint.get(p, {}).get("domain", "reals"), hint.get(p, {}).get("shape", ("N", "D"))
            elif role == "context":
                dom, shp = context_domain(p), None
            else:
                dom, shp = "reals", ("N", "D")
            tensors.append(Tensor(p, role, dom, tuple(shp) if shp else (), src))
        for p in ctor_params:
            if p in override:
                dom, shp = override[p]
                tensors.append(Tensor(p, "context", dom, tuple(shp), override_source, "ctor"))
            elif context_domain(p):
                tensors.append(Tensor(p, "context", context_domain(p), (), "name", "ctor"))
        plan = Plan(tensors, label=_label(h))
        _shape_context(plan)
        out.append(plan)
    return out


def _role_of_domain(domain: str | None) -> str | None:
    """The role an explicitly declared domain implies (``--inputs a=probs(N,C),b=onehot(N,C)``)."""
    if domain is None:
        return None
    if domain in CONTEXT_DOMAINS:
        return "context"
    if domain in ("onehot", "labels", "binary", "sign"):
        return "target"
    return "prediction"


def _label(h) -> str:
    if h is None:
        return "by name"
    return f"prediction {h[0]} ({', '.join(h[1])}), target {h[2]} ({', '.join(h[3])})"


def _shape_context(plan: Plan) -> None:
    """Give context tensors the shapes their roles imply from the prediction's shape."""
    lead = (plan.by_role("prediction") or plan.by_role("embeddings") or plan.call or [None])[0]
    lead_shape = lead.shape if lead is not None else ("N", "D")
    for i, t in enumerate(plan.tensors):
        if t.role != "context" or t.shape:
            continue
        shape = {"mask": lead_shape, "sample_weights": ("N",), "class_weights": lead_shape[-1:] or ("D",),
                 "adjacency": ("N", "N"), "kernel": ("3", "4")}[t.domain]
        plan.tensors[i] = replace(t, shape=tuple(shape))


def unbuildable(ctor_params: list[str], override: dict | None = None) -> list[str]:
    """Required constructor parameters that are neither context tensors nor known scalars."""
    override = override or {}
    return [p for p in ctor_params if p not in override and not context_domain(p) and p.lower() not in SCALARS]


def scalar_defaults(ctor_params: list[str]) -> dict:
    return {p: SCALARS[p.lower()] for p in ctor_params if not context_domain(p) and p.lower() in SCALARS}


# ---- building inputs ----------------------------------------------------------------------------------

def dims_of(shape: tuple[str, ...], dims: dict[str, int]) -> tuple[int, ...]:
    return tuple(int(d) if d.isdigit() else dims[d] for d in shape)


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sample(domain: str, shape: tuple[int, ...], rng: np.random.Generator, classes: int) -> np.ndarray:
    """Random values of ``domain`` (float64, or int64 class indices)."""
    if domain in ("reals", "logits"):
        return rng.normal(0.0, 1.5, shape)
    if domain == "positive":
        return rng.uniform(0.2, 3.0, shape)
    if domain == "unit":
        return rng.uniform(0.05, 0.95, shape)
    if domain == "probs":
        return _softmax(rng.normal(0.0, 1.5, shape))
    if domain == "log_probs":
        return np.log(_softmax(rng.normal(0.0, 1.5, shape)))
    if domain == "onehot":
        return np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]
    if domain == "labels":
        return rng.integers(0, classes, shape).astype(np.int64)
    if domain == "binary":
        return rng.integers(0, 2, shape).astype(np.float64)
    if domain == "sign":
        return rng.choice([-1.0, 1.0], shape)
    if domain == "mask":
        return rng.choice([0.0, 1.0, 2.0, 4.0], shape)
    if domain in ("sample_weights", "class_weights", "kernel"):
        return rng.integers(1, 17, shape) / 8.0
    if domain == "adjacency":
        # exactly half of the pairs connected (node 0 to node 1 always): the same density at every N
        n = shape[0]
        a = np.zeros((n, n))
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if (i, j) != (0, 1)]
        if n >= 2:
            a[0, 1] = 1.0
            for k in rng.permutation(len(pairs))[:max(0, len(pairs) // 2 - 1)]:
                a[pairs[k]] = 1.0
        return a + a.T
    raise ValueError(f"unknown domain {domain!r}")


def build(plan: Plan, dims: dict[str, int], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Arrays for every tensor of the plan, by name."""
    out = {}
    for t in plan.tensors:
        out[t.name] = sample(t.domain, dims_of(t.shape, dims), rng, dims["C"])
    return out


def extremes(plan: Plan, dims: dict[str, int], rng: np.random.Generator) -> list[tuple[str, dict[str, np.ndarray]]]:
    """Hard but valid inputs where a correct loss is finite: (what they are, arrays by name).

    Perfect predictions at the domain's boundary (exact 0 and 1: 0 * log 0), zero vectors, huge
    magnitudes (1e4) and confident logits."""
    base = build(plan, dims, rng)
    preds, targets = plan.by_role("prediction"), plan.by_role("target")
    emb = plan.by_role("embeddings")
    cases = []

    def with_(**arrays):
        return {**base, **arrays}

    if preds and targets:
        p, t = preds[0], targets[0]
        ps, ts = dims_of(p.shape, dims), dims_of(t.shape, dims)
        if p.domain in ("reals", "positive") and t.domain in ("reals", "positive"):
            if p.domain == "reals":
                cases.append(("zero predictions and targets", with_(**{p.name: np.zeros(ps), t.name: np.zeros(ts)})))
            cases.append(("predictions equal to the targets", with_(**{p.name: base[t.name].reshape(ps)})))
            big = 1e4 * np.sign(rng.normal(size=ps)) if p.domain == "reals" else np.full(ps, 1e4)
            cases.append(("large values (1e4)", with_(**{p.name: big, t.name: -big.reshape(ts) if t.domain == "reals"
                                                         else np.full(ts, 1e-3)})))
        elif p.domain in ("probs", "unit") and t.domain in ("onehot", "binary", "labels"):
            y = base[t.name]
            hard = np.eye(dims["C"])[y] if t.domain == "labels" else y.astype(np.float64)
            cases.append(("perfect predictions: probabilities exactly 0 and 1", with_(**{p.name: hard.reshape(ps)})))
        elif p.domain in ("logits", "log_probs") and t.domain in ("onehot", "labels", "binary"):
            y = base[t.name]
            hot = np.eye(ps[-1])[y] if t.domain == "labels" else y.astype(np.float64).reshape(ps)
            z = np.where(hot > 0, 1e4, -1e4) if p.domain == "logits" else np.where(hot > 0, 0.0, -1e4)
            cases.append(("confidently right scores (logits ±1e4)", with_(**{p.name: z})))
            cases.append(("zero logits", with_(**{p.name: np.zeros(ps) if p.domain == "logits"
                                                  else np.full(ps, -np.log(ps[-1]))})))
    for e in emb:
        shp = dims_of(e.shape, dims)
        zero = base[e.name].copy()
        zero[0] = 0.0
        cases.append((f"a zero vector in {e.name} (row 0)", with_(**{e.name: zero})))
        cases.append((f"identical rows in {e.name}", with_(**{e.name: np.broadcast_to(base[e.name][:1], shp).copy()})))
        cases.append((f"large {e.name} (1e4)", with_(**{e.name: 1e4 * base[e.name] / np.abs(base[e.name]).max()})))
    return cases


def describe_context(t: Tensor, dims: dict[str, int], lead: str) -> str:
    """What the audit built for a context tensor, in words."""
    shape = t.shape_text()
    what = DOMAINS[t.domain][0]
    follow = {"mask": f", the shape of {lead}", "sample_weights": ", one per sample",
              "class_weights": f", one per column of {lead}", "adjacency": ", one row and column per sample"}.get(t.domain, "")
    return f"built {t.name}: a float tensor of shape {shape}{follow}: {what}"
