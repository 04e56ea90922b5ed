# The data that crosses the trust boundary, as types: specs (parent -> child), records
# (child -> parent, untrusted) and verdicts (what a test's judge produces).
#
# Specs, records and verdicts are plain dicts at run time (they travel through the runner's
# codec: JSON types, tuples and numeric NumPy arrays); these TypedDicts name their keys, so
# signatures say which is which and a type checker can follow them. ``total=False``: a key
# is present only when the kind, the case or the stage that ran sets it.
#
# A record becomes a ``Record`` only by passing ``grader.checks.records.admit`` (the one
# place the parent accepts what the child sent); a judge may then rely on its shape: a dict
# with str keys holding only ``Data`` (no objects, no object arrays, bounded depth and size).
# The verdict of one case is ``base.CaseResult``, of a test ``base.Result`` (``to_json()``
# gives a ``Verdict``).
#
# Child-safe (standard library + NumPy only): bundled first, since ``base`` imports it.
#
# (No docstring: the bundle opens with the first module's docstring, and that is base's.)
from collections.abc import Callable
from typing import Any, TypedDict, Union

import numpy as np

# What a record may hold, at any depth (``records.admit`` enforces it in the parent).
Data = Union[None, bool, int, float, str, np.ndarray, list, tuple, dict]
Namespace = Any  # a notebook's globals() dict or a module (``reference``)
Shape = Union[tuple[int, ...], list[int]]  # an array's shape as a spec or a suite gives it
Opaque = Any  # an object of the student's code (a model, a function it returned): never trusted



class ErrorInfo(TypedDict):
    """An exception as data: ``type`` is the exception's class name, ``"missing"`` for a
    name the namespace does not define, ``"protocol"`` for a record the parent could not
    accept (``records.admit``); ``message`` is its text, cut to a few hundred characters."""

    type: str
    message: str


# -- specs: built by the parent from the reference and the suite (trusted) ------------------

class Spec(TypedDict, total=False):
    """One case of a suite test. ``check`` names the kind (always present); the rest is the
    kind's. Arrays are the grader's own (operands, upstream grads, data)."""

    check: str
    target: str            # the class or function graded (component, function)
    case: int | str        # the case's index, or a named case ("final", "model")
    seed: int


class ComponentSpec(Spec, total=False):
    operands: list[np.ndarray]
    labels: list[int]      # operands that are integer labels
    kwargs: dict[str, Any]  # the constructor's keyword arguments
    upstream: np.ndarray    # the random upstream gradient
    u: list[np.ndarray]     # projections for the cheap first check
    regime: str             # the domain region the operands were drawn from
    forward_only: bool      # a large-input case: only forward is judged
    strict: bool
    prior: list[np.ndarray]  # grads already set before backward (accumulation)
    parts: list["ComponentSpec"]  # a case made of several sub-cases


class LoopSpec(Spec, total=False):
    """``backward_loop``: a graph (``graphs.py``) and the stale grads it starts from."""

    graph: str
    nodes: list[dict[str, Any]]  # {"name", "kind", "args"} in creation order
    values: dict[str, np.ndarray]
    loss: str
    stale: dict[str, np.ndarray]


class FunctionSpec(Spec, total=False):
    kwargs: dict[str, Any]  # the target's keyword arguments (stand-in functions as text)


class OpsSpec(Spec, total=False):
    """``dual`` and ``tape``: the operations graded and their operands."""

    ops: list[str]
    a: Any
    b: Any
    c: float
    n: int
    k: int
    graph: dict[str, Any]  # tape ``backward``: values, parents, preset grads


class MlpSpec(Spec, total=False):
    """The mlp kinds and ``mlp_accuracy``: network sizes, data, training settings."""

    sizes: list[int]
    activation: str
    layers: list[Any]
    layers2: list[Any]
    X: np.ndarray
    y: np.ndarray
    y_val: np.ndarray
    eta: float
    epochs: int
    batch_size: int
    filters: int
    float32: bool
    learning: bool       # mlp_accuracy: train on the re-drawn task's training half
    cnn_learning: bool
    cnn_final: bool


