"""scripts/adapt_teacher.py: LoRA on the language model of tiny VLLMs, from dataset image-text pairs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tiny_vllms import FAMILIES, build_tiny_dataset, build_tiny_vllm, tiny_vocabulary, vocabulary_words
from transformers import AutoModelForImageTextToText, AutoProcessor

from modeling_clhoi.dataset_schema import load_hoi_dataset
from modeling_clhoi.teacher import LANGUAGE_MODEL_TARGET_MODULES, VLLMTeacher

pytestmark = pytest.mark.usefixtures("one_thread")

REPO = Path(__file__).resolve().parents[1]
VOCABULARY = tiny_vocabulary()
VISION = ("vision", "visual", "multi_modal_projector", "connector")


def _script():
    spec = importlib.util.spec_from_file_location("adapt_teacher", REPO / "scripts" / "adapt_teacher.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    return build_tiny_dataset(tmp_path_factory.mktemp("data") / "captions", VOCABULARY, {"train": 6}, with_teacher=True)


def test_collator_masks_the_prompt(dataset_dir, tmp_path):
    model_dir = build_tiny_vllm("qwen2_vl", tmp_path / "qwen2_vl", words=vocabulary_words(VOCABULARY))
    processor = AutoProcessor.from_pretrained(model_dir)
    rows = [load_hoi_dataset(dataset_dir)["train"][i] for i in range(3)]
    batch = _script().ImageTextCollator(processor, "teacher_context")(rows)
    tokenizer = processor.tokenizer
    for row, ids, labels, mask in zip(rows, batch["input_ids"], batch["labels"], batch["attention_mask"]):
        kept = labels[labels != -100]
        assert tokenizer.decode(kept, skip_special_tokens=False).split() == (
            tokenizer.decode(tokenizer(row["teacher_context"])["input_ids"]).split() + ["<|im_end|>"]
        )
        first = int((labels != -100).nonzero()[0])
        assert tokenizer.decode(ids[first - 2:first]).split() == ["<|im_start|>", "assistant"]  # the prompt ends there
        assert (labels[mask == 0] == -100).all()
    assert (batch["image_grid_thw"][:, 1:] > 0).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_on_the_language_model_only(family, dataset_dir, tmp_path):
    model_dir = build_tiny_vllm(family, tmp_path / family, words=vocabulary_words(VOCABULARY))
    out = tmp_path / "adapter"
    trainer = _script().main([
        "--model", str(model_dir), "--dataset", str(dataset_dir), "--output_dir", str(out), "--max_steps", "3",
        "--per_device_train_batch_size", "2", "--learning_rate", "1e-2", "--logging_steps", "1", "--lora_r", "4",
    ])
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))

    weights = load_file(out / "adapter_model.safetensors")
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["target_modules"] == LANGUAGE_MODEL_TARGET_MODULES
    assert weights and not any(part in name for name in weights for part in VISION)
    # 2 layers x (q, k, v, o) x (A, B), all in the language model, and training moved B away from zero.
    assert len(weights) == 16
    assert all(w.abs().sum() > 0 for name, w in weights.items() if "lora_B" in name)

    base = AutoModelForImageTextToText.from_pretrained(model_dir).state_dict()
    adapted = VLLMTeacher.from_pretrained(model_dir, adapter=out, vocabulary=VOCABULARY).model.state_dict()
    assert base.keys() == adapted.keys()
    changed = {name for name in base if not torch.equal(base[name], adapted[name])}
    assert len(changed) == 8 and all(name.endswith(("q_proj.weight", "k_proj.weight", "v_proj.weight",
                                                    "o_proj.weight")) for name in changed)
    assert not any(part in name for name in changed for part in VISION)  # the vision tower is untouched


def test_bad_arguments(dataset_dir, tmp_path):
    script = _script()
    with pytest.raises(ValueError, match="Column 'caption' is not in the dataset"):
        script.main(["--model", "unused", "--dataset", str(dataset_dir), "--output_dir", str(tmp_path),
                     "--text_column", "caption"])
    with pytest.raises(ValueError, match="--push_to_hub needs --hub_model_id"):
        script.main(["--model", "unused", "--dataset", str(dataset_dir), "--output_dir", str(tmp_path), "--push_to_hub"])
