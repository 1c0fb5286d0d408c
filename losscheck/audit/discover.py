"""Find the losses in a user's file: statically from its syntax tree (here, in the parent process),
then as live objects inside the sandbox (:func:`resolve`, after importing the file).

What counts as a loss:

* plain functions whose parameters name a prediction and a target (``y_true, y_pred``,
  ``input, target``, ``logits, labels``...) or embeddings, or whose name says loss (``*loss*``,
  ``*criterion*``, ``mse``, ``huber``...); Keras-style ``(y_true, y_pred)`` functions and JAX
  functions are plain functions;
* classes deriving from ``torch.nn.Module`` or ``keras.losses.Loss`` (or any class with
  ``__call__``) whose name says loss or whose ``forward``/``call`` takes a prediction and a target;
  models (``nn.Module`` subclasses without a loss name) are recorded as models instead;
* module-level lambdas, ``functools.partial`` objects and closures returned by a factory;
* the ``loss=`` argument of ``model.compile(...)`` (a string alias, a framework loss, a lambda...);
* ``criterion = nn.XLoss(...)`` / ``keras.losses.X(...)`` assignments (framework losses).

Functions that take model parameters (``params``, ``model``, ``variables``) are training
objectives, not losses, and factories that return a loss are not losses themselves: both are listed
with the reason they are not audited.
"""
from __future__ import annotations

import ast
import re
from dataclasses import asdict, dataclass, field

LOSS_NAME = re.compile(r"loss|criterion|objective|mse|mae|huber|entropy|divergence|distance|penalty|hinge|"
                       r"dice|focal|contrastive|triplet|cosine|similarity|poisson|tversky|lovasz|cosh|"
                       r"(^|_)(kl|nll|bce|xent|l1|l2|ctc|margin)(_|$)", re.I)
#: names of evaluation metrics (accuracy, f1_score, dice_coefficient): listed, not audited as losses,
#: unless the name also says loss (dice_loss) or the function is declared
METRIC_NAME = re.compile(r"accuracy|(^|_)acc(_|$)|precision|recall|(^|_)f1|fbeta|(^|_)auc(_|$)|(^|_)roc(_|$)|"
                         r"metric|score|coefficient|(^|_)coef(_|$)|(^|_)iou(_|$)|(^|_)miou|top_?k|error_rate", re.I)
OBJECTIVE_PARAMS = {"params", "model", "variables", "state", "weights_and_biases", "net", "module"}
ACTIVATIONS = {"softmax": "softmax", "log_softmax": "log_softmax", "logsoftmax": "log_softmax",
               "sigmoid": "sigmoid", "relu": "relu", "tanh": "tanh", "linear": "none", "none": "none"}
#: framework modules whose attributes are losses, by the spelling users import them with
TORCH_PREFIXES = ("nn.", "torch.nn.")
KERAS_PREFIXES = ("keras.losses.", "tf.keras.losses.", "tensorflow.keras.losses.", "losses.")
OPTAX_PREFIXES = ("optax.losses.", "optax.")
#: calls that compile a function and return it with the same arguments: jax.jit(lambda ...)
COMPILERS = {"jax.jit", "jit", "tf.function", "tensorflow.function", "torch.compile"}
#: Keras' string aliases for model.compile(loss=...), as catalog ids
KERAS_ALIASES = {
    "mse": "mean_squared_error", "mean_squared_error": "mean_squared_error",
    "mae": "mean_absolute_error", "mean_absolute_error": "mean_absolute_error",
    "mape": "mean_absolute_percentage_error", "msle": "mean_squared_logarithmic_error",
    "binary_crossentropy": "binary_crossentropy", "categorical_crossentropy": "categorical_crossentropy",
    "sparse_categorical_crossentropy": "sparse_categorical_crossentropy", "huber": "huber",
    "huber_loss": "huber", "log_cosh": "log_cosh", "logcosh": "log_cosh", "poisson": "poisson",
    "kl_divergence": "kl_divergence", "kld": "kl_divergence", "hinge": "hinge", "squared_hinge": "squared_hinge",
    "categorical_hinge": "categorical_hinge", "cosine_similarity": "cosine_similarity",
}
#: function aliases Keras exports in upper case
KERAS_UPPER = {"MSE": "mean_squared_error", "MAE": "mean_absolute_error", "MAPE": "mean_absolute_percentage_error",
               "MSLE": "mean_squared_logarithmic_error", "KLD": "kl_divergence"}


