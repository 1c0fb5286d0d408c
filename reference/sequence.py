"""Sequence losses: connectionist temporal classification (CTC, Graves et al. 2006).

The loss of one sequence is ``-log sum over alignments pi of prod_t p_t(pi_t)``: the alignments
of ``T`` frames that collapse (merge repeats, then drop blanks) to the label sequence. It is
computed in float64 log space by a forward recursion over a lattice of states (one per position
in the blank-extended label sequence) and differentiated exactly by the reverse sweep of that
recursion, which for the loss alone is the alpha-beta forward-backward: the gradient w.r.t. the
log-probability of class ``c`` at frame ``t`` is minus the posterior probability that an
alignment emits ``c`` at ``t``. An impossible alignment (the labels need more frames than there
are, counting a blank between repeated labels) gives ``inf``.

Frameworks write ``log 0`` differently, and that shows exactly where no alignment exists; the
``lattice`` parameter selects the recursion a framework runs, with ``log_epsilon`` standing in for
``log 0`` (``None``: the exact ``-inf``):

* ``"graves"`` -- states blank, l1, blank, ..., lL, blank; exact. torch ``F.ctc_loss``
  (aten/src/ATen/native/LossCTC.cpp) and Keras on the torch backend (which calls it).
* ``"optax"`` -- optax/losses/_classification.py ``ctc_loss_with_forward_probs``: states
  ``phi[0..N]`` (blank after n labels) and ``emit[0..N-1]``, initial weights ``0`` at ``phi[0]``
  and ``log_epsilon`` elsewhere, the skip between repeated labels penalised by ``log_epsilon``
  instead of removed. optax's default ``log_epsilon`` is ``-1e5``; Keras on the jax backend
  (keras/src/backend/jax/nn.py ``ctc_loss``, a copy of optax) uses ``-1e5`` too. Impossible
  alignments then cost about ``1e5`` per missing transition instead of ``inf``.
* ``"tensorflow"`` -- tf.nn.ctc_loss with dense labels (tensorflow/python/ops/ctc_ops.py
  ``ctc_loss_dense``, what Keras' TensorFlow backend calls): a start state, label states and
  blank states over the whole padded label row, initial and final weights
  ``log_0 = float32(log(1e-307)) = -706.893...`` instead of ``-inf`` (transitions use exact
  ``log 0``). Impossible alignments cost about 707 per penalty.

With a finite ``log_epsilon`` the possible alignments give the exact loss (the penalised paths
weigh ``exp(-707)`` or less relative to them); the impossible ones give the framework's finite
value and its gradient, the posterior over the least-penalised paths.

Error model: the value's ``scale`` is ``|loss|`` plus the expected (under the path posterior)
sum of the magnitudes of a path's summands (log-probabilities, or logits, log-normalisers and 1
per frame for the rounded sum inside log_softmax's log, and penalties): rounding in a log-space
recursion is relative to those (jax's log_softmax of [-6, 0] is off by 1 ulp of 1, 45 ulps of the
loss 2.5e-3). A gradient element is a
posterior ``exp(alpha + beta - Z)`` computed from quantities of that size, so its error is
relative to ``1 + scale`` of the output it belongs to: ``grad_scale`` weights each output's
cotangent by that factor. Penalised paths therefore carry absolute errors of ``eps * 1e5`` in
optax, as they should.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._core import Result, f64, finish, log_softmax, logsumexp, softmax

NEG_INF = -np.inf
#: TensorFlow's stand-in for log 0 in ctc_loss_dense (ctc_ops.py ``ctc_state_log_probs``).
TF_LOG_0 = float(np.float32(np.log(1e-307)))
LATTICES = ("graves", "optax", "tensorflow")


# ---- the lattice and its forward / reverse sweeps ----------------------------------------------

@dataclass(frozen=True)
class _Lattice:
    """``init`` (S,) log weights before the first frame; ``trans`` (S, S) log weights
    ``[from, to]``; ``cls`` (S,) the class a state emits (-1: none, log-prob -inf); ``final`` (S,)
    log weights after the last frame."""
    init: np.ndarray
    trans: np.ndarray
    cls: np.ndarray
    final: np.ndarray
    value_init: np.ndarray | None = None  # initial weights of the value, when they differ


def _graves_lattice(labels, blank):
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    s = 2 * n + 1
    cls = np.full(s, blank, dtype=np.int64)
    cls[1::2] = labels
    trans = np.full((s, s), NEG_INF)
    idx = np.arange(s)
    trans[idx, idx] = 0.0
    trans[idx[:-1], idx[:-1] + 1] = 0.0
    for k in range(1, n):  # label k-1 -> label k, skipping the blank, unless they repeat
        if labels[k] != labels[k - 1]:
            trans[2 * k - 1, 2 * k + 1] = 0.0
    init = np.full(s, NEG_INF)
    init[0] = 0.0  # a virtual blank before the first frame: it may stay blank or emit label 1
    final = np.full(s, NEG_INF)
    final[-1] = 0.0
    if n:
        final[-2] = 0.0
    return _Lattice(init, trans, cls, final)


def _optax_lattice(labels, length, blank, log_eps):
    """States ``phi[n]`` = n (n = 0..N) and ``emit[n]`` = N + 1 + n over the full padded row."""
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    s = 2 * n + 1
    phi, emit = np.arange(n + 1), n + 1 + np.arange(n)
    rep = np.zeros(n, dtype=bool)
    rep[:-1] = labels[:-1] == labels[1:]
    cls = np.concatenate([np.full(n + 1, blank), labels]).astype(np.int64)
    trans = np.full((s, s), NEG_INF)
    trans[phi, phi] = 0.0
    trans[emit, emit] = 0.0
    trans[phi[:-1], emit] = 0.0
    # emit[k] -> phi[k+1]: through the epsilon transition (penalised after a repeat) and directly
    # (penalised before a non-repeat), log(e^0 + e^eps) whichever applies
    trans[emit, phi[1:]] = np.logaddexp(0.0, log_eps)
    trans[emit[:-1], emit[1:]] = np.where(rep[:-1], log_eps, 0.0)
    init = np.full(s, log_eps)
    init[0] = 0.0
    final = np.full(s, NEG_INF)
    final[phi[length]] = 0.0
    if length:
        final[emit[length - 1]] = 0.0
    return _Lattice(init, trans, cls, final)


def _tf_lattice(labels, length, blank, log_0):
    """State 0 starts (emits nothing), 1..N are the labels, N + 1 + l the blank after l labels."""
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    s = 2 * n + 2
    lab, blk = np.arange(n + 1), n + 1 + np.arange(n + 1)   # lab[0] is the start state
    cls = np.concatenate([[-1], labels, np.full(n + 1, blank)]).astype(np.int64)
    trans = np.full((s, s), NEG_INF)
    trans[np.arange(s), np.arange(s)] = 0.0
    trans[0, 1 if n else blk[0]] = 0.0
    trans[lab, blk] = 0.0                  # label l -> blank l (and start -> blank 0)
    trans[blk[:-1], lab[1:]] = 0.0         # blank l -> label l + 1
    for k in range(1, n):                  # label k -> label k + 1 unless they repeat
        if labels[k - 1] != labels[k]:
            trans[k, k + 1] = 0.0
    # ctc_loss_and_grad: the posteriors (the gradient) come from a forward pass started from
    # ``init`` (log_0 off the start state) and a backward pass ended by ``final``; the likelihood
    # is the backward pass's value at the start state alone (``bwd[0, :, 0]``). Where no
    # alignment exists the two disagree and the gradient is not the derivative of the value.
    init = np.full(s, log_0)
    init[0] = 0.0
    value_init = np.full(s, NEG_INF)
    value_init[0] = 0.0
    final = np.full(s, log_0)
    final[lab[length]] = 0.0
    final[blk[length]] = 0.0
    return _Lattice(init, trans, cls, final, value_init)


def _softmax_from(z, pre):
    """exp(z - pre) with 0 where ``pre`` is -inf (an unreachable state)."""
    with np.errstate(invalid="ignore", over="ignore"):
        w = np.exp(z - pre)
    return np.where(np.isfinite(pre) & np.isfinite(z), w, 0.0)


class _Sweep:
    """Forward recursion of one sequence over ``lat``; ``lp`` (T, C) log-probabilities, ``lp_mag``
    (T, C) the magnitude of their summands, ``active`` (T,) the frames used (others are skipped:
    the state carries over)."""

    def __init__(self, lat: _Lattice, lp, lp_mag, active):
        self.lat, self.active = lat, np.asarray(active, dtype=bool)
        has = lat.cls >= 0
        safe = np.where(has, lat.cls, 0)
        self.em = np.where(has, lp[:, safe], NEG_INF)
        self.em_mag = np.where(has, lp_mag[:, safe], 0.0)
        self.alpha, self.mag, self.weights, self.logz, self.wf, self.z_mag = self._forward(lat.init)
        if lat.value_init is not None:  # the value starts elsewhere than the posteriors (TensorFlow)
            *_, self.logz, _, self.z_mag = self._forward(lat.value_init)
        # relative error of the gradient: posteriors are exp of differences of numbers this large
        self.gfac = 1.0 + self.z_mag if np.isfinite(self.z_mag) else 1.0

    def _forward(self, init):
        lat = self.lat
        t_len, s = self.em.shape
        tr_mag = np.where(np.isfinite(lat.trans), np.abs(lat.trans), 0.0)
        a = init.copy()
        m = np.where(np.isfinite(a), np.abs(a), 0.0)
        alpha, mag = np.empty((t_len, s)), np.empty((t_len, s))
        weights = [None] * t_len
        with np.errstate(invalid="ignore"):
            for t in range(t_len):
                if self.active[t]:
                    z = a[:, None] + lat.trans
                    pre = logsumexp(z, axis=0)
                    w = _softmax_from(z, pre[None, :])
                    m = np.sum(w * (m[:, None] + tr_mag), axis=0) + self.em_mag[t]
                    a = pre + self.em[t]
                    weights[t] = w
                alpha[t], mag[t] = a, m
            zf = a + lat.final
            logz = float(logsumexp(zf))
            wf = _softmax_from(zf, logz)
            fin_mag = np.where(np.isfinite(lat.final), np.abs(lat.final), 0.0)
            z_mag = abs(logz) + float(np.sum(wf * (m + fin_mag)))
        return alpha, mag, weights, logz, wf, z_mag

    def vjp(self, cot_z, cot_alpha=None, n_classes=None):
        """d<cot, outputs>/d lp (T, C) for the outputs ``logz`` (cotangent ``cot_z``) and ``alpha``
        (``cot_alpha`` (T, S)): the reverse sweep of the forward recursion. Its weights are
        non-negative, so |cotangents| in give the magnitudes of the gradient's summands."""
        t_len, s = self.alpha.shape
        if not np.isfinite(self.logz) and cot_z != 0:
            # no alignment: the loss is infinite and its gradient undefined on every used frame
            return np.where(self.active[:, None], np.nan, 0.0) * np.ones((1, n_classes))
        adj = cot_z * self.wf if np.isfinite(self.logz) else np.zeros(s)
        g_em = np.zeros((t_len, s))
        for t in range(t_len - 1, -1, -1):
            if cot_alpha is not None:
                adj = adj + cot_alpha[t]
            if self.active[t]:
                g_em[t] = adj
                adj = self.weights[t] @ adj
        g = np.zeros((t_len, n_classes))
        has = self.lat.cls >= 0
        for k in np.flatnonzero(has):
            g[:, self.lat.cls[k]] += g_em[:, k]
        return g


