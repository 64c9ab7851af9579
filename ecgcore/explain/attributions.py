"""Attributions ``[leads, samples]`` for any model of the zoo, and what they say per lead and per wave.

All methods come from captum. Every attribution explains one *raw* model output (a class logit or a
standardised regression output), chosen by index, so that Integrated Gradients' completeness
property (the attributions sum to ``score - baseline score``) can be checked on the result.

Baselines (the "absence of signal" a method compares against) are explicit and travel with the
result: ``zeros`` (an all-zero input), ``lead_mean`` (each lead's own mean: a flat line at its
average level) and ``lowpass`` (a low-pass-filtered copy of the record, which keeps slow baseline
drift but removes the P, QRS and T waves). What zero *means* depends on the run's normalisation, so
the default is chosen from it (:func:`default_baseline`): the baseline should be a flat line at the
lead's isoelectric level, which after the 0.5 Hz high-pass is the lead's mean, ~0 mV.

* ``zscore``: zero *is* each lead's mean -> ``zeros`` (identical to ``lead_mean``);
* ``train_standardize``: zero is the training split's mean per lead (~0 mV after the high-pass) -> ``zeros``;
* ``none`` (millivolts): zero is 0 mV, the isoelectric level when band-passed -> ``zeros``; without
  the band-pass a lead can sit on an offset -> ``lead_mean``;
* ``minmax`` ([0, 1] per lead): zero is each lead's *minimum* (the deepest S or Q wave), a
  strongly negative "signal", not its absence -> ``lead_mean``: the normalised value of the lead's
  mean, i.e. of ~0 mV after the high-pass. (The range midpoint 0.5 was the other candidate; it is not
  the isoelectric level, since the QRS peaks set the range, so it is not used.)

Waves of a beat, from the interval measurement's per-beat fiducials (sample indices):

* P: ``p_on .. p_off`` when ``p_off`` is known, else ``p_on .. qrs_on``;
* QRS: ``qrs_on .. qrs_off``;
* ST segment: ``qrs_off .. t_on`` when ``t_on`` is known, else the first :data:`ST_SHARE` of
  ``qrs_off .. t_off`` (the measurement does not locate T onsets);
* T wave: the rest up to ``t_off``.

Samples outside every wave count as ``other``, so the five shares sum to one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.signal import butter, sosfiltfilt
from torch import nn

METHODS: tuple[str, ...] = ("ig", "saliency", "gradientshap", "occlusion", "gradcam")
BASELINES: tuple[str, ...] = ("zeros", "lead_mean", "lowpass")
WAVES: tuple[str, ...] = ("P", "QRS", "ST", "T")
#: Cut-off (Hz) of the ``lowpass`` baseline: below the P, QRS and T waves' content.
LOWPASS_HZ = 1.0
#: Share of ``qrs_off .. t_off`` counted as ST segment when the T onset is unknown.
ST_SHARE = 0.4
#: Occlusion window per lead, seconds.
OCCLUSION_WINDOW_S = 0.2
#: Integrated Gradients: largest step count the convergence check goes to, and the precisions it may run in.
IG_MAX_STEPS = 512
#: The default saliency (explain, report, pages): Integrated Gradients from this many Gauss-Legendre steps,
#: doubled until the completeness gap is under ``IG_TOLERANCE``.
IG_FIRST_STEPS = 16
IG_TOLERANCE = 0.05
IG_PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "auto")


def default_baseline(normalize: str, bandpass: bool = True) -> str:
    """The baseline that is a flat line at the isoelectric level for inputs normalised by ``normalize``
    (see the module docstring for the reasoning per normalisation)."""
    if normalize in ("zscore", "train_standardize") or (normalize == "none" and bandpass):
        return "zeros"
    return "lead_mean"


def describe_baseline(name: str | None, normalize: str | None = None) -> str:
    """Plain words for baseline ``name`` on inputs normalised by ``normalize`` (for every output)."""
    if name is None:
        return "none (this method uses no baseline)"
    if name == "zeros":
        meaning = {
            "zscore": "each lead's mean (the input is z-scored)",
            "train_standardize": "the training split's mean per lead",
            "none": "0 mV",
            "minmax": "each lead's minimum (min-max input): NOT an absent signal",
        }.get(normalize or "", "an all-zero input")
        return f"zeros = {meaning}"
    if name == "lead_mean":
        return "lead_mean = a flat line at each lead's mean (~0 mV after the high-pass)"
    return f"lowpass = the record low-passed at {LOWPASS_HZ:g} Hz (drift kept, waves removed)"


@dataclass
class Attribution:
    """One attribution map and what it explains.

    Attributes
    ----------
    values
        ``[leads, samples]`` float32 attribution per input sample.
    method, baseline
        The method and the baseline name (``None`` for methods that use none: saliency, Grad-CAM).
    target
        Index of the explained model output.
    score, baseline_score
        That output for the input and for the baseline (``None`` without a baseline).
    delta
        Captum's convergence delta (IG, GradientSHAP): ``sum(values) - (score - baseline_score)``.
    lead_resolved
        ``False`` for Grad-CAM, whose map has no lead axis (the same time course is given to every lead).
    """

    values: np.ndarray
    method: str
    baseline: str | None
    target: int
    score: float
    baseline_score: float | None = None
    delta: float | None = None
    lead_resolved: bool = True
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-able summary (without the map itself)."""
        return {
            "method": self.method,
            "baseline": self.baseline,
            "target": self.target,
            "score": self.score,
            "baseline_score": self.baseline_score,
            "delta": self.delta,
            "lead_resolved": self.lead_resolved,
            "sum": float(self.values.sum()),
            **self.extra,
        }