@dataclass
class Candidate:
    """One loss found in the file (or a thing that looks like one and is not audited: ``skip``)."""
    name: str
    line: int
    kind: str                       # function | torch module | keras loss class | class | lambda | partial |
    #                                 closure | compile | framework loss
    locate: dict                    # {"global": NAME} or {"expr": SOURCE}: how the sandbox gets the object
    params: list[str] = field(default_factory=list)        # call parameters (self dropped)
    ctor_params: list[str] = field(default_factory=list)   # required constructor parameters of a class
    doc: str = ""
    annotations: dict[str, str] = field(default_factory=dict)
    declared: dict | None = None    # literal arguments of @losscheck.declare(...)
    builtin: str | None = None      # catalog id of a framework loss
    builtin_params: dict = field(default_factory=dict)
    skip: str = ""                  # why it is listed but not audited
    notes: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)   # other names it is called by (instances, compile)
    call_sites: list[dict] = field(default_factory=list)
    models: list[dict] = field(default_factory=list)   # models paired with this loss (activation check)
    #: framework losses its body calls on its own parameters: {id, params, prediction, target, activation}
    body_losses: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class FileInfo:
    path: str
    frameworks: list[str]
    candidates: list[Candidate]
    models: list[dict]


class AuditSyntaxError(Exception):
    def __init__(self, path: str, line: int, message: str):
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line, self.message = path, line, message


# ---- helpers over the tree -----------------------------------------------------------------------

def dotted(node) -> str:
    """``a.b.c`` for Name/Attribute chains, '' otherwise."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _params(fn: ast.FunctionDef | ast.Lambda, drop_self: bool = False) -> tuple[list[str], list[str]]:
    """(the call parameters: every positional one, then the required keyword-only ones; the
    required ones)."""
    a = fn.args
    pos = [p.arg for p in a.posonlyargs + a.args]
    n_default = len(a.defaults)
    required = pos[:len(pos) - n_default] if n_default else list(pos)
    if drop_self and pos:
        pos, required = pos[1:], [r for r in required if r != pos[0]]
    kw_required = [p.arg for p, d in zip(a.kwonlyargs, a.kw_defaults) if d is None]
    return pos + kw_required, required + kw_required


def _annotations(fn: ast.FunctionDef) -> dict[str, str]:
    out = {}
    for p in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs:
        if p.annotation is not None:
            out[p.arg] = ast.unparse(p.annotation)
    return out


def _literal(node):
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def _declared(decorators) -> dict | None:
    for d in decorators:
        if isinstance(d, ast.Call) and dotted(d.func).split(".")[-1] == "declare":
            out = {"reference": None, "inputs": None, "params": {}}
            for i, a in enumerate(d.args[:2]):
                out[("reference", "inputs")[i]] = _literal(a)
            for kw in d.keywords:
                if kw.arg in out:
                    out[kw.arg] = _literal(kw.value)
            return out
    return None


def framework_loss_id(func: str) -> str | None:
    """The catalog id of a framework loss named by a dotted call target, e.g. ``nn.MSELoss`` ->
    ``torch.nn.MSELoss``, ``tf.keras.losses.MSE`` -> ``keras.losses.mean_squared_error``."""
    for p in TORCH_PREFIXES:
        if func.startswith(p) and func[len(p):].endswith("Loss"):
            return "torch.nn." + func[len(p):]
    if func.startswith(("F.", "torch.nn.functional.", "nn.functional.")):
        name = func.rsplit(".", 1)[1]
        return f"torch.nn.functional.{name}" if name.endswith(("_loss", "entropy", "kl_div", "_with_logits")) else None
    for p in KERAS_PREFIXES:
        if func.startswith(p):
            name = func[len(p):]
            if "." in name or not name:
                return None
            return "keras.losses." + KERAS_UPPER.get(name, name)
    for p in OPTAX_PREFIXES:
        if func.startswith(p) and "." not in func[len(p):]:
            name = func[len(p):]
            if any(w in name for w in ("loss", "entropy", "divergence", "hinge", "l2", "huber", "cosine", "log_cosh")):
                return "optax.losses." + name
    return None


def fuzzy_role(name: str) -> str | None:
    """'prediction' / 'target' for a variable name at a call site (``target_tensor[:1]`` -> target).

    ``input``/``x`` are not read as predictions here: at a call site they usually name the model's
    input, not its output."""
    n = name.lower()
    tokens = set(re.split(r"[_\d]+", n)) | {n}
    if tokens & {"y_true", "ytrue", "target", "targets", "label", "labels", "truth", "gt", "ground", "actual",
                 "real"} or n in ("y", "true"):
        return "target"
    if tokens & {"y_pred", "ypred", "pred", "preds", "prediction", "predictions", "output", "outputs", "logits",
                 "logit", "scores", "probs", "yhat", "y_hat", "predicted", "out"}:
        return "prediction"
    return None


def _base_name(node) -> str:
    while isinstance(node, (ast.Subscript, ast.Starred)):
        node = node.value
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


# ---- the file -------------------------------------------------------------------------------------

def parse(path: str) -> ast.Module:
    """The file's syntax tree; :class:`AuditSyntaxError` names the line of a syntax error."""
    try:
        with open(path, "rb") as f:
            source = f.read()
    except OSError as exc:
        raise AuditSyntaxError(path, 0, f"cannot read the file: {exc.strerror or exc}") from None
    try:
        return ast.parse(source, filename=path)
    except SyntaxError as exc:
        return _raise_syntax(path, exc)
    except ValueError as exc:  # null bytes
        raise AuditSyntaxError(path, 0, f"not Python source: {exc}") from None
    except (RecursionError, MemoryError) as exc:   # the parser's stack: 1+1+...+1, or - repeated 200,000 times
        raise AuditSyntaxError(path, 0, f"too deeply nested for Python's parser ({type(exc).__name__} while "
                               "parsing)") from None