# ---- the loss on logits, batch-major (Keras, optax) --------------------------------------------

def _batch_sweeps(logits, labels, label_lengths, active, blank, lattice, log_epsilon):
    x = f64(logits)
    labels = np.asarray(labels).astype(np.int64)
    if lattice not in LATTICES:
        raise ValueError(f"lattice must be one of {LATTICES}, got {lattice!r}")
    eps = NEG_INF if log_epsilon is None else float(log_epsilon)
    with np.errstate(invalid="ignore"):
        lp = log_softmax(x, axis=-1)
        # summands of x - lse, and 1 for lse = max + log(sum(exp(x - max))): the sum, at least 1,
        # is rounded, an absolute error of eps in the log whatever the loss
        lp_mag = np.abs(x) + np.abs(logsumexp(x, axis=-1, keepdims=True)) + 1.0
    sweeps = []
    for b in range(x.shape[0]):
        n_b = int(label_lengths[b])
        if lattice == "graves":
            lat = _graves_lattice(labels[b, :n_b], blank)
        elif lattice == "optax":
            lat = _optax_lattice(labels[b], n_b, blank, eps)
        else:
            lat = _tf_lattice(labels[b], n_b, blank, eps)
        sweeps.append(_Sweep(lat, lp[b], lp_mag[b], active[b]))
    return x, sweeps


