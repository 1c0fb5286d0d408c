"""The parameters the catalog draws for the cosine losses of optax and Keras (``axis``) and Keras' circle
function (its reference set, ``ref_labels`` and ``ref_embeddings``): every form is drawn, the batch
layouts follow them, and the oracle's reference set reduces to the default where it should. NumPy only."""
import dataclasses

import numpy as np
import pytest
from losscheck import catalog, strategies
from losscheck.catalog.embedding import CIRCLE_REFERENCE_SETS
from losscheck.catalog.optax_losses import COSINE_AXIS_FORMS
from losscheck.properties.batch import batch_axes, take, tile
from losscheck.reference import embedding as E

COSINE = ("optax.losses.cosine_similarity", "optax.losses.cosine_distance",
          "keras.losses.CosineSimilarity", "keras.losses.cosine_similarity")


def _draws(spec, n=300):
    return strategies.sample(spec.draw, n)


def _axis_form(case):
    if "axis" not in case.params:
        return "default"
    a = case.params["axis"]
    return {type(None): "none", int: "int"}.get(type(a)) or ("empty" if a == () else "tuple")


@pytest.mark.parametrize("spec_id", COSINE)
def test_cosine_draws_every_form_of_axis(spec_id):
    cases = _draws(catalog.get(spec_id))
    forms = [_axis_form(c) for c in cases]
    assert set(forms) == set(COSINE_AXIS_FORMS)
    assert forms.count("default") > len(cases) / 8
    tuples = [c.params["axis"] for c in cases if _axis_form(c) == "tuple"]
    assert any(len(t) > 1 for t in tuples) and any(min(t) < 0 for t in tuples) and any(max(t) >= 0 for t in tuples)
    assert any(list(t) != sorted(t) for t in tuples)   # any order
    ints = {c.params["axis"] for c in cases if _axis_form(c) == "int"}
    assert {-1, 0} <= ints and any(a < -1 for a in ints)


def _per_vector(case):
    """The case unreduced: Keras' class under reduction "none" (its sample_weight still applied)."""
    if "reduction" not in case.params:
        return case
    return dataclasses.replace(case, params={**case.params, "reduction": "none"})


@pytest.mark.parametrize("spec_id", COSINE)
def test_cosine_layout_follows_the_drawn_axis(spec_id):
    """Tiling the layout's batch axis tiles the oracle's per-vector output along its axis 0, and
    sample 0 is the first output: a layout that read the wrong axis would tile a reduced one (for
    Keras' class, weighted by a sample_weight tiled with it)."""
    spec = catalog.get(spec_id)
    checked = unbatched = 0
    for case in map(_per_vector, _draws(spec, 150)):
        axes = batch_axes(spec, case)
        if axes is None:
            unbatched += 1
            assert np.ndim(spec.oracle(case).value) == 0
            continue
        with np.errstate(all="ignore"):
            v = np.asarray(spec.oracle(case).value)
            v2 = np.asarray(spec.oracle(tile(spec, case, 2)).value)
            v1 = np.asarray(spec.oracle(take(spec, case, slice(0, 1))).value)
        np.testing.assert_allclose(v2, np.concatenate([v, v]), rtol=1e-12, equal_nan=True, err_msg=str(case.params))
        np.testing.assert_allclose(v1, v[:1], rtol=1e-12, equal_nan=True, err_msg=str(case.params))
        checked += 1
    assert checked > 50 and unbatched > 5


