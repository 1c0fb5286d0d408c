"""Finite-difference cases for reference/sequence.py (CTC)."""
import numpy as np

from losscheck.reference import sequence as Q

from .fd import OracleCase


def _labels(rng, b, s, c, blank, repeats=True):
    nonblank = np.array([k for k in range(c) if k != blank])
    lab = rng.choice(nonblank, size=(b, s))
    if repeats and rng.random() < 0.5:
        lab[:, 1:] = lab[:, :1]
    return lab


def _feasible_lengths(rng, lab, t_lens):
    """Label lengths whose alignment fits in ``t_lens`` frames (a blank between repeats)."""
    out = []
    for row, t in zip(lab, t_lens):
        n = int(rng.integers(0, len(row) + 1))
        while n and n + int(np.sum(row[1:n] == row[: n - 1])) > t:
            n -= 1
        out.append(n)
    return np.array(out)


def _log_probs(rng, shape):
    x = rng.normal(size=shape) * 1.5
    return x - np.log(np.sum(np.exp(x), axis=-1, keepdims=True))


def _torch(rng, impossible=False):
    t, n, c, s = int(rng.integers(1, 7)), int(rng.integers(1, 4)), int(rng.integers(2, 5)), int(rng.integers(1, 4))
    blank = int(rng.integers(0, c))
    lab = _labels(rng, n, s, c, blank)
    il = rng.integers(0 if impossible else 1, t + 1, size=n)
    tl = rng.integers(0, s + 1, size=n) if impossible else _feasible_lengths(rng, lab, il)
    kw = dict(blank=blank, reduction=["none", "sum", "mean"][rng.integers(3)], zero_infinity=bool(impossible))
    form = rng.integers(3)
    targets = lab
    if form == 1 and tl.sum():
        targets = np.concatenate([lab[b, : tl[b]] for b in range(n)])
    lp = _log_probs(rng, (t, n, c))
    if form == 2:  # unbatched
        lp, targets, il, tl = lp[:, 0], lab[0], il[0], tl[0]
    return {"log_probs": lp}, dict(targets=targets, input_lengths=il, target_lengths=tl, **kw)


def _torch_batch(rng):
    """Several sequences of different label and input lengths in one batch (the oracle runs them
    together, on lattices padded to the longest), empty label rows and unused frames included."""
    t, n, c = int(rng.integers(3, 6)), int(rng.integers(4, 7)), int(rng.integers(2, 4))
    lab = _labels(rng, n, 3, c, 0, repeats=False)
    il = rng.integers(1, t + 1, size=n)
    tl = _feasible_lengths(rng, lab, il)
    return {"log_probs": _log_probs(rng, (t, n, c))}, dict(targets=lab, input_lengths=il, target_lengths=tl, blank=0,
                                                          reduction="none")


def _ctc(rng, lattice):
    b, t, c, s = int(rng.integers(1, 4)), int(rng.integers(1, 7)), int(rng.integers(2, 5)), int(rng.integers(1, 4))
    blank = int(rng.integers(0, c))
    lab = _labels(rng, b, s, c, blank)
    pads = (rng.random((b, t)) < 0.25).astype(float)
    lens = _feasible_lengths(rng, lab, (pads == 0).sum(axis=1))
    eps = {"graves": None, "optax": [None, -1e5, -60.0][rng.integers(3)], "tensorflow": Q.TF_LOG_0}[lattice]
    kw = dict(labels=lab, label_lengths=lens, logit_paddings=pads, blank=blank, lattice=lattice, log_epsilon=eps)
    if rng.random() < 0.5:
        kw.update(reduction="sum_over_batch_size")
    return {"logits": rng.normal(size=(b, t, c)) * 2.0}, kw


def _optax_impossible(rng):
    """No alignment: optax's loss is finite (log_epsilon penalties) and smooth."""
    b, t, c = int(rng.integers(1, 3)), int(rng.integers(1, 4)), int(rng.integers(3, 6))
    lab = _labels(rng, b, t + 1, c, 0)
    return {"logits": rng.normal(size=(b, t, c))}, dict(logit_paddings=np.zeros((b, t)), labels=lab,
                                                         label_paddings=np.zeros(lab.shape), log_epsilon=-60.0)


def _keras(rng):
    b, t, c, s = int(rng.integers(1, 4)), int(rng.integers(1, 7)), int(rng.integers(2, 5)), int(rng.integers(1, 4))
    lab = _labels(rng, b, s, c, 0)
    lens = _feasible_lengths(rng, lab, np.full(b, t))
    lab = np.where(np.arange(s)[None] < lens[:, None], lab, 0)
    lattice = ["graves", "optax", "tensorflow"][rng.integers(3)]
    eps = {"graves": None, "optax": -1e5, "tensorflow": Q.TF_LOG_0}[lattice]
    return {"y_pred": rng.normal(size=(b, t, c)) * 2.0}, dict(y_true=lab, lattice=lattice, log_epsilon=eps,
                                                              reduction=["none", "sum", "mean"][rng.integers(3)])


def _forward_probs(rng):
    b, t, c, s = int(rng.integers(1, 3)), int(rng.integers(1, 5)), int(rng.integers(2, 4)), int(rng.integers(1, 3))
    blank = int(rng.integers(0, c))
    lab = _labels(rng, b, s, c, blank)
    pads = (rng.random((b, t)) < 0.25).astype(float)
    lens = _feasible_lengths(rng, lab, np.full(b, t))
    lpad = (np.arange(s)[None] >= lens[:, None]).astype(float)
    # log_epsilon = -30: unreachable states hold values of tens, not 1e5 (finite differences of
    # outputs of size 1e5 lose 10 digits)
    return {"logits": rng.normal(size=(b, t, c))}, dict(logit_paddings=pads, labels=lab, label_paddings=lpad,
                                                         blank_id=blank, log_epsilon=-30.0)


def _optax_loss(rng):
    inputs, kw = _forward_probs(rng)
    kw["log_epsilon"] = [None, -1e5][rng.integers(2)]
    return inputs, kw


CASES = [
    OracleCase("ctc_torch", Q.torch_ctc_loss, _torch, draws=10),
    OracleCase("ctc_torch_zero_infinity", Q.torch_ctc_loss, lambda rng: _torch(rng, impossible=True), draws=8),
    OracleCase("ctc_torch_batch", Q.torch_ctc_loss, _torch_batch, draws=3),
    OracleCase("ctc_graves", Q.ctc_loss, lambda rng: _ctc(rng, "graves")),
    OracleCase("ctc_optax_lattice", Q.ctc_loss, lambda rng: _ctc(rng, "optax")),
    OracleCase("ctc_tensorflow_lattice", Q.ctc_loss, lambda rng: _ctc(rng, "tensorflow")),
    OracleCase("ctc_optax_impossible", Q.optax_ctc_loss, _optax_impossible),
    OracleCase("ctc_optax_loss", Q.optax_ctc_loss, _optax_loss),
    OracleCase("ctc_optax_forward_probs", Q.optax_ctc_loss_with_forward_probs, _forward_probs),
    OracleCase("ctc_keras", Q.keras_ctc, _keras),
]
