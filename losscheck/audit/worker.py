"""The sandboxed side of ``losscheck audit`` (``python -m losscheck.audit.worker``).

Reads one job (JSON) on stdin, imports the user's file, resolves its losses and audits the ones
asked for, one at a time, reporting on a control pipe (``job["ctl_fd"]``, one JSON object per
line): ``ready``, ``frameworks``, ``imported`` or ``import_error``, ``start`` and ``result`` per
loss, ``done``. Everything the user's code prints goes to stdout/stderr, which the parent points
at a file. Each phase is armed with :func:`faulthandler.dump_traceback_later` (``exit=True``): a
hang dumps the stack (the parent reads the user's line from it) and ends the process.
"""
from __future__ import annotations

import faulthandler
import importlib.util
import inspect
import json
import os
import sys
import time
import traceback

TIMEOUT_MARK = "Timeout ("
OS_EXIT_MARK = "losscheck: os._exit("


class Channel:
    def __init__(self, fd: int):
        self.f = os.fdopen(fd, "w", buffering=1)

    def send(self, event: str, **data) -> None:
        self.f.write(json.dumps({"event": event, **data}, default=str) + "\n")
        self.f.flush()


def set_limits(memory_mb: int, output_mb: int, memory_kind: str = "address_space") -> None:
    import resource

    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        # CUDA reserves address space the size of the GPU's memory when it starts: under an 8 GiB
        # RLIMIT_AS torch reported no device and JAX no gpu platform (H100). RLIMIT_DATA counts what
        # the process writes (heap, anonymous mappings), not those reservations.
        which = resource.RLIMIT_DATA if memory_kind == "data" else resource.RLIMIT_AS
        resource.setrlimit(which, (limit, limit))
    if output_mb > 0:
        limit = output_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def preimport(frameworks: list[str]) -> dict:
    """Import the frameworks the file imports before the clock for the user's code starts."""
    versions = {}
    if "keras" in frameworks or "tensorflow" in frameworks:
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if "jax" in frameworks or "optax" in frameworks or "flax" in frameworks:
        import jax

        jax.config.update("jax_enable_x64", True)
        versions["jax"] = jax.__version__
    for name in ("torch", "tensorflow", "keras", "optax"):
        if name in frameworks:
            try:
                versions[name] = importlib.import_module(name).__version__
            except Exception as exc:  # noqa: BLE001 - the user's import will report it with its line
                versions[name] = f"unavailable: {type(exc).__name__}: {exc}"
    return versions


def user_line(tb, path: str) -> int:
    """The last line of the user's file in a traceback (0 when the file is not in it)."""
    line = 0
    real = os.path.realpath(path)
    for frame in traceback.extract_tb(tb):
        if os.path.realpath(frame.filename) == real:
            line = frame.lineno or 0
    return line


def import_file(path: str):
    directory = os.path.dirname(os.path.abspath(path))
    name = "losscheck_audited_" + "".join(ch if ch.isalnum() else "_" for ch in os.path.splitext(os.path.basename(path))[0])
    sys.path.insert(0, directory)
    sys.argv = [path]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _signature(fn):
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


def required(fn) -> list[str]:
    """Parameters without a default: the positional ones, then the keyword-only ones."""
    sig = _signature(fn)
    if sig is None:
        return []
    ps = sig.parameters.values()
    return [p.name for p in ps if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty] + \
        [p.name for p in ps if p.kind == p.KEYWORD_ONLY and p.default is p.empty]


def keyword_only(fn) -> list[str]:
    sig = _signature(fn)
    return [p.name for p in sig.parameters.values() if p.kind == p.KEYWORD_ONLY] if sig is not None else []


def variadic(fn) -> str:
    """"*args" / "**kwargs" / "*args, **kwargs" as the signature has them ("" for neither)."""
    sig = _signature(fn)
    kinds = {p.kind: p.name for p in sig.parameters.values()} if sig is not None else {}
    return ", ".join(f"{star}{kinds[k]}" for star, k in (("*", inspect.Parameter.VAR_POSITIONAL),
                                                         ("**", inspect.Parameter.VAR_KEYWORD)) if k in kinds)


