"""Run the answer and classifier networks on a Triton server (``tritonclient``, HTTP or gRPC).

The URL's scheme picks the protocol: ``http://host:8000`` or ``grpc://host:8001`` (no scheme:
HTTP). Features and decoding stay in process; only the forward pass goes to Triton, so the
answers equal the in-process ones (``tests/integration/test_triton.py``).
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch

from callqa.encoder.runtime import TextEncoder
from callqa.errors import BadInput, CallQAError, ModelNotFound, ServiceUnavailable
from callqa.understanding.answers import AnswerExtractor
from callqa.understanding.span_model import SPAN_INPUTS, SPAN_OUTPUTS, SpanAnswerExtractor
from serving.triton.export import CLASSIFIER_INPUTS, CLASSIFIER_OUTPUTS

log = logging.getLogger(__name__)

ANSWERS_MODEL = "answers"
ENCODER_MODEL = "encoder"
ERRORS_MODEL = "errors"
CALLTYPE_MODEL = "calltype"
PROTOCOLS = ("http", "grpc")


def parse_url(url: str) -> tuple[str, str]:
    """(protocol, host:port) of a Triton URL."""
    parsed = urlparse(url if "://" in url else f"http://{url}")
    if parsed.scheme not in PROTOCOLS or not parsed.hostname or not parsed.port:
        raise BadInput(f"{url!r}: a Triton URL is http://HOST:PORT or grpc://HOST:PORT")
    return parsed.scheme, f"{parsed.hostname}:{parsed.port}"


def _error(exc: Exception, where: str) -> CallQAError:
    """The callqa error for a tritonclient failure."""
    from tritonclient.utils import InferenceServerException

    if isinstance(exc, InferenceServerException):
        status, message = str(exc.status() or ""), exc.message() or str(exc)
        if "unknown model" in message or "is not found" in message or "not ready" in message:
            return ModelNotFound(f"{where}: {message}")
        if status in ("400", "StatusCode.INVALID_ARGUMENT"):
            return BadInput(f"{where}: {message}")
        return ServiceUnavailable(f"{where}: {message} ({status or 'no status'})")
    return ServiceUnavailable(f"{where}: {type(exc).__name__}: {exc}")


class TritonRunner:
    """Named numpy arrays in, named numpy arrays out, through one model of a Triton server."""

    def __init__(self, url: str, model_name: str, timeout_s: float = 60.0) -> None:
        self.url = url
        self.protocol, self.address = parse_url(url)
        self.model_name = model_name
        self.timeout_s = timeout_s
        self._local = threading.local()  # the HTTP client is not thread-safe: one per thread

    @property
    def _module(self) -> Any:
        if self.protocol == "grpc":
            import tritonclient.grpc as module
        else:
            import tritonclient.http as module
        return module

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            if self.protocol == "grpc":
                client = self._module.InferenceServerClient(self.address)
            else:
                client = self._module.InferenceServerClient(
                    self.address, connection_timeout=self.timeout_s, network_timeout=self.timeout_s
                )
            self._local.client = client
        return client

    def _where(self) -> str:
        return f"Triton {self.url} model {self.model_name!r}"

    def check(self) -> int:
        """Raise unless the model is ready; its ``max_batch_size``."""
        try:
            client = self._client()
            if not client.is_model_ready(self.model_name):
                raise ModelNotFound(f"{self._where()} is not loaded or not ready")
            config = client.get_model_config(self.model_name)
        except CallQAError:
            raise
        except Exception as exc:
            raise _error(exc, self._where()) from exc
        if self.protocol == "grpc":
            return int(config.config.max_batch_size)
        return int(config.get("max_batch_size", 0))

    def infer(self, inputs: Mapping[str, np.ndarray], outputs: Sequence[str]) -> dict[str, np.ndarray]:
        from tritonclient.utils import np_to_triton_dtype

        module = self._module
        request = []
        for name, given in inputs.items():
            array = np.ascontiguousarray(given)
            tensor = module.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
            tensor.set_data_from_numpy(array)
            request.append(tensor)
        wanted = [module.InferRequestedOutput(n) for n in outputs]
        try:
            if self.protocol == "grpc":
                result = self._client().infer(self.model_name, request, outputs=wanted, client_timeout=self.timeout_s)
            else:
                result = self._client().infer(self.model_name, request, outputs=wanted)
        except Exception as exc:
            raise _error(exc, self._where()) from exc
        out = {n: result.as_numpy(n) for n in outputs}
        batch = next(iter(inputs.values())).shape[0] if inputs else 0
        missing = [n for n, a in out.items() if a is None or a.ndim == 0 or a.shape[0] != batch]
        if missing:  # what the bundled server does with numpy 2 in its venv: it answers, but empty
            raise ServiceUnavailable(f"{self._where()} returned no data for {missing}")
        return out

    def close(self) -> None:
        client = getattr(self._local, "client", None)
        if client is not None:
            client.close()
            self._local.client = None


class TritonSpanRunner:
    """A ``SpanRunner`` for ``SpanAnswerExtractor`` whose forward pass runs on Triton."""

    def __init__(self, runner: TritonRunner) -> None:
        self.runner = runner

    def __call__(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        arrays = {k: np.asarray(batch[k]) for k in SPAN_INPUTS}
        b = arrays["words"].shape[0]
        arrays["questions"] = np.broadcast_to(arrays["questions"], (b, *arrays["questions"].shape[-2:]))
        arrays["lengths"] = arrays["lengths"].astype(np.int64).reshape(b, 1)
        arrays["candidates"] = arrays["candidates"].astype(bool)
        out = self.runner.infer(arrays, SPAN_OUTPUTS)
        return tuple(torch.from_numpy(np.array(out[k])) for k in SPAN_OUTPUTS)  # type: ignore[return-value]


class TritonClassifierRunner:
    """A runner for ``TurnClassifier`` (``collate_vectors`` batch → logits, attention) on Triton."""

    def __init__(self, runner: TritonRunner) -> None:
        self.runner = runner

    def __call__(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        arrays = {k: np.asarray(batch[k]) for k in CLASSIFIER_INPUTS}
        arrays["lengths"] = arrays["lengths"].astype(np.int64).reshape(-1, 1)
        out = self.runner.infer(arrays, CLASSIFIER_OUTPUTS)
        return tuple(torch.from_numpy(np.array(out[k])) for k in CLASSIFIER_OUTPUTS)  # type: ignore[return-value]


class TritonStates:
    """A ``StatesBackend`` for ``TextEncoder`` whose forward pass runs on Triton's ``encoder`` model."""

    def __init__(self, runner: TritonRunner, hidden: int, max_batch: int = 0) -> None:
        self.runner = runner
        self.hidden = hidden
        self.max_batch = max_batch

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        step = self.max_batch or len(input_ids)
        parts = [
            self.runner.infer(
                {"input_ids": input_ids[k : k + step].astype(np.int64),
                 "attention_mask": attention_mask[k : k + step].astype(np.int64)},
                ["hidden"],
            )["hidden"]
            for k in range(0, len(input_ids), step)
        ]  # fmt: skip
        return np.concatenate(parts)