def _logits_result(x, sweeps, name, reduction, reduce_kw):
    """Per-sequence losses ``-logz`` with the gradient through log_softmax, reduced."""
    terms = np.array([-s.logz for s in sweeps])
    scale = np.array([s.z_mag for s in sweeps])
    n_classes = x.shape[-1]
    p = softmax(x, axis=-1)

    def back_logits(g_lp, magnitude):
        """Through log_softmax: g - p sum(g) (or its summands' magnitudes)."""
        tot = np.sum(np.abs(g_lp) if magnitude else g_lp, axis=-1, keepdims=True)
        return np.abs(g_lp) + p * tot if magnitude else g_lp - p * tot

    def local_vjp(g):
        g = np.broadcast_to(np.asarray(g, dtype=np.float64), terms.shape)
        g_lp = np.stack([s.vjp(-g[b], n_classes=n_classes) for b, s in enumerate(sweeps)])
        with np.errstate(invalid="ignore"):
            return {name: back_logits(g_lp, False)}

    def local_gscale(g):
        g = np.broadcast_to(np.abs(np.asarray(g, dtype=np.float64)), terms.shape)
        g_lp = np.stack([np.abs(s.vjp(g[b] * s.gfac, n_classes=n_classes))
                         for b, s in enumerate(sweeps)])
        with np.errstate(invalid="ignore"):
            return {name: back_logits(g_lp, True)}

    return finish(terms, scale, local_vjp, reduction, local_grad_scale=local_gscale, **reduce_kw)