def as_input(x: np.ndarray | torch.Tensor, model: nn.Module) -> torch.Tensor:
    """``[L, S]`` or ``[1, L, S]`` array -> float32 tensor ``[1, L, S]`` on the model's device."""
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=torch.float32)
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3 or t.shape[0] != 1:
        raise ValueError(
            f"expected one record as [leads, samples] or [1, leads, samples], got shape {tuple(t.shape)}"
        )
    return t.to(next(model.parameters()).device)


def make_baseline(x: torch.Tensor, kind: str, fs: float) -> torch.Tensor:
    """The baseline ``kind`` for input ``x`` ``[1, L, S]`` (see the module docstring)."""
    if kind == "zeros":
        return torch.zeros_like(x)
    if kind == "lead_mean":
        return x.mean(dim=-1, keepdim=True).expand_as(x).contiguous()
    if kind == "lowpass":
        sos = butter(2, LOWPASS_HZ, btype="lowpass", fs=fs, output="sos")
        smooth = sosfiltfilt(sos, x.detach().cpu().numpy().astype(np.float64), axis=-1)
        return torch.as_tensor(smooth.astype(np.float32), device=x.device)
    raise ValueError(f"unknown baseline {kind!r}; expected one of {', '.join(BASELINES)}")


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode (no dropout, frozen batch statistics), restored after.

    cuDNN's recurrent kernels cannot back-propagate in eval mode, so for models with an RNN / LSTM
    cuDNN is switched off inside the block (CPU runs are unaffected).
    """
    was_training = model.training
    model.eval()
    has_rnn = any(isinstance(m, nn.RNNBase) for m in model.modules())
    try:
        with torch.backends.cudnn.flags(enabled=False) if has_rnn else nullcontext():
            yield model
    finally:
        model.train(was_training)


@torch.no_grad()
def output(model: nn.Module, x: torch.Tensor, target: int, batch_size: int = 32) -> np.ndarray:
    """Model output ``target`` for every input of the batch ``x`` ``[B, L, S]`` (in chunks)."""
    with eval_mode(model):
        return torch.cat(
            [model(x[i : i + batch_size])[:, target].float().cpu() for i in range(0, len(x), batch_size)]
        ).numpy()


def attribute(
    model: nn.Module,
    x: np.ndarray | torch.Tensor,
    target: int,
    method: str = "ig",
    baseline: str = "zeros",
    *,
    fs: float = 500.0,
    n_steps: int = 50,
    internal_batch_size: int | None = None,
    n_samples: int = 20,
    occlusion_window_s: float = OCCLUSION_WINDOW_S,
    seed: int = 0,
    tolerance: float | None = None,
    precision: str = "fp32",
) -> Attribution:
    """Attribute model output ``target`` to the input samples of one record.

    Parameters
    ----------
    model
        An :class:`ecgcore.models.ECGModel` (any module ``[B, L, S] -> [B, outputs]`` works; Grad-CAM
        needs ``model.last_conv()``). It is put in eval mode for the call.
    x
        The model input, ``[L, S]`` or ``[1, L, S]`` (already preprocessed).
    target
        Output index: class index or regression output index.
    method
        ``ig`` (Integrated Gradients, Gauss-Legendre, ``n_steps``), ``saliency`` (|gradient|),
        ``gradientshap`` (``n_samples`` random points between the baseline and the input plus Gaussian
        noise of 0.1 x the input's SD), ``occlusion``
        (windows of ``occlusion_window_s`` per lead, replaced by the baseline), ``gradcam`` (Grad-CAM
        on the last convolution, ReLU, linearly upsampled to the input length).
    baseline
        One of :data:`BASELINES`; ignored (and reported as ``None``) by saliency and Grad-CAM.
    fs
        Sampling rate of ``x`` (for the low-pass baseline and the occlusion window).
    internal_batch_size
        Interpolation steps per forward/backward pass for IG (default: all steps in one batch).
    tolerance
        IG only: the largest completeness gap accepted, ``|delta| / |score - baseline score|`` (e.g. 0.05).
        Steps are doubled from ``n_steps`` (up to :data:`IG_MAX_STEPS`) until the gap is below it;
        ``extra`` records the steps taken and the gap. ``None``: ``n_steps`` once.
    precision
        IG only: ``fp32``, ``bf16`` (autocast; faster where the CPU / GPU has native bf16) or ``auto``
        (bf16 where native, falling back to fp32 when bf16 cannot meet ``tolerance``).
        IG runs on an eval copy of the model with its batch norms folded (same function, fewer passes).

    Raises
    ------
    ValueError
        For an unknown method or baseline, a target out of range, or Grad-CAM on a model without convolutions.
    """
    from captum.attr import (
        GradientShap,
        LayerAttribution,
        LayerGradCam,
        Occlusion,
        Saliency,
    )

    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; expected one of {', '.join(METHODS)}")
    if baseline not in BASELINES:
        raise ValueError(f"unknown baseline {baseline!r}; expected one of {', '.join(BASELINES)}")
    inp = as_input(x, model)
    with eval_mode(model):
        with torch.no_grad():
            out = model(inp)
        if not 0 <= int(target) < out.shape[1]:
            raise ValueError(f"target {target} is out of range: the model has {out.shape[1]} outputs")
        target = int(target)
        score = float(out[0, target])
        uses_baseline = method in ("ig", "gradientshap", "occlusion")
        base = make_baseline(inp, baseline, fs) if uses_baseline else None
        delta = None
        lead_resolved = True
        extra: dict = {}
        if method == "ig":
            attr, delta, extra = integrated_gradients(
                model, inp, base, target, n_steps, internal_batch_size, tolerance, precision
            )
        elif method == "saliency":
            attr = Saliency(model).attribute(inp.clone().requires_grad_(True), target=target, abs=True)
        elif method == "gradientshap":
            with seeded(seed):
                attr, d = GradientShap(model).attribute(
                    inp,
                    baselines=base,
                    n_samples=n_samples,
                    stdevs=0.1 * float(inp.std()),
                    target=target,
                    return_convergence_delta=True,
                )
            delta = float(d.mean())
        elif method == "occlusion":
            window = max(1, int(round(occlusion_window_s * fs)))
            attr = Occlusion(model).attribute(
                inp,
                sliding_window_shapes=(1, window),
                strides=(1, window),
                baselines=base,
                target=target,
                perturbations_per_eval=16,
            )
        else:
            layer = model.last_conv() if hasattr(model, "last_conv") else None
            if layer is None:
                raise ValueError(
                    f"Grad-CAM needs a convolution; model {type(model).__name__} has none (last_conv() is None)"
                )
            cam = LayerGradCam(model, layer).attribute(inp, target=target, relu_attributions=True)
            cam = LayerAttribution.interpolate(cam, inp.shape[-1], interpolate_mode="linear")  # [1, 1, S]
            attr = cam.expand_as(inp)
            lead_resolved = False
        baseline_score = float(output(model, base, target)[0]) if base is not None else None
    return Attribution(
        values=attr.detach().float().cpu().numpy()[0].astype(np.float32),
        method=method,
        baseline=baseline if uses_baseline else None,
        target=target,
        score=score,
        baseline_score=baseline_score,
        delta=delta,
        lead_resolved=lead_resolved,
        extra=extra,
    )


def attribute_beat(
    model: nn.Module,
    x: np.ndarray | torch.Tensor,
    target: int,
    method: str = "gradcam",
    *,
    signal_channels: int = 2,
    fs: float = 360.0,
    n_steps: int = 50,
) -> Attribution:
    """Grad-CAM or Integrated Gradients of a beat model on one beat window ``[channels, samples]``.

    Beat models (``cnn_bilstm_attention_beat``) take the beat's lead windows followed by constant
    context channels (RR before and after, as ratio - 1; see ``ecgcore.beats.features``). The map is
    returned for the ``signal_channels`` lead windows; with IG (zeros baseline: flat leads, RR equal to
    the local RR) the share of the attribution that went to the context channels is in
    ``extra["context"]`` (their summed attribution), so completeness still holds over both.
    """
    if method not in ("gradcam", "ig"):
        raise ValueError(f"beat attributions are 'gradcam' or 'ig', not {method!r}")
    result = attribute(model, x, target, method, "zeros", fs=fs, n_steps=n_steps)
    context = result.values[signal_channels:]
    result.extra["context"] = float(context.sum()) if method == "ig" else None
    result.values = result.values[:signal_channels]
    return result


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's and numpy's global generators for the block, and give the caller's states back after.

    captum's GradientSHAP draws its interpolation points from ``np.random`` and its noise from torch's
    default generator; seeding both makes it reproducible without disturbing anyone else's random stream.
    """
    state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(state)


class _Autocast(nn.Module):
    """``net`` run under autocast to ``dtype`` (``None``: fp32), returning float32 outputs."""

    def __init__(self, net: nn.Module, dtype: torch.dtype | None) -> None:
        super().__init__()
        self.net, self.dtype = net, dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dtype is None:
            return self.net(x)
        with torch.autocast(x.device.type, dtype=self.dtype):
            return self.net(x).float()


def integrated_gradients(
    model: nn.Module,
    inp: torch.Tensor,
    base: torch.Tensor,
    target: int,
    n_steps: int = 50,
    internal_batch_size: int | None = None,
    tolerance: float | None = None,
    precision: str = "fp32",
) -> tuple[torch.Tensor, float, dict]:
    """Integrated Gradients (Gauss-Legendre) of ``target`` with batched steps; see :func:`attribute`.

    Returns the attribution ``[1, L, S]``, the completeness delta and ``extra``: ``ig_steps`` (steps of
    the returned map), ``ig_gap`` (relative completeness gap), ``ig_precision``, ``ig_tried`` ([(precision,
    steps, gap), ...] in the order run).
    """
    from captum.attr import IntegratedGradients

    from ecgcore.predict import fold_batchnorm, inference_dtype
    from ecgcore.train.layout import channels_last, plain_layout, wants_channels_last

    if precision not in IG_PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(IG_PRECISIONS)}")
    net, _ = fold_batchnorm(model)
    with torch.no_grad():
        difference = float(net(inp)[0, target] - net(base)[0, target])
    dtypes: list[torch.dtype | None] = [None]
    if precision == "bf16":
        dtypes = [torch.bfloat16]
    elif precision == "auto" and inference_dtype(inp.device, "auto") is not None:
        dtypes = [torch.bfloat16, None]
    tried: list[tuple[str, int, float]] = []
    for dtype in dtypes:
        if wants_channels_last(inp.device, dtype):  # oneDNN's AMX layout: no reorder per convolution
            channels_last(net)  # ``net`` is fold_batchnorm's own copy: converted in place, no second copy
        else:
            plain_layout(net)
        ig = IntegratedGradients(_Autocast(net, dtype))
        steps = n_steps
        while True:
            attr, d = ig.attribute(
                inp,
                baselines=base,
                target=target,
                n_steps=steps,
                internal_batch_size=internal_batch_size or steps,
                return_convergence_delta=True,
            )
            delta = float(d.sum())
            gap = abs(delta) / max(abs(difference), 1e-12)
            tried.append(("bf16" if dtype is not None else "fp32", steps, gap))
            if tolerance is None or gap < tolerance or steps >= IG_MAX_STEPS:
                break
            steps = min(2 * steps, IG_MAX_STEPS)
        if tolerance is None or gap < tolerance:
            break
    extra = {"ig_steps": steps, "ig_gap": gap, "ig_precision": tried[-1][0], "ig_tried": tried}
    return attr.float(), delta, extra