@pytest.mark.parametrize("spec_id", ["keras.losses.CosineSimilarity", "keras.losses.cosine_similarity"])
def test_keras_cosine_batch_is_the_first_axis_not_reduced(spec_id):
    """axis=0 reduces over the leading axis: the batch is then the second one, and Keras' sample_weight
    has the shape of the per-vector losses (the inputs' without the reduced axes), its batch axis 0."""
    spec = catalog.get(spec_id)
    seen = set()
    for case in _draws(spec):
        axes = batch_axes(spec, case)
        ndim = np.ndim(case.inputs["y_true"])
        ax = case.params.get("axis", -1)
        reduced = set(range(ndim)) if ax is None else {a % ndim for a in (ax if isinstance(ax, tuple) else (ax,))}
        free = [i for i in range(ndim) if i not in reduced]
        with np.errstate(all="ignore"):
            per_vector = np.asarray(spec.oracle(_per_vector(case)).value)
        assert np.shape(per_vector) == tuple(np.shape(case.inputs["y_true"])[i] for i in free)
        if "sample_weight" in case.inputs:
            assert np.shape(case.inputs["sample_weight"]) == np.shape(per_vector), case.params
        if not free:
            assert axes is None, case.params
            continue
        assert axes["y_true"] == axes["y_pred"] == free[0], case.params
        if "sample_weight" in case.inputs:
            assert axes["sample_weight"] == 0, case.params
        seen.add(free[0])
    assert seen == {0, 1, 2}   # axis 0 (or (0,), (0, 1)) reduced moves the batch to axis 1 or 2


def test_circle_function_draws_every_reference_set():
    spec = catalog.get("keras.losses.circle")
    cases = _draws(spec)
    for c in cases:   # every draw is a valid oracle input, with a gradient for each embedding it has
        with np.errstate(all="ignore"):
            res = spec.oracle(c)
            grads = res.grad(np.ones(np.shape(res.value)))
        assert np.shape(res.value) == (len(c.inputs["y_true"]),)
        for a in spec.grad_args:
            if a.name in c.inputs:
                assert np.shape(grads[a.oracle_name]) == np.shape(c.inputs[a.name]), a.name
        assert isinstance(spec.batch_layout(c), dict)
    kinds = {("ref_labels" in c.inputs, "ref_embeddings" in c.inputs) for c in cases}
    assert kinds == {(False, False), (True, True), (True, False), (False, True)}
    both = [c for c in cases if "ref_embeddings" in c.inputs and "ref_labels" in c.inputs]
    sizes = {(len(c.inputs["y_pred"]), len(c.inputs["ref_embeddings"])) for c in both}
    assert any(m == 1 for _, m in sizes) and any(n != m for n, m in sizes) and any(m > n for n, m in sizes)
    assert sum("ref_embeddings" in c.inputs for c in cases) > len(cases) / 3
    n_of = lambda c: len(c.inputs["y_pred"])  # noqa: E731
    # the batch passed as its own reference set, and a memory bank ending with the batch
    assert any(np.array_equal(c.inputs["ref_embeddings"], c.inputs["y_pred"]) for c in both)
    assert any(len(c.inputs["ref_embeddings"]) > n_of(c)
               and np.array_equal(c.inputs["ref_embeddings"][-n_of(c):], c.inputs["y_pred"]) for c in both)
    assert set(CIRCLE_REFERENCE_SETS) == {"none", "separate", "bank", "batch", "labels", "embeddings"}


def test_the_class_takes_no_reference_set():
    """keras.losses.Circle's __init__ has no ref_labels/ref_embeddings: only the function draws them."""
    spec = catalog.get("keras.losses.Circle")
    assert not {"ref_labels", "ref_embeddings"} & {a.name for a in spec.args}
    fn = catalog.get("keras.losses.circle")
    assert [a.name for a in fn.args] == ["y_true", "y_pred", "ref_labels", "ref_embeddings"]
    assert [a.name for a in fn.grad_args] == ["y_pred", "ref_embeddings"]


def test_the_batch_as_its_own_reference_set_is_the_default():
    """ref_labels=y_true, ref_embeddings=y_pred gives the default's value, and the default's gradient
    is the sum of the two sides' gradients (each embedding is on both sides of its pairs)."""
    rng = np.random.default_rng(3)
    for remove_diagonal in (True, False):
        y = np.array([0, 1, 0, 1, 2])
        x = rng.normal(size=(5, 3))
        x /= np.linalg.norm(x, axis=-1, keepdims=True) * rng.uniform(1.0, 2.0, (5, 1))
        kw = dict(gamma=4.0, margin=0.3, remove_diagonal=remove_diagonal)
        own, explicit = E.circle(y, x, **kw), E.circle(y, x, ref_labels=y, ref_embeddings=x.copy(), **kw)
        np.testing.assert_allclose(explicit.value, own.value, rtol=1e-14)
        g, ge = own.grad(np.ones(5)), explicit.grad(np.ones(5))
        np.testing.assert_allclose(ge["embeddings"] + ge["ref_embeddings"], g["embeddings"], rtol=1e-12, atol=1e-14)