def ctc_loss(logits, labels, label_lengths=None, logit_paddings=None, *, blank: int = 0, lattice: str = "graves",
             log_epsilon=None, reduction: str = "none", **reduce_kw) -> Result:
    """CTC loss of each sequence, on logits (normalised here by log_softmax over the class axis).

    Shapes: ``logits`` (B, T, C); ``labels`` (B, S) integer labels, right-padded (the values past
    a row's length are ignored by ``"graves"`` and used, as the frameworks do, by the other
    lattices' unreachable states); ``label_lengths`` (B,) (default S); ``logit_paddings`` (B, T),
    1 marks a frame that is skipped (default none). Labels must not be ``blank``. Value (B,) before
    ``reduce_kw``; gradient w.r.t. ``logits``. ``lattice`` / ``log_epsilon``: see the module doc.
    """
    x = f64(logits)
    lab = np.asarray(labels)
    lens = np.full(x.shape[0], lab.shape[1]) if label_lengths is None else np.asarray(label_lengths)
    pads = np.zeros(x.shape[:2]) if logit_paddings is None else f64(logit_paddings)
    if lattice == "graves" and log_epsilon is not None:
        raise ValueError("the graves lattice is exact: log_epsilon applies to 'optax' and 'tensorflow'")
    x, sweeps = _batch_sweeps(x, lab, lens, pads == 0, blank, lattice, log_epsilon)
    return _logits_result(x, sweeps, "logits", reduction, reduce_kw)


