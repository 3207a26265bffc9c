"""The one rule for which tokens are the prompt's own (`explorer.engine.tokens`), on SD 1.x-style
padding (with the end token), SD 2.x-style padding ("!") and the Mini's tokenizer; and every
place that asks the question giving the same answer on one run."""

from __future__ import annotations

import re
import string

import pytest
import torch
from diffusers import StableDiffusionPipeline
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from explorer.engine.models import MINI_DIR
from explorer.engine.tokens import (
    count_words,
    kinds_of,
    prompt_span,
    string_kinds,
    text_length,
    token_kinds,
    token_note,
    word_span,
)
from explorer.studies import text_embeddings as emb
from explorer.studies.sweeps import own_token_mask
from explorer.studies.word_maps import attention_maps
from explorer.ui.architecture import boxes
from explorer.ui.stepviews import tokens_markdown

PROMPT = "a red circle!"  # "!" is SD 2.x's padding id, and an unknown word to the word tokenizers


def clip_tokenizer(pad: str, max_length: int = 77) -> CLIPTokenizer:
    """A character-level CLIP BPE tokenizer made in code: "!" = 0 (as in CLIP's vocabulary),
    letters, the same with "</w>", then <|startoftext|> and <|endoftext|>. `pad` is what it pads
    with: "<|endoftext|>" as SD 1.x's tokenizer does, "!" as SD 2.x's does."""
    chars = "!" + string.ascii_lowercase
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({f"{c}</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    return CLIPTokenizer(vocab=vocab, merges=[], pad_token=pad, model_max_length=max_length)


def padded(tok, prompt: str = PROMPT, max_length: int = 77) -> list[int]:
    return tok(prompt, padding="max_length", max_length=max_length, truncation=True)["input_ids"]


@pytest.fixture(scope="module")
def mini_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(MINI_DIR / "tokenizer")


def test_sd1_style_padding_with_the_end_token():
    tok = clip_tokenizer("<|endoftext|>")
    ids = padded(tok, "a red")  # <s> a</w> r e d</w> </s> </s> …
    assert tok.pad_token_id == tok.eos_token_id and ids.count(tok.eos_token_id) == 77 - 5
    kinds = token_kinds(ids, tok)
    assert kinds[:6] == ["start", "word", "word", "word", "word", "end"]
    assert set(kinds[6:]) == {"pad"} and len(kinds) == 77
    assert prompt_span(ids, tok) == (1, 5) and count_words(kinds) == 4 and text_length(kinds) == 6


def test_sd2_style_padding_with_bang_is_told_from_a_typed_bang():
    sd1, sd2 = clip_tokenizer("<|endoftext|>"), clip_tokenizer("!")
    ids = padded(sd2)
    assert sd2.pad_token_id == 0 != sd2.eos_token_id
    start, stop = prompt_span(ids, sd2)
    assert ids[stop - 1] == sd2.pad_token_id  # the typed "!" has the padding's id: still a word
    assert ids[stop] == sd2.eos_token_id and set(ids[stop + 1 :]) == {sd2.pad_token_id}
    assert (start, stop) == prompt_span(padded(sd1), sd1)  # the padding changes nothing
    kinds = token_kinds(ids, sd2)
    assert kinds[stop] == "end" and kinds[stop + 1 :] == ["pad"] * (76 - stop)


def test_the_minis_tokenizer(mini_tokenizer):
    ids = padded(mini_tokenizer)  # <s> a red circle <unk> </s> </s> …
    kinds = token_kinds(ids, mini_tokenizer)
    assert kinds[:6] == ["start", "word", "word", "word", "word", "end"]
    assert prompt_span(ids, mini_tokenizer) == (1, 5) and text_length(kinds) == 6


@pytest.mark.parametrize("pad", ["<|endoftext|>", "!"])
def test_strings_and_ids_agree_and_a_cut_prompt_keeps_its_end(pad):
    tok = clip_tokenizer(pad, max_length=12)
    for prompt in ["", "red", PROMPT, "a big red circle on a blue square"]:  # the last is cut
        ids = padded(tok, prompt, 12)
        assert string_kinds(tok.convert_ids_to_tokens(ids)) == token_kinds(ids, tok)
    kinds = token_kinds(ids, tok)
    assert kinds == ["start", *["word"] * 10, "end"] and word_span(kinds) == (1, 11)
    assert token_kinds(padded(tok, "", 12), tok)[:3] == ["start", "end", "pad"]


def test_the_rule_without_markers():
    assert kinds_of([5, 6, 7], 0, 1) == ["word"] * 3  # no start, no end: all words
    assert word_span(kinds_of([5, 1, 1], 0, 1)) == (0, 1)
    assert word_span([]) == (0, 0) and count_words([]) == 0


def test_token_note():
    assert token_note(77, 77) is None
    assert "82 tokens" in token_note(82, 77) and "first 77" in token_note(82, 77)


def sd2_pipe(tiny_pipe) -> StableDiffusionPipeline:
    """The tiny pipeline with an SD 2.x-style tokenizer (pads with "!"), and a text encoder."""
    from conftest import TINY_TEXT

    tok = clip_tokenizer("!")
    torch.manual_seed(0)
    config = CLIPTextConfig(
        **{**TINY_TEXT, "vocab_size": len(tok)},
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    parts = {**tiny_pipe.components, "tokenizer": tok, "text_encoder": CLIPTextModel(config).eval()}
    pipe = StableDiffusionPipeline(**parts, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("model", ["sd1", "sd2", "mini"])
def test_every_view_finds_the_same_words_on_one_run(model, tiny_pipe, request):
    pipe = {"sd1": lambda: tiny_pipe, "sd2": lambda: sd2_pipe(tiny_pipe)}.get(
        model, lambda: request.getfixturevalue("mini_pipe")
    )()
    tok = pipe.tokenizer
    start, stop = prompt_span(padded(tok), tok)
    words, n_text = list(range(start, stop)), stop + 1  # start, the words, the end
    assert len(words) >= 4

    wm = attention_maps(pipe, PROMPT, steps=1)  # the run
    assert wm.words == words  # word_maps: the attention tab's words
    assert word_span(emb.tokenize(tok, PROMPT).kinds) == (start, stop)  # text_embeddings
    assert emb.tokenize(tok, PROMPT).n_text == n_text
    mask = own_token_mask(pipe, PROMPT)  # sweeps: the tokens scaled by the "tokens" rule
    assert torch.nonzero(mask).flatten().tolist() == words
    tokenizer_box = next(b for b in boxes(wm.trace) if b[0] == "Tokenizer")  # ui: the strip
    assert tokenizer_box[2].startswith(f"{n_text} tokens incl. start/end")
    shown = re.match(r"\*\*(\d+) tokens\*\* then (\d+) ×", tokens_markdown(wm.trace))  # ui: tokens
    assert shown and (int(shown[1]), int(shown[2])) == (n_text, 77 - n_text)
