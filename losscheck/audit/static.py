"""Checks read off the file's source: the order of the arguments at each call site (V008) and the
pairing of a model's last activation with the loss it is trained with (A002-A004, measured on the
real framework by :mod:`losscheck.compat`)."""
from __future__ import annotations

from typing import Callable

from .probes import result

ROLE_TEXT = {"prediction": "the prediction", "target": "the target"}


def call_sites(sites: list[dict], expected: list[str | None], loss_title: str,
               symmetric: Callable[[], bool | None]) -> list[dict]:
    """One check per call site that passes arguments whose names tell their role.

    ``expected``: the roles of the loss's first two parameters; ``symmetric()`` says whether
    swapping them changes the loss (None when unknown), measured only when a call site is swapped."""
    out = []
    if len(expected) < 2 or None in expected[:2]:
        return out
    for site in sites:
        roles = list(site.get("roles") or [])[:2]
        if len(roles) < 2 or roles == [None, None]:
            continue
        swapped = (roles[0] == expected[1] or roles[1] == expected[0]) and roles[0] != expected[0] \
            and roles[1] != expected[1]
        where = f"line {site['line']}: {site['text']}"
        if not swapped:
            out.append(result("call_site", "pass", f"{where}: {ROLE_TEXT[expected[0]]} first, as {loss_title} expects",
                              details={"line": site["line"]}))
            continue
        sym = symmetric()
        msg = (f"{where}: passes {ROLE_TEXT[expected[1]]} first, but {loss_title} takes "
               f"({expected[0]}, {expected[1]})")
        if sym:
            out.append(result("call_site", "warn", msg + "; harmless for this symmetric loss, wrong for any other "
                              "(and a reader is misled): swap them", "V008", {"line": site["line"], "symmetric": True}))
        else:
            out.append(result("call_site", "fail", msg + ("; the loss is not symmetric, so its value and gradient are "
                              "wrong" if sym is False else ""), "V008", {"line": site["line"], "symmetric": sym}))
    return out


def through_body(name: str, body_losses: list[dict], pred: str, target: str, models: list[dict]) -> list[dict]:
    """A user's loss that is a framework classification loss on its own arguments (found in its
    body, ``discover.body_losses``): the models trained with it against what that loss expects
    after the activation the body applies itself (``categorical_crossentropy(y_true,
    ops.softmax(y_pred))`` takes raw scores: a model ending in softmax applies it twice)."""
    from ..catalog.pairings import for_spec

    for b in body_losses:
        variants = for_spec(b["id"])
        if (b["prediction"], b["target"]) != (pred, target) or not variants:
            continue
        params = {k: v for k, v in b["params"].items() if v is not None}
        title = f"{name} (through {b['id']} at line {b['line']})"
        if b["activation"]:
            chosen = next((pv for pv, pr in variants if all(params.get(k, v) == v for k, v in pv.items())), None)
            raw = next((pv for pv, pr in variants if pr.expects == "none"), None)
            expected = next((pr.expects for pv, pr in variants if pv == chosen), None)
            if raw is None or expected != b["activation"]:
                return []   # a mismatch inside the body is the framework loss's own call-site finding
            params, title = dict(raw), f"{name} (which applies {b['activation']} before {b['id']} at line {b['line']})"
        return pairing(b["id"], params, models, title=title)
    return []


def pairing(spec_id: str, params: dict, models: list[dict], title: str | None = None) -> list[dict]:
    """The model's last activation against the activation the loss documents (``title``: how the
    loss is named in the messages, by default its id and setting)."""
    from ..catalog.pairings import for_spec

    variants = for_spec(spec_id)
    if not variants or not models:
        return []
    out = []
    for m in models:
        act = m.get("activation")
        if act is None:
            continue
        site = {**params, **(m.get("params") or {})}   # a call site's own from_logits=...
        params_v, pair = next(((pv, pr) for pv, pr in variants if all(site.get(k, v) == v for k, v in pv.items())),
                              variants[0])
        # a setting no variant names exactly (label_smoothing=0.1) is measured as given, not as the variant's
        params_v = {**params_v, **{k: site[k] for k in params_v if k in site}}
        if m.get("kind") == "argument":
            what = f"line {m['line']} passes {m['argument']}, a {act} output, as the prediction"
        else:
            what = f"model {m['name']} (line {m['line']}, {m.get('via') or 'in the file'}) ends in {act}"
        loss = title or f"{spec_id}{_setting(params_v)}"
        if act == pair.expects:
            out.append(result("activation", "pass", f"{what}: the documented pairing for {loss}",
                              details={"model": m["name"], "activation": act}))
            continue
        effect = _measure(spec_id, params_v, pair, act)
        if effect is None:
            out.append(result("activation", "warn", f"{what}, but {loss} expects {pair.expects}",
                              "A003", {"model": m["name"], "activation": act, "expects": pair.expects}))
            continue
        from ..compat import effect_code

        code = effect_code(effect)
        status = {"ok": "pass", "warn": "warn", "wrong": "fail"}[effect.verdict]
        out.append(result("activation", status, f"{what}, but {loss} expects {pair.expects}: "
                          f"{effect.describe()}", code, {"model": m["name"], "activation": act,
                                                         "expects": pair.expects, "verdict": effect.verdict}))
    return out


def _setting(params: dict) -> str:
    return "" if not params else " (" + ", ".join(f"{k}={v}" for k, v in params.items()) + ")"


def _measure(spec_id, params, pair, act):
    """The compat analysis of the catalog loss with this activation, on its own runtime."""
    from .. import catalog
    from ..compat import Pairing, analyse
    from ..frameworks import get_runtime

    try:
        spec = catalog.get(spec_id)
        runtime = get_runtime(spec.runtimes[0])
        pairing_ = Pairing(pair.pred, pair.expects, pair.targets, {**params, **pair.params}, pair.binary)
        return next(e for e in analyse(spec, runtime, pairing_) if e.activation == act)
    except Exception:  # noqa: BLE001 - the runtime is not loadable here (another Keras backend)
        return None