def _raise_syntax(path, exc: SyntaxError):
    raise AuditSyntaxError(path, exc.lineno or 0, f"syntax error: {exc.msg}"
                           + (f" (column {exc.offset})" if exc.offset else "")) from None


def imported_frameworks(tree: ast.Module) -> list[str]:
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for n in names:
            root = n.split(".")[0]
            if root in ("torch", "tensorflow", "keras", "jax", "optax", "flax") and root not in found:
                found.append(root)
    return found


def discover(path: str) -> FileInfo:
    tree = parse(path)
    source = open(path, encoding="utf-8", errors="replace").read()
    frameworks = imported_frameworks(tree)
    cands: list[Candidate] = []
    by_name: dict[str, Candidate] = {}
    models: list[dict] = []
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    functions = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    factories = {name for name, fn in functions.items() if _returns_function(fn)}

    def add(c: Candidate):
        if any(o.name == c.name for o in cands):   # a name bound twice: tell them apart by line
            c.name = f"{c.name} (line {c.line})"
        cands.append(c)
        by_name.setdefault(c.name, c)

    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            c = _function_candidate(node, factories)
            if c is not None:
                add(c)
        elif isinstance(node, ast.ClassDef):
            c, model = _class_candidate(node)
            if c is not None:
                add(c)
            if model is not None:
                models.append(model)

    class_models = {m["name"]: m for m in models}
    instances: dict[str, str] = {}  # variable -> the candidate (or framework id) it holds
    for node in ast.walk(tree):
        attr = _self_loss(node)
        if attr is not None:   # self.criterion = nn.CrossEntropyLoss() in a model or trainer class
            var, fid, params = attr
            if var not in by_name:
                add(Candidate(var, node.lineno, "framework loss", {}, builtin=fid, builtin_params=params))
            instances[var] = var
            continue
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            var, value = node.targets[0].id, node.value
            at_top = node in tree.body
            model = _model_of(var, value, node.lineno)
            if model is None and isinstance(value, ast.Call) and dotted(value.func) in class_models:
                cm = class_models[dotted(value.func)]
                model = {**cm, "name": var, "line": node.lineno, "kind": f"instance of {cm['name']}"}
            if model is not None:
                models.append(model)
                continue
            if isinstance(value, ast.Call):
                func = dotted(value.func)
                fid = framework_loss_id(func)
                # ``criterion = nn.MSELoss()`` holds a loss; ``ce = F.cross_entropy(z, y)`` holds its value
                if fid is not None and _builds(func):
                    params = {kw.arg: _literal(kw.value) for kw in value.keywords if kw.arg}
                    c = by_name.get(var) or Candidate(var, node.lineno, "framework loss", {"global": var},
                                                      builtin=fid, builtin_params=params)
                    if var not in by_name:
                        add(c)
                    instances[var] = var
                    continue
                if func in classes and func in by_name:
                    instances[var] = func
                    by_name[func].aliases.append(var)
                    continue
                wrapped = value.args[0] if func in COMPILERS and value.args else None
                if isinstance(wrapped, ast.Lambda) and at_top:   # jit_loss = jax.jit(lambda pred, target: ...)
                    add(Candidate(var, node.lineno, "lambda", {"global": var}, params=_params(wrapped)[0],
                                  notes=[f"a lambda compiled with {func}()"]))
                    instances[var] = var
                    continue
                if isinstance(wrapped, ast.Name) and wrapped.id in by_name:   # jax.jit(my_loss): another name
                    instances[var] = wrapped.id
                    by_name[wrapped.id].aliases.append(var)
                    continue
                if func.rsplit(".", 1)[-1] == "partial" and at_top:
                    add(Candidate(var, node.lineno, "partial", {"global": var},
                                  notes=[f"functools.partial at line {node.lineno}: "
                                         f"{ast.get_source_segment(source, value) or ''}"[:200]]))
                    instances[var] = var
                    continue
                if func in factories and at_top:
                    add(Candidate(var, node.lineno, "closure", {"global": var},
                                  notes=[f"closure returned by {func}() at line {node.lineno}"]))
                    instances[var] = var
                    continue
            if isinstance(value, ast.Lambda) and at_top:
                pos, _ = _params(value)
                add(Candidate(var, node.lineno, "lambda", {"global": var}, params=pos))
                instances[var] = var
            elif isinstance(value, ast.Name) and value.id in by_name:
                instances[var] = value.id
                by_name[value.id].aliases.append(var)

    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and dotted(node.func).split(".")[-1] == "compile":
            for kw in node.keywords:
                if kw.arg == "loss":
                    c = _compile_candidate(kw.value, node, source, by_name, instances)
                    if c is not None and c not in cands:
                        add(c)

    steps = _training_steps(functions, models)
    cands[:] = [c for c in cands if not (c.kind == "function" and c.name in steps)]
    _call_sites(tree, source, cands, by_name, instances, models)
    _pair_models(cands, models, tree)
    return FileInfo(path, frameworks, cands, models)


