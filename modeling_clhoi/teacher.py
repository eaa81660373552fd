"""The VLLM teacher: any transformers image-text-to-text model (optionally with a LoRA adapter).

The teacher looks at a whole image and reports (a) a short description of what happens in it and
(b) for each candidate HOI, the probability that the answer to a yes/no question about it is "yes",
read from the next-token logits. The questions of one image share their prefix (chat template,
image tokens, everything up to the question): :meth:`VLLMTeacher.score_interactions` encodes it once
and runs all questions as one batch of suffixes on copies of its KV cache.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from os import PathLike
from typing import Any

import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor, PreTrainedModel
from transformers.cache_utils import Cache, DynamicLayer
from transformers.utils import logging

from .dataset_schema import candidate_hois
from .vocabulary import NO_INTERACTION, HOIVocabulary, _gerund, _phrase

logger = logging.get_logger(__name__)

DEFAULT_QUESTION_TEMPLATE = "Is the person {action}? Answer yes or no."
DEFAULT_DESCRIBE_PROMPT = (
    "Describe what the people in this image are doing with the objects around them, in one or two sentences."
)
# LoRA targets of the language model only: attention projections of modules outside the vision tower,
# projector and connector (their names differ per family: vision_tower, vision_model, visual, ...).
LANGUAGE_MODEL_TARGET_MODULES = (
    r"^(?!.*(?:vision|visual|multi_modal_projector|mm_projector|connector|merger)).*\.(?:q_proj|k_proj|v_proj|o_proj)$"
)
# Split point of a rendered prompt: the question's text is replaced by this marker.
_MARKER = "\u2063CLHOI_QUESTION\u2063"
_STRIP = " \t\r\n.,!?:;\"'\u2581\u0120"


def interaction_question(
    vocabulary: HOIVocabulary, hoi: int, template: str = DEFAULT_QUESTION_TEMPLATE
) -> str:
    """The yes/no question asked about one HOI: "Is the person riding the bicycle? Answer yes or no."

    ``template`` receives ``action`` ("riding the bicycle"). Multi-word verbs conjugate their first word,
    V-COCO role suffixes (``_obj``/``_instr``) are dropped, ``no_interaction`` asks about "not
    interacting with" the object, and a person object reads "another person".
    """
    if not 0 <= hoi < vocabulary.num_hois:
        raise ValueError(f"HOI id {hoi} is out of range for a vocabulary of {vocabulary.num_hois} HOIs.")
    obj_id, verb_id = vocabulary.triplets[hoi]
    obj = "another person" if obj_id == vocabulary.person_id else f"the {_phrase(vocabulary.objects[obj_id])}"
    verb = re.sub(r"_(obj|instr)$", "", vocabulary.verbs[verb_id])
    if verb == NO_INTERACTION:
        action = f"not interacting with {obj}"
    else:
        head, *rest = verb.split("_")
        action = " ".join([_gerund(head), *rest, obj])
    return template.format(action=action)


def render_prompt(processor: Any, text: str, system_prompt: str | None = None) -> str:
    """The prompt of one image and one instruction, ready for generation.

    Uses the processor's (or tokenizer's) chat template; without one, a plain ``"{image token}\\n{text}\\n"``.
    """
    template = getattr(processor, "chat_template", None) or getattr(processor.tokenizer, "chat_template", None)
    if template is None:
        image_token = getattr(processor, "image_token", None)
        if image_token is None:
            raise ValueError(
                "The processor has neither a chat template nor an `image_token` to build a plain prompt; "
                "set `processor.chat_template`."
            )
        return f"{image_token}\n{text}\n"
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
    if system_prompt is not None:
        messages.insert(0, {"role": "system", "content": [{"type": "text", "text": system_prompt}]})
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, chat_template=template)


def answer_token_ids(tokenizer: Any, answer: str) -> list[int]:
    """Ids of every single token that reads as ``answer`` up to case, spaces and punctuation.

    E.g. for "yes": "Yes", "yes", " Yes", "YES", "yes." (whichever exist in that vocabulary).
    """
    special = set(tokenizer.all_special_ids)
    ids = [i for i in range(len(tokenizer)) if i not in special]
    texts = tokenizer.batch_decode([[i] for i in ids], skip_special_tokens=False)
    return [i for i, text in zip(ids, texts) if text.strip(_STRIP).lower() == answer]


class VLLMTeacher:
    """An image-text-to-text VLLM asked about human-object interactions.

    Args:
        model: a loaded ``AutoModelForImageTextToText`` model (frozen here: eval mode, no gradients).
        processor: its ``AutoProcessor``.
        vocabulary: the HOI vocabulary the questions are about (HICO-DET by default).
        question_template: the yes/no question; ``{action}`` is filled by :func:`interaction_question`.
        describe_prompt: the instruction of :meth:`describe`.
        system_prompt: an optional system message put before every prompt.
        max_batch_size: most sequences run at once (question suffixes, or images in :meth:`describe`).
        max_new_tokens: default length of the descriptions of :meth:`describe`.

    Models without a chat template get a plain prompt ``"{image token}\\n{text}\\n"``.
    Prefix reuse assumes causal attention from the question on (true for LLaVA, LLaVA-NeXT, Qwen2-VL,
    Idefics3/SmolVLM); use ``reuse_prefix=False`` for prefix-LM models such as PaliGemma.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        processor: Any,
        vocabulary: HOIVocabulary | dict | str | None = None,
        question_template: str = DEFAULT_QUESTION_TEMPLATE,
        describe_prompt: str = DEFAULT_DESCRIBE_PROMPT,
        system_prompt: str | None = None,
        max_batch_size: int = 32,
        max_new_tokens: int = 64,
    ) -> None:
        if "{action}" not in question_template:
            raise ValueError("question_template must contain '{action}'.")
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}.")
        self.model = model.eval().requires_grad_(False)
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.vocabulary = HOIVocabulary.from_any(vocabulary)
        self.question_template = question_template
        self.describe_prompt = describe_prompt
        self.system_prompt = system_prompt
        self.max_batch_size = max_batch_size
        self.max_new_tokens = max_new_tokens
        self.yes_ids = answer_token_ids(self.tokenizer, "yes")
        self.no_ids = answer_token_ids(self.tokenizer, "no")
        if not self.yes_ids or not self.no_ids:
            raise ValueError(
                f"The tokenizer has no single token reading 'yes' ({len(self.yes_ids)} found) or 'no' "
                f"({len(self.no_ids)} found), so P(yes) cannot be read from next-token logits."
            )
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        # Qwen2-VL family (M-RoPE): text after the image continues from the largest position of the image.
        base = model.get_base_model() if hasattr(model, "get_base_model") else model  # a PEFT model's own
        self._rope_index = getattr(getattr(base, "model", None), "get_rope_index", None)

    @classmethod
    def from_pretrained(
        cls,
        model: str | PathLike,
        adapter: str | PathLike | None = None,
        vocabulary: HOIVocabulary | dict | str | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        **kwargs: Any,
    ) -> VLLMTeacher:
        """Load a VLLM (Hub id or folder) and, optionally, merge a PEFT LoRA ``adapter`` into it.

        The teacher is frozen, so the adapter is merged (``merge_and_unload``) and costs nothing at
        inference. ``device`` defaults to CUDA when available; ``dtype`` to the checkpoint's own.
        Other keyword arguments go to :class:`VLLMTeacher`.
        """
        processor = AutoProcessor.from_pretrained(model)
        vllm = AutoModelForImageTextToText.from_pretrained(model, dtype=dtype or "auto")
        if adapter is not None:
            from peft import PeftModel

            vllm = PeftModel.from_pretrained(vllm, adapter).merge_and_unload()
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        return cls(vllm.to(device), processor, vocabulary=vocabulary, **kwargs)

    @property
    def device(self) -> torch.device:
        return self.model.device

    # ------------------------------------------------------------------ prompts
    def render(self, text: str) -> str:
        """The full prompt of one image and one instruction (see :func:`render_prompt`)."""
        return render_prompt(self.processor, text, self.system_prompt)

    def question(self, hoi: int) -> str:
        return interaction_question(self.vocabulary, hoi, self.question_template)

    def _add_special_tokens(self, text: str) -> bool:
        # Chat templates usually write the BOS token themselves; do not add a second one.
        bos = self.tokenizer.bos_token
        return not (bos and text.startswith(bos))

    def _encode(self, images: list[list[Image.Image]], texts: list[str], **kwargs: Any) -> dict[str, torch.Tensor]:
        inputs = self.processor(
            images=images, text=texts, return_tensors="pt",
            add_special_tokens=self._add_special_tokens(texts[0]), **kwargs,
        )
        return inputs.to(self.device, dtype=self.model.dtype)

    def _split(self) -> tuple[str, str]:
        """The rendered question prompt cut at the question: (prefix with the image, tail after the question)."""
        rendered = self.render(_MARKER)
        if rendered.count(_MARKER) != 1:
            raise ValueError("The chat template must render the question text exactly once.")
        prefix, tail = rendered.split(_MARKER)
        return prefix, tail

    def _suffix_ids(self, prefix: str, suffixes: list[str]) -> list[list[int]]:
        """Token ids of each suffix as they come out of tokenizing ``prefix + suffix`` in one go."""
        add = self._add_special_tokens(prefix)
        head = self.tokenizer(prefix, add_special_tokens=add)["input_ids"]
        ids = []
        for suffix in suffixes:
            full = self.tokenizer(prefix + suffix, add_special_tokens=add)["input_ids"]
            if full[: len(head)] == head:
                ids.append(full[len(head):])
            else:  # the tokenizer merges across the cut: tokenize the suffix on its own
                ids.append(self.tokenizer(suffix, add_special_tokens=False)["input_ids"])
        if any(not s for s in ids):
            raise ValueError("A question suffix tokenized to nothing.")
        return ids

    # ------------------------------------------------------------------ describe
    @torch.no_grad()
    def describe(
        self, images: Sequence[Image.Image], max_new_tokens: int | None = None, prompt: str | None = None
    ) -> list[str]:
        """A greedy, batched description of each image (what the people do with the objects).

        ``max_new_tokens`` defaults to the teacher's; ``prompt`` to its ``describe_prompt``.
        """
        max_new_tokens = max_new_tokens or self.max_new_tokens
        images = [_rgb(image) for image in images]
        if not images:
            return []
        text = self.render(prompt or self.describe_prompt)
        side, self.tokenizer.padding_side = self.tokenizer.padding_side, "left"
        try:
            outputs = []
            for start in range(0, len(images), self.max_batch_size):
                batch = images[start:start + self.max_batch_size]
                inputs = self._encode([[image] for image in batch], [text] * len(batch), padding=True)
                generated = self.model.generate(
                    **inputs, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
                new_tokens = generated[:, inputs["input_ids"].shape[1]:]
                outputs += [t.strip() for t in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]
        finally:
            self.tokenizer.padding_side = side
        return outputs

    # ------------------------------------------------------------------ scoring
    @torch.no_grad()
    def score_interactions(
        self, images: Sequence[Image.Image], candidates: Sequence[Sequence[int]], reuse_prefix: bool = True
    ) -> list[torch.Tensor]:
        """P(yes) for each candidate HOI of each image (float32 tensors on the CPU, one per image).

        With ``reuse_prefix`` (default) the image and prompt prefix are encoded once per image and the
        questions run as a batch on its KV cache; ``reuse_prefix=False`` runs one full forward per
        question (same probabilities up to float error).
        """
        if len(images) != len(candidates):
            raise ValueError(f"{len(images)} images but {len(candidates)} candidate lists.")
        prefix, tail = self._split()
        results = []
        for image, hois in zip(images, candidates):
            hois = [int(h) for h in hois]
            if not hois:
                results.append(torch.zeros(0, dtype=torch.float32))
                continue
            suffixes = self._suffix_ids(prefix, [self.question(h) + tail for h in hois])
            inputs = self._encode([[_rgb(image)]], [prefix])
            score = self._score_with_cache if reuse_prefix else self._score_one_by_one
            results.append(torch.cat(score(inputs, suffixes)).float().cpu())
        return results

    def _probability_of_yes(self, logits: torch.Tensor) -> torch.Tensor:
        """``[N, vocab]`` next-token logits -> ``[N]`` P(yes) restricted to the yes/no token sets."""
        logits = logits.float()
        yes = torch.logsumexp(logits[:, self.yes_ids], dim=-1)
        no = torch.logsumexp(logits[:, self.no_ids], dim=-1)
        return torch.sigmoid(yes - no)

    def _score_one_by_one(self, inputs: dict[str, torch.Tensor], suffixes: list[list[int]]) -> list[torch.Tensor]:
        probabilities = []
        for suffix in suffixes:
            ids = torch.tensor([suffix], device=self.device)
            full = dict(inputs)
            for key, value in inputs.items():
                if key == "input_ids":
                    full[key] = torch.cat([value, ids], dim=1)
                elif key == "attention_mask":
                    full[key] = torch.cat([value, torch.ones_like(ids)], dim=1)
                elif key.endswith("token_type_ids"):
                    full[key] = torch.cat([value, torch.zeros_like(ids).to(value.dtype)], dim=1)
            logits = self.model(**full, use_cache=False, logits_to_keep=1).logits[:, -1]
            probabilities.append(self._probability_of_yes(logits))
        return probabilities

    def _score_with_cache(self, inputs: dict[str, torch.Tensor], suffixes: list[list[int]]) -> list[torch.Tensor]:
        prefix_ids = inputs["input_ids"]
        prefix_len = prefix_ids.shape[1]
        cache = self.model(**inputs, use_cache=True, logits_to_keep=1).past_key_values
        rope_delta = 0
        if self._rope_index is not None:
            extra = {k: v for k, v in inputs.items() if k != "input_ids"}
            rope_delta = int(self._rope_index(prefix_ids, **extra)[1][0, 0])
        probabilities = []
        for start in range(0, len(suffixes), self.max_batch_size):
            chunk = suffixes[start:start + self.max_batch_size]
            batch, width = len(chunk), max(len(s) for s in chunk)
            lengths = torch.tensor([len(s) for s in chunk], device=self.device)
            # Right padding: pads come after every real token, so causal attention never sees them.
            ids = torch.full((batch, width), self.tokenizer.pad_token_id, dtype=torch.long, device=self.device)
            for row, suffix in enumerate(chunk):
                ids[row, : len(suffix)] = torch.tensor(suffix, device=self.device)
            suffix_mask = (torch.arange(width, device=self.device)[None] < lengths[:, None]).long()
            attention_mask = torch.cat([prefix_ids.new_ones(batch, prefix_len), suffix_mask], dim=1)
            positions = torch.arange(prefix_len, prefix_len + width, device=self.device)[None].expand(batch, -1)
            if self._rope_index is not None:
                positions = (positions + rope_delta)[None].expand(3, -1, -1)
            logits = self.model(
                input_ids=ids, attention_mask=attention_mask, position_ids=positions,
                past_key_values=expand_cache(cache, batch), use_cache=True,
                logits_to_keep=(lengths - 1)[:, None],
            ).logits[:, 0]
            probabilities.append(self._probability_of_yes(logits))
        return probabilities

    # ------------------------------------------------------------------ dataset rows
    def label_examples(self, examples: Sequence[dict[str, Any]], candidates: str = "detected") -> list[dict[str, Any]]:
        """Teacher columns of dataset rows: ``teacher_context``, ``teacher_candidates``, ``teacher_scores``.

        ``candidates="detected"``: every HOI whose object is among the row's detections; ``"all"``: every HOI.
        """
        if candidates not in ("detected", "all"):
            raise ValueError(f"candidates must be 'detected' or 'all', got {candidates!r}.")
        images = [example["image"] for example in examples]
        if candidates == "all":
            hois = [list(range(self.vocabulary.num_hois)) for _ in examples]
        else:
            hois = [candidate_hois(example["detections"]["labels"], self.vocabulary) for example in examples]
        contexts = self.describe(images)
        scores = self.score_interactions(images, hois)
        return [
            {"teacher_context": context, "teacher_candidates": h, "teacher_scores": s.tolist()}
            for context, h, s in zip(contexts, hois, scores)
        ]


def expand_cache(cache: Cache, batch_size: int) -> Cache:
    """A copy of a batch-1 cache seen ``batch_size`` times, without copying its tensors.

    Dynamic layers only ever replace their tensors (``torch.cat``), so broadcast views of the prefix are
    safe to share between copies; other layer types get a real copy.
    """
    if not all(isinstance(layer, DynamicLayer) for layer in cache.layers):
        expanded = copy.deepcopy(cache)
        expanded.batch_repeat_interleave(batch_size)
        return expanded
    expanded = copy.copy(cache)
    expanded.layers = []
    for layer in cache.layers:
        layer = copy.copy(layer)
        if layer.is_initialized and layer.keys is not None and layer.keys.numel():
            layer.keys = layer.keys.expand(batch_size, -1, -1, -1)
            layer.values = layer.values.expand(batch_size, -1, -1, -1)
        expanded.layers.append(layer)
    return expanded


def _rgb(image: Image.Image) -> Image.Image:
    if not isinstance(image, Image.Image):
        raise ValueError(f"Expected a PIL image, got {type(image).__name__}.")
    return image if image.mode == "RGB" else image.convert("RGB")
