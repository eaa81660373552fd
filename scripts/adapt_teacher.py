"""Adapt a VLLM teacher with LoRA on its language model, from image-text pairs of a dataset.

The vision tower, projector and connector stay frozen and adapter-free: LoRA targets are chosen by a
regex over module names (``--target_modules``, default
:data:`modeling_clhoi.teacher.LANGUAGE_MODEL_TARGET_MODULES`), since those names differ per family.
Each example is the teacher's chat prompt (the image and ``--instruction``) followed by the text of
``--text_column`` as the answer; the loss covers the answer only. The adapter is saved as
``adapter_model.safetensors`` and loads with ``VLLMTeacher.from_pretrained(model, adapter=output_dir)``
or ``scripts/label_with_teacher.py --adapter output_dir``.

    python scripts/adapt_teacher.py --model Qwen/Qwen2-VL-2B-Instruct --dataset data/captions \\
        --text_column caption --output_dir teacher_lora --num_train_epochs 1
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForImageTextToText, AutoProcessor, Trainer, TrainingArguments, set_seed

from modeling_clhoi.dataset_schema import load_hoi_dataset
from modeling_clhoi.teacher import DEFAULT_DESCRIBE_PROMPT, LANGUAGE_MODEL_TARGET_MODULES, render_prompt


class ImageTextCollator:
    """Batches ``(image, text)`` rows as ``prompt + text + eos`` with labels on the text part only.

    Args:
        processor: the VLLM's processor.
        text_column: the column holding the answer text.
        instruction: the user turn shown with the image.
        image_column: the column holding the image.
    """

    def __init__(self, processor: Any, text_column: str, instruction: str = DEFAULT_DESCRIBE_PROMPT,
                 image_column: str = "image") -> None:
        self.processor = processor
        self.tokenizer = processor.tokenizer
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "right"
        self.text_column, self.image_column = text_column, image_column
        self.prompt = render_prompt(processor, instruction)
        bos = self.tokenizer.bos_token
        self.add_special_tokens = not (bos and self.prompt.startswith(bos))

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        images = [[row[self.image_column].convert("RGB")] for row in rows]
        texts = [self.prompt + row[self.text_column].strip() + self.tokenizer.eos_token for row in rows]
        batch = self.processor(images=images, text=texts, padding=True, return_tensors="pt",
                               add_special_tokens=self.add_special_tokens)
        labels = batch["input_ids"].clone()
        labels[batch["attention_mask"] == 0] = -100
        for row, image in enumerate(images):
            prompt = self.processor(images=[image], text=[self.prompt], return_tensors="pt",
                                    add_special_tokens=self.add_special_tokens)
            labels[row, : prompt["input_ids"].shape[1]] = -100
        batch["labels"] = labels
        return batch


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="The teacher VLLM (Hub id or folder).")
    parser.add_argument("--dataset", required=True, help="A dataset folder (or Hub id) with an image and a text column.")
    parser.add_argument("--split", default="train")
    parser.add_argument("--text_column", default="teacher_context", help="The answer text (e.g. a caption column).")
    parser.add_argument("--image_column", default="image")
    parser.add_argument("--instruction", default=DEFAULT_DESCRIBE_PROMPT, help="The user turn shown with the image.")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--target_modules", default=LANGUAGE_MODEL_TARGET_MODULES,
                        help="Regex (full match) of the module names that get LoRA.")
    parser.add_argument("--lora_r", type=int, default=16)
    parser.add_argument("--lora_alpha", type=int, default=32)
    parser.add_argument("--lora_dropout", type=float, default=0.05)
    parser.add_argument("--learning_rate", type=float, default=2e-4)
    parser.add_argument("--per_device_train_batch_size", type=int, default=4)
    parser.add_argument("--gradient_accumulation_steps", type=int, default=1)
    parser.add_argument("--num_train_epochs", type=float, default=1.0)
    parser.add_argument("--max_steps", type=int, default=-1)
    parser.add_argument("--max_samples", type=int, default=None, help="Use the first N rows only.")
    parser.add_argument("--logging_steps", type=int, default=10)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--push_to_hub", action="store_true", help="Upload the adapter to --hub_model_id.")
    parser.add_argument("--hub_model_id", default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> Trainer:
    args = parse_args(argv)
    if args.push_to_hub and not args.hub_model_id:
        raise ValueError("--push_to_hub needs --hub_model_id.")
    set_seed(args.seed)
    splits = load_hoi_dataset(args.dataset)
    if args.split not in splits:
        raise ValueError(f"Split {args.split!r} is not in the dataset (splits: {list(splits)}).")
    dataset = splits[args.split]
    for column in (args.image_column, args.text_column):
        if column not in dataset.column_names:
            raise ValueError(f"Column {column!r} is not in the dataset (columns: {dataset.column_names}).")
    if args.max_samples is not None:
        dataset = dataset.select(range(min(args.max_samples, len(dataset))))

    processor = AutoProcessor.from_pretrained(args.model)
    model = AutoModelForImageTextToText.from_pretrained(args.model, dtype=torch.bfloat16 if args.bf16 else "auto")
    lora = LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                      target_modules=args.target_modules)
    model = get_peft_model(model, lora)
    model.print_trainable_parameters()

    training_args = TrainingArguments(
        output_dir=args.output_dir, learning_rate=args.learning_rate,
        per_device_train_batch_size=args.per_device_train_batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps, num_train_epochs=args.num_train_epochs,
        max_steps=args.max_steps, logging_steps=args.logging_steps, save_strategy="no", report_to="none",
        remove_unused_columns=False, label_names=["labels"], bf16=args.bf16, seed=args.seed,
    )
    trainer = Trainer(model=model, args=training_args, train_dataset=dataset,
                      data_collator=ImageTextCollator(processor, args.text_column, args.instruction, args.image_column))
    trainer.train()
    model.save_pretrained(args.output_dir, safe_serialization=True)
    if args.push_to_hub:
        model.push_to_hub(args.hub_model_id)
    return trainer


if __name__ == "__main__":
    main()