def _builds(func: str) -> bool:
    """Whether a call of the dotted name ``func`` builds a loss object (``nn.MSELoss``,
    ``keras.losses.BinaryCrossentropy``) rather than computing a loss (``F.mse_loss``, ``keras.losses.MSE``)."""
    short = func.rsplit(".", 1)[-1]
    return short[:1].isupper() and short not in KERAS_UPPER


def _self_loss(node) -> tuple[str, str, dict] | None:
    """(``self.name``, catalog id, literal keywords) of ``self.name = nn.SomeLoss(...)``."""
    if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Attribute)
            and isinstance(node.value, ast.Call)):
        return None
    var, func = dotted(node.targets[0]), dotted(node.value.func)
    fid = framework_loss_id(func) if func else None
    if not var.startswith("self.") or var.count(".") != 1 or fid is None or not _builds(func):
        return None
    return var, fid, {kw.arg: _literal(kw.value) for kw in node.value.keywords if kw.arg}


def _training_steps(functions: dict, models: list[dict]) -> set[str]:
    """Functions that call a model, backward() or an optimizer: training or evaluation steps that
    compute a loss, not losses."""
    model_names = {m["name"] for m in models}
    out = set()
    for name, fn in functions.items():
        for n in ast.walk(fn):
            if isinstance(n, ast.Call):
                func = dotted(n.func)
                last = func.split(".")[-1]
                if func in model_names or last in ("backward", "zero_grad", "fit", "train_on_batch") or \
                        (last == "step" and "optim" in func.lower()):
                    out.add(name)
                    break
    return out


