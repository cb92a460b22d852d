"""ONNX Runtime for the project's encoders: export from PyTorch (checked), and sessions to run them.

An export runs the model once in PyTorch and once in ONNX Runtime on the same inputs and
records the largest difference of any output. Importing onnxruntime takes a tenth of a
second against several for torch, so a process that only queries never imports torch.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np


def session(path: str | Path, threads: int | None = None):
    """A CPU inference session, its threads set deliberately.

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads; by default ``OMP_NUM_THREADS`` where it is set (the
            variable PyTorch reads too, so one setting governs both runtimes), else all
            cores. Workers do not spin while they wait, so two sessions on a busy machine
            share the cores instead of fighting.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    from_environment = os.environ.get("OMP_NUM_THREADS", "")
    options.intra_op_num_threads = threads or (int(from_environment) if from_environment.isdigit() else 0) \
        or os.cpu_count() or 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def padded(encodings: Sequence, width: int, pad_id: int) -> dict[str, np.ndarray]:
    """A model's int64 inputs for ``tokenizers`` encodings, each padded to ``width`` tokens."""
    ids = np.full((len(encodings), width), pad_id, dtype=np.int64)
    types = np.zeros((len(encodings), width), dtype=np.int64)
    mask = np.zeros((len(encodings), width), dtype=np.int64)
    for row, encoding in enumerate(encodings):
        n = len(encoding.ids)
        ids[row, :n], types[row, :n], mask[row, :n] = encoding.ids, encoding.type_ids, 1
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}


def export(model, inputs: Mapping[str, np.ndarray], outputs: Sequence[str], select: Callable,
           path: str | Path) -> float:
    """Export a transformers model to ONNX (dynamic batch and length), check it, and write it atomically.

    Args:
        model: called with ``inputs`` as keyword tensors.
        inputs: sample int64 arrays, shaped (batch, length).
        outputs: the names of what is exported.
        select: picks those outputs, as a tuple of tensors, from what ``model`` returns.
        path: the ``.onnx`` file to write; ``<path>.json`` records the check.

    Returns:
        The largest absolute difference between PyTorch's and ONNX Runtime's outputs on ``inputs``.
    """
    import onnxruntime
    import torch

    names = list(inputs)

    class Selected(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors):
            return select(self.model(**dict(zip(names, tensors))))

    module = Selected().eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = tuple(torch.from_numpy(inputs[name]) for name in names)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    axes = {name: {0: "batch", 1: "length"} for name in [*names, *outputs]}
    with torch.inference_mode():
        expected = [t.float().numpy() for t in module(*tensors)]
    with warnings.catch_warnings():  # the tracer's notes on shapes; the check below is what counts
        warnings.simplefilter("ignore")
        torch.onnx.export(module, tensors, str(tmp), dynamo=False, input_names=names, output_names=list(outputs),
                          dynamic_axes=axes, opset_version=17)
    got = session(tmp).run(list(outputs), {name: inputs[name] for name in names})
    difference = float(max(np.abs(a - b).max() for a, b in zip(expected, got)))
    check = {"max_abs_difference": difference, "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
             "checked_on": {name: list(array.shape) for name, array in inputs.items()}}
    path.with_suffix(".json").write_text(json.dumps(check, indent=2) + "\n")
    os.replace(tmp, path)
    return difference


def quantize(source: str | Path, path: str | Path, inputs: Mapping[str, np.ndarray], outputs: Sequence[str]) -> float:
    """An int8 copy of an export, checked against it and written atomically.

    ONNX Runtime's dynamic quantization: the weights of every MatMul become int8, one scale
    per output channel; activations are quantized as they come, per tensor. One scale per
    weight matrix instead (``per_channel=False``) cost the reader 5.9 EM on the bundled gold
    set where per channel cost none (docs/results.md, "Latency").

    Args:
        source: the fp32 ``.onnx`` export.
        path: the int8 ``.onnx`` file to write; ``<path>.json`` records the check.
        inputs: sample int64 arrays to compare the two on.
        outputs: the names of the outputs compared.

    Returns:
        The largest absolute difference of an output between the fp32 export and the int8 copy.
    """
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # it advises shape pre-processing on the root logger, which these graphs do not need
    try:
        quantize_dynamic(str(source), str(tmp), per_channel=True, weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul"])
    finally:
        root.setLevel(level)
    expected = session(source).run(list(outputs), dict(inputs))
    got = session(tmp).run(list(outputs), dict(inputs))
    difference = float(max(np.abs(a - b).max() for a, b in zip(expected, got)))
    check = {"max_abs_difference_from_fp32": difference, "quantized_from": Path(source).name,
             "method": "onnxruntime dynamic quantization: MatMul weights int8 per output channel",
             "onnxruntime": onnxruntime.__version__, "checked_on": {n: list(a.shape) for n, a in inputs.items()}}
    path.with_suffix(".json").write_text(json.dumps(check, indent=2) + "\n")
    os.replace(tmp, path)
    return difference


def eager_attention(model) -> None:
    """Switch a transformers model to plain attention, which exports to fusable ONNX ops."""
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")
    else:
        model.config._attn_implementation = "eager"