# -- records: returned by a probe in the child (untrusted until admitted) --------------------

class Record(TypedDict, total=False):
    """What a probe returns. Every kind may set the common keys below; the rest is the
    kind's (``ComponentRecord`` ...). An admitted record holds only ``Data``."""

    error: ErrorInfo
    error_at: str          # the stage that raised: lookup, construct, forward, backward, call, probe ...
    error_component: int | None  # backward_loop: the component running when it raised
    stage: str             # mlp kinds: the last stage reached
    forensics: dict[str, Any]  # evidence of numerical differentiation (``forensics.py``)


class ComponentRecord(Record, total=False):
    value: np.ndarray | None
    grads: list[np.ndarray | None]
    grads_ones: list[np.ndarray | None]  # the same backward with upstream ones (diagnosis only)
    operands_after_forward: list[np.ndarray | None]
    operands_after_backward: list[np.ndarray | None]
    parts: list["ComponentRecord"]


class LoopRecord(Record, total=False):
    forward_steps: list[dict[str, Any]]  # {"value", "args"} after each component's forward
    values: dict[str, np.ndarray | None]
    steps: list[dict[str, Any]]  # {"component", "upstream", "grads" (changed only), "args"}
    pre: dict[str, np.ndarray | None] | None  # grads when the first backward() started
    final: dict[str, np.ndarray | None]
    final2: dict[str, np.ndarray | None]  # after a second Backward call
    steps2: list[int]
    truncated: bool


class FunctionRecord(Record, total=False):
    result: dict[str, Any]  # {"one": array} or {"seq": [array, ...]}


class OpsRecord(Record, total=False):
    """``dual`` and ``tape``: one result per expression ({"val", "dot", ...} or {"error"}),
    or for tape ``backward`` the order and the grads of three calls."""

    results: list[dict[str, Any]]
    order: list[int]
    grads: list[float]
    grads2: list[float]
    grads3: list[float]


class MlpRecord(Record, total=False):
    """The mlp kinds: the network's values after each call the probe made (``stage`` names the
    call running when one raised), the predictions, and what ``train`` handed ``train_step``."""

    init: list[list[np.ndarray | None]]   # [[W, b], ...] as built; init_again / init_other: same / other seed
    init_again: list[list[np.ndarray | None]]
    init_other: list[list[np.ndarray | None]]
    dtypes: list[str]
    dtypes32: list[str]
    logits: Any
    loss: Any
    pred: Any
    pred2: np.ndarray | None
    acc: np.ndarray | None
    after: list[list[np.ndarray | None]]  # train_step: the weights after one step
    batches: list[np.ndarray | None]      # train: what it handed train_step, call by call
    labels: list[np.ndarray | None]
    etas: list[np.ndarray | None]
    same_model: list[bool]
    history: list[list[np.ndarray | None]]
    has_val: list[bool]
    settings: dict[str, Any]              # mlp_accuracy: final_settings as read
    params: list[np.ndarray | None]
    layers: list[list[np.ndarray | None]]
    losses: list[Any]
    chain: dict[str, Any]
    in_graph: bool
    alt: dict                             # final predict: the same on a harness network bound as final_model (mlp_final)


# A kind's probe (``base.Kind.probe``), and a probe body as ``mlp_net._mlp_guard`` wraps it
# into one: it fills the record and raises on failure.
Probe = Callable[[Namespace, Spec], Record]
ProbeBody = Callable[[Namespace, MlpSpec, MlpRecord], None]


# -- verdicts -------------------------------------------------------------------------------

class Verdict(TypedDict):
    """A test's verdict as JSON (``Result.to_json()``, ``execute.runner_result``,
    ``execute.judge_safely``): what a submission record's ``tests[i]["result"]`` holds."""

    test_id: str
    passed: bool
    score: float            # in [0, 1]: the fraction of cases passed
    message: str
    diagnosis: str | None   # a code of ``base.DIAGNOSES`` / ``RUNNER_OUTCOMES``, a kind's own, or None
    details: dict[str, Any]