def triton_encoder(encoder: TextEncoder, url: str, model_name: str = ENCODER_MODEL) -> TextEncoder:
    """The same encoder (tokenizer, windows, name) with its forward pass on Triton at ``url``."""
    runner = TritonRunner(url, model_name)
    max_batch = runner.check()
    return TextEncoder(
        encoder.tokenizer,
        TritonStates(runner, encoder.hidden, max_batch),
        window=encoder.window,
        stride=encoder.stride,
        max_batch=encoder.max_batch,
        name=encoder.name,
    )


def use_triton_encoder(model: Any, encoder: TextEncoder) -> None:
    """Point a loaded model's featurizer (and the zero-shot evidence it reads) at ``encoder`` when the model
    was built on an encoder of the same name."""
    featurizer = getattr(model, "featurizer", None)
    for holder in (featurizer, getattr(featurizer, "zero_shot", None), model):
        current = getattr(holder, "encoder", None)
        if current is not None and current.name == encoder.name:
            holder.encoder = encoder


def triton_answer_extractor(
    extractor: AnswerExtractor, url: str, model_name: str = ANSWERS_MODEL, *, check: bool = True
) -> AnswerExtractor:
    """``extractor`` with its forward pass on Triton at ``url`` (what serving uses when ``triton_url`` is set).

    Only the span model is exported; other extractors come back unchanged (with a warning).
    ``check``: fail now (``ServiceUnavailable``/``ModelNotFound``) unless the model is ready.
    """
    if not isinstance(extractor, SpanAnswerExtractor):
        log.warning("Triton serves the span answer model only; %s stays in process", extractor.name)
        return extractor
    runner = TritonRunner(url, model_name)
    out = extractor.with_runner(TritonSpanRunner(runner))
    if check:
        max_batch = runner.check()
        if max_batch > 0:  # a request larger than the model's max_batch_size is refused
            out.max_batch_windows = min(out.max_batch_windows, max_batch)
    encoder = out.featurizer.encoder
    if encoder is not None:  # the encoder's forward pass goes to Triton too (its ``encoder`` model)
        out.featurizer = copy.copy(out.featurizer)  # the in-process extractor keeps its own
        out.featurizer.zero_shot = copy.copy(out.featurizer.zero_shot)
        use_triton_encoder(out, triton_encoder(encoder, url))
    log.info("answers on Triton", extra={"url": url, "model": model_name, "extractor": extractor.name})
    return out
