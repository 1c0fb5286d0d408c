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

With a finite ``log_epsilon`` the possible alignments give the exact loss up to the penalised
paths, which weigh ``exp(log_epsilon)`` relative to them (``exp(-707)`` or less at the frameworks'
defaults; optax's ``log_epsilon=-20`` adds ``e^-20`` terms, so a certain alignment's loss is
``-log1p(e^-20) < 0``); the impossible ones give the framework's finite value and its gradient, the
posterior over the least-penalised paths.

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

from ._core import Result, f64, finish, logsumexp, max_shift

NEG_INF = -np.inf
#: TensorFlow's stand-in for log 0 in ctc_loss_dense (ctc_ops.py ``ctc_state_log_probs``).
TF_LOG_0 = float(np.float32(np.log(1e-307)))
LATTICES = ("graves", "optax", "tensorflow")


# ---- the lattice and its forward / reverse sweeps ----------------------------------------------
#
# Every lattice here is banded: in the state order used below, a state is entered only from itself
# (log weight 0), from the state before it ("prev") and from the one before that ("skip"). The
# sweeps run a whole batch at once, on lattices padded to the longest row (padded states emit
# nothing and are entered from nowhere), one Python step per frame on the batch's states: O(N S)
# work per frame, not a dense (S, S) logsumexp per sequence and frame.

_LOWEST = -np.finfo(np.float64).max


@dataclass(frozen=True)
class _Lattice:
    """A batch of banded lattices, each field (N, S): ``cls`` the class a state emits (-1: none,
    log-probability -inf); ``init`` log weights before the first frame; ``prev`` / ``skip`` log
    weights of the transitions ``s-1 -> s`` / ``s-2 -> s`` (-inf: none; staying costs 0);
    ``final`` log weights after the last frame; ``value_init`` the value's initial weights where
    they differ from ``init`` (TensorFlow)."""
    cls: np.ndarray
    init: np.ndarray
    prev: np.ndarray
    skip: np.ndarray
    final: np.ndarray
    value_init: np.ndarray | None = None


def _empty(bsz, s, blank):
    """cls all ``blank``, prev 0 (but into state 0), skip and init -inf."""
    prev = np.zeros((bsz, s))
    prev[:, 0] = NEG_INF
    return np.full((bsz, s), blank, dtype=np.int64), prev, np.full((bsz, s), NEG_INF)


def _ends(shape, fill, *cols):
    """(N, S) of ``fill`` with 0 at ``(b, col[b])`` for each column array (negative: none)."""
    out = np.full(shape, fill)
    rows = np.arange(shape[0])
    for col in cols:
        ok = col >= 0
        out[rows[ok], col[ok]] = 0.0
    return out


def _graves_lattice(labels, lengths, blank):
    """States blank, l1, blank, ..., lL, blank (2 L + 1 of them) per row; ``labels`` (N, >= L)
    right-padded, row b uses its first ``lengths[b]``."""
    lengths = np.asarray(lengths, dtype=np.int64)
    bsz = len(lengths)
    width = int(lengths.max(initial=0))
    lab = np.asarray(labels, dtype=np.int64).reshape(bsz, -1)[:, :width]
    s = 2 * width + 1
    cls, prev, skip = _empty(bsz, s, blank)
    cls[:, 1::2] = lab
    skip[:, 3::2] = np.where(lab[:, 1:] != lab[:, :-1], 0.0, NEG_INF)   # label -> next label, unless a repeat
    init = _ends((bsz, s), NEG_INF, np.zeros(bsz, dtype=np.int64))   # a virtual blank before frame 0
    final = _ends((bsz, s), NEG_INF, 2 * lengths, 2 * lengths - 1)
    real = np.arange(s)[None, :] < (2 * lengths + 1)[:, None]
    cls = np.where(real, cls, -1)
    prev, skip, init = (np.where(real, a, NEG_INF) for a in (prev, skip, init))
    return _Lattice(cls, init, prev, skip, final)


