"""Data builders for tests: small calls written inline rather than large fixture files."""

from __future__ import annotations

from pathlib import Path

from callqa.schemas import Call, LabelledCall, Turn

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def make_call(*turns: tuple[str, str], call_id: str = "t-1", **kwargs: object) -> Call:
    """A call from (speaker, text) pairs: ``make_call(("AGENT", "..."), ("CLIENT", "..."))``."""
    return Call(call_id=call_id, turns=[Turn(speaker=s, text=t) for s, t in turns], **kwargs)


def make_labelled(
    *turns: tuple[str, str], answers: dict[str, tuple[int, str, object] | None] | None = None, **kwargs: object
) -> LabelledCall:
    """A labelled call; answers map question id → (turn, exact text, value) or None."""
    return LabelledCall(
        call_id=str(kwargs.pop("call_id", "l-1")),
        turns=[Turn(speaker=s, text=t) for s, t in turns],
        answers={
            q: (None if a is None else {"turn": a[0], "text": a[1], "value": a[2]}) for q, a in (answers or {}).items()
        },
        **kwargs,
    )


def register_calltype_model(settings, workdir) -> str:
    """An untrained call-type classifier registered as a new ``callqa-calltype`` version; its number."""
    import mlflow
    from callqa import registry
    from callqa.text.lexicon import load_lexicon
    from callqa.understanding.classifiers import ClassifierConfig, TurnAttentionNet, TurnClassifier
    from mlflow import MlflowClient
    from training.classifiers import LABELS

    cfg = ClassifierConfig(type="calltype", labels=LABELS["calltype"], hidden=4)
    TurnClassifier(TurnAttentionNet(cfg), cfg, load_lexicon(settings.lexicon)).save(workdir / "ct")
    exp = registry.experiment("callqa-test", settings)
    client = MlflowClient()
    name = registry.model_name("calltype")
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_artifacts(str(workdir / "ct"), "model")
    return str(client.create_model_version(name, f"{run.info.artifact_uri}/model", run.info.run_id).version)


TINY_ENCODER_TEXT = (
    "Добрый день меня зовут Ольга компания ТехноСнаб. Кто ваш текущий поставщик? Мы берём у Севзапкабеля. "
    "Когда планируется следующая закупка? Наверное в марте, бюджет утверждают в декабре. "
    "А кто принимает решение? Генеральный директор подписывает. На какую сумму была последняя закупка? "
    "Тысяч на триста примерно. менеджер клиент passage query"
)


def make_tiny_encoder(path: Path, hidden: int = 32, layers: int = 2, vocab: int = 300) -> Path:
    """A tiny XLM-RoBERTa-shaped encoder with its own Unigram tokenizer, built and saved in seconds.

    The tests' stand-in for the real e5 encoder wherever the encoder's weights do not matter
    (shapes, windows, export parity, one training step).
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab, special_tokens=["<s>", "<pad>", "</s>", "<unk>"], unk_token="<unk>", show_progress=False
    )
    tok.train_from_iterator([TINY_ENCODER_TEXT] * 4, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
        unk_token="<unk>", pad_token="<pad>",
    )  # fmt: skip
    config = XLMRobertaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=514,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    import torch

    torch.manual_seed(0)
    XLMRobertaModel(config, add_pooling_layer=False).save_pretrained(path)
    fast.save_pretrained(path)
    return path