def keras_ctc(y_true, y_pred, *, lattice: str = "graves", log_epsilon=None, reduction: str = "none",
              **reduce_kw) -> Result:
    """Keras ``keras.losses.ctc`` / ``CTC`` (keras/src/losses/losses.py ``ctc``): ``y_true`` (B, S)
    labels padded with 0, ``y_pred`` (B, T, C) logits. Blank (``mask_index``) is 0; a row's label
    length is its number of non-zero entries (the first that many labels are used); every frame
    is used. The backends differ only where no alignment exists: torch (``"graves"``) gives inf
    with a NaN gradient, jax ``lattice="optax", log_epsilon=-1e5``, TensorFlow
    ``lattice="tensorflow", log_epsilon=TF_LOG_0``. Gradient w.r.t. ``y_pred``."""
    lab = np.asarray(y_true).astype(np.int64)
    lens = np.sum(lab != 0, axis=-1)
    x = f64(y_pred)
    if lattice == "graves" and log_epsilon is not None:
        raise ValueError("the graves lattice is exact: log_epsilon applies to 'optax' and 'tensorflow'")
    x, sweeps = _batch_sweeps(x, lab, lens, np.ones(x.shape[:2], bool), 0, lattice, log_epsilon)
    return _logits_result(x, sweeps, "y_pred", reduction, reduce_kw)


def _optax_lengths(labels, label_paddings):
    lab = np.asarray(labels).astype(np.int64)
    lens = lab.shape[1] - np.sum(f64(label_paddings), axis=1).astype(np.int64)
    return lab, lens


def optax_ctc_loss(logits, logit_paddings, labels, label_paddings, *, blank_id: int = 0, log_epsilon=None,
                   reduction: str = "none", **reduce_kw) -> Result:
    """optax ``ctc_loss(logits, logit_paddings, labels, label_paddings, blank_id, log_epsilon)``
    (optax/losses/_classification.py): (B,) per-sequence losses. ``logits`` (B, T, K);
    ``logit_paddings`` (B, T) with 1.0 on skipped frames (any pattern: a padded frame carries the
    recursion over); ``labels`` (B, N) right-padded, ``label_paddings`` (B, N) 1.0 on padding.
    Bind ``log_epsilon=-1e5`` (optax's default) for optax; ``None`` is the exact loss."""
    lab, lens = _optax_lengths(labels, label_paddings)
    x, sweeps = _batch_sweeps(logits, lab, lens, f64(logit_paddings) == 0, blank_id, "optax", log_epsilon)
    return _logits_result(x, sweeps, "logits", reduction, reduce_kw)


