"""The fine-tuning loop: schedule, AdamW groups, best epoch, resume, save/load, input checks."""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_bert_fine_tune

from dl2llm import classification as clf
from dl2llm import models
from dl2llm.assets import AssetError
from dl2llm.data import LabelledTexts
from dl2llm.runtime import UsageError

GOOD = ["good", "great", "wonderful", "superb", "lovely", "excellent", "fine", "brilliant"]
BAD = ["bad", "awful", "terrible", "dreadful", "poor", "boring", "dull", "horrible"]


def toy_data() -> LabelledTexts:
    texts = [f"a {w} movie" for w in GOOD] + [f"a {w} movie" for w in BAD]
    return LabelledTexts(texts, [1] * len(GOOD) + [0] * len(BAD))


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(models.encoder_path())


TINY = clf.FineTuneConfig(epochs=8, batch_size=4, learning_rate=5e-3, max_length=16)


def test_warmup_linear_matches_transformers_schedule():
    from transformers import get_linear_schedule_with_warmup

    assert [clf.warmup_linear_factor(s, 2, 6) for s in range(7)] == [
        0.0,
        0.5,
        1.0,
        0.75,
        0.5,
        0.25,
        0.0,
    ]
    ours, theirs = [], []
    for make, lrs in (
        (lambda opt: clf.warmup_linear_scheduler(opt, 7, 50), ours),
        (lambda opt: get_linear_schedule_with_warmup(opt, 7, 50), theirs),
    ):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        scheduler = make(opt)
        for _ in range(55):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            scheduler.step()
    assert ours == pytest.approx(theirs, abs=1e-12)
    assert max(ours) == pytest.approx(0.1) and ours[7] == pytest.approx(0.1)


def test_adamw_groups_skip_decay_on_bias_and_layernorm():
    model = tiny_bert_fine_tune()
    optimizer = clf.adamw_with_decay_groups(model, 1e-3, 0.01)
    decayed, plain = optimizer.param_groups
    assert decayed["weight_decay"] == 0.01 and plain["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(p.ndim == 2 for p in decayed["params"])
    plain_names = [names[id(p)] for p in plain["params"]]
    assert "bert.embeddings.LayerNorm.weight" in plain_names
    assert "classifier.bias" in plain_names
    assert len(decayed["params"]) + len(plain["params"]) == len(list(model.parameters()))


def test_training_batches_cover_each_example_once_with_similar_lengths():
    texts = ["x " * n for n in range(1, 101)]
    data = LabelledTexts(texts, [n % 2 for n in range(100)])
    generator = torch.Generator().manual_seed(0)
    batches = list(clf.training_batches(data, 10, generator, bucket_batches=10))
    seen = sorted(t for batch, _ in batches for t in batch)
    assert seen == sorted(texts)
    spreads = [len(max(b, key=len)) - len(min(b, key=len)) for b, _ in batches]
    assert max(spreads) <= 18  # one bucket of 100 sorted by length: 10 consecutive lengths


def test_fine_tune_keeps_the_best_epoch(tokenizer):
    data = toy_data()
    model = tiny_bert_fine_tune()
    result = clf.fine_tune(model, tokenizer, data, data, TINY, log=lambda _: None)
    accuracies = [h["val_accuracy"] for h in result.history]
    assert len(accuracies) == 8
    assert result.best_val_accuracy == max(accuracies)
    assert result.best_epoch == accuracies.index(max(accuracies)) + 1
    probs = clf.predict_proba(model, tokenizer, data.texts, TINY.max_length)
    returned = clf.classification_metrics(data.labels, probs.argmax(1))["accuracy"]
    assert returned == pytest.approx(result.best_val_accuracy)
    assert result.best_val_accuracy >= 0.75  # 16 separable toy reviews


def test_interrupted_training_resumes_to_the_same_weights(tokenizer, tmp_path):
    data = toy_data()
    config = clf.FineTuneConfig(epochs=2, batch_size=4, learning_rate=3e-3, max_length=16)
    straight = tiny_bert_fine_tune()
    clf.fine_tune(straight, tokenizer, data, data, config, seed=1, log=lambda _: None)

    def stop_after_epoch_one(message: str) -> None:
        if message.startswith("epoch 1"):
            raise KeyboardInterrupt

    checkpoint = tmp_path / "ckpt.pt"
    with pytest.raises(KeyboardInterrupt):
        clf.fine_tune(
            tiny_bert_fine_tune(), tokenizer, data, data, config, seed=1, checkpoint=checkpoint,
            log=stop_after_epoch_one,
        )  # fmt: skip
    assert checkpoint.is_file()
    messages = []
    resumed = tiny_bert_fine_tune()
    result = clf.fine_tune(
        resumed, tokenizer, data, data, config, seed=1, checkpoint=checkpoint, log=messages.append
    )
    assert messages[0].startswith("resumed from") and len(result.history) == 2
    assert not checkpoint.exists()
    for (name, a), b in zip(
        straight.state_dict().items(), resumed.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0, msg=name)


def test_classification_metrics_known_case():
    metrics = clf.classification_metrics([0, 0, 1, 1], torch.tensor([0, 1, 1, 1]).numpy())
    assert metrics["accuracy"] == 0.75
    assert metrics["f1"] == pytest.approx(0.8)
    assert metrics["confusion"] == [[1, 1], [0, 2]]


def test_tfidf_baseline_separates_toy_reviews():
    data = toy_data()
    predicted = clf.tfidf_baseline(data, data, data)
    assert predicted.tolist() == data.labels


def test_saved_classifier_round_trips(tokenizer, tmp_path, monkeypatch):
    monkeypatch.setenv("DL2LLM_HOME", str(tmp_path))
    with pytest.raises(AssetError, match="run `dl2llm run bert_fine_tuning --quick` first"):
        clf.load_sentiment_classifier(quick=True)
    model = tiny_bert_fine_tune().eval()
    target = clf.save_classifier(model, tokenizer, clf.classifier_dir(quick=True))
    assert target == tmp_path / "sentiment-minilm-quick"
    loaded, loaded_tokenizer = clf.load_sentiment_classifier(quick=True)
    texts = ["a fine film", "a dull film"]
    torch.testing.assert_close(
        torch.tensor(clf.predict_proba(loaded, loaded_tokenizer, texts)),
        torch.tensor(clf.predict_proba(model, tokenizer, texts)),
    )
    assert [label for label, _ in clf.predict_sentiment(texts, loaded, loaded_tokenizer)] == [
        clf.LABELS[i] for i in clf.predict_proba(model, tokenizer, texts).argmax(1)
    ]


def test_check_texts_rejects_empty_and_over_long(tokenizer):
    with pytest.raises(UsageError, match="no text given"):
        clf.check_texts([])
    with pytest.raises(UsageError, match="text 2 is empty"):
        clf.check_texts(["fine", "  "])
    with pytest.raises(UsageError, match=r"text 1 is \d+ tokens long; .* at most 512"):
        clf.check_texts(["word " * 600], tokenizer)
    clf.check_texts(["word " * 500], tokenizer)