# --- summaries ---------------------------------------------------------------------------------
def lead_importance(values: np.ndarray, leads: Sequence[str]) -> dict[str, float]:
    """Share of the absolute attribution per lead (sums to one; uniform for an all-zero map)."""
    values = np.asarray(values)
    if values.ndim != 2 or values.shape[0] != len(leads):
        raise ValueError(f"attribution shape {values.shape} does not match {len(leads)} leads {list(leads)}")
    mass = np.abs(values).sum(axis=1).astype(np.float64)
    total = mass.sum()
    share = mass / total if total > 0 else np.full(len(leads), 1.0 / len(leads))
    return {lead: float(s) for lead, s in zip(leads, share)}


def _fiducial(beat_fiducials: Mapping[str, np.ndarray], key: str, n_beats: int) -> np.ndarray:
    """Per-beat sample indices of ``key`` as float (NaN where missing: absent key, NaN or negative)."""
    if key not in beat_fiducials:
        return np.full(n_beats, np.nan)
    v = np.asarray(beat_fiducials[key], dtype=np.float64).reshape(-1)
    if len(v) != n_beats:
        raise ValueError(
            f"beat fiducials disagree on the number of beats: {key!r} has {len(v)}, expected {n_beats}"
        )
    return np.where(v >= 0, v, np.nan)


