"""torch CTC's value scale near a zero loss, against brute force over the alignments.

Three frames, target ``[1]``, one alignment (blank, blank, 1) of log-weight -1.0458e-12 and others
whose weights sum to about the same, 1.0458e-12: the loss is -5.84e-17, a cancellation that the
max-shifted ``log(sum)`` of every frame (torch's kernel and the oracle alike) rounds to about 0.
The scale counted only the magnitudes of the log-probabilities (3e-11 here), which called that
rounding 1e10 eps; it now counts 1 per frame for it.
"""
import itertools
import math

import numpy as np
import pytest

from losscheck.reference import sequence as Q
from losscheck.tolerance import VALUE_BOUND, value_error

LOG_PROBS = np.array([[[0.0, -4.2580922298984696e+01]],
                      [[-1.0458300891968975e-12, -2.7586154347616500e+01]],
                      [[-6.2522852234688500e+01, 0.0]]])


def _exact_loss(lp, target):
    """-log sum over the alignments of exp(sum of their log-probabilities), in float64 without
    cancellation: near a zero loss -log1p(sum(exp(s)) - 1), with expm1 for the alignment nearest 0
    and fsum."""
    t_len, _, n_classes = lp.shape
    sums = []
    for path in itertools.product(range(n_classes), repeat=t_len):
        collapsed = [c for i, c in enumerate(path) if c != 0 and (i == 0 or path[i - 1] != c)]
        if collapsed == list(target):
            sums.append(math.fsum(lp[t, 0, c] for t, c in enumerate(path)))
    if not sums:
        return math.inf
    top = max(sums)
    if top < -0.5:   # no cancellation: the max-shifted sum
        return -(top + math.log(math.fsum(math.exp(s - top) for s in sums)))
    rest = [math.exp(s) for s in sums if s is not top]
    return -math.log1p(math.fsum([math.expm1(top), *rest]))


def _torch_kernel_loss(lp, target):
    """torch's CPU recursion (aten/src/ATen/native/LossCTC.cpp): log(sum(exp(la - max))) + max."""
    ext = [0]
    for c in target:
        ext += [c, 0]
    la = np.full(len(ext), -np.inf)
    la[0], la[1] = lp[0, 0, ext[0]], lp[0, 0, ext[1]]
    for t in range(1, lp.shape[0]):
        new = np.full(len(ext), -np.inf)
        for s in range(len(ext)):
            pred = [la[s]] + ([la[s - 1]] if s >= 1 else [])
            if s >= 2 and ext[s] != 0 and ext[s] != ext[s - 2]:
                pred.append(la[s - 2])
            m = max(pred)
            if m > -np.inf:
                new[s] = math.log(sum(math.exp(v - m) for v in pred)) + m + lp[t, 0, ext[s]]
        la = new
    m = max(la[-1], la[-2])
    return -(math.log(math.exp(la[-1] - m) + math.exp(la[-2] - m)) + m)


def _loss(lp):
    return Q.torch_ctc_loss(lp, np.array([[1]]), np.array([3]), np.array([1]), reduction="none")


def test_the_value_is_the_exact_cancellation_within_its_scale():
    exact = _exact_loss(LOG_PROBS, [1])
    assert -5.85e-17 < exact < -5.83e-17
    ref = _loss(LOG_PROBS)
    assert np.all(value_error(np.array([exact]), ref.value, ref.scale, "float64") <= VALUE_BOUND["float64"](1))


def test_the_scale_covers_a_max_shifted_recursion():
    ref = _loss(LOG_PROBS)
    assert ref.scale[0] >= 3.0     # 1 per frame
    kernel = _torch_kernel_loss(LOG_PROBS, [1])
    assert abs(kernel) < 1e-20     # the cancellation lost
    assert np.all(value_error(np.array([kernel]), ref.value, ref.scale, "float64") <= VALUE_BOUND["float64"](1))


def test_random_cases_agree_with_brute_force():
    rng = np.random.default_rng(3)
    for _ in range(60):
        t_len, n_classes = int(rng.integers(1, 6)), int(rng.integers(2, 4))
        x = rng.normal(scale=float(rng.choice([1.0, 5.0, 30.0])), size=(t_len, 1, n_classes))
        lp = x - np.log(np.sum(np.exp(x - x.max(-1, keepdims=True)), -1, keepdims=True)) - x.max(-1, keepdims=True)
        target = list(rng.integers(1, n_classes, int(rng.integers(1, 3))))
        ref = Q.torch_ctc_loss(lp, np.array([target]), np.array([t_len]), np.array([len(target)]), reduction="none")
        exact = _exact_loss(lp, target)
        if math.isinf(exact):
            assert np.isinf(ref.value[0])
            continue
        assert np.all(value_error(np.array([exact]), ref.value, ref.scale, "float64") <= 4.0)


def test_torch_itself_is_within_the_bound():
    torch = pytest.importorskip("torch")
    got = torch.nn.functional.ctc_loss(torch.tensor(LOG_PROBS), torch.tensor([[1]]), torch.tensor([3]),
                                       torch.tensor([1]), reduction="none").numpy()
    ref = _loss(LOG_PROBS)
    assert abs(float(got[0])) < 1e-20     # torch's kernel: the same rounding
    assert np.all(value_error(got, ref.value, ref.scale, "float64") <= VALUE_BOUND["float64"](1))
