"""Inference: a trained model with the exact preprocessing of its training data (:class:`Predictor`), and
loading one from a run directory or a run id (:func:`load_predictor`).

Predictions run on an inference copy of the network (:func:`inference_network`): batch norms folded into
the convolution or linear layer next to them (one pass over the signal fewer per block), no autograd
(``torch.inference_mode``), and bf16 where the device computes it natively (``precision="auto"``;
outputs within bf16 rounding of the fp32 model, see ``tests/test_predict.py``), in bf16 on a CPU in the
channels-last layout of oneDNN's AMX kernels (:mod:`ecgcore.train.layout`); optionally compiled
(``compiled=True``: :func:`compiled_network`). ``Predictor.model``
stays the training network (gradients, attributions). :meth:`Predictor.predict_many` batches records.

Shared by the command line (``predict``, ``explain``), the pages and the report. :func:`guarded_prediction`
puts the prediction guard (:mod:`ecgcore.guard`) in front of :meth:`Predictor.predict`: a record the model
cannot answer for gets a reason and no number, a doubtful one its flags beside the number. Calibration,
where a run has one, is applied by :func:`ecgcore.explain.calibration.calibrated_prediction` on top.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ecgcore import paths
from ecgcore.data import Preprocessing, preprocess_record
from ecgcore.guard import Verdict, check_prediction, check_record
from ecgcore.models.inception1d import InceptionBlock, Shortcut
from ecgcore.progress import ProgressFn, report
from ecgcore.train.checkpoint import CheckpointError, load_checkpoint
from ecgcore.train.config import LABEL_MODES, TASKS
from ecgcore.train.device import autocast, cpu_has_bf16, cuda_has_native_bf16, precision_name
from ecgcore.train.layout import channels_last, wants_channels_last
from ecgcore.vocab import TARGETS_BY_KEY, canonical_lead

PRECISIONS = ("auto", "fp32", "bf16")


def _bn_affine(bn: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode batch norm as ``scale * x + shift`` per channel."""
    scale = (
        bn.weight / torch.sqrt(bn.running_var + bn.eps)
        if bn.affine
        else 1 / torch.sqrt(bn.running_var + bn.eps)
    )
    shift = (bn.bias if bn.affine else 0) - bn.running_mean * scale
    return scale, shift


def _fold_into_conv(conv: nn.Conv1d, scale: torch.Tensor, shift: torch.Tensor) -> None:
    """``bn(conv(x))`` -> ``conv'(x)``: output channels scaled, the shift becomes (part of) the bias."""
    bias = conv.bias if conv.bias is not None else torch.zeros_like(shift)
    conv.weight.copy_(conv.weight * scale[:, None, None])
    conv.bias = nn.Parameter(bias * scale + shift)


def _fold_into_linear(linear: nn.Linear, scale: torch.Tensor, shift: torch.Tensor) -> None:
    """``linear(bn(x))`` -> ``linear'(x)``: input columns scaled, the shift moves into the bias."""
    bias = linear.bias if linear.bias is not None else torch.zeros_like(linear.weight[:, 0])
    linear.bias = nn.Parameter(bias + linear.weight @ shift)
    linear.weight.copy_(linear.weight * scale[None, :])