def wave_masks(
    n_samples: int, beat_fiducials: Mapping[str, np.ndarray], scale: float = 1.0
) -> dict[str, np.ndarray]:
    """Boolean masks ``[n_samples]`` of the P, QRS, ST and T samples of every beat (module docstring).

    ``scale`` converts fiducial sample indices to the attribution's sampling (``fs_input / fs_record``).
    A wave with a missing bound in a beat is left out for that beat.
    """
    if "qrs_on" not in beat_fiducials or "qrs_off" not in beat_fiducials:
        raise ValueError(f"beat fiducials need qrs_on and qrs_off; got {sorted(beat_fiducials)}")
    n_beats = len(np.asarray(beat_fiducials["qrs_on"]).reshape(-1))
    f = {
        k: _fiducial(beat_fiducials, k, n_beats) * scale
        for k in ("p_on", "p_off", "qrs_on", "qrs_off", "t_on", "t_off")
    }
    p_end = np.where(np.isfinite(f["p_off"]), f["p_off"], f["qrs_on"])
    st_end = np.where(
        np.isfinite(f["t_on"]), f["t_on"], f["qrs_off"] + ST_SHARE * (f["t_off"] - f["qrs_off"])
    )
    bounds = {
        "P": (f["p_on"], p_end),
        "QRS": (f["qrs_on"], f["qrs_off"]),
        "ST": (f["qrs_off"], st_end),
        "T": (st_end, f["t_off"]),
    }
    masks = {}
    for wave, (start, stop) in bounds.items():
        mask = np.zeros(n_samples, dtype=bool)
        for a, b in zip(start, stop):
            if np.isfinite(a) and np.isfinite(b) and b > a:
                mask[max(int(round(a)), 0) : min(int(round(b)), n_samples)] = True
        masks[wave] = mask
    # a sample belongs to one wave only, earlier waves first (QRS wins over a P that overlaps it)
    taken = np.zeros(n_samples, dtype=bool)
    for wave in ("QRS", "P", "ST", "T"):
        masks[wave] &= ~taken
        taken |= masks[wave]
    return {wave: masks[wave] for wave in WAVES}


