"""Tiny, randomly initialised LLaVA, Idefics3 and Qwen2-VL teachers built fully offline.

Each builder writes a model folder (config + safetensors, processor with a chat template and a
word-level tokenizer trained by nothing: its vocabulary is written down here) that
``AutoModelForImageTextToText`` / ``AutoProcessor`` load with ``HF_HUB_OFFLINE=1``. The tokenizers
hold several casing/punctuation variants of "yes" and "no" so the teacher's answer-token search
is exercised. Shared by the teacher tests and the teacher benchmark.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, models, pre_tokenizers
from transformers import (
    AutoModelForImageTextToText,
    AutoProcessor,
    Idefics3Config,
    Idefics3Processor,
    LlavaConfig,
    LlavaProcessor,
    PretrainedConfig,
    PreTrainedTokenizerFast,
    Qwen2VLConfig,
    Qwen2VLProcessor,
)
from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil
from transformers.models.llava.image_processing_pil_llava import LlavaImageProcessorPil
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from modeling_clhoi.vocabulary import HOIVocabulary

FAMILIES = ("llava", "idefics3", "qwen2_vl")

# Answers in several forms; a teacher must pool all of them.
ANSWER_WORDS = ["Yes", "yes", "YES", "Yes.", "yes.", "No", "no", "NO", "No.", "no."]
BASE_WORDS = (
    "is the person a an of in this image photo and or answer one two sentences describe what people "
    "are doing with objects interactions between not interacting another it there someone you helpful "
    "assistant user system"
).split()

LLAVA_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'][0]['text'] }} {% endif %}"
    "{% if message['role'] == 'user' %}USER: "
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<image>\n{% endif %}"
    "{% if item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %} {% endif %}"
    "{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
IDEFICS3_TEMPLATE = (
    "<|begin_of_text|>{% for message in messages %}"
    "{{ message['role'] | capitalize }}:"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<image>"
    "{% else %} {{ item['text'] }}{% endif %}{% endfor %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)
# Qwen's own template shape, including its default system prompt.
QWEN2_VL_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class TinyQwen2VLProcessor(Qwen2VLProcessor):
    """Qwen2-VL's processor without its video processor, which needs torchvision (not installed here)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)
        self.video_processor = None


class _TinyProcessorsConfig(PretrainedConfig):
    model_type = "clhoi-tiny-processors"


# Registered under a config of its own, so AutoProcessor finds the class by name without
# changing what it loads for real Qwen2-VL checkpoints.
AutoProcessor.register(_TinyProcessorsConfig, TinyQwen2VLProcessor, exist_ok=True)


def vocabulary_words(vocabulary: HOIVocabulary) -> list[str]:
    """Every word the teacher's questions about ``vocabulary`` can contain (gerunds included)."""
    from modeling_clhoi.teacher import interaction_question

    words: set[str] = set()
    for hoi in range(vocabulary.num_hois):
        words.update(re.findall(r"\w+", interaction_question(vocabulary, hoi)))
    for prompt in vocabulary.prompts:
        words.update(re.findall(r"\w+", prompt))
    return sorted(words)


def build_tokenizer(special_tokens: Iterable[str], words: Iterable[str], chat_template: str | None,
                    bos: str = "<s>", eos: str = "</s>", answers: Iterable[str] = ANSWER_WORDS) -> PreTrainedTokenizerFast:
    """A word-level tokenizer: specials, ``answers``, then ``words`` in three casings.

    Punctuation splits off words, except a final "." of a word (so "Yes." is one token when it exists).
    """
    specials = ["<unk>", "<pad>", bos, eos, *dict.fromkeys(special_tokens)]
    vocab: dict[str, int] = {}
    cased = [form for word in [*BASE_WORDS, *words] for form in (word, word.capitalize(), word.upper())]
    for token in [*specials, *answers, *".,:?!", *cased]:
        vocab.setdefault(token, len(vocab))
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    # "Yes." stays one token when it is a word of the vocabulary; other punctuation splits off.
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Split(Regex(r"[A-Za-z]+\.$|\w+|[^\w\s]"), behavior="isolated"),
    ])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="<unk>", pad_token="<pad>", bos_token=bos, eos_token=eos,
        extra_special_tokens=[t for t in specials if t not in ("<unk>", "<pad>", bos, eos)],
    )
    fast.chat_template = chat_template
    return fast