def by_keyword(fn, keywords: list[str]):
    """``fn`` called with its inputs in order, as the audit calls a loss, the ones in ``keywords``
    (keyword-only parameters, or the names ``**kwargs`` receives) passed by keyword."""
    def call(*args, **kw):
        names = [k for k in keywords if k not in kw]
        n = len(args) - len(names)
        return fn(*args[:n], **dict(zip(names, args[n:])), **kw)

    return call


def _call_target(obj):
    """The method whose parameters are the loss's call parameters (self dropped)."""
    cls = obj if inspect.isclass(obj) else type(obj)
    for name in ("forward", "call", "__call__"):
        method = inspect.getattr_static(cls, name, None)
        if method is not None and inspect.isfunction(method) and not method.__module__.startswith(
                ("torch.", "keras.", "tensorflow.")):
            return getattr(obj, name) if not inspect.isclass(obj) else method
    return obj


def resolve(c: dict, module, framework_opt: str, file_frameworks: list[str], inputs: str | None = None):
    """The candidate as a :class:`~losscheck.audit.checks.Subject`, or a reason it cannot be audited.
    ``inputs``: the ``--inputs`` text, which names the inputs of a loss taking ``*args``/``**kwargs``."""
    from ..userloss import detect_framework
    from .capture import capture
    from .checks import Subject
    from .declare import declared

    loc = c.get("locate") or {}
    if "global" in loc:
        if loc["global"] not in vars(module):
            return f"{loc['global']} is not defined when the file is imported (it is created under `if __name__ == " \
                   "'__main__':` or inside a function)"
        obj, where = vars(module)[loc["global"]], f"m.{loc['global']}"
    else:
        try:
            obj = eval(compile(loc["expr"], c["name"], "eval"), vars(module))  # noqa: S307 - the user's own code
        except Exception as exc:  # noqa: BLE001
            return f"cannot evaluate {loc['expr'][:80]!r} at module level ({type(exc).__name__}: {exc}): it refers to " \
                   "names local to a function"
        where = f"eval({loc['expr']!r}, vars(m))"
    if framework_opt != "auto":
        framework = framework_opt
    else:
        fw = detect_framework(obj) if not inspect.isclass(obj) else _class_framework(obj)
        framework = {"optax": "jax"}.get(fw, fw) or next(
            ({"optax": "jax", "flax": "jax"}.get(f, f) for f in file_frameworks), None)
    if framework is None:
        return "no framework found (torch, keras, tensorflow or jax): pass --framework"
    if framework == "keras" and "tensorflow" in file_frameworks and "keras" not in file_frameworks:
        framework = "tensorflow"
    if inspect.isclass(obj):
        ctor = required(obj.__init__)[1:] if obj.__init__ is not object.__init__ else []
        target = signature_of = _call_target(obj)
        params = required(target)[1:] if inspect.isfunction(target) else required(target)

        def make(**kw):
            return obj(**kw)
    else:
        ctor = []
        target = _call_target(obj) if not inspect.isroutine(obj) and not hasattr(obj, "func") else obj
        signature_of = getattr(target, "python_function", target)   # tf.function
        params = required(signature_of)

        def make(**kw):
            return obj
    dec = declared(obj) or c.get("declared")
    keywords = [p for p in keyword_only(signature_of) if p in params]
    var = variadic(signature_of) if not params else ""
    if var:   # def loss(*args) / (**kwargs): the inputs are what --inputs (or declare) names, in its order
        from .infer import InputsError, parse_inputs

        text = inputs or (dec or {}).get("inputs")
        if not text:
            return f"takes {var}: its inputs cannot be inferred from its signature; name them with --inputs " \
                   "(e.g. --inputs 'pred=reals(N,D),target=reals(N,D)') or @losscheck.declare(inputs=...)"
        try:
            params = list(parse_inputs(text))
        except InputsError as exc:
            return f"takes {var} and its declared inputs cannot be read: {exc}"
        keywords = [] if var.startswith("*") and not var.startswith("**") else list(params)
    if keywords:   # keyword-only inputs (or **kwargs): passed by keyword
        inner = make
        if inspect.isclass(obj):
            def make(**kw):
                return by_keyword(inner(**kw), keywords)
        else:
            fn = by_keyword(obj, keywords)   # one callable: the JAX evaluator compiles it once

            def make(**kw):
                return fn
    doc = c.get("doc") or inspect.getdoc(getattr(target, "python_function", target)) or ""
    annotations = c.get("annotations") or {}
    hints = {k: v for k, v in getattr(obj, "keywords", {}).items() if isinstance(v, (bool, int, float, str))} \
        if hasattr(obj, "func") else {}
    return Subject(candidate=c, framework=framework, make=make, params=params, ctor_params=ctor,
                   captured=capture(obj, vars(module)), declared=dec, doc=doc, annotations=annotations, locate=where,
                   hints=hints, keywords=keywords)


