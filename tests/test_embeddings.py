"""Tokens, hidden states, cosine matrices, the contrastive loss and the Mini CLIP's image x text
bar."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.mini import data as mini_data
from explorer.mini.architecture import untrained_clip
from explorer.studies import clip_scores as clipmod
from explorer.studies import text_embeddings as emb
from explorer.ui.tabs.clip import untrained_twin


def plain_cosine(a, b):
    """The textbook formula, one pair at a time."""
    return np.array(
        [[float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v))) for v in b] for u in a]
    )


@pytest.mark.parametrize("shape_a, shape_b", [((5, 7), (3, 7)), ((1, 4), (6, 4)), ((8, 128), None)])
def test_cosine_matrix_matches_plain_numpy(shape_a, shape_b):
    rng = np.random.default_rng(1)
    a = rng.normal(size=shape_a) * rng.uniform(0.1, 10, size=(shape_a[0], 1))
    b = None if shape_b is None else rng.normal(size=shape_b)
    got = emb.cosine_matrix(a, b)
    np.testing.assert_allclose(got, plain_cosine(a, a if b is None else b), atol=1e-12)


def test_cosine_is_blind_to_length_and_zero_rows_give_zero():
    v = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(emb.cosine_matrix(v, 7.5 * v), [[1.0]])
    assert emb.cosine_matrix(np.zeros((1, 3)), v)[0, 0] == 0.0
    np.testing.assert_allclose(emb.row_norms(emb.normalize(np.array([[3.0, 4.0], [0, 0]]))), [1, 0])


def test_tokens_show_start_end_and_padding(tiny_pipe):
    t = emb.tokenize(tiny_pipe.tokenizer, "a red circle")
    assert len(t.ids) == t.max_length == 77
    assert t.kinds[:5] == ["start", "word", "word", "word", "end"]
    assert set(t.kinds[5:]) == {"pad"} and t.n_text == 5 and t.n_full == 5
    assert not t.truncated and t.warning is None


def test_truncation_warning_past_77_tokens(tiny_pipe):
    long = " ".join(["red circle"] * 40)  # 80 words + start + end = 82 tokens
    t = emb.tokenize(tiny_pipe.tokenizer, long)
    assert t.n_full == 82 and t.truncated and len(t.ids) == 77
    assert "82 tokens" in t.warning and "77" in t.warning
    assert emb.tokenize(tiny_pipe.tokenizer, " ".join(["red"] * 75)).warning is None  # exactly 77


@pytest.mark.parametrize("pipe_name", ["tiny_pipe", "mini_pipe"])
def test_shared_prefix_rows_are_identical(pipe_name, request):
    """The causal text encoder: tokens before the first difference see the same context."""
    pipe = request.getfixturevalue(pipe_name)
    a, b = "a red circle on a blue background", "a red circle on a green background"
    r = emb.compare_tokens(pipe.text_encoder, pipe.tokenizer, a, b)
    assert r.shared == 6  # start, a, red, circle, on, a
    np.testing.assert_allclose(r.states_a[: r.shared], r.states_b[: r.shared], atol=1e-5)
    np.testing.assert_allclose(np.diag(r.cosine)[: r.shared], 1.0, atol=1e-5)
    assert np.abs(r.states_a[r.shared :] - r.states_b[r.shared :]).max() > 1e-3  # after: differ
    assert r.cosine.shape == (9, 9) and r.norms_a.shape == (77,)


def test_contrastive_loss_matches_torch():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 6)) * 5
    loss, i2t, t2i = clipmod.contrastive_loss(logits)
    z, target = torch.tensor(logits), torch.arange(6)
    assert i2t == pytest.approx(float(torch.nn.functional.cross_entropy(z, target)))
    assert t2i == pytest.approx(float(torch.nn.functional.cross_entropy(z.T, target)))
    assert loss == pytest.approx((i2t + t2i) / 2)
    with pytest.raises(ValueError):
        clipmod.contrastive_loss(np.zeros((2, 3)))


def test_a_checkpoint_without_vision_tower_says_what_is_missing(tiny_pipe):
    with pytest.raises(clipmod.ClipMissing, match="--clip-model"):
        clipmod.find_clip(tiny_pipe)
    with pytest.raises(clipmod.ClipMissing, match="could not be loaded"):
        clipmod.find_clip(tiny_pipe, "/nonexistent/clip-folder")


@pytest.fixture(scope="module")
def mini_clip(mini_pipe):
    return clipmod.find_clip(mini_pipe)


def test_mini_trained_clip_matches_held_out_pairs_and_untrained_does_not(mini_clip):
    images, captions = mini_data.heldout_pairs(16)
    trained = clipmod.image_text(mini_clip, images, captions)
    before = clipmod.image_text(untrained_twin(mini_clip), images, captions)
    assert trained.similarity.shape == (16, 16)
    assert trained.diagonal_hits() >= 14
    assert before.diagonal_hits() < 14
    assert trained.loss[0] < before.loss[0]  # training lowered the contrastive loss


def test_untrained_clip_is_rebuilt_the_same_and_leaves_the_rng_alone(mini_clip):
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    a = clipmod.untrained(mini_clip, untrained_clip.__wrapped__(len(mini_clip.tokenizer)))
    assert torch.equal(torch.rand(1), expected)
    b = untrained_twin(mini_clip)
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q)


def test_norms_before_and_after_normalisation(mini_clip):
    images, captions = mini_data.heldout_pairs(4)
    r = clipmod.image_text(mini_clip, images, captions)
    n = clipmod.norms(r.text_features, r.image_features, r.logit_scale)
    np.testing.assert_allclose(n.text_unit, 1.0)
    np.testing.assert_allclose(n.image_unit, 1.0)
    assert (n.text_raw > 0).all() and not np.allclose(n.text_raw, 1.0)
    assert n.logit_scale > 1