def wave_importance(
    values: np.ndarray, beat_fiducials: Mapping[str, np.ndarray], scale: float = 1.0
) -> dict[str, float]:
    """Share of the absolute attribution (all leads) inside P, QRS, ST, T of every beat, and ``other``.

    The shares sum to one. Compare a share with :func:`wave_coverage` (the share of *time* the wave
    takes): a wave matters when its attribution share clearly exceeds its time share.
    """
    per_sample = np.abs(np.asarray(values, dtype=np.float64)).sum(axis=0)
    masks = wave_masks(per_sample.shape[0], beat_fiducials, scale)
    total = per_sample.sum()
    if total <= 0:
        return {**{w: 0.0 for w in WAVES}, "other": 1.0}
    shares = {w: float(per_sample[m].sum() / total) for w, m in masks.items()}
    shares["other"] = float(max(0.0, 1.0 - sum(shares.values())))
    return shares


def wave_coverage(
    n_samples: int, beat_fiducials: Mapping[str, np.ndarray], scale: float = 1.0
) -> dict[str, float]:
    """Share of the samples that each wave covers (the chance level for :func:`wave_importance`)."""
    masks = wave_masks(n_samples, beat_fiducials, scale)
    shares = {w: float(m.mean()) for w, m in masks.items()}
    shares["other"] = float(max(0.0, 1.0 - sum(shares.values())))
    return shares


def top_items(
    shares: Mapping[str, float], k: int = 3, exclude: Sequence[str] = ("other",)
) -> list[tuple[str, float]]:
    """The ``k`` largest shares, largest first (``other`` left out)."""
    items = [(name, v) for name, v in shares.items() if name not in exclude]
    return sorted(items, key=lambda item: -item[1])[:k]
