"""Stable diagnosis codes. The first letter is the family:

V value, G gradient, B batch handling, A activation/loss compatibility, N numerics,
D dtype/device, P performance, X execution (crash, hang, wrong output shape, side effects).

Codes are never renumbered or reused; a retired code stays listed with ``retired=True``.
The README's table of codes is generated from this registry (``losscheck codes``).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    code: str
    title: str
    explain: str
    retired: bool = False

    @property
    def family(self) -> str:
        return self.code[0]


FAMILIES = {
    "V": "value",
    "G": "gradient",
    "B": "batch handling",
    "A": "activation/loss compatibility",
    "N": "numerics",
    "D": "dtype/device",
    "P": "performance",
    "X": "execution",
}

_CODES = [
    Code("V001", "value disagrees with the reference",
         "The loss value differs from the float64 oracle by more than the dtype's bound."),
    Code("V002", "reduction is sum, not mean",
         "The value equals the oracle times the number of averaged terms: the loss grows with the batch size."),
    Code("V003", "reduction is mean, not sum",
         "The value equals the oracle divided by the number of summed terms."),
    Code("V004", "arguments swapped",
         "The value matches the oracle with prediction and target exchanged."),
    Code("V005", "documented clipping not applied",
         "The value matches the exact mathematics but not the clipping/clamping the framework documents."),
    Code("V006", "value off by a constant factor",
         "The value is the oracle times a constant that is not a batch or class count."),
    Code("V007", "clipping differs from the documented one",
         "The value disagrees only where inputs are near the clipping bounds: a different epsilon or clamp."),
    Code("V008", "arguments swapped at a call site",
         "A call in the file passes the target where the loss takes the prediction (read from the names at the "
         "call site): harmless only for a symmetric loss."),
    Code("V010", "known deviation from the exact mathematics",
         "The implementation matches its documented semantics (clipping, clamping), which differ from the "
         "exact loss on these inputs by the measured amount."),
    Code("G001", "gradient disagrees with the reference",
         "The gradient differs from the oracle's analytic gradient by more than the dtype's bound."),
    Code("G002", "gradient is disconnected",
         "No gradient flows to an input the loss depends on (.item(), .detach(), NumPy round-trip, "
         "integer cast, or a non-tensor return)."),
    Code("G003", "gradient is exactly zero",
         "The gradient is identically zero where the oracle's is not."),
    Code("G004", "gradient has the wrong sign",
         "Some gradient elements have the opposite sign of the oracle's; the rest agree."),
    Code("G005", "gradient off by a constant factor",
         "The gradient is the oracle's times a constant."),
    Code("G006", "gradient inconsistent with the value",
         "The value agrees with the oracle but the gradient does not: a custom backward that does not "
         "differentiate the forward."),
    Code("B002", "tiling the batch changes a mean-reduced loss",
         "Repeating every sample k times changed a loss whose documented reduction is a mean: it depends on "
         "the batch size."),
    Code("B003", "samples are not independent",
         "Changing one sample changed another sample's loss or gradient, or the per-sample output does not follow "
         "the batch: the loss mixes samples."),
    Code("B004", "batch of one or unbatched input fails",
         "A batch of a single sample, or a documented input without the batch dimension, raises or disagrees "
         "with the oracle."),
    Code("B005", "shape mismatch silently broadcast",
         "A (N, 1) prediction against a (N,) target (or the reverse) is broadcast to (N, N) instead of being "
         "rejected or aligned: the loss is computed over every pair of samples."),
    Code("B006", "sum-reduced loss does not scale with the batch",
         "Repeating every sample k times did not multiply a loss whose documented reduction is a sum by k."),
    Code("B007", "loss grows with the batch size",
         "The loss sums over the samples: doubling the batch doubles it, so the gradient scale (and the "
         "effective learning rate) depends on the batch size."),
    Code("A001", "the documented input form does not train",
         "Fed the activation its documentation asks for (logits, probabilities or log-probabilities), the loss "
         "is undefined or prefers confidently wrong scores: the loss and its documentation disagree."),
    Code("A002", "activation puts a floor under the loss",
         "With this last activation the loss cannot reach its minimum (softmax before a loss that expects "
         "logits): training stalls at the measured floor."),
    Code("A003", "activation attenuates the gradient",
         "With this last activation the gradient with respect to the scores is smaller or larger than with the "
         "documented pairing by the measured factor (a double softmax or sigmoid)."),
    Code("A004", "activation breaks the loss",
         "With this last activation the loss is undefined (log of a negative number), unbounded below, or "
         "minimised by the wrong class."),
    Code("N001", "non-finite value where the loss is finite",
         "The loss returns NaN or Inf on inputs where the exact loss is finite."),
    Code("N002", "loss below its lower bound",
         "The loss returns a value below its mathematical lower bound (a loss that should be >= 0 is negative). "
         "The value check reports it too, ahead of the value codes; minus the oracle's value is named a dropped "
         "sign."),
    Code("N003", "non-finite gradient where the loss's gradient is finite",
         "The gradient contains NaN or Inf where the oracle's gradient is finite."),
    Code("D001", "computed at lower precision than its inputs",
         "Inputs of one dtype are computed at the precision of a lower one (float64 losses reduced in "
         "float32); the error is within the lower dtype's bound."),
    Code("D002", "integer context tensor breaks the loss",
         "With a context tensor (mask, adjacency, weights) of an integer dtype, as built from Python integers, "
         "the loss raises or computes a different value than with the same values as floats."),
    Code("D003", "context tensor on another device",
         "A context tensor held by the loss stays on the CPU while the inputs are on the GPU: the loss raises or "
         "copies every call (register it as a buffer so .to(device) moves it)."),
    Code("D004", "overflows or underflows in half precision",
         "In float16 or bfloat16 the loss or its gradient is NaN or Inf where the exact result is representable "
         "in that dtype: a constant underflows (an epsilon of 1e-8 or 1e-12 is 0 in float16) or an intermediate "
         "overflows (float16 ends at 65504)."),
    Code("D005", "two identical runs differ",
         "Calling the loss twice on the same inputs, device and dtype gave different values or gradients: a "
         "nondeterministic kernel (atomic adds in a reduction or a scatter, typical on GPUs). Any property "
         "reports it too when a failure it found does not reproduce on the same inputs; the first failure is "
         "quoted."),
    Code("D006", "GPU and CPU disagree",
         "The loss's value or gradient on the GPU differs from the same loss on the CPU by more than the dtype's "
         "bound."),
    Code("P001", "work grows faster than linearly with the batch",
         "The operations one call records (autograd nodes, jaxpr equations, graph operations; its time when it "
         "cannot be traced) grow as N^k with k well above 1: a Python loop over pairs of samples. The measured "
         "exponent is reported, with the vectorised equivalent when the loss matches a known pattern."),
    Code("X001", "raised an exception",
         "Calling the loss or its gradient raised an exception on valid inputs."),
    Code("X002", "wrong output shape",
         "The loss returned an array of a different shape than the documented one."),
    Code("X003", "did not finish in time",
         "The loss (or importing its file) ran past the wall-clock limit: an infinite loop or a hang; the line "
         "it was executing is reported."),
    Code("X004", "the process crashed or exited",
         "Calling the loss killed or ended the process: a segmentation fault, an abort, os._exit() or "
         "sys.exit()."),
    Code("X005", "returned something that is not a tensor",
         "The loss returned a Python number, a NumPy array or another object instead of a framework tensor."),
    Code("X006", "printed a huge amount of output",
         "Calling the loss printed more than the output limit (a print or log call in the loss that floods the "
         "training log)."),
    Code("X007", "exceeded the memory limit",
         "Calling the loss allocated more memory than the limit the audit sets (a memory bomb, or an (N, N) "
         "intermediate that explodes with the batch size)."),
    Code("X008", "mutated its inputs in place",
         "The loss wrote into a tensor it was given (clamp_, sub_, an indexed assignment): the caller's "
         "predictions or targets change, whatever value the loss returns. The input and the number of "
         "changed elements are reported."),
    Code("X009", "changed global state",
         "The loss changed a process-wide framework setting (torch default dtype or grad mode, Keras floatx or "
         "epsilon, jax_enable_x64): everything computed after it changes. The setting, its value before and "
         "after, are reported; losscheck restores it so the other checks are unaffected."),
    Code("X010", "fails when compiled as training runs it",
         "Eagerly the loss works, but compiled as a training step compiles it (jax.jit; Keras' fit() on "
         "TensorFlow, a tf.function that does not convert the loss's Python control flow and has a batch "
         "dimension of unknown size) it raises, or computes another value or gradient: Python if on a tensor, "
         ".numpy(), float(), x.shape[0] as a number, state read once at trace time."),
]

CODES: dict[str, Code] = {c.code: c for c in _CODES}


def title(code: str) -> str:
    return CODES[code].title


def family(code: str) -> str:
    return FAMILIES[code[0]]


def codes_markdown() -> str:
    """The registry as the Markdown table in the README (a test keeps the two equal)."""
    lines = ["| code | family | meaning |", "| --- | --- | --- |"]
    for c in _CODES:
        if not c.retired:
            lines.append(f"| {c.code} | {FAMILIES[c.family]} | **{c.title}**: {c.explain} |")
    return "\n".join(lines)