def _fold_sequential(seq: nn.Sequential) -> int:
    """Fold ``Conv1d -> BatchNorm1d`` and ``BatchNorm1d -> (Dropout) -> Linear`` runs inside ``seq``."""
    folded, items = 0, list(seq)
    for i, bn in enumerate(items):
        if not isinstance(bn, nn.BatchNorm1d):
            continue
        if i > 0 and isinstance(items[i - 1], nn.Conv1d) and items[i - 1].out_channels == bn.num_features:
            _fold_into_conv(items[i - 1], *_bn_affine(bn))
        else:
            after = next((m for m in items[i + 1 :] if not isinstance(m, nn.Dropout)), None)
            if not (isinstance(after, nn.Linear) and after.in_features == bn.num_features):
                continue
            _fold_into_linear(after, *_bn_affine(bn))
        seq[i] = nn.Identity()
        folded += 1
    return folded


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> tuple[nn.Module, int]:
    """An eval-mode copy of ``model`` with its batch norms folded into neighbouring layers; and how many.

    Folded: ``Conv1d -> BatchNorm1d`` and ``BatchNorm1d -> [Dropout] -> Linear`` inside ``nn.Sequential``
    (stems, heads), the inception block's norm over its concatenated branches (each branch convolution takes
    its slice of channels) and the residual shortcut's. Anything else is left as it is (still correct).
    """
    net = copy.deepcopy(model).eval()
    folded = 0
    for module in net.modules():
        if isinstance(module, InceptionBlock) and isinstance(module.bn_relu[0], nn.BatchNorm1d):
            scale, shift = _bn_affine(module.bn_relu[0])
            start = 0
            for conv in [*module.convs, module.pool_branch[-1]]:
                stop = start + conv.out_channels
                _fold_into_conv(conv, scale[start:stop], shift[start:stop])
                start = stop
            module.bn_relu[0] = nn.Identity()
            folded += 1
        elif isinstance(module, Shortcut) and isinstance(module.bn, nn.BatchNorm1d):
            _fold_into_conv(module.conv, *_bn_affine(module.bn))
            module.bn = nn.Identity()
            folded += 1
        elif isinstance(module, nn.Sequential):
            folded += _fold_sequential(module)
    for p in net.parameters():
        p.requires_grad_(False)
    return net, folded


#: From this many records on, ``predict`` compiles the network by default (``--compile auto``): measured near
#: idle (issue 20, perf3) compiling saved ~16 ms per 500 Hz record batched (37 -> 91 records/s) for a compile
#: of 7 s (inductor's disk cache warm) to 25 s (cold): it pays after ~450-1,600 records.
COMPILE_MIN_RECORDS = 2000


def compile_pays_off(n_records: int) -> bool:
    """Whether compiling the inference network is worth its compile for ``n_records`` records."""
    return n_records >= COMPILE_MIN_RECORDS


def compiled_network(net: nn.Module) -> nn.Module:
    """``net`` through ``torch.compile`` (inductor, default mode) with freezing: parameters become constants
    and oneDNN's weight layouts are packed once, convolutions fused with their bias and ReLU.

    The compile runs at the first call of each input shape (about 5-25 s for inception1d at 500 Hz on 2
    cores; inductor's on-disk cache makes later processes faster) and is kept for the life of ``net``.
    Outputs equal the eager network's within the precision's rounding (``tests/test_predict.py``).
    """
    return torch.compile(net, dynamic=False, options={"freezing": True})


def inference_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype for prediction: ``None`` (fp32) or bf16 (``auto``: where the device has it natively)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    native = cuda_has_native_bf16() if device.type == "cuda" else device.type == "cpu" and cpu_has_bf16()
    return torch.bfloat16 if native else None


