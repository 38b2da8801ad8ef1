"""Triton export: ONNX parity with PyTorch, batched == per item, the repository Triton reads, the backend model."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from callqa.errors import BadInput
from callqa.synthetic import generate_calls
from callqa.understanding.classifiers import ClassifierConfig, TurnAttentionNet
from callqa.understanding.span_model import SPAN_INPUTS, SpanAnswerExtractor, SpanConfig, SpanNet
from serving.triton.client import TritonSpanRunner, parse_url
from serving.triton.export import classifier_example, export_onnx, run_onnx, span_example
from serving.triton.repository import PYTHON_MODEL, RepositoryOptions, add_model, config_pbtxt

TOL = 1e-4


def _span_net(seed: int = 0) -> tuple[SpanNet, SpanConfig]:
    torch.manual_seed(seed)
    cfg = SpanConfig(hidden=8, model_hidden=8, window=40, stride=20, threshold=-1e9)
    return SpanNet(cfg).eval(), cfg


def _classifier(seed: int = 0) -> tuple[TurnAttentionNet, ClassifierConfig]:
    torch.manual_seed(seed)
    cfg = ClassifierConfig(type="errors", labels=["a", "b", "c"], hidden=8)
    return TurnAttentionNet(cfg).eval(), cfg


@pytest.fixture(scope="module")
def span_onnx(tmp_path_factory):
    net, cfg = _span_net()
    return net, export_onnx(net, cfg, tmp_path_factory.mktemp("span"))


class OnnxRunner:
    """The exported file in process, called the way the Triton client calls the server."""

    def __init__(self, path):
        self.path = path

    def infer(self, inputs, outputs):
        inputs = dict(inputs) | {"lengths": inputs["lengths"].reshape(-1)}
        out = run_onnx(self.path, inputs)
        return {k: out[k] for k in outputs}


def test_span_onnx_matches_pytorch_and_batched_equals_per_item(span_onnx):
    net, exported = span_onnx
    x = span_example(batch=4, tokens=33, questions=5, seed=1)
    with torch.no_grad():  # in process the questions go in once, unbatched
        args = [torch.from_numpy(x[k]) for k in SPAN_INPUTS]
        args[3] = args[3][0]
        ref = [t.numpy() for t in net(*args)]
    got = run_onnx(exported.onnx, x)
    assert got["start"].shape == (4, 5, 34)
    assert np.abs(got["start"] - ref[0]).max() <= TOL and np.abs(got["end"] - ref[1]).max() <= TOL
    for i, n in enumerate(x["lengths"]):
        one = run_onnx(exported.onnx, {k: v[i : i + 1, :n] if v.ndim > 1 and k != "questions" else v[i : i + 1]
                                       for k, v in x.items()})  # fmt: skip
        for k in ("start", "end"):
            assert np.abs(one[k][0] - got[k][i, :, : n + 1]).max() <= TOL


def test_classifier_onnx_matches_pytorch_and_batched_equals_per_item(tmp_path):
    net, cfg = _classifier()
    exported = export_onnx(net, cfg, tmp_path)
    x = classifier_example(batch=3, turns=9, seed=2)
    with torch.no_grad():
        logits, attn = (t.numpy() for t in net(*(torch.from_numpy(x[k]) for k in ("turns", "metrics", "lengths"))))
    got = run_onnx(exported.onnx, x)
    assert np.abs(got["logits"] - logits).max() <= TOL and np.abs(got["attention"] - attn).max() <= TOL
    for i, n in enumerate(x["lengths"]):
        one = run_onnx(exported.onnx, {"turns": x["turns"][i : i + 1, :n], "metrics": x["metrics"][i : i + 1],
                                       "lengths": x["lengths"][i : i + 1]})  # fmt: skip
        assert np.abs(one["logits"][0] - got["logits"][i]).max() <= TOL
        assert np.abs(one["attention"][0] - got["attention"][i, :, :n]).max() <= TOL


def _key(answers):
    return [[(a.question_id, a.turn, a.text, a.value) for a in per_call] for per_call in answers]


def test_extract_many_and_the_exported_model_give_the_per_call_answers(span_onnx, questionnaire, supplier_call):
    net, exported = span_onnx
    calls = [c.to_call() for c in [*generate_calls(4, seed=11), supplier_call]]
    extractor = SpanAnswerExtractor(net, _span_net()[1], questionnaire, max_batch_windows=5)
    one_by_one = [extractor.extract(c) for c in calls]
    assert sum(len(a) for a in one_by_one) == len(calls) * len(questionnaire.questions)  # threshold: answer all
    many = extractor.extract_many(calls)
    assert _key(many) == _key(one_by_one)
    conf = [[a.confidence for a in per] for per in many]
    assert np.allclose(conf, [[a.confidence for a in per] for per in one_by_one], atol=1e-5)
    onnx = extractor.with_runner(TritonSpanRunner(OnnxRunner(exported.onnx)))  # type: ignore[arg-type]
    assert _key(onnx.extract_many(calls)) == _key(one_by_one)


@pytest.mark.parametrize("gpu", [False, True])
def test_config_pbtxt_is_a_valid_triton_config(gpu, span_onnx):
    _net, exported = span_onnx
    options = RepositoryOptions(max_batch_size=32, gpu=gpu, instances=2, backend="onnxruntime" if gpu else "python")
    text = config_pbtxt("answers", exported, options)
    config = text_format.Parse(text, model_config_pb2.ModelConfig())
    assert config.name == "answers" and config.max_batch_size == 32
    assert config.backend == ("onnxruntime" if gpu else "python")
    assert list(config.dynamic_batching.preferred_batch_size) == [8, 16, 32]
    assert config.dynamic_batching.max_queue_delay_microseconds == 2000
    group = config.instance_group[0]
    assert group.count == 2
    assert group.kind == (
        model_config_pb2.ModelInstanceGroup.KIND_GPU if gpu else model_config_pb2.ModelInstanceGroup.KIND_CPU
    )
    inputs = {i.name: i for i in config.input}
    assert list(inputs) == list(SPAN_INPUTS)
    assert inputs["candidates"].data_type == model_config_pb2.TYPE_BOOL
    assert list(inputs["pair"].dims) == [-1, -1, 7] and list(inputs["lengths"].reshape.shape) == []
    assert [o.name for o in config.output] == ["start", "end"]


def test_repository_layout(tmp_path):
    net, cfg = _classifier()
    model_dir = add_model(tmp_path, "errors", net, cfg)
    assert {p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*")} == {
        "config.pbtxt", "1", "1/model.onnx", "1/model.json", "1/model.py"
    }  # fmt: skip
    onnx_only = add_model(tmp_path / "gpu", "errors", net, cfg, RepositoryOptions(gpu=True, backend="onnxruntime"))
    assert not (onnx_only / "1" / "model.py").exists()
    assert 'default_model_filename: "model.onnx"' in (onnx_only / "config.pbtxt").read_text()


class _FakeTensor:
    def __init__(self, name, array):
        self.name, self.array = name, array

    def as_numpy(self):
        return self.array


def _fake_backend_utils() -> types.ModuleType:
    """The parts of Triton's ``triton_python_backend_utils`` the generated model uses."""
    pb = types.ModuleType("triton_python_backend_utils")
    pb.Tensor = _FakeTensor
    pb.TritonError = RuntimeError
    pb.get_input_tensor_by_name = lambda request, name: _FakeTensor(name, request[name]) if name in request else None

    class InferenceResponse:
        def __init__(self, output_tensors=(), error=None):
            self.tensors = {t.name: t.array for t in output_tensors}
            self.error = error

    pb.InferenceResponse = InferenceResponse
    return pb