def optax_ctc_loss_with_forward_probs(logits, logit_paddings, labels, label_paddings, *, blank_id: int = 0,
                                      log_epsilon=None) -> Result:
    """optax ``ctc_loss_with_forward_probs``: its three outputs ``(loss (B,), logalpha_blank
    (T, B, N+1), logalpha_nonblank (T, B, N))``, flattened (C order) and concatenated into one
    vector, as ``jnp.concatenate([a.ravel() for a in outputs])`` gives.

    ``logalpha_blank[t, b, n]`` is the forward log-weight of the state ``phi[n]`` (n labels
    emitted, frame t blank) and ``logalpha_nonblank[t, b, n]`` of ``emit[n]`` (frame t emits label
    n), over the whole padded label row; the last frame's blank row has the final epsilon
    transition added (``phi[n] <- logaddexp(phi[n], emit[n-1])``). A padded frame repeats the
    previous frame's values (before the first frame: the initial weights). States no alignment
    reaches hold ``log_epsilon``-sized values (``None`` gives -inf there). Gradient w.r.t.
    ``logits`` of any cotangent on the concatenation.
    """
    lab, lens = _optax_lengths(labels, label_paddings)
    x, sweeps = _batch_sweeps(logits, lab, lens, f64(logit_paddings) == 0, blank_id, "optax", log_epsilon)
    bsz, t_len, n_classes = x.shape
    n = lab.shape[1]
    n_loss, n_phi = bsz, t_len * bsz * (n + 1)
    p = softmax(x, axis=-1)

    def split(sw):
        """(phi (T, N+1), emit (T, N)) outputs of one sequence, and their scales."""
        a, m = sw.alpha, sw.mag
        phi, emit = a[:, : n + 1].copy(), a[:, n + 1:]
        phi_m, emit_m = m[:, : n + 1].copy(), m[:, n + 1:]
        last = np.logaddexp(phi[-1, 1:], emit[-1])
        with np.errstate(invalid="ignore"):
            w = _softmax_from(np.stack([phi[-1, 1:], emit[-1]]), last[None, :])
        phi_m[-1, 1:] = np.abs(last) + w[0] * phi_m[-1, 1:] + w[1] * emit_m[-1]
        phi[-1, 1:] = last
        return phi, emit, np.abs(phi) + phi_m, np.abs(emit) + emit_m

    parts = [split(sw) for sw in sweeps]
    phi = np.stack([q[0] for q in parts], axis=1)
    emit = np.stack([q[1] for q in parts], axis=1)
    value = np.concatenate([[-sw.logz for sw in sweeps], phi.ravel(), emit.ravel()])
    scale = np.concatenate([[sw.z_mag for sw in sweeps], np.stack([q[2] for q in parts], 1).ravel(),
                            np.stack([q[3] for q in parts], 1).ravel()])
    scale = np.where(np.isfinite(scale), scale, np.abs(value))

    def unpack(cot):
        cot = np.broadcast_to(np.asarray(cot, dtype=np.float64), value.shape)
        c_loss = cot[:n_loss]
        c_phi = cot[n_loss:n_loss + n_phi].reshape(t_len, bsz, n + 1)
        c_emit = cot[n_loss + n_phi:].reshape(t_len, bsz, n)
        return c_loss, c_phi, c_emit

    def alpha_cot(sw, b, c_phi, c_emit):
        """Cotangent of the sweep's alphas: the outputs are alphas except the last blank row,
        logaddexp(phi, emit) there, whose cotangent splits by the softmax of the two."""
        ca = np.concatenate([c_phi[:, b], c_emit[:, b]], axis=1)
        a = sw.alpha
        last = np.logaddexp(a[-1, 1: n + 1], a[-1, n + 1:])
        w = _softmax_from(np.stack([a[-1, 1: n + 1], a[-1, n + 1:]]), last[None, :])
        ca[-1, 1: n + 1] = c_phi[-1, b, 1:] * w[0]
        ca[-1, n + 1:] += c_phi[-1, b, 1:] * w[1]
        return ca

    def vjp(cot):
        c_loss, c_phi, c_emit = unpack(cot)
        g_lp = np.stack([sw.vjp(-c_loss[b], alpha_cot(sw, b, c_phi, c_emit), n_classes)
                         for b, sw in enumerate(sweeps)])
        return {"logits": g_lp - p * np.sum(g_lp, axis=-1, keepdims=True)}

    def gscale(cot):
        c_loss, c_phi, c_emit = unpack(np.abs(cot) * (1.0 + scale))
        g_lp = np.stack([np.abs(sw.vjp(c_loss[b], np.abs(alpha_cot(sw, b, c_phi, c_emit)), n_classes))
                         for b, sw in enumerate(sweeps)])
        return {"logits": g_lp + p * np.sum(g_lp, axis=-1, keepdims=True)}

    return Result(value=value, scale=scale, vjp=vjp, grad_scale=gscale)


# ---- torch ---------------------------------------------------------------------------------------