@dataclass
class Predictor:
    """A trained model with the exact preprocessing of its training data.

    Attributes
    ----------
    model
        The network, in eval mode (the training network: attributions take gradients of it).
    meta
        The checkpoint description (task, targets or classes, preprocessing, metrics ...).
    precision
        ``auto`` (bf16 where native, else fp32), ``fp32`` or ``bf16``: the precision of predictions.
    compiled
        Run ``net`` through ``torch.compile`` with inductor's freezing (weights folded in as constants):
        faster per record once compiled, but the first prediction of each input shape pays the compile
        (seconds; see :func:`compiled_network`). Off by default; ``predict --compile`` turns it on.
    """

    model: torch.nn.Module
    meta: dict
    precision: str = "auto"
    compiled: bool = False

    def __post_init__(self) -> None:
        self.prep = Preprocessing.from_dict(self.meta["preprocessing"])
        self.device = next(self.model.parameters()).device
        self.net, self.folded = fold_batchnorm(self.model)
        self.amp_dtype = inference_dtype(self.device, self.precision)
        wanted = wants_channels_last(self.device, self.amp_dtype)
        self.layout = "channels-last" if wanted and channels_last(self.net) else "plain"
        self._run = compiled_network(self.net) if self.compiled else self.net

    @torch.inference_mode()
    def outputs(self, x: torch.Tensor | tuple[torch.Tensor, ...]) -> np.ndarray:
        """Raw float32 outputs ``[B, outputs]`` of the inference network for inputs ``[B, L, S]`` (or the
        tuple of inputs of a fusion model)."""
        return self.run_net(self._run, x)

    @torch.inference_mode()
    def run_net(self, net: nn.Module, x: torch.Tensor | tuple[torch.Tensor, ...]) -> np.ndarray:
        """Float32 outputs of ``net`` (a variant of :attr:`net`, e.g. compiled) for ``x`` in this predictor's
        precision: what :meth:`outputs` does with its own network (benchmarks compare variants with it)."""
        with autocast(self.device, self.amp_dtype):
            if isinstance(x, tuple):
                return net(*(t.to(self.device) for t in x)).float().cpu().numpy()
            return net(x.to(self.device)).float().cpu().numpy()

    @property
    def representation(self) -> str:
        """What the model reads (``TrainConfig.representation``): ``"signal"``, ``"chart"``, ``"signal+chart"`` ..."""
        return (self.meta.get("config") or {}).get("representation", "signal")

    def prepare(self, record) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """The model input for a :class:`ecgcore.io.Record`, as in training: ``[1, L, S]`` for signals, an image
        ``[1, C, H, W]`` (uint8 / 255) or a tuple of such for other representations."""
        if self.representation == "signal":
            x = preprocess_record(record, self.prep, self.meta.get("stats"))
            return torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32, device=self.device)[None]
        from ecgcore.data.image_inputs import record_inputs

        parts = record_inputs(self.representation, record, self.prep, self.meta.get("stats"))
        tensors = tuple(
            torch.as_tensor(np.ascontiguousarray(p), device=self.device)[None].float()
            / (255.0 if p.dtype == np.uint8 else 1.0)
            for p in (parts if isinstance(parts, tuple) else (parts,))
        )
        return tensors if isinstance(parts, tuple) else tensors[0]

    @torch.inference_mode()
    def predict(self, record) -> dict:
        """Interval predictions (original units) or class probabilities for one record.

        Returns
        -------
        dict
            ``{"record_id", "task", "intervals": {key: value}, "units": {...}}`` for regression;
            ``{"record_id", "task", "probabilities": {class: p}, "predicted": [classes]}`` for
            classification (``predicted`` is the arg-max, or every class with p >= 0.5 in multi-label mode).
        """
        return self.interpret(record.record_id, self.outputs(self.prepare(record))[0])

    def predict_many(
        self,
        records: Iterable,
        batch_size: int = 32,
        total: int | None = None,
        progress: ProgressFn | None = None,
    ) -> list[dict]:
        """:meth:`predict` for many records, ``batch_size`` at a time (records of one input shape batched).

        ``records`` may be any iterable (e.g. a generator reading files); ``total`` is only for ``progress``.
        """
        results: list[dict] = []
        pending: list[tuple[str, torch.Tensor]] = []

        def flush() -> None:
            by_shape: dict[tuple, list[int]] = {}
            for i, (_, x) in enumerate(pending):
                shape = tuple(tuple(t.shape) for t in x) if isinstance(x, tuple) else tuple(x.shape)
                by_shape.setdefault(shape, []).append(i)
            done: dict[int, dict] = {}
            for rows in by_shape.values():
                batch = [pending[i][1] for i in rows]
                joined = (
                    tuple(map(torch.cat, zip(*batch))) if isinstance(batch[0], tuple) else torch.cat(batch)
                )
                out = self.outputs(self._padded(joined, batch_size))[: len(rows)]
                done.update({i: self.interpret(pending[i][0], o) for i, o in zip(rows, out)})
            results.extend(done[i] for i in range(len(pending)))
            pending.clear()
            report(progress, len(results), total or len(results), "records")

        for record in records:
            pending.append((record.record_id, self.prepare(record)))
            if len(pending) >= batch_size:
                flush()
        if pending:
            flush()
        return results

    def _padded(self, x, batch_size: int):
        """A compiled network's short last batch padded (last row repeated) to ``batch_size``: one compiled
        shape for the whole folder instead of a second compile (rows are independent in eval mode)."""
        if not self.compiled or isinstance(x, tuple) or len(x) >= batch_size:
            return x
        return torch.cat([x, x[-1:].expand(batch_size - len(x), *x.shape[1:])])

    def interpret(self, record_id: str, out: np.ndarray) -> dict:
        """One record's raw outputs as the :meth:`predict` result (original units, or probabilities)."""
        result: dict[str, Any] = {
            "record_id": record_id,
            "task": self.meta["task"],
            "precision": precision_name(self.amp_dtype),
        }
        if self.meta["task"] == "regression":
            values = out * np.asarray(self.meta["target_sd"]) + np.asarray(self.meta["target_mean"])
            result["intervals"] = {k: float(v) for k, v in zip(self.meta["targets"], values)}
            result["units"] = {k: TARGETS_BY_KEY[k].unit for k in self.meta["targets"]}
            return result
        classes = self.meta["classes"]
        if self.meta["label_mode"] == "multi":
            probs = 1.0 / (1.0 + np.exp(-out))
            predicted = [c for c, p in zip(classes, probs) if p >= 0.5]
        else:
            probs = np.exp(out - out.max())
            probs /= probs.sum()
            predicted = [classes[int(probs.argmax())]]
        result["probabilities"] = {c: float(p) for c, p in zip(classes, probs)}
        result["predicted"] = predicted
        return result