def _returns_function(fn) -> bool:
    inner = {n.name for n in fn.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for n in ast.walk(fn):
        if isinstance(n, ast.Return) and n.value is not None:
            if isinstance(n.value, ast.Lambda) or (isinstance(n.value, ast.Name) and n.value.id in inner):
                return True
            if isinstance(n.value, ast.Call) and dotted(n.value.func).split(".")[-1] == "partial":
                return True
    return False


#: parameter names that say prediction or target only weakly: (x, y) is as often data as a loss's pair
WEAK_ROLE_NAMES = frozenset({"x", "y", "input", "inputs", "output", "outputs", "out", "true", "actual", "expected",
                             "real_values"})


def _names_a_pair(params: list[str]) -> bool:
    """A prediction and a target among ``params``, at least one of them by a name that says so
    (``y_pred``, ``logits``, ``target``...): ``normalize(x, y)`` is no loss by its parameters alone."""
    from .infer import role_of_name

    roles = {p: role_of_name(p) for p in params}
    pair = {r for r in roles.values() if r in ("prediction", "target")}
    return pair == {"prediction", "target"} and any(
        r in ("prediction", "target") and p.lower() not in WEAK_ROLE_NAMES for p, r in roles.items())


def _function_candidate(node, factories) -> Candidate | None:
    from .infer import role_of_name

    pos, required = _params(node)
    roles = [role_of_name(p) for p in pos]
    has_pair = _names_a_pair(pos)
    loss_named = bool(LOSS_NAME.search(node.name))
    declared = _declared(node.decorator_list)
    # def my_loss(*args) / (**kwargs): named inputs come only from --inputs or declare (the worker
    # says so when neither names them)
    variadic = not pos and bool(node.args.vararg or node.args.kwarg) and (loss_named or declared is not None)
    if not (pos or variadic) or node.name.startswith("__"):
        return None
    # a name that says loss is not enough for a one-argument helper (manual_loss(target_tensor)
    # computes a loss from a model): it must take a prediction-like argument or two tensors
    if not (has_pair or variadic or (loss_named and (any(roles) or len(required) >= 2))):
        return None
    c = Candidate(node.name, node.lineno, "function", {"global": node.name}, params=pos,
                  doc=ast.get_docstring(node) or "", annotations=_annotations(node), declared=declared,
                  body_losses=body_losses(node, pos))
    if node.name in factories:
        c.skip = "a factory: it returns the loss function (audited where the file calls it at module level)"
    elif _metric(node.name) and declared is None:
        c.skip = _METRIC_SKIP.format(node.name)
    elif set(p.lower() for p in required) & OBJECTIVE_PARAMS:
        c.skip = (f"a training objective over model parameters ({', '.join(p for p in required if p.lower() in OBJECTIVE_PARAMS)}"
                  "): audit the loss it computes as a function of predictions and targets")
    elif not any(roles) and not loss_named and not variadic:
        return None
    return c


def _method(cls: ast.ClassDef, *names):
    for n in cls.body:
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name in names:
            return n
    return None


_METRIC_SKIP = ("a metric by its name ({}), not a training loss; a loss built from a metric (1 - soft F1, Dice) is "
                "audited when its name says loss or it is decorated with @losscheck.declare")


def _metric(name: str) -> bool:
    """Whether a name says evaluation metric and not loss (``f1_score``, not ``f1_loss``)."""
    return bool(METRIC_NAME.search(name)) and not re.search(r"loss|criterion|objective", name, re.I)


def _class_candidate(node: ast.ClassDef) -> tuple[Candidate | None, dict | None]:
    bases = [dotted(b) for b in node.bases]
    torch_module = any(b.endswith("Module") or b.endswith("_Loss") or b.endswith("_WeightedLoss") for b in bases)
    keras_loss = any(b.split(".")[-1] == "Loss" for b in bases)
    call = _method(node, "call") if keras_loss else None
    call = call or _method(node, "forward", "__call__")
    if call is None:
        return None, None
    pos, _ = _params(call, drop_self=True)
    loss_like = bool(LOSS_NAME.search(node.name)) or _names_a_pair(pos) or keras_loss
    init = _method(node, "__init__")
    ctor = _params(init, drop_self=True)[1] if init is not None else []
    if not loss_like:
        if torch_module or any(b.split(".")[-1] in ("Model", "Module") for b in bases):
            return None, {"name": node.name, "line": node.lineno, "framework": "torch" if torch_module else "",
                          "activation": _forward_activation(node, call), "kind": "class"}
        return None, None
    kind = "keras loss class" if keras_loss else ("torch module" if torch_module else "class")
    c = Candidate(node.name, node.lineno, kind, {"global": node.name}, params=pos, ctor_params=ctor,
                  doc=(ast.get_docstring(call) or ast.get_docstring(node) or ""), annotations=_annotations(call),
                  declared=_declared(node.decorator_list), body_losses=body_losses(call, pos))
    if _metric(node.name) and c.declared is None and not keras_loss:
        c.skip = _METRIC_SKIP.format(node.name)
    return c, None


def _activation_of_call(call: ast.Call, attrs: dict[str, str]) -> str | None:
    """The activation a call applies: torch.softmax(x), F.sigmoid(x), x.softmax(1), self.act(x)
    with self.act = nn.Softmax(), a Linear layer (none)."""
    func = dotted(call.func)
    last = func.split(".")[-1].lower()
    if last in ACTIVATIONS:
        return ACTIVATIONS[last]
    if func.startswith("self.") and func[5:] in attrs:
        return attrs[func[5:]]
    return None


def _layer_activation(call: ast.Call) -> str | None:
    """nn.Softmax(dim=1) -> softmax, nn.Linear(...) -> none, Dense(10, activation='softmax') -> softmax."""
    func = dotted(call.func).split(".")[-1]
    low = func.lower()
    if low in ACTIVATIONS:
        return ACTIVATIONS[low]
    if low in ("linear", "lazylinear", "conv1d", "conv2d", "bilinear"):
        return "none"
    if low in ("dense", "activation"):
        act = None
        for kw in call.keywords:
            if kw.arg == "activation":
                act = _literal(kw.value)
                if act is None:
                    act = dotted(kw.value).split(".")[-1]
        if low == "activation" and call.args:
            act = _literal(call.args[0])
        act = (act or "linear") if low == "dense" else act
        return ACTIVATIONS.get(str(act).lower(), str(act).lower()) if act else None
    return None


def _forward_activation(cls: ast.ClassDef, forward) -> str | None:
    attrs = {}
    init = _method(cls, "__init__")
    if init is not None:
        for n in ast.walk(init):
            if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call):
                for t in n.targets:
                    if isinstance(t, ast.Attribute) and dotted(t).startswith("self."):
                        act = _layer_activation(n.value)
                        if act is not None:
                            attrs[t.attr] = act
    assigned: dict[str, ast.AST] = {}
    for n in forward.body:
        if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
            assigned[n.targets[0].id] = n.value
        if isinstance(n, ast.Return) and n.value is not None:
            value = n.value
            for _ in range(3):
                if isinstance(value, ast.Name) and value.id in assigned:
                    value = assigned[value.id]
                else:
                    break
            if isinstance(value, ast.Call):
                return _activation_of_call(value, attrs) or "none"
    return None