def torch_ctc_loss(log_probs, targets, input_lengths, target_lengths, *, blank: int = 0, reduction: str = "mean",
                   zero_infinity: bool = False, log_softmax_grad: bool = False) -> Result:
    """torch ``nn.CTCLoss`` / ``F.ctc_loss`` (aten/src/ATen/native/LossCTC.cpp, CPU), in full.

    Shapes: ``log_probs`` (T, N, C), or (T, C) unbatched; ``targets`` (N, S) padded, or 1-D: the
    concatenated targets (``sum(target_lengths)`` long), or (S,) unbatched; ``input_lengths``,
    ``target_lengths`` (N,) or 0-d. ``log_probs`` are used as given (torch documents them as
    log_softmax outputs; nothing is normalised). Frames at or past a sequence's input length are
    ignored. Reductions (torch's own, no ``reduce_kw``): ``none`` (N,), ``sum``, ``mean``: each
    loss divided by its target length clamped to >= 1, then the mean over the batch.
    ``zero_infinity``: infinite losses (impossible alignments) and their gradients become 0.
    Without it an infinite loss has an undefined (NaN) gradient, as in torch.

    Gradient w.r.t. ``log_probs``: the exact derivative is ``-posterior`` (the probability that an
    alignment emits class c at frame t). torch's kernel instead returns ``exp(log_probs) * G -
    posterior * G`` (G the cotangent of the sequence's loss, frames before the input length): the
    gradient w.r.t. logits of ``loss(log_softmax(logits))`` at ``logits = log_probs``, i.e. it
    assumes a log_softmax feeds it. For normalised rows the extra term is orthogonal to what the
    log_softmax backward keeps, so the gradient reaching the logits is exact.
    ``log_softmax_grad=True`` returns that convention, ``False`` the exact derivative.
    """
    lp = f64(log_probs)
    unbatched = lp.ndim == 2
    if unbatched:
        lp = lp[:, None, :]
    t_len, bsz, n_classes = lp.shape
    il = np.asarray(input_lengths).astype(np.int64).reshape(-1)
    tl = np.asarray(target_lengths).astype(np.int64).reshape(-1)
    tg = np.asarray(targets).astype(np.int64)
    if unbatched:
        tg = tg.reshape(1, -1)
    if tg.ndim == 1:
        offsets = np.concatenate([[0], np.cumsum(tl)])
        rows = [tg[offsets[b]:offsets[b + 1]] for b in range(bsz)]
    else:
        rows = [tg[b, : tl[b]] for b in range(bsz)]
    lpb = np.moveaxis(lp, 1, 0)  # (N, T, C)
    sweeps = [_Sweep(_graves_lattice(rows[b], blank), lpb[b], np.abs(lpb[b]), np.arange(t_len) < il[b])
              for b in range(bsz)]
    raw = np.array([-s.logz for s in sweeps])
    zeroed = np.isinf(raw) & zero_infinity
    terms = np.where(zeroed, 0.0, raw)
    scale = np.where(zeroed, 0.0, [s.z_mag for s in sweeps])
    active = (np.arange(t_len)[None, :] < il[:, None])[..., None]  # (N, T, 1)
    expl = np.exp(lpb)

    def per_seq(g, magnitude=False):
        g = np.where(zeroed, 0.0, np.broadcast_to(np.asarray(g, dtype=np.float64), raw.shape))
        if magnitude:
            g_lp = np.stack([np.abs(s.vjp(abs(g[b]) * s.gfac, n_classes=n_classes))
                             for b, s in enumerate(sweeps)])
        else:
            g_lp = np.stack([s.vjp(-g[b], n_classes=n_classes) for b, s in enumerate(sweeps)])
        if log_softmax_grad:
            extra = np.where(active, expl * np.abs(g)[:, None, None] if magnitude else expl * g[:, None, None], 0.0)
            g_lp = g_lp + extra
        out = np.moveaxis(g_lp, 0, 1)
        return out[:, 0] if unbatched else out

    if reduction not in ("none", "sum", "mean"):
        raise ValueError(f"torch reduction must be 'none', 'sum' or 'mean', got {reduction!r}")
    if unbatched and reduction == "none":
        terms, scale = terms[0], scale[0]
    weights = None
    if reduction == "mean":
        weights = 1.0 / np.maximum(tl, 1)
    res = finish(terms, scale, lambda g: {"log_probs": per_seq(np.reshape(g, -1))}, reduction,
                 local_grad_scale=lambda g: {"log_probs": per_seq(np.reshape(g, -1), True)}, weights=weights)
    return res