def load_predictor(
    run_id_or_dir: str | Path,
    runs_dir: str | Path | None = None,
    which: str = "best",
    device: str = "cpu",
    precision: str = "auto",
    compiled: bool = False,
) -> Predictor:
    """A :class:`Predictor` from a run id (looked up in the run store) or a run directory.

    Raises
    ------
    FileNotFoundError
        If there is no such run, or it has no ``which`` checkpoint (it has not finished an epoch).
    """
    run_dir = Path(run_id_or_dir)
    if not run_dir.is_dir():
        root = Path(runs_dir) if runs_dir is not None else paths.runs_dir()
        run_dir = root / str(run_id_or_dir)
        if not run_dir.is_dir():
            raise FileNotFoundError(f"no run {str(run_id_or_dir)!r} in {root} (no such run directory)")
    path = run_dir / f"{which}.safetensors"
    model, meta = load_checkpoint(path, device=device)
    check_description(meta, path)
    return Predictor(model, meta, precision, compiled)


def check_description(meta: dict, path: Path | str) -> None:
    """Refuse a checkpoint description prediction cannot use, naming the file and the field.

    Checked: ``task``; ``preprocessing`` (present, a positive numeric rate and duration, known leads
    and normalisation); for regression ``targets`` with their ``target_mean`` / ``target_sd``; for
    classification ``classes`` and ``label_mode``; and that the model has one output per target or class.

    Raises
    ------
    CheckpointError
        The first field that is missing or wrong.
    """

    def bad(field: str, problem: str) -> CheckpointError:
        return CheckpointError(f"{path}: description field {field!r} {problem}")

    task = meta.get("task")
    if task not in TASKS:
        raise bad("task", f"is {task!r}; expected one of {', '.join(TASKS)}")
    prep = meta.get("preprocessing")
    if not isinstance(prep, dict):
        raise bad("preprocessing", "is missing: the model's input cannot be reproduced")
    for key in ("fs", "duration"):
        value = prep.get(key)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value <= 0
        ):
            raise bad(f"preprocessing.{key}", f"is {value!r}; expected a positive number")
    leads = prep.get("leads")
    if not isinstance(leads, (list, tuple)) or not leads:
        raise bad("preprocessing.leads", f"is {leads!r}; expected a non-empty list of ECG leads")
    for lead in leads:
        try:
            canonical_lead(lead)
        except (ValueError, TypeError, AttributeError):
            raise bad("preprocessing.leads", f"holds {lead!r}, which is not an ECG lead") from None
    try:
        Preprocessing.from_dict(prep)
    except (ValueError, TypeError) as exc:
        raise bad("preprocessing", f"cannot be used: {exc}") from None
    if task == "regression":
        names = meta.get("targets")
        if not isinstance(names, list) or not names or any(n not in TARGETS_BY_KEY for n in names):
            raise bad("targets", f"is {names!r}; expected some of {', '.join(TARGETS_BY_KEY)}")
        for key in ("target_mean", "target_sd"):
            values = meta.get(key)
            if not isinstance(values, list) or len(values) != len(names):
                raise bad(key, f"is {values!r}; expected {len(names)} numbers, one per target")
    else:
        names = meta.get("classes")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise bad("classes", f"is {names!r}: a classification run must name its classes")
        if meta.get("label_mode") not in LABEL_MODES:
            raise bad(
                "label_mode", f"is {meta.get('label_mode')!r}; expected one of {', '.join(LABEL_MODES)}"
            )
    outputs = (meta.get("model") or {}).get("n_outputs")
    if outputs != len(names):
        raise bad(
            "model.n_outputs",
            f"is {outputs!r} for {len(names)} {'targets' if task == 'regression' else 'classes'}",
        )