def test_remove_diagonal_goes_by_position():
    """Keras builds the positive mask with ops.eye(N, M): with a reference set the pair (i, i) goes,
    whatever reference i is, and the sample's own copy elsewhere in the set stays a positive."""
    x = np.array([[1.0, 0.0], [0.0, 0.6]])
    refs = np.array([[0.6, 0.0], [0.0, 0.8], [1.0, 0.0]])   # row 2 is sample 0's own copy
    y, yr = np.array([0, 1]), np.array([0, 1, 0])
    kw = dict(gamma=2.0, margin=0.25)
    kept = E.circle(y, x, ref_labels=yr, ref_embeddings=refs, remove_diagonal=False, **kw).value
    removed = E.circle(y, x, ref_labels=yr, ref_embeddings=refs, remove_diagonal=True, **kw).value
    # sample 0 keeps its own copy (reference 2) as a positive and loses reference 0; sample 1 loses its
    # only positive (reference 1): no positives, loss 0
    assert removed[1] == 0.0 < kept[1]
    d = np.maximum(1.0 - x[0] @ refs.T, 0.0)
    p = -2.0 * np.maximum(0.25 + d, 0.0) * (0.25 - d)
    n = 2.0 * np.maximum(1.25 - d, 0.0) * (0.75 - d)
    np.testing.assert_allclose(removed[0], np.logaddexp(0.0, p[2] + n[1]), rtol=1e-14)


# ---- planted bugs: the drawn parameters are what catches them --------------------------------------

def _cosine_norms_on_last_axis(ns, params):
    """optax's cosine_similarity with the norms hard-coded to the last axis, the dot product on ``axis``
    (the output has the right shape)."""
    jnp, p = ns.jnp, dict(params)
    axis, eps, where = p.pop("axis", -1), p.pop("epsilon", 0.0), p.pop("where", None)

    def loss(predictions, targets):
        a, b = predictions, targets
        if where is not None:
            a, b = jnp.where(where, a, 0.0), jnp.where(where, b, 0.0)
        na = jnp.sqrt(jnp.clip(jnp.sum(a * a, axis=-1, keepdims=True), eps))
        nb = jnp.sqrt(jnp.clip(jnp.sum(b * b, axis=-1, keepdims=True), eps))
        return jnp.sum((a / na) * (b / nb), axis=axis)
    return loss


def _cosine_ignores_axis(ns, params):
    p = {k: v for k, v in params.items() if k != "axis"}
    return lambda predictions, targets: ns.optax.losses.cosine_similarity(predictions, targets, **p)


def _keras_cosine_norms_on_last_axis(ns, params):
    """keras.losses.cosine_similarity with both vectors normalised along the last axis whatever ``axis``
    is, the dot product on ``axis`` (the output has the right shape)."""
    ops, axis = ns.keras.ops, params.get("axis", -1)

    def loss(y_true, y_pred):
        return -ops.sum(ops.normalize(y_true, axis=-1) * ops.normalize(y_pred, axis=-1), axis=axis)
    return loss


def _circle_ignores_ref_embeddings(ns, params):
    def loss(y_true, y_pred, ref_labels=None, ref_embeddings=None):
        return ns.keras.losses.circle(y_true, y_pred, ref_labels=ref_labels, **params)
    return loss


def _circle_detaches_ref_embeddings(ns, params):
    def loss(y_true, y_pred, ref_labels=None, ref_embeddings=None):
        if ref_embeddings is not None:
            ref_embeddings = ns.keras.ops.stop_gradient(ref_embeddings)
        return ns.keras.losses.circle(y_true, y_pred, ref_labels=ref_labels, ref_embeddings=ref_embeddings, **params)
    return loss


