"""ONNX image encoders through onnxruntime (image-only protocols)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from overspec._hashing import digest, path_sha256
from overspec.errors import ModelError
from overspec.models.encoder import Encoder
from overspec.models.preprocess import Preprocess
from overspec.models.spec import ModelSpec


@dataclass
class OnnxEncoder(Encoder):
    session: Any = None

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def to(self, device: str | torch.device) -> OnnxEncoder:
        return self  # onnxruntime picks its execution provider when the session is made

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        graph_input = self.session.get_inputs()[0]
        batch = images.cpu().numpy().astype(np.float32)
        # graphs exported with a fixed batch of 1 (SFace among them) run one image at a time
        chunks = [batch[i : i + 1] for i in range(len(batch))] if graph_input.shape[0] == 1 else [batch]
        outputs = [np.asarray(self.session.run(None, {graph_input.name: c})[0], dtype=np.float32) for c in chunks]
        return torch.from_numpy(np.concatenate(outputs).reshape(len(images), -1))


def load_onnx(spec: ModelSpec) -> OnnxEncoder:
    """``weights`` is an .onnx file taking one NCHW image batch. ONNX carries no preprocessing, so the spec
    gives ``preprocess`` mean/std (size is read from the graph when fixed)."""
    import onnxruntime as ort

    if not spec.weights or not Path(spec.weights).is_file():
        raise ModelError(f"{spec.label}: family onnx needs `weights`, an existing .onnx file (got {spec.weights})")
    if not spec.preprocess or "mean" not in spec.preprocess or "std" not in spec.preprocess:
        raise ModelError(
            f"{spec.label}: ONNX files carry no preprocessing; give `preprocess: {{mean: [...], std: [...]}}` "
            "(values for pixels in [0, 1]; for raw 0-255 input use mean 0 and std 0.00392157)"
        )
    try:
        graph = _used_inputs_only(Path(spec.weights))
    except Exception as exc:  # protobuf's DecodeError and onnx's checker errors share no base class
        raise ModelError(
            f"{spec.label}: {spec.weights} is not an ONNX model ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
            "check that the file downloaded completely"
        ) from None
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
    try:
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: graph clean-up notices are not the user's concern
        session = ort.InferenceSession(graph, sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise ModelError(f"{spec.label}: onnxruntime cannot open {spec.weights}: {str(exc).splitlines()[0]}") from None
    shape = session.get_inputs()[0].shape
    size = shape[-1] if isinstance(shape[-1], int) else 224
    preprocess = Preprocess(size=size, resize="squash").updated(spec.preprocess)
    fingerprint = digest(
        {"family": "onnx", "files": [path_sha256(spec.weights)], "preprocess": preprocess.model_dump()}
    )
    return OnnxEncoder(
        name=spec.label,
        family="onnx",
        arch=spec.arch or Path(spec.weights).stem,
        preprocess=preprocess,
        fingerprint=fingerprint,
        session=session,
    )


def _used_inputs_only(path: Path) -> bytes:
    """The model bytes without graph inputs that no node reads.

    Some exporters (OpenCV Zoo's SFace among them) list initialisers as unused graph inputs, which
    onnxruntime rejects; dropping them changes nothing the graph computes.
    """
    import onnx

    model = onnx.load(str(path))
    used = {name for node in model.graph.node for name in node.input}
    unused = [i for i in model.graph.input if i.name not in used]
    for graph_input in unused:
        model.graph.input.remove(graph_input)
    return model.SerializeToString()