def _model_of(var: str, value, line: int) -> dict | None:
    """A model built in one expression: nn.Sequential(...) or keras Sequential([...])."""
    if not isinstance(value, ast.Call) or dotted(value.func).split(".")[-1] != "Sequential":
        return None
    layers = list(value.args)
    if len(layers) == 1 and isinstance(layers[0], (ast.List, ast.Tuple)):
        layers = list(layers[0].elts)
    act = None
    for layer in reversed(layers):
        if isinstance(layer, ast.Call):
            act = _layer_activation(layer)
            if act is not None:
                break
    framework = "torch" if dotted(value.func).startswith(("nn.", "torch.")) else "keras"
    return {"name": var, "line": line, "framework": framework, "activation": act or "none", "kind": "Sequential"}


def _compile_candidate(expr, call: ast.Call, source: str, by_name, instances) -> Candidate | None:
    line = call.lineno
    model = dotted(call.func).rsplit(".", 1)[0] if isinstance(call.func, ast.Attribute) else ""
    note = f"used by {model}.compile(loss=...) at line {line}: Keras applies its reduction to what it returns"
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        fid = "keras.losses." + KERAS_ALIASES.get(expr.value.lower(), expr.value)
        return Candidate(f"compile(loss={expr.value!r}) line {line}", line, "framework loss", {}, builtin=fid,
                         notes=[note], models=[{"name": model, "via": "compile"}] if model else [])
    if isinstance(expr, ast.Name):
        target = by_name.get(instances.get(expr.id, expr.id))
        if target is not None:
            target.notes.append(note)
            if model:
                target.models.append({"name": model, "via": "compile"})
            return None
        return Candidate(f"compile(loss={expr.id}) line {line}", line, "compile", {"expr": expr.id}, notes=[note])
    if isinstance(expr, ast.Call) and not (expr.args or expr.keywords) and dotted(expr.func) in by_name:
        target = by_name[dotted(expr.func)]   # compile(loss=MyLoss()): the class audited with its defaults
        target.notes.append(note)
        if model:
            target.models.append({"name": model, "via": "compile"})
        return None
    if isinstance(expr, ast.Call):
        fid = framework_loss_id(dotted(expr.func))
        if fid is not None:
            params = {kw.arg: _literal(kw.value) for kw in expr.keywords if kw.arg}
            return Candidate(f"compile(loss={dotted(expr.func)}(...)) line {line}", line, "framework loss", {},
                             builtin=fid, builtin_params=params, notes=[note],
                             models=[{"name": model, "via": "compile"}] if model else [])
    text = ast.get_source_segment(source, expr) or ast.unparse(expr)
    params = _params(expr)[0] if isinstance(expr, ast.Lambda) else []
    kind = "lambda" if isinstance(expr, ast.Lambda) else "compile"
    return Candidate(f"compile(loss={kind}) line {line}", line, kind, {"expr": text}, params=params,
                     notes=[note, f"loss={text}"[:300]], models=[{"name": model, "via": "compile"}] if model else [])


# ---- call sites and model pairing -------------------------------------------------------------------