def _optax_lattice(labels, lengths, blank, log_eps):
    """optax's ``phi[n]`` (n labels emitted, blank) at state 2n and ``emit[n]`` (emitting label n)
    at 2n + 1, over the whole padded row (N, n): ``phi[n] -> emit[n]`` costs 0; ``emit[n] ->
    phi[n+1]`` log(e^0 + e^eps) (the epsilon transition, penalised after a repeat, and the direct
    one, penalised before a non-repeat: whichever applies is exact); ``emit[n] -> emit[n+1]``
    ``log_eps`` between repeated labels, else 0."""
    lab = np.asarray(labels, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    bsz, n = lab.shape
    s = 2 * n + 1
    cls, prev, skip = _empty(bsz, s, blank)
    cls[:, 1::2] = lab
    prev[:, 2::2] = np.logaddexp(0.0, log_eps)
    skip[:, 3::2] = np.where(lab[:, 1:] == lab[:, :-1], log_eps, 0.0)
    init = np.full((bsz, s), log_eps)
    init[:, 0] = 0.0
    final = _ends((bsz, s), NEG_INF, 2 * lengths, 2 * lengths - 1)
    return _Lattice(cls, init, prev, skip, final)


def _tf_lattice(labels, lengths, blank, log_0):
    """TensorFlow's label state l (state 0 the start, which emits nothing) at 2l and its blank
    state l (after l labels) at 2l + 1, over the whole padded row (N, n)."""
    lab = np.asarray(labels, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    bsz, n = lab.shape
    s = 2 * n + 2
    cls, prev, skip = _empty(bsz, s, blank)
    cls[:, 0] = -1
    cls[:, 2::2] = lab
    if n:
        skip[:, 2] = 0.0                                                  # start -> label 1
    skip[:, 4::2] = np.where(lab[:, :-1] != lab[:, 1:], 0.0, NEG_INF)     # label -> next, unless a repeat
    # ctc_loss_and_grad: the posteriors (the gradient) come from a forward pass started from
    # ``init`` (log_0 off the start state) and a backward pass ended by ``final``; the likelihood
    # is the backward pass's value at the start state alone (``bwd[0, :, 0]``). Where no
    # alignment exists the two disagree and the gradient is not the derivative of the value.
    start = np.zeros(bsz, dtype=np.int64)
    init = _ends((bsz, s), log_0, start)
    value_init = _ends((bsz, s), NEG_INF, start)
    final = _ends((bsz, s), log_0, 2 * lengths, 2 * lengths + 1)
    return _Lattice(cls, init, prev, skip, final, value_init)


def _softmax_from(z, pre):
    """exp(z - pre) with 0 where ``pre`` is -inf (an unreachable state)."""
    with np.errstate(invalid="ignore", over="ignore"):
        w = np.exp(z - pre)
    return np.where(np.isfinite(pre) & np.isfinite(z), w, 0.0)


def _finite_abs(a):
    return np.where(np.isfinite(a), np.abs(a), 0.0)


def _windows(a):
    """(T, P) -> read-only (T, 3, P - 2) view: ``[t, k, p] = a[t, p + k]``, the (skip, prev, stay)
    predecessors of position p + 2."""
    return np.lib.stride_tricks.as_strided(a, (a.shape[0], 3, a.shape[1] - 2), (a.strides[0],) + a.strides[1:] * 2,
                                           writeable=False)


class _Sweeps:
    """Forward recursion of a batch of sequences over ``lat``, time-major: ``lp`` (T, N, C)
    log-probabilities, ``lp_mag`` (T, N, C) the magnitude of their summands, ``active`` (T, N) the
    frames used (on the others every state carries over unchanged).

    After construction: ``alpha`` (T, N, S) the forward log weights after each frame, ``logz``,
    ``z_mag``, ``gfac`` (N,) the log-likelihood, its error scale (the expected, under the path
    posterior, sum of the magnitudes of a path's summands, plus ``|logz|``) and the gradient's
    relative error factor; with ``frame_mags``, ``mag`` (T, N, S): that expected sum for the paths
    ending in each state after each frame (the forward recursion of magnitudes). Without it,
    ``z_mag`` is the same sum computed from the posteriors (it is linear in the path weights, so the
    reverse sweep that gives the gradient gives it too).

    Layout: the batch's lattices lie end to end, each after two dead states (entered from nowhere,
    emitting nothing), so that the predecessors (skip, prev, stay) of position p are p-2, p-1 and p
    in one flat (P,) = (N (S + 2),) vector per frame; the first two (dead) positions are left out of
    the arrays that hold one value per position (P - 2 of them).
    """

    def __init__(self, lat: _Lattice, lp, lp_mag, active, frame_mags=False):
        t_len, bsz, n_classes = lp.shape
        s = lat.cls.shape[1]
        self.lat, self.n_classes, self.shape = lat, n_classes, (t_len, bsz, s)
        self.active = act = np.asarray(active, dtype=bool)
        idle = ~np.repeat(act, s + 2, axis=1)[:, 2:]
        self._idle, self._partly = idle, list(idle.any(axis=1))
        # flat index (T, N, S) of each state's log-probability in lp; a state that emits nothing
        # indexes an appended -inf, an unused frame an appended 0 (its states carry over instead)
        size = t_len * bsz * n_classes
        base = (np.arange(t_len)[:, None] * bsz + np.arange(bsz)[None, :])[:, :, None] * n_classes
        idx = np.where(lat.cls >= 0, base + lat.cls, size)
        idx[~act] = size + 1
        self._bins = np.minimum(idx, size).ravel()   # where each adjoint lands in (T, N, C); bin ``size`` dropped
        idx = self._flat(idx, size, lead=True)
        self.em = np.concatenate([np.ravel(lp), [NEG_INF, 0.0]])[idx[:, 2:]]
        # a state that emits log 0 has no weight, so its infinite magnitude counts for nothing
        # (0 * inf would make the scale NaN, and a NaN scale an error of 1e30 eps)
        mags = np.where(np.isfinite(lp_mag), lp_mag, 0.0)
        self._em_mag = np.concatenate([np.ravel(mags), [0.0, 0.0]])[idx]   # (T, P): with the first two
        self.em_mag = self._em_mag[:, 2:]
        zero = np.zeros((bsz, s))
        self.tr = self._flat(np.stack([lat.skip, lat.prev, zero]), NEG_INF)     # (3, P-2) into each position
        # NaN (or +inf) log-probabilities: NaN + -inf is NaN, so the dead states must be reset on
        # every frame to keep one sequence's NaN out of the next
        self._dead = self._dead_states() if not np.all(self.em < np.inf) else None
        trm = np.stack([_finite_abs(lat.skip), _finite_abs(lat.prev), zero])
        self.tr_mag = self._flat(trm, 0.0) if trm.any() else None
        self._post = self._post_cls = None
        self.alpha, self.mag, self._w, self.logz, self.wf, fwd_mag = self._forward(lat.init, frame_mags)
        if frame_mags:
            self.z_mag = fwd_mag
        else:
            self.z_mag, self._post = self._posterior_mag(self._w, self.logz, self.wf, lat.init)
        if lat.value_init is not None:  # the value starts elsewhere than the posteriors (TensorFlow)
            _, _, w, self.logz, wf, _ = self._forward(lat.value_init, False)
            self.z_mag, _ = self._posterior_mag(w, self.logz, wf, lat.value_init)
        # relative error of the gradient: posteriors are exp of differences of numbers this large
        self.gfac = np.where(np.isfinite(self.z_mag), 1.0 + self.z_mag, 1.0)

    def _flat(self, a, fill, lead=False):
        """(..., N, S) -> (..., P - 2): the flat layout, ``fill`` at the dead positions (``lead``:
        (..., P), the first two included)."""
        bsz, s = self.shape[1:]
        out = np.full(a.shape[:-2] + (bsz, s + 2), fill, dtype=a.dtype)
        out[..., 2:] = a
        out = out.reshape(a.shape[:-2] + (bsz * (s + 2),))
        return out if lead else out[..., 2:]

    def _dead_states(self):
        """(P - 2,) bool: the dead positions."""
        return self._flat(np.zeros(self.shape[1:], dtype=bool), True)

    def _unflat(self, a):
        """(..., P) -> (..., N, S): the states of each sequence (a view)."""
        bsz, s = self.shape[1:]
        return a.reshape(a.shape[:-1] + (bsz, s + 2))[..., 2:]

    def _forward(self, init, frame_mags):
        t_len, bsz, s = self.shape
        p = bsz * (s + 2)
        # alpha (and magnitudes) after frame t at [t + 1]; a window of three positions holds each
        # position's (skip, prev, stay) predecessors
        a_all = np.full((t_len + 1, p), NEG_INF)
        a_all[0, 2:] = self._flat(init, NEG_INF)
        a_pred = _windows(a_all)
        w_all = np.empty((t_len, 3, p - 2))
        tot_all = np.empty((t_len, 1, p - 2))
        mx = np.empty(p - 2)
        if frame_mags:
            m_all = np.zeros((t_len + 1, p))
            m_all[0, 2:] = self._flat(_finite_abs(init), 0.0)
            m_pred = _windows(m_all)
            q = np.empty((3, p - 2))
        tr, tr_mag = self.tr, self.tr_mag
        with np.errstate(invalid="ignore", divide="ignore"):
            for t, (w, tot, pred, new, em) in enumerate(zip(w_all, tot_all[:, 0], a_pred, a_all[1:, 2:], self.em)):
                # logsumexp over the three predecessors (the maximum floored so that all -inf
                # gives exp(-inf) = 0); w: exp(z - max), divided by the sum after the loop
                np.add(pred, tr, out=w)
                np.maximum(w[0], w[1], out=mx)
                np.maximum(mx, w[2], out=mx)
                np.maximum(mx, _LOWEST, out=mx)
                np.exp(np.subtract(w, mx, out=w), out=w)
                np.add(w[0], w[1], out=tot)
                tot += w[2]
                np.log(tot, out=new)
                new += mx
                new += em
                if self._partly[t]:   # an unused frame: every state carries over
                    np.copyto(new, a_all[t, 2:], where=self._idle[t])
                if self._dead is not None:
                    new[self._dead] = NEG_INF
                if frame_mags:   # (these need the weights now)
                    w /= np.maximum(tot, 1.0, out=tot)   # the sum is 0 (unreachable) or >= 1
                    if tr_mag is None:
                        np.multiply(m_pred[t], w, out=q)
                    else:
                        np.add(m_pred[t], tr_mag, out=q)
                        q *= w
                    m_new = m_all[t + 1, 2:]
                    np.add(q[0], q[1], out=m_new)
                    m_new += q[2]
                    m_new += self.em_mag[t]
                    if self._partly[t]:
                        np.copyto(m_new, m_all[t, 2:], where=self._idle[t])
                    if self._dead is not None:
                        m_new[self._dead] = 0.0
            if not frame_mags:
                w_all /= np.maximum(tot_all, 1.0, out=tot_all)
            alpha = self._unflat(a_all[1:])
            zf = (alpha[-1] if t_len else init) + self.lat.final
            logz = logsumexp(zf, axis=-1)
            wf = _softmax_from(zf, logz[:, None])
            z_mag, mag = None, None
            if frame_mags:
                mag = self._unflat(m_all[1:])
                m_last = mag[-1] if t_len else _finite_abs(init)
                z_mag = np.abs(logz) + np.sum(wf * (m_last + _finite_abs(self.lat.final)), axis=-1)
        if np.isnan(logz).any():   # NaN inputs: a NaN weight counts as no transition
            w_all[np.isnan(w_all)] = 0.0
        return alpha, mag, w_all, logz, wf, z_mag

    def _reverse(self, last, cot_alpha=None, w=None):
        """Adjoints (T, N, S) of the alphas after each frame, for the adjoint ``last`` (N, S) of
        the last frame's alphas plus ``cot_alpha`` (T, N, S); and (N, S) the adjoint of ``init``;
        through the weights ``w`` of a forward pass (default: the posteriors' pass)."""
        t_len, bsz, s = self.shape
        p = bsz * (s + 2)
        w = self._w if w is None else w
        h_all = np.zeros((t_len + 1, p))   # the adjoint of the alphas after frame t at [t + 1]
        h = h_all[:, 2:]
        h[-1] = self._flat(last, 0.0)
        cot = None if cot_alpha is None else self._flat(cot_alpha, 0.0)
        # a non-finite adjoint times a zero weight is NaN: reset the dead states then (see __init__)
        dead = None if np.all(np.isfinite(h[-1])) and (cot is None or np.all(np.isfinite(cot))) else self._dead_states()
        q_all = np.zeros((3, p))   # two zero columns behind
        q = q_all[:, :-2]
        for t in range(t_len - 1, -1, -1):
            if cot is not None:
                h[t + 1] += cot[t]
            # the edge p-d -> p (d = 2, 1, 0: skip, prev, stay) carries w[t, plane, p] * h[p] back to p-d
            np.multiply(w[t], h[t + 1], out=q)
            out = h[t]
            np.add(q_all[2, :-2], q_all[1, 1:-1], out=out)
            out += q_all[0, 2:]
            if self._partly[t]:   # an unused frame carries every adjoint over, even an unreachable state's
                np.copyto(out, h[t + 1], where=self._idle[t])
            if dead is not None:
                out[dead] = 0.0
        adj = self._unflat(h_all)
        return adj[1:], adj[0]

    def _posterior_mag(self, w, logz, wf, init):
        """``z_mag`` of the forward pass from ``init`` with weights ``w``, log-likelihood ``logz``
        and final weights ``wf``, from its posteriors: |logz| plus the expected magnitudes of the
        summands of a path (initial and final weights, transitions, emissions), each weighted by
        the posterior probability of the state or edge it belongs to; and the posteriors."""
        post, post0 = self._reverse(np.where(np.isfinite(logz)[:, None], wf, 0.0), w=w)
        with np.errstate(invalid="ignore"):
            em = self._em_mag
            if self.tr_mag is not None:   # the transitions' magnitudes, on the frames used
                em = em.copy()
                em[:, 2:] += np.where(self._idle, 0.0, np.add.reduce(w * self.tr_mag, axis=1))
            em = self._unflat(em)
            z = np.sum(wf * _finite_abs(self.lat.final), axis=-1) + np.sum(post * em, axis=(0, 2))
            z += np.sum(post0 * _finite_abs(init), axis=-1)
        return np.abs(logz) + z, post

    def _gather(self, adj):
        """(T, N, C): each state's adjoint (T, N, S) added to the class it emits on its frame."""
        t_len, bsz, _ = self.shape
        size = t_len * bsz * self.n_classes
        g = np.bincount(self._bins, weights=adj.ravel(), minlength=size + 1)[:size]
        return g.reshape(t_len, bsz, self.n_classes)

    def vjp(self, cot_z, cot_alpha=None):
        """d<cot, outputs>/d lp (T, N, C) for the outputs ``logz`` (cotangent ``cot_z`` (N,)) and
        ``alpha`` (``cot_alpha`` (T, N, S)): the reverse sweep of the forward recursion. Its weights
        are non-negative, so |cotangents| in give the magnitudes of the gradient's summands."""
        bsz = self.shape[1]
        cot_z = np.broadcast_to(np.asarray(cot_z, dtype=np.float64), (bsz,))
        ok = np.isfinite(self.logz)
        if cot_alpha is None:
            # the adjoint is linear in the cotangent: a multiple of the posteriors, per sequence
            if self._post_cls is None:
                if self._post is None:
                    self._post, _ = self._reverse(np.where(ok[:, None], self.wf, 0.0))
                self._post_cls = self._gather(self._post)
            g = np.where(ok, cot_z, 0.0)[:, None] * self._post_cls
        else:
            g = self._gather(self._reverse(np.where(ok[:, None], cot_z[:, None] * self.wf, 0.0), cot_alpha)[0])
        bad = ~ok & (cot_z != 0)
        if bad.any():  # no alignment: the loss is infinite and its gradient undefined on every used frame
            g[:, bad] = np.where(self.active[:, bad, None], np.nan, 0.0)
        return g


# ---- the loss on logits, batch-major (Keras, optax) --------------------------------------------

def _batch_sweeps(logits, labels, label_lengths, active, blank, lattice, log_epsilon, frame_mags=False):
    x = f64(logits)
    labels = np.asarray(labels).astype(np.int64)
    if lattice not in LATTICES:
        raise ValueError(f"lattice must be one of {LATTICES}, got {lattice!r}")
    eps = NEG_INF if log_epsilon is None else float(log_epsilon)
    with np.errstate(invalid="ignore", divide="ignore"):
        _, m = max_shift(x)
        log_sum = np.log(np.sum(np.exp(x - m), axis=-1, keepdims=True))
        lp = (x - m) - log_sum                         # log_softmax; not x - lse, rounded to the max's ulp
        lse = log_sum + m
        # summands of x - lse, and 1 for lse = max + log(sum(exp(x - max))): the sum, at least 1,
        # is rounded, an absolute error of eps in the log whatever the loss
        lp_mag = np.abs(x) + np.abs(lse) + 1.0
    lens = np.asarray(label_lengths).astype(np.int64).reshape(x.shape[0])
    if lattice == "graves":
        lat = _graves_lattice(labels, np.minimum(lens, labels.shape[-1]), blank)
    elif lattice == "optax":
        lat = _optax_lattice(labels, lens, blank, eps)
    else:
        lat = _tf_lattice(labels, lens, blank, eps)
    active = np.broadcast_to(np.asarray(active, dtype=bool), x.shape[:2])
    return np.exp(lp), _Sweeps(lat, np.moveaxis(lp, 1, 0), np.moveaxis(lp_mag, 1, 0), active.T, frame_mags)


def _logits_result(p, sw, name, reduction, reduce_kw):
    """Per-sequence losses ``-logz`` with the gradient through log_softmax (``p`` its softmax),
    reduced."""
    terms, scale = -sw.logz, sw.z_mag

    def back_logits(g_lp, magnitude):
        """Through log_softmax: g - p sum(g) (or its summands' magnitudes)."""
        tot = np.sum(np.abs(g_lp) if magnitude else g_lp, axis=-1, keepdims=True)
        return np.abs(g_lp) + p * tot if magnitude else g_lp - p * tot

    def local_vjp(g):
        g = np.broadcast_to(np.asarray(g, dtype=np.float64), terms.shape)
        g_lp = np.moveaxis(sw.vjp(-g), 0, 1)
        with np.errstate(invalid="ignore"):
            return {name: back_logits(g_lp, False)}

    def local_gscale(g):
        g = np.broadcast_to(np.abs(np.asarray(g, dtype=np.float64)), terms.shape)
        g_lp = np.abs(np.moveaxis(sw.vjp(g * sw.gfac), 0, 1))
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
    p, sw = _batch_sweeps(x, lab, lens, pads == 0, blank, lattice, log_epsilon)
    return _logits_result(p, sw, "logits", reduction, reduce_kw)


def keras_ctc(y_true, y_pred, *, lattice: str = "graves", log_epsilon=None, reduction: str = "none",
              **reduce_kw) -> Result:
    """Keras ``keras.losses.ctc`` / ``CTC`` (keras/src/losses/losses.py ``ctc``): ``y_true`` (B, S)
    labels padded with 0, ``y_pred`` (B, T, C) logits. Blank (``mask_index``) is 0; a row's label
    length is its number of non-zero entries (the first that many labels are used); every frame
    is used. The backends differ only where no alignment exists: torch (``"graves"``) gives inf
    with a NaN gradient, jax ``lattice="optax", log_epsilon=-1e5``, TensorFlow
    ``lattice="tensorflow", log_epsilon=TF_LOG_0``. Gradient w.r.t. ``y_pred``.

    Shapes: ``y_true`` (B, S) integer labels, ``y_pred`` (B, T, C); value (B,) before ``reduce_kw``.
    """
    lab = np.asarray(y_true).astype(np.int64)
    lens = np.sum(lab != 0, axis=-1)
    x = f64(y_pred)
    if lattice == "graves" and log_epsilon is not None:
        raise ValueError("the graves lattice is exact: log_epsilon applies to 'optax' and 'tensorflow'")
    p, sw = _batch_sweeps(x, lab, lens, np.ones(x.shape[:2], bool), 0, lattice, log_epsilon)
    return _logits_result(p, sw, "y_pred", reduction, reduce_kw)


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
    Bind ``log_epsilon=-1e5`` (optax's default) for optax; ``None`` is the exact loss.

    Shapes: ``logits`` (B, T, K), ``logit_paddings`` (B, T), ``labels`` and ``label_paddings`` (B, N);
    value (B,) before ``reduce_kw``. Gradient w.r.t. ``logits``.
    """
    lab, lens = _optax_lengths(labels, label_paddings)
    p, sw = _batch_sweeps(logits, lab, lens, f64(logit_paddings) == 0, blank_id, "optax", log_epsilon)
    return _logits_result(p, sw, "logits", reduction, reduce_kw)


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
    p, sw = _batch_sweeps(logits, lab, lens, f64(logit_paddings) == 0, blank_id, "optax", log_epsilon,
                          frame_mags=True)
    bsz, t_len, n_classes = p.shape
    n = lab.shape[1]
    n_loss, n_phi = bsz, t_len * bsz * (n + 1)
    # the lattice holds phi[k] at state 2k and emit[k] at 2k + 1: (T, B, N+1) and (T, B, N)
    a, m = sw.alpha, sw.mag
    phi, emit = a[..., 0::2].copy(), a[..., 1::2]
    phi_m, emit_m = m[..., 0::2].copy(), m[..., 1::2]
    last = np.logaddexp(phi[-1, :, 1:], emit[-1])
    with np.errstate(invalid="ignore"):
        w_last = _softmax_from(np.stack([phi[-1, :, 1:], emit[-1]]), last[None])
    phi_m[-1, :, 1:] = np.abs(last) + w_last[0] * phi_m[-1, :, 1:] + w_last[1] * emit_m[-1]
    phi[-1, :, 1:] = last
    value = np.concatenate([-sw.logz, phi.ravel(), emit.ravel()])
    scale = np.concatenate([sw.z_mag, (np.abs(phi) + phi_m).ravel(), (np.abs(emit) + emit_m).ravel()])
    scale = np.where(np.isfinite(scale), scale, np.abs(value))

    def unpack(cot):
        cot = np.broadcast_to(np.asarray(cot, dtype=np.float64), value.shape)
        c_loss = cot[:n_loss]
        c_phi = cot[n_loss:n_loss + n_phi].reshape(t_len, bsz, n + 1)
        c_emit = cot[n_loss + n_phi:].reshape(t_len, bsz, n)
        return c_loss, c_phi, c_emit

    def alpha_cot(c_phi, c_emit):
        """Cotangent (T, B, S) of the sweep's alphas: the outputs are alphas except the last blank
        row, logaddexp(phi, emit) there, whose cotangent splits by the softmax of the two."""
        ca = np.empty(sw.alpha.shape)
        ca[..., 0::2], ca[..., 1::2] = c_phi, c_emit
        ca[-1, :, 2::2] = c_phi[-1, :, 1:] * w_last[0]
        ca[-1, :, 1::2] += c_phi[-1, :, 1:] * w_last[1]
        return ca

    def vjp(cot):
        c_loss, c_phi, c_emit = unpack(cot)
        g_lp = np.moveaxis(sw.vjp(-c_loss, alpha_cot(c_phi, c_emit)), 0, 1)
        return {"logits": g_lp - p * np.sum(g_lp, axis=-1, keepdims=True)}

    def gscale(cot):
        c_loss, c_phi, c_emit = unpack(np.abs(cot) * (1.0 + scale))
        g_lp = np.abs(np.moveaxis(sw.vjp(c_loss, np.abs(alpha_cot(c_phi, c_emit))), 0, 1))
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
    lens = np.array([len(r) for r in rows], dtype=np.int64)
    padded = np.zeros((bsz, int(lens.max(initial=0))), dtype=np.int64)
    for b, r in enumerate(rows):
        padded[b, : len(r)] = r
    active = np.arange(t_len)[:, None] < il[None, :]  # (T, N)
    # the magnitudes of a path's summands, and 1 per frame: each frame's log of a sum over its
    # predecessors (max-shifted, so at least 1, as here and in torch's kernel) is rounded, an
    # absolute error of eps however close to 0 the loss is
    sw = _Sweeps(_graves_lattice(padded, lens, blank), lp, np.abs(lp) + 1.0, active)
    raw = -sw.logz
    zeroed = np.isinf(raw) & zero_infinity
    terms = np.where(zeroed, 0.0, raw)
    scale = np.where(zeroed, 0.0, sw.z_mag)
    active = active[..., None]
    expl = []   # exp(log_probs) on the used frames, computed once when first needed

    def per_seq(g, magnitude=False):
        g = np.where(zeroed, 0.0, np.broadcast_to(np.asarray(g, dtype=np.float64), raw.shape))
        g_lp = np.abs(sw.vjp(np.abs(g) * sw.gfac)) if magnitude else sw.vjp(-g)   # (T, N, C)
        if log_softmax_grad:
            if not expl:
                expl.append(np.where(active, np.exp(lp), 0.0))
            c = (np.abs(g) if magnitude else g)[:, None]
            g_lp += expl[0] * c if np.all(np.isfinite(c)) else np.where(active, np.exp(lp) * c, 0.0)
        return g_lp[:, 0] if unbatched else g_lp

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