def test_python_backend_model_batches_equal_shapes_and_answers_each_request(span_onnx, monkeypatch):
    _net, exported = span_onnx
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", _fake_backend_utils())
    scope: dict = {}
    exec(compile(PYTHON_MODEL, "model.py", "exec"), scope)
    model = scope["TritonPythonModel"]()
    model.initialize({"model_config": "{}", "model_repository": str(exported.onnx.parents[1]),
                      "model_version": exported.onnx.parent.name, "model_instance_kind": "CPU"})  # fmt: skip
    requests = []
    for seed, tokens in ((1, 20), (2, 20), (3, 31)):
        x = span_example(batch=2, tokens=tokens, questions=4, seed=seed)
        requests.append(x | {"lengths": x["lengths"].reshape(-1, 1)})
    broken = {k: v for k, v in requests[0].items() if k != "pair"}
    responses = model.execute([*requests, broken])
    for request, response in zip(requests, responses, strict=False):
        want = run_onnx(exported.onnx, request | {"lengths": request["lengths"].reshape(-1)})
        assert response.error is None
        assert np.abs(response.tensors["start"] - want["start"]).max() <= TOL
    assert responses[-1].error is not None and not responses[-1].tensors


def test_triton_urls():
    assert parse_url("grpc://127.0.0.1:8001") == ("grpc", "127.0.0.1:8001")
    assert parse_url("127.0.0.1:8000") == ("http", "127.0.0.1:8000")
    with pytest.raises(BadInput):
        parse_url("ftp://127.0.0.1:8000")