def _class_framework(cls) -> str | None:
    roots = [k.__module__.split(".")[0] for k in cls.__mro__]
    for fw in ("keras", "torch", "tensorflow", "flax"):
        if fw in roots:
            return {"flax": "jax"}.get(fw, fw)
    from ..userloss import detect_framework

    for name in ("forward", "call", "__call__"):
        method = inspect.getattr_static(cls, name, None)
        if inspect.isfunction(method):
            return detect_framework(method)
    return None


def trace_os_exit() -> None:
    """Make os._exit() print where it was called from before the process ends (it runs no
    handler and prints nothing), so the parent can name the user's line."""
    real = os._exit

    def _exit(status):
        try:
            sys.stderr.write(f"{OS_EXIT_MARK}{status})\n")
            traceback.print_stack(file=sys.stderr)
            sys.stderr.flush()
        finally:
            real(status)

    os._exit = _exit


def reset_output() -> None:
    """Empty the output file between losses: the size limit (RLIMIT_FSIZE) then holds per loss.
    stdout and stderr share one open file (and offset), so one truncate and seek serve both."""
    try:
        os.ftruncate(1, 0)
        os.lseek(1, 0, os.SEEK_SET)
    except OSError:
        pass


def output_size() -> int:
    try:
        return os.fstat(1).st_size
    except OSError:
        return 0