def expected_order(c: Candidate) -> list[str | None]:
    """Roles of the loss's first two parameters, in order."""
    from .infer import role_of_name

    if c.builtin:
        if c.builtin.startswith("keras."):
            return ["target", "prediction"]
        return ["prediction", "target"]
    return [role_of_name(p) for p in c.params[:2]]


def _call_sites(tree, source, cands, by_name, instances, models):
    model_names = {m["name"] for m in models}
    assigned_from_model: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and len(node.targets) == 1:
            t, f = node.targets[0], dotted(node.value.func)
            if isinstance(t, ast.Name) and (f in model_names or f.endswith(".apply") or f in ("model", "net")):
                assigned_from_model[t.id] = f
    direct: dict[str, Candidate] = {}
    scopes = _assignments_by_scope(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not (node.args or node.keywords):
            continue
        func = dotted(node.func)
        target = by_name.get(instances.get(func, func)) if func else None
        if target is None and func:
            fid = framework_loss_id(func)
            if fid is not None and not _builds(func):   # a framework function called directly
                target = direct.get(func)
                if target is None:
                    target = direct[func] = Candidate(f"{func}", node.lineno, "framework loss", {}, builtin=fid)
                    cands.append(target)
        if target is None or target.skip:
            continue
        if target.builtin:
            fed = _activation_fed(node, target.builtin, scopes, source)
            if fed is not None:
                target.models.append(fed)
        if len(node.args) < 2:
            continue
        roles = []
        for a in node.args[:2]:
            base = _base_name(a)
            role = fuzzy_role(base) if base else None
            if isinstance(a, ast.Call) and (dotted(a.func) in model_names or dotted(a.func).endswith(".apply")):
                role = "prediction"
            if isinstance(a, ast.Name) and a.id in assigned_from_model:
                role = "prediction"
            roles.append(role)
        target.call_sites.append({"line": node.lineno, "text": (ast.get_source_segment(source, node) or "")[:200],
                                  "roles": roles, "callee": func})
        for a in node.args[:1]:
            if isinstance(a, ast.Call) and dotted(a.func) in model_names:
                target.models.append({"name": dotted(a.func), "via": f"call at line {node.lineno}"})


#: keyword names of a framework loss's prediction argument (torch, Keras, optax)
_PREDICTION_KEYWORDS = ("input", "y_pred", "logits", "predictions", "log_predictions", "scores", "log_probs")
#: activations that change which loss a score belongs with (relu and tanh are model-internal)
_FED_ACTIVATIONS = ("softmax", "log_softmax", "sigmoid")


def _assignments_by_scope(tree) -> dict[ast.AST, list[tuple[int, str, ast.AST]]]:
    """{function or module: [(line, name, value)]} of its ``name = value`` statements (nested
    functions have their own scope)."""
    out: dict[ast.AST, list] = {}

    def visit(scope, body):
        found = out.setdefault(scope, [])
        stack = list(body)
        while stack:
            n = stack.pop()
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(n, n.body if isinstance(n.body, list) else [n.body])
                continue
            if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
                found.append((n.lineno, n.targets[0].id, n.value))
            if isinstance(n, ast.ClassDef):
                stack.extend(n.body)
                continue
            stack.extend(ast.iter_child_nodes(n))
        found.sort(key=lambda item: item[0])

    visit(tree, tree.body)
    return out


def _scope_of(call: ast.Call, scopes) -> list[tuple[int, str, ast.AST]]:
    """The assignments of the innermost scope that contains ``call``."""
    best, span = next(a for scope, a in scopes.items() if isinstance(scope, ast.Module)), None
    for scope, assigns in scopes.items():
        if isinstance(scope, ast.Module):
            continue
        lo, hi = scope.lineno, getattr(scope, "end_lineno", scope.lineno)
        if lo <= call.lineno <= hi and (span is None or hi - lo < span):
            best, span = assigns, hi - lo
    return best


def _activation_fed(call: ast.Call, builtin: str, scopes, source: str) -> dict | None:
    """The softmax, log_softmax or sigmoid a call site applies to the loss's prediction argument,
    directly (``F.cross_entropy(F.softmax(z, 1), y)``) or through a variable assigned in the same
    function (``p = torch.sigmoid(z)`` ... ``F.binary_cross_entropy_with_logits(p, y)``), as a
    "model" for :func:`~.static.pairing`; None when the argument is not seen to be activated."""
    arg = _argument(call, 1 if builtin.startswith("keras.") else 0, _PREDICTION_KEYWORDS)
    if arg is None:
        return None
    text = ast.get_source_segment(source, arg) or ast.unparse(arg)
    value, via = arg, ""
    assigns = _scope_of(call, scopes)
    for _ in range(3):   # p = torch.sigmoid(z); q = p; loss(q, y)
        if not isinstance(value, ast.Name):
            break
        before = [(line, v) for line, name, v in assigns if name == value.id and line <= call.lineno]
        if not before:
            return None
        line, value = before[-1]
        via = f"{_source_of(value, source)} at line {line}"
    if not isinstance(value, ast.Call):
        return None
    act = _activation_of_call(value, {})
    if act not in _FED_ACTIVATIONS:
        return None
    params = {kw.arg: _literal(kw.value) for kw in call.keywords if kw.arg and _literal(kw.value) is not None}
    shown = text if not via else f"{text} ({via})"
    return {"name": text, "line": call.lineno, "activation": act, "kind": "argument", "argument": shown,
            "via": f"call at line {call.lineno}", "params": params}


def body_losses(fn, params: list[str]) -> list[dict]:
    """The framework losses ``fn`` calls with one of its parameters as the prediction and another as
    the target (through an activation, variables and arithmetic: ``y_true * (1 - s) + s / n``)."""
    assigns = sorted(((n.lineno, n.targets[0].id, n.value) for n in ast.walk(fn)
                      if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)),
                     key=lambda item: item[0])
    out = []
    for call in ast.walk(fn):
        if not isinstance(call, ast.Call):
            continue
        func = dotted(call.func)
        fid = framework_loss_id(func) if func else None
        if fid is None or _builds(func):   # a class: built here, called elsewhere
            continue
        keras = fid.startswith("keras.")
        pred_expr = _argument(call, 1 if keras else 0, _PREDICTION_KEYWORDS)
        target_expr = _argument(call, 0 if keras else 1, ("target", "y_true", "labels", "targets", "log_targets"))
        if pred_expr is None or target_expr is None:
            continue
        pred, act = _parameter_behind(pred_expr, params, assigns, call.lineno)
        target, _ = _parameter_behind(target_expr, params, assigns, call.lineno)
        if pred is not None and target is not None and pred != target:
            out.append({"id": fid, "params": {kw.arg: _literal(kw.value) for kw in call.keywords
                                              if kw.arg and _literal(kw.value) is not None},
                        "prediction": pred, "target": target, "activation": act, "line": call.lineno})
    return out