PLANTS = {"cosine_norms_on_last_axis": ("optax.losses.cosine_similarity", "jax", _cosine_norms_on_last_axis),
          "cosine_ignores_axis": ("optax.losses.cosine_similarity", "jax", _cosine_ignores_axis),
          "keras_cosine_norms_on_last_axis": ("keras.losses.cosine_similarity", "keras-jax",
                                              _keras_cosine_norms_on_last_axis),
          "circle_ignores_ref_embeddings": ("keras.losses.circle", "keras-jax", _circle_ignores_ref_embeddings),
          "circle_detaches_ref_embeddings": ("keras.losses.circle", "keras-jax", _circle_detaches_ref_embeddings)}


def plant_codes(name: str, examples: int = 60) -> dict:
    """{property: (status, code)} of the planted spec's float64 value and gradient checks."""
    import dataclasses

    from losscheck.runner import Task, run_check

    spec_id, runtime, call = PLANTS[name]
    spec = dataclasses.replace(catalog.get(spec_id), call=call)
    rows = [run_check(spec, Task(spec.id, runtime, p, "float64"), examples=examples, seed=0)
            for p in ("value", "gradient")]
    return {r["property"]: (r["status"], r["code"]) for r in rows}


@pytest.mark.frameworks
@pytest.mark.parametrize("name, value, gradient", [("cosine_norms_on_last_axis", "V", "G"),
                                                   ("cosine_ignores_axis", "X", "X")])
def test_a_cosine_on_the_wrong_axis_is_caught(name, value, gradient):
    pytest.importorskip("optax")
    codes = plant_codes(name)
    assert codes["value"][0] == "fail" and codes["value"][1].startswith(value), codes
    assert codes["gradient"][0] == "fail" and codes["gradient"][1].startswith(gradient), codes


def _keras_plant_codes(names, examples):
    """plant_codes of Keras plants, run on JAX in a process of their own (one backend per process)."""
    import json
    import os
    import subprocess
    import sys

    from losscheck.frameworks import installed

    if not installed("keras-jax"):
        pytest.skip("needs Keras and JAX")
    script = ("import json; from tests.test_drawn_axis_and_references import plant_codes; "
              f"print(json.dumps({{n: plant_codes(n, examples={examples}) for n in {tuple(names)!r}}}))")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=900,
                         env={**os.environ, "KERAS_BACKEND": "jax"})
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.frameworks
def test_a_keras_cosine_normalising_the_last_axis_is_caught():
    """Normalising along the last axis is right only where the drawn axis is the last one: the other
    axes give a wrong value (V) and gradient (G). 200 examples: the first wrong gradients drawn hold an
    input below 2e-31, in the scope of KERAS_FLUSHES_SUBNORMALS (xfail), as most larger draws do."""
    codes = _keras_plant_codes(["keras_cosine_norms_on_last_axis"], 200)["keras_cosine_norms_on_last_axis"]
    assert codes["value"][0] == "fail" and codes["value"][1].startswith("V"), codes
    assert codes["gradient"][0] == "fail" and codes["gradient"][1].startswith("G"), codes


@pytest.mark.slow
@pytest.mark.frameworks
def test_a_circle_that_drops_its_reference_embeddings_is_caught():
    """Keras is run on JAX in a process of its own (one backend per process)."""
    codes = _keras_plant_codes(["circle_ignores_ref_embeddings", "circle_detaches_ref_embeddings"], 100)
    ignored, detached = codes["circle_ignores_ref_embeddings"], codes["circle_detaches_ref_embeddings"]
    # ignored: a crash (X001) where M != N, a wrong value where M == N (with 60 examples the first wrong
    # value drawn held a float32 subnormal, in the scope of KERAS_FLUSHES_SUBNORMALS: an xfail)
    assert ignored["value"][0] == "fail" and ignored["value"][1][0] in "XV", ignored
    assert ignored["gradient"][0] == "fail", ignored
    # detached: the value is right, the gradient with respect to ref_embeddings is 0 (G003)
    assert detached["value"][0] == "pass" and detached["gradient"] == ["fail", "G003"], detached
