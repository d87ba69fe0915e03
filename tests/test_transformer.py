"""dl2llm.transformer: equal to torch.nn.Transformer, label smoothing, Noam, decoding, errors."""

from __future__ import annotations

import datetime
import math

import pytest
import torch
import torch.nn.functional as F
from tiny import tiny_transformer

from dl2llm.attention import causal_mask, from_torch_multihead
from dl2llm.runtime import UsageError
from dl2llm.seq2seq_tasks import CharVocab, date_pairs, synthetic_pairs
from dl2llm.transformer import (
    BOS,
    EOS,
    PAD,
    beam_search,
    greedy_decode,
    label_smoothed_cross_entropy,
    make_batch,
    noam_rate,
    noam_scheduler,
    sequence_accuracy,
    sinusoidal_table,
    train_seq2seq,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_sinusoidal_table_matches_the_paper_formula():
    table = sinusoidal_table(50, 8)
    for pos in (0, 1, 17, 49):
        for i in range(4):
            angle = pos / 10000 ** (2 * i / 8)
            assert table[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert table[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)


def copy_into_torch_layer(theirs, ours, attention_names):
    """Copy one of our layers into a ``torch.nn.Transformer*Layer`` (same structure)."""
    for torch_name, our_name in attention_names:
        reference = from_torch_multihead(getattr(theirs, torch_name))
        getattr(ours, our_name).load_state_dict(reference.state_dict())
    for name in ("linear1", "linear2"):
        getattr(ours.feed_forward, name).load_state_dict(getattr(theirs, name).state_dict())
    for name in ("norm1", "norm2", "norm3"):
        if hasattr(ours, name):
            getattr(ours, name).load_state_dict(getattr(theirs, name).state_dict())


@pytest.mark.filterwarnings("ignore:enable_nested_tensor")
def test_encoder_decoder_equals_torch_transformer_with_copied_weights():
    """Same function as ``nn.Transformer(norm_first=True)``, padding included (atol 1e-5)."""
    ours = tiny_transformer().eval()
    theirs = torch.nn.Transformer(
        16, 4, 2, 2, 32, dropout=0.0, batch_first=True, norm_first=True
    ).eval()
    for torch_layer, our_layer in zip(theirs.encoder.layers, ours.encoder_layers, strict=True):
        copy_into_torch_layer(torch_layer, our_layer, [("self_attn", "self_attn")])
    for torch_layer, our_layer in zip(theirs.decoder.layers, ours.decoder_layers, strict=True):
        names = [("self_attn", "self_attn"), ("multihead_attn", "cross_attn")]
        copy_into_torch_layer(torch_layer, our_layer, names)
    ours.encoder_norm.load_state_dict(theirs.encoder.norm.state_dict())
    ours.decoder_norm.load_state_dict(theirs.decoder.norm.state_dict())

    src = torch.tensor([[3, 4, 5, 6, 3], [4, 4, 6, PAD, PAD]])
    tgt_in = torch.tensor([[BOS, 5, 6, 3], [BOS, 6, PAD, PAD]])
    hidden = theirs(
        ours.src_embed(src),
        ours.tgt_embed(tgt_in),
        tgt_mask=~causal_mask(4),
        src_key_padding_mask=src == PAD,
        tgt_key_padding_mask=tgt_in == PAD,
        memory_key_padding_mask=src == PAD,
    )
    torch.testing.assert_close(ours(src, tgt_in), ours.generator(hidden), atol=1e-5, rtol=0)


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_label_smoothing_equals_torch_cross_entropy(smoothing):
    logits = torch.randn(3, 5, 11)
    target = torch.randint(1, 11, (3, 5))
    target[1, 3:] = PAD
    ours = label_smoothed_cross_entropy(logits, target, smoothing)
    expected = F.cross_entropy(
        logits.view(-1, 11), target.view(-1), ignore_index=PAD, label_smoothing=smoothing
    )
    assert ours.item() == pytest.approx(expected.item(), abs=1e-6)


def test_label_smoothing_rejects_out_of_range():
    with pytest.raises(UsageError, match=r"\[0, 1\)"):
        label_smoothed_cross_entropy(torch.randn(2, 5), torch.tensor([1, 2]), 1.0)


def test_noam_rate_at_known_steps():
    """The paper's base model: d_model 512, 4000 warm-up steps; the peak is at the warm-up."""
    assert noam_rate(1, 512, 4000) == pytest.approx(512**-0.5 * 4000**-1.5, rel=1e-12)
    assert noam_rate(4000, 512, 4000) == pytest.approx(6.987712429686844e-4, rel=1e-9)
    assert noam_rate(16000, 512, 4000) == pytest.approx(3.493856214843422e-4, rel=1e-9)
    assert noam_rate(0, 512, 4000) == noam_rate(1, 512, 4000)
    assert noam_rate(100, 512, 4000, factor=2.0) == pytest.approx(2 * noam_rate(100, 512, 4000))


def test_noam_scheduler_sets_the_rate_of_each_update():
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([parameter], lr=1.0)
    scheduler = noam_scheduler(optimizer, d_model=64, warmup=10)
    seen = []
    for _ in range(20):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen == pytest.approx([noam_rate(n, 64, 10) for n in range(1, 21)], rel=1e-12)
    assert max(range(20), key=seen.__getitem__) == 9  # the 10th update has the peak rate


def test_make_batch_pads_and_adds_bos_eos():
    batch = make_batch([([3, 4], [4, 3]), ([5], [5])])
    assert batch.src.tolist() == [[3, 4], [5, PAD]]
    assert batch.tgt_in.tolist() == [[BOS, 4, 3], [BOS, 5, PAD]]
    assert batch.tgt_out.tolist() == [[4, 3, EOS], [5, EOS, PAD]]


def test_beam_of_one_equals_greedy():
    """A random model with sharpened logits ends (</s>) at varied lengths; beam 1 follows it."""
    torch.manual_seed(1)
    model = tiny_transformer(vocab=6, n_layers=1).eval()
    with torch.no_grad():
        model.generator.weight.mul_(4)
        model.generator.bias[[PAD, BOS]] = -1e4
    src = torch.randint(3, 6, (8, 5))
    greedy = greedy_decode(model, src, max_new_tokens=8)
    lengths = set()
    for row in range(src.size(0)):
        beam = beam_search(model, src[row : row + 1], beam_size=1, max_new_tokens=8)
        assert greedy[row].tolist() == beam + [PAD] * (greedy.size(1) - len(beam))
        lengths.add(len(beam))
    assert len(lengths) >= 3  # early stops and full-length outputs are both covered


def test_wider_beam_returns_a_finished_or_full_length_output():
    model = tiny_transformer(vocab=5).eval()
    best = beam_search(model, torch.tensor([[3, 4, 4]]), beam_size=4, max_new_tokens=6)
    assert 1 <= len(best) <= 6
    assert best[-1] == EOS or len(best) == 6


def test_sequence_accuracy_compares_up_to_eos():
    predicted = [[3, 4, EOS, PAD], [3, EOS, 4, 4], [4, 4, 4, 4]]
    assert sequence_accuracy(predicted, [[3, 4], [3], [4, 4, 4]]) == pytest.approx(2 / 3)


def test_too_long_input_gives_a_clear_error():
    model = tiny_transformer(max_len=12)
    with pytest.raises(UsageError, match="longer than the model's positional table"):
        model(torch.full((1, 13), 3), torch.full((1, 2), BOS))
    with pytest.raises(UsageError, match="positional table"):
        greedy_decode(model, torch.full((1, 4), 3), max_new_tokens=12)
    with pytest.raises(UsageError, match="token ids must lie in"):
        model(torch.tensor([[3, 9]]), torch.full((1, 2), BOS))
    with pytest.raises(UsageError, match="beam_size"):
        beam_search(model, torch.tensor([[3]]), beam_size=0, max_new_tokens=3)


def test_training_resumes_from_checkpoint_exactly(tmp_path):
    pairs = synthetic_pairs("reverse", 64, 4, 2, 5, seed=0)

    def batch_for_step(step):
        return make_batch(pairs[(step * 8) % 64 : (step * 8) % 64 + 8])

    def fresh():
        torch.manual_seed(1)
        return tiny_transformer()

    straight = fresh()
    losses = train_seq2seq(straight, batch_for_step, 6, d_model=16, warmup=3, progress=False)
    checkpoint = tmp_path / "run.pt"
    first = fresh()
    train_seq2seq(
        first, batch_for_step, 3, d_model=16, warmup=3, checkpoint=checkpoint, progress=False
    )
    resumed = fresh()
    resumed_losses = train_seq2seq(
        resumed, batch_for_step, 6, d_model=16, warmup=3, checkpoint=checkpoint, progress=False
    )
    assert resumed_losses == pytest.approx(losses, abs=1e-6)
    for a, b in zip(straight.parameters(), resumed.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    assert losses[-1] < losses[0]


def test_synthetic_tasks():
    pairs = synthetic_pairs("reverse", 50, 5, 2, 4, seed=3)
    assert pairs == synthetic_pairs("reverse", 50, 5, 2, 4, seed=3)
    assert all(tgt == src[::-1] and 2 <= len(src) <= 4 for src, tgt in pairs)
    assert all(3 <= token < 8 for src, _ in pairs for token in src)
    with pytest.raises(UsageError, match="unknown synthetic task"):
        synthetic_pairs("sort", 5, 5, 2, 4, seed=0)


def test_date_pairs_are_distinct_valid_iso_dates():
    pairs = date_pairs(300, seed=0)
    assert pairs == date_pairs(300, seed=0)
    assert len({written for written, _ in pairs}) == 300
    for written, iso in pairs:
        date = datetime.date.fromisoformat(iso)
        assert 1950 <= date.year <= 2049 and str(date.year) in written
    vocab = CharVocab([w + i for w, i in pairs])
    written, iso = pairs[0]
    assert vocab.decode(vocab.encode(iso) + [EOS, PAD]) == iso
    with pytest.raises(UsageError, match="not in the vocabulary"):
        vocab.encode("ÿ")