def main() -> int:
    job = json.loads(sys.stdin.read())
    ch = Channel(job["ctl_fd"])
    limits = job["limits"]
    set_limits(limits["memory_mb"], limits["output_hard_mb"], limits.get("memory_kind", "address_space"))
    faulthandler.enable(all_threads=True)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    ch.send("ready", pid=os.getpid())
    versions = preimport(job["frameworks"])
    import numpy  # noqa: F401 - the audit's own imports, before the user's clock starts

    from . import checks
    from .probes import OutputLimit

    ch.send("frameworks", versions=versions)
    path = job["path"]
    trace_os_exit()
    faulthandler.dump_traceback_later(limits["import_timeout"], exit=True)
    try:
        module = import_file(path)
    except BaseException as exc:  # noqa: BLE001 - SystemExit too: the file cannot be imported
        faulthandler.cancel_dump_traceback_later()
        what = f"sys.exit({exc.code!r})" if isinstance(exc, SystemExit) else f"{type(exc).__name__}: {exc}"
        ch.send("import_error", message=what.splitlines()[0][:300] if what.strip() else type(exc).__name__,
                line=user_line(exc.__traceback__, path))
        return 0
    faulthandler.cancel_dump_traceback_later()
    reset_output()
    ch.send("imported")
    from ..frameworks.guard import restore_state, snapshot_state

    # the framework settings as the file's import left them, put back after each loss: each call of
    # a loss is watched already; this also undoes what a constructor or losscheck itself set
    settings = snapshot_state()

    opts = checks.Options(**job["options"])
    for c in job["candidates"]:
        if c["name"] not in job["todo"]:
            continue
        ch.send("start", name=c["name"])
        before = output_size()
        started = time.perf_counter()
        faulthandler.dump_traceback_later(limits["timeout"], exit=True)
        try:
            entry = audit_one(c, module, opts, job)
        except BaseException as exc:  # noqa: BLE001 - sys.exit(), the output limit, KeyboardInterrupt
            entry = checks.entry_for(c, job["frameworks"][0] if job["frameworks"] else None)
            if isinstance(exc, SystemExit):
                code, msg = "X004", f"the loss called sys.exit({exc.code!r}): the training process would end here"
            elif isinstance(exc, OutputLimit):
                code, msg = "X006", (f"printed more than {limits['output_hard_mb']} MiB while being checked (the "
                                     "sandbox's limit): a print or log call in the loss floods the training log")
            else:
                code, msg = "X001", f"raised {type(exc).__name__}: {exc}"
            entry["checks"].append({"check": "execution", "code": code, "status": "fail", "message": msg,
                                    "details": {"line": user_line(exc.__traceback__, path)},
                                    "repro": job["repro"].get(c["name"], opts.repro)})
            checks.finish(entry, started)
        faulthandler.cancel_dump_traceback_later()
        restore_state(settings)
        sys.stdout.flush()
        sys.stderr.flush()
        printed = output_size() - before
        entry["output_bytes"] = printed
        if printed > limits["output_soft_mb"] * 1024 * 1024 and not any(x["code"] == "X006" for x in entry["checks"]):
            entry["checks"].append({"check": "output", "code": "X006", "status": "fail",
                                    "message": f"printed {printed / 2 ** 20:.1f} MiB while being checked (limit "
                                               f"{limits['output_soft_mb']} MiB): a print or log call in the loss floods "
                                               "the training log", "details": {"bytes": printed}, "repro": opts.repro})
            checks.finish(entry, started)
        reset_output()
        broken = cuda_context_error() if "cuda" in opts.devices else ""
        if broken:
            entry["notes"] = [*entry.get("notes", []), f"checking it broke this process's CUDA context ({broken}): "
                              "the audit went on with the next loss in a fresh worker"]
        ch.send("result", entry=entry)
        if broken:   # every later CUDA call here would fail with it: the sandbox starts a fresh worker
            ch.send("context_broken", message=broken)
            return 0
    ch.send("done")
    return 0


def cuda_context_error() -> str:
    """"" unless the loss just audited left torch's CUDA context broken (a device-side assert is
    sticky: every later CUDA call of the process fails with it)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_initialized():
        return ""
    from ..frameworks.torch_engine import TorchEngine

    return TorchEngine("cuda").context_error()


def audit_one(c: dict, module, opts, job) -> dict:
    import dataclasses

    from . import checks

    opts = dataclasses.replace(opts, file=job["display_path"], repro=job["repro"].get(c["name"], opts.repro))
    if c.get("skip"):
        entry = checks.entry_for(c, job["frameworks"][0] if job["frameworks"] else None)
        entry["checks"].append({"check": "discover", "code": "", "status": "skip", "message": c["skip"],
                                "details": {}, "repro": ""})
        return checks.finish(entry, time.perf_counter())
    if c.get("builtin"):
        return checks.audit_builtin(c, opts)
    subject = resolve({**c, "file": job["path"]}, module, opts.framework, job["frameworks"], opts.inputs)
    if isinstance(subject, str):
        entry = checks.entry_for(c, None)
        entry["checks"].append({"check": "discover", "code": "", "status": "skip", "message": subject,
                                "details": {}, "repro": ""})
        return checks.finish(entry, time.perf_counter())
    return checks.audit_subject(subject, opts)


if __name__ == "__main__":
    sys.exit(main())