def _argument(call: ast.Call, index: int, keywords) -> ast.AST | None:
    found = next((kw.value for kw in call.keywords if kw.arg in keywords), None)
    if found is None and len(call.args) > index:
        found = call.args[index]
    return found


def _parameter_behind(expr, params, assigns, line) -> tuple[str | None, str | None]:
    """(the one parameter ``expr`` is computed from, the softmax/log_softmax/sigmoid applied on the
    way), following assignments made before ``line``; (None, None) when it is not one parameter."""
    act = None
    for _ in range(4):
        if isinstance(expr, ast.Call) and expr.args and _activation_of_call(expr, {}) in _FED_ACTIVATIONS:
            act = act or _activation_of_call(expr, {})
            expr = expr.args[0]
            continue
        if isinstance(expr, ast.Name) and expr.id not in params:
            before = [v for ln, name, v in assigns if name == expr.id and ln < line]
            if not before:
                return None, None
            expr = before[-1]
            continue
        break
    names = {n.id for n in ast.walk(expr) if isinstance(n, ast.Name) and n.id in params}
    return (names.pop(), act) if len(names) == 1 else (None, None)


def _source_of(node, source: str) -> str:
    return (ast.get_source_segment(source, node) or ast.unparse(node))[:80]


def _pair_models(cands, models, tree):
    """Pair framework classification losses with the file's models: explicit (compile, a call
    ``loss(model(x), y)``) or, when the file defines exactly one model, that one."""
    by_name = {m["name"]: m for m in models}
    # a model class and its instance are one model
    instanced = {m["kind"].removeprefix("instance of ") for m in models if m["kind"].startswith("instance of ")}
    models = [m for m in models if not (m["kind"] == "class" and m["name"] in instanced)]
    # a model compiled with (or called into) one loss is not another loss's model by default
    named = {ref["name"] for c in cands for ref in c.models if ref.get("kind") != "argument"}
    for c in cands:
        paired = []
        for ref in c.models:
            if ref.get("kind") == "argument":   # an activation applied at the call site itself
                paired.append(ref)
                continue
            m = by_name.get(ref["name"])
            if m is not None and m not in paired:
                paired.append({**m, "via": ref.get("via", "")})
        if not paired and len(models) == 1 and c.builtin and models[0]["name"] not in named:
            paired = [{**models[0], "via": "the only model in the file"}]
        c.models = paired