def _text_config(vocab_size: int, hidden: int = 32, layers: int = 2, heads: int = 4, **kw) -> dict:
    return {
        "vocab_size": vocab_size, "hidden_size": hidden, "intermediate_size": 2 * hidden,
        "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": max(1, heads // 2),
        "max_position_embeddings": 4096, "initializer_range": 0.1, **kw,
    }


def build_llava(path: str | Path, words: Iterable[str] = (), seed: int = 0, chat_template: str | None = LLAVA_TEMPLATE,
                text_hidden: int = 32, text_layers: int = 2, image_size: int = 32, patch_size: int = 8,
                vision_hidden: int = 32, vision_layers: int = 2) -> Path:
    """Save a tiny LLaVA (CLIP vision tower + Llama) and its processor to ``path``."""
    tokenizer = build_tokenizer(["<image>"], words, chat_template)
    config = LlavaConfig(
        vision_config={"model_type": "clip_vision_model", "hidden_size": vision_hidden,
                       "intermediate_size": 2 * vision_hidden, "num_hidden_layers": vision_layers,
                       "num_attention_heads": 2, "image_size": image_size, "patch_size": patch_size},
        text_config={"model_type": "llama", **_text_config(len(tokenizer), text_hidden, text_layers)},
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default", vision_feature_layer=-1,
    )
    image_processor = LlavaImageProcessorPil(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    processor = LlavaProcessor(image_processor, tokenizer, patch_size=patch_size, chat_template=chat_template,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1)
    return _save(path, config, processor, seed)


def build_idefics3(path: str | Path, words: Iterable[str] = (), seed: int = 0,
                   chat_template: str | None = IDEFICS3_TEMPLATE) -> Path:
    """Save a tiny Idefics3 (SigLIP-like tower + pixel-shuffle connector + Llama) with image splitting."""
    grid = [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
    tokenizer = build_tokenizer(
        ["<image>", "<fake_token_around_image>", "<global-img>", "<end_of_utterance>", "<|begin_of_text|>", *grid],
        [*words, "User", "Assistant"], chat_template, bos="<|begin_of_text|>", eos="<end_of_utterance>",
    )
    image_size, patch_size, scale_factor = 32, 8, 2
    config = Idefics3Config(
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "image_size": image_size, "patch_size": patch_size},
        text_config={"model_type": "llama", **_text_config(len(tokenizer))},
        scale_factor=scale_factor, image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
    )
    image_processor = Idefics3ImageProcessorPil(
        size={"longest_edge": 2 * image_size}, max_image_size={"longest_edge": image_size}, do_image_splitting=True,
    )
    seq_len = (image_size // patch_size) ** 2 // scale_factor**2
    processor = Idefics3Processor(image_processor, tokenizer, image_seq_len=seq_len, chat_template=chat_template)
    return _save(path, config, processor, seed)


def build_qwen2_vl(path: str | Path, words: Iterable[str] = (), seed: int = 0,
                   chat_template: str | None = QWEN2_VL_TEMPLATE) -> Path:
    """Save a tiny Qwen2-VL (dynamic resolution, M-RoPE) and its processor to ``path``."""
    tokenizer = build_tokenizer(
        ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"],
        words, chat_template, bos="<|endoftext|>", eos="<|im_end|>",
    )
    ids = tokenizer.convert_tokens_to_ids
    patch, merge = 4, 2
    config = Qwen2VLConfig(
        vision_config={"depth": 2, "embed_dim": 32, "hidden_size": 32, "num_heads": 2, "patch_size": patch,
                       "spatial_merge_size": merge, "temporal_patch_size": 2},
        text_config=_text_config(len(tokenizer), bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"),
                                 rope_parameters={"rope_type": "default", "rope_theta": 100.0,
                                                                  "mrope_section": [1, 1, 2]}),
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
    )
    factor = patch * merge
    image_processor = Qwen2VLImageProcessorPil(
        patch_size=patch, merge_size=merge, temporal_patch_size=2,
        size={"shortest_edge": 4 * factor * factor, "longest_edge": 16 * factor * factor},
    )
    processor = TinyQwen2VLProcessor(image_processor, tokenizer, chat_template=chat_template)
    return _save(path, config, processor, seed)


BUILDERS: dict[str, Callable[..., Path]] = {
    "llava": build_llava, "idefics3": build_idefics3, "qwen2_vl": build_qwen2_vl,
}


def build_tiny_vllm(family: str, path: str | Path, words: Iterable[str] = (), seed: int = 0, **kwargs) -> Path:
    """Build the tiny model of ``family`` (one of :data:`FAMILIES`) into ``path``."""
    if family not in BUILDERS:
        raise ValueError(f"Unknown family {family!r}; expected one of {FAMILIES}.")
    return BUILDERS[family](path, words=words, seed=seed, **kwargs)


def _save(path: str | Path, config, processor, seed: int) -> Path:
    path = Path(path)
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config)
    # Random init of a tiny LM gives near-uniform logits; a larger scale makes answers differ per question.
    with torch.no_grad():
        lm_head = model.get_output_embeddings()
        lm_head.weight.normal_(0.0, 0.5)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def tiny_vocabulary() -> HOIVocabulary:
    """Six HOIs over three objects (person, bicycle, cup), ``no_interaction`` included."""
    return HOIVocabulary.from_lists(
        ["hold", "ride", "sit_on", "hug", "no_interaction"], ["person", "bicycle", "cup"],
        [("bicycle", "ride"), ("bicycle", "hold"), ("bicycle", "sit_on"), ("bicycle", "no_interaction"),
         ("cup", "hold"), ("person", "hug")],
        name="tiny",
    )


def build_tiny_dataset(path: str | Path, vocabulary: HOIVocabulary, sizes: dict[str, int], seed: int = 0,
                       with_teacher: bool = False) -> Path:
    """A dataset in the clhoi schema (Hub-layout Parquet + ``vocabulary.json``) of random images of varied sizes.

    Each image has a person and one or two other detections, and one annotated HOI per detected object;
    ``with_teacher`` adds teacher columns (a description naming the HOIs, and 0/1 scores).
    """
    import numpy as np
    from PIL import Image

    from modeling_clhoi.dataset_schema import hoi_features, save_hub_parquet, write_vocabulary

    rng = np.random.default_rng(seed)
    splits = {}
    for split, size in sizes.items():
        rows = []
        for i in range(size):
            h, w = int(rng.integers(20, 90)), int(rng.integers(20, 90))
            image = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
            objects = sorted({int(o) for o in rng.choice([1, 2, 0], size=int(rng.integers(1, 3)))})
            labels = [vocabulary.person_id, *objects]
            hois = [int(rng.choice([h for h, (o, _) in enumerate(vocabulary.triplets) if o == obj])) for obj in objects]
            boxes = [[1.0, 2.0, w / 2, h - 1.0]] + [[w / 3, h / 4, w - 1.0, h / 2] for _ in objects]
            row = {
                "image": image, "image_id": f"{split}_{i:04d}", "width": w, "height": h,
                "detections": {"boxes": boxes, "labels": labels, "scores": [0.9] * len(labels)},
                "annotation": {"boxes_h": [boxes[0]] * len(hois), "boxes_o": boxes[1:], "hoi": hois,
                               "object": objects, "verb": [vocabulary.triplets[h][1] for h in hois]},
            }
            if with_teacher:
                candidates = vocabulary.hois_for_objects(labels)
                row["teacher_context"] = "The person is " + " and ".join(
                    vocabulary.prompts[h].removeprefix("a photo of a person ") for h in hois)
                row["teacher_candidates"] = candidates
                row["teacher_scores"] = [float(c in hois) for c in candidates]
            rows.append(row)
        splits[split] = rows
    save_hub_parquet(splits, path, features=hoi_features(with_teacher=with_teacher))
    write_vocabulary(vocabulary, path)
    return Path(path)
