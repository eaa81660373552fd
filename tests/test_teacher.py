"""VLLMTeacher on tiny LLaVA, Idefics3 and Qwen2-VL models with LoRA adapters, all built offline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from PIL import Image
from tiny_vllms import FAMILIES, build_tiny_vllm, build_tokenizer, tiny_vocabulary, vocabulary_words
from transformers import AutoModelForImageTextToText, AutoProcessor

from modeling_clhoi.teacher import (
    LANGUAGE_MODEL_TARGET_MODULES,
    VLLMTeacher,
    answer_token_ids,
    expand_cache,
    interaction_question,
)
from modeling_clhoi.vocabulary import HOIVocabulary

pytestmark = pytest.mark.usefixtures("one_thread")

VOCABULARY = tiny_vocabulary()
CANDIDATES = [[0, 1, 2, 3, 4, 5], [4], [5, 0, 2], []]


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    """Images of any size and mode: landscape, portrait, tiny, very elongated, grayscale."""
    rng = np.random.default_rng(0)
    shapes = [(40, 60), (90, 31), (9, 13), (12, 300)]
    out = [Image.fromarray(rng.integers(0, 255, (*shape, 3), dtype=np.uint8)) for shape in shapes]
    out[2] = out[2].convert("L")
    return out


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, tuple[str, str]]:
    """Per family: (model folder, LoRA adapter folder), both saved to disk."""
    root = tmp_path_factory.mktemp("tiny_vllms")
    words = vocabulary_words(VOCABULARY)
    out = {}
    for family in FAMILIES:
        model_dir = build_tiny_vllm(family, root / family, words=words)
        model = AutoModelForImageTextToText.from_pretrained(model_dir)
        torch.manual_seed(1)
        # init_lora_weights=False: random A and B, so the adapter changes the outputs.
        lora = LoraConfig(r=4, lora_alpha=8, target_modules=LANGUAGE_MODEL_TARGET_MODULES, init_lora_weights=False)
        get_peft_model(model, lora).save_pretrained(root / f"{family}_lora")
        out[family] = (str(model_dir), str(root / f"{family}_lora"))
    return out


def _max_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    assert [x.shape for x in a] == [y.shape for y in b]
    return max((x - y).abs().max().item() for x, y in zip(a, b) if x.numel())


def test_interaction_question():
    assert interaction_question(VOCABULARY, 0) == "Is the person riding the bicycle? Answer yes or no."
    assert interaction_question(VOCABULARY, 2) == "Is the person sitting on the bicycle? Answer yes or no."
    assert interaction_question(VOCABULARY, 3) == "Is the person not interacting with the bicycle? Answer yes or no."
    assert interaction_question(VOCABULARY, 5, "Q: {action}") == "Q: hugging another person"
    vcoco = HOIVocabulary.vcoco()
    hoi = vcoco.hoi_id("hold_obj", "cup")
    assert interaction_question(vcoco, hoi) == "Is the person holding the cup? Answer yes or no."
    with pytest.raises(ValueError, match="out of range"):
        interaction_question(VOCABULARY, 6)


def test_answer_tokens_pool_all_variants(checkpoints):
    teacher = VLLMTeacher.from_pretrained(checkpoints["llava"][0], vocabulary=VOCABULARY)
    tok = teacher.tokenizer
    assert sorted(tok.convert_ids_to_tokens(teacher.yes_ids)) == sorted(["Yes", "yes", "YES", "Yes.", "yes."])
    assert sorted(tok.convert_ids_to_tokens(teacher.no_ids)) == sorted(["No", "no", "NO", "No.", "no."])
    logits = torch.randn(3, len(tok))
    p = logits.softmax(-1)
    expected = p[:, teacher.yes_ids].sum(-1) / (p[:, teacher.yes_ids].sum(-1) + p[:, teacher.no_ids].sum(-1))
    torch.testing.assert_close(teacher._probability_of_yes(logits), expected)


def test_no_answer_tokens_is_a_clear_error(checkpoints):
    processor = AutoProcessor.from_pretrained(checkpoints["llava"][0])
    model = AutoModelForImageTextToText.from_pretrained(checkpoints["llava"][0])
    processor.tokenizer = build_tokenizer(["<image>"], ["maybe"], None, answers=["Yes", "Oui"])
    assert answer_token_ids(processor.tokenizer, "no") == []
    with pytest.raises(ValueError, match="no single token reading 'yes'.*or 'no'"):
        VLLMTeacher(model, processor, vocabulary=VOCABULARY)


@pytest.mark.parametrize("family", FAMILIES)
def test_describe_and_both_scoring_paths(family, checkpoints, images):
    model_dir, adapter_dir = checkpoints[family]
    teacher = VLLMTeacher.from_pretrained(model_dir, adapter=adapter_dir, vocabulary=VOCABULARY, max_batch_size=4)
    texts = teacher.describe(images, max_new_tokens=5)
    assert len(texts) == len(images) and all(isinstance(t, str) for t in texts) and any(texts)
    assert teacher.describe(images[:1], max_new_tokens=5) == texts[:1]

    cached = teacher.score_interactions(images, CANDIDATES)
    direct = teacher.score_interactions(images, CANDIDATES, reuse_prefix=False)
    assert [len(s) for s in cached] == [len(c) for c in CANDIDATES]
    assert all(s.dtype == torch.float32 and ((s > 0) & (s < 1)).all() for s in cached)
    assert _max_diff(cached, direct) < 1e-4
    # Questions get different answers, and the image matters (prefix caching is not image-blind).
    assert cached[0].std() > 1e-4
    assert (cached[0][4] - cached[1][0]).abs() > 1e-5
    # A chunk of suffixes smaller than the candidate list gives the same answers.
    teacher.max_batch_size = 2
    assert _max_diff(teacher.score_interactions(images[:1], CANDIDATES[:1]), cached[:1]) < 1e-5


@pytest.mark.parametrize("family", FAMILIES)
def test_merged_adapter_equals_unmerged_peft_model(family, checkpoints, images):
    model_dir, adapter_dir = checkpoints[family]
    merged = VLLMTeacher.from_pretrained(model_dir, adapter=adapter_dir, vocabulary=VOCABULARY)
    base = VLLMTeacher.from_pretrained(model_dir, vocabulary=VOCABULARY)
    peft = PeftModel.from_pretrained(AutoModelForImageTextToText.from_pretrained(model_dir), adapter_dir)
    unmerged = VLLMTeacher(peft, AutoProcessor.from_pretrained(model_dir), vocabulary=VOCABULARY)

    scores = merged.score_interactions(images[:2], CANDIDATES[:2])
    assert _max_diff(scores, unmerged.score_interactions(images[:2], CANDIDATES[:2])) < 1e-5
    assert _max_diff(scores, base.score_interactions(images[:2], CANDIDATES[:2])) > 1e-3
    assert merged.describe(images[:2], max_new_tokens=4) == unmerged.describe(images[:2], max_new_tokens=4)


def test_system_prompt_and_plain_prompt(checkpoints, images):
    model_dir = checkpoints["llava"][0]
    teacher = VLLMTeacher.from_pretrained(model_dir, vocabulary=VOCABULARY)
    plain = teacher.score_interactions(images[:1], CANDIDATES[:1])

    teacher.system_prompt = "You are a helpful assistant."
    assert teacher.render("Q?").startswith("You are a helpful assistant. USER: <image>")
    system = teacher.score_interactions(images[:1], CANDIDATES[:1])
    assert _max_diff(system, teacher.score_interactions(images[:1], CANDIDATES[:1], reuse_prefix=False)) < 1e-4
    assert _max_diff(system, plain) > 1e-4

    teacher.system_prompt = None
    teacher.processor.chat_template = teacher.tokenizer.chat_template = None
    assert teacher.render("Q?") == "<image>\nQ?\n"
    no_template = teacher.score_interactions(images[:1], CANDIDATES[:1])
    assert _max_diff(no_template, teacher.score_interactions(images[:1], CANDIDATES[:1], reuse_prefix=False)) < 1e-4
    assert len(teacher.describe(images[:1], max_new_tokens=3)) == 1

    teacher.processor.image_token = None
    with pytest.raises(ValueError, match="neither a chat template nor an `image_token`"):
        teacher.render("Q?")


def test_label_examples(checkpoints, images):
    teacher = VLLMTeacher.from_pretrained(checkpoints["qwen2_vl"][0], vocabulary=VOCABULARY, max_new_tokens=4)
    bicycle, cup = VOCABULARY.objects.index("bicycle"), VOCABULARY.objects.index("cup")
    examples = [
        {"image": images[0], "detections": {"labels": [0, bicycle, bicycle]}},
        {"image": images[1], "detections": {"labels": [cup]}},
    ]
    labels = teacher.label_examples(examples)
    assert [row["teacher_candidates"] for row in labels] == [[0, 1, 2, 3, 5], [4]]
    scores = teacher.score_interactions(images[:2], [[0, 1, 2, 3, 5], [4]])
    for row, expected in zip(labels, scores):
        assert isinstance(row["teacher_context"], str)
        np.testing.assert_allclose(row["teacher_scores"], expected.numpy(), atol=1e-6)
    everything = teacher.label_examples(examples[:1], candidates="all")
    assert everything[0]["teacher_candidates"] == list(range(VOCABULARY.num_hois))
    with pytest.raises(ValueError, match="candidates must be"):
        teacher.label_examples(examples, candidates="some")
    with pytest.raises(ValueError, match="2 images but 1 candidate lists"):
        teacher.score_interactions(images[:2], [[0]])


def test_expand_cache_shares_the_prefix(checkpoints, images):
    teacher = VLLMTeacher.from_pretrained(checkpoints["llava"][0], vocabulary=VOCABULARY)
    inputs = teacher._encode([[images[0]]], [teacher._split()[0]])
    cache = teacher.model(**inputs, use_cache=True).past_key_values
    expanded = expand_cache(cache, 3)
    keys = cache.layers[0].keys
    assert expanded.layers[0].keys.shape == (3, *keys.shape[1:])
    assert expanded.layers[0].keys.data_ptr() == keys.data_ptr()  # a view, not a copy
    expanded.layers[0].update(keys[:, :, :1].expand(3, -1, -1, -1), keys[:, :, :1].expand(3, -1, -1, -1))
    assert cache.layers[0].keys.shape == keys.shape  # the prefix cache is untouched