class Refused(ValueError):
    """The prediction guard refused a record: there is no number to give (the message says why)."""


def _refusal(predictor: Predictor, record, verdict: Verdict) -> dict:
    """The result for a refused record: its reason and no number."""
    return {
        "record_id": record.record_id,
        "task": predictor.meta["task"],
        "refused": verdict.refused,
        "flags": [],
    }


def _with_flags(predictor: Predictor, result: dict, verdict: Verdict) -> dict:
    """A prediction with the guard's flags added (the record's and the prediction's own)."""
    result["refused"] = None
    result["flags"] = verdict.flags + check_prediction(result, predictor.meta)
    return result


def guarded_prediction(predictor: Predictor, record, verdict: Verdict | None = None) -> dict:
    """:meth:`Predictor.predict` behind the prediction guard.

    Returns
    -------
    dict
        Refused: ``{"record_id", "task", "refused": reason, "flags": []}`` and no number. Otherwise the
        prediction plus ``"refused": None`` and ``"flags"``: plain-words doubts to show beside the number
        (implausible rate, outside the training range, preparation differing from the run's).
    """
    verdict = verdict or check_record(record, predictor.meta)
    if verdict.refused:
        return _refusal(predictor, record, verdict)
    return _with_flags(predictor, predictor.predict(record), verdict)


def guarded_predictions(
    predictor: Predictor,
    records: Iterable,
    batch_size: int = 32,
    total: int | None = None,
    progress: ProgressFn | None = None,
) -> list[dict]:
    """:func:`guarded_prediction` for many records, in order; the admitted ones ``batch_size`` at a time.

    ``records`` may be any iterable (a generator reading files): at most ``batch_size`` records are held.
    """
    results: list[dict] = []
    chunk: list[tuple[Any, Verdict]] = []

    def flush() -> None:
        admitted = [record for record, verdict in chunk if not verdict.refused]
        predicted = iter(predictor.predict_many(admitted, batch_size))
        for record, verdict in chunk:
            if verdict.refused:
                results.append(_refusal(predictor, record, verdict))
            else:
                results.append(_with_flags(predictor, next(predicted), verdict))
        chunk.clear()
        report(progress, len(results), total or len(results), "records")

    for record in records:
        chunk.append((record, check_record(record, predictor.meta)))
        if len(chunk) >= batch_size:
            flush()
    if chunk:
        flush()
    return results
