"""Benchmark: the teacher's prefix (KV-cache) reuse, and the teacher pass against the CL-HOI student.

(a) ``prefix``: a mid-size LLaVA-like teacher with random weights (CLIP-like tower at 336 px / patch 14,
    i.e. 576 image tokens; a Llama of hidden 1024 and 8 layers) scores 24 candidate HOIs of one image,
    once with the image prefix encoded once and the questions batched on its KV cache, once with one full
    forward per question. The script asserts both give the same P(yes) (max difference < 1e-4) and prints
    the speed ratio.
(b) ``pass``: images/s of the teacher pass (``run_teacher_pass``: description + P(yes) of every detected
    candidate) with a Qwen2-VL-2B-shaped teacher (random weights, float32, the real processor's resolution
    on 640x480 images) against images/s of the student, ``CLHOIForInteractionDetection`` with the
    ``base`` preset (random weights), with cached detections and end to end with its own detector.

Random weights change nothing in the cost (same shapes, same number of generated tokens: generation
runs exactly ``--max_new_tokens`` steps as end-of-sequence is suppressed). On a CPU, a 2B teacher takes
minutes per image: keep ``--teacher_images`` small there.

    python benchmarks/bench_teacher.py --part prefix
    python benchmarks/bench_teacher.py --part pass --teacher_images 2 --student_images 8
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import datasets
import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tiny/mid-size VLLM builders
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tiny_vllms import (  # noqa: E402
    QWEN2_VL_TEMPLATE,
    TinyQwen2VLProcessor,
    build_llava,
    build_tokenizer,
    vocabulary_words,
)
from transformers import AutoModelForImageTextToText, Qwen2VLConfig  # noqa: E402
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil  # noqa: E402

from modeling_clhoi import CLHOIConfig, CLHOIForInteractionDetection, CLHOIProcessor, HOIVocabulary  # noqa: E402
from modeling_clhoi.dataset_schema import candidate_hois, empty_annotation, hoi_features  # noqa: E402
from modeling_clhoi.teacher import VLLMTeacher  # noqa: E402
from modeling_clhoi.teacher_pass import run_teacher_pass  # noqa: E402

VOCABULARY = HOIVocabulary.hico_det()


def _images(n: int, size: tuple[int, int] = (640, 480), seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)) for _ in range(n)]


def bench_prefix(num_candidates: int, repeats: int) -> None:
    print(f"== (a) prefix reuse vs one forward per question, {num_candidates} candidates ==")
    with tempfile.TemporaryDirectory() as tmp:
        path = build_llava(tmp, words=vocabulary_words(VOCABULARY), text_hidden=1024, text_layers=8,
                           image_size=336, patch_size=14, vision_hidden=256, vision_layers=4)
        teacher = VLLMTeacher.from_pretrained(path, vocabulary=VOCABULARY, device="cpu")
    params = sum(p.numel() for p in teacher.model.parameters()) / 1e6
    image = _images(1)
    candidates = [list(range(num_candidates))]
    prefix_tokens = teacher._encode([[image[0]]], [teacher._split()[0]])["input_ids"].shape[1]
    print(f"teacher: LLaVA-like, {params:.0f}M parameters, prefix of {prefix_tokens} tokens "
          f"(576 image tokens), threads={torch.get_num_threads()}")
    teacher.score_interactions(image, [candidates[0][:2]])  # warm-up
    timings = {}
    for reuse in (True, False):
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            scores = teacher.score_interactions(image, candidates, reuse_prefix=reuse)[0]
            best = min(best, time.perf_counter() - start)
        timings[reuse] = (best, scores)
    diff = (timings[True][1] - timings[False][1]).abs().max().item()
    assert diff < 1e-4, f"prefix reuse changed P(yes) by {diff}"
    print(f"prefix reuse:           {timings[True][0]:7.2f} s")
    print(f"one forward / question: {timings[False][0]:7.2f} s")
    print(f"max |dP(yes)|: {diff:.2e}   speed-up: {timings[False][0] / timings[True][0]:.1f}x")


def qwen2_vl_2b_teacher() -> VLLMTeacher:
    """Qwen2-VL-2B-Instruct's shapes (vision 32 x 1280, language 28 x 1536), random weights, float32."""
    words = vocabulary_words(VOCABULARY)
    tokenizer = build_tokenizer(
        ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"],
        words, QWEN2_VL_TEMPLATE, bos="<|endoftext|>", eos="<|im_end|>",
    )
    ids = tokenizer.convert_tokens_to_ids
    config = Qwen2VLConfig(
        vision_config={"depth": 32, "embed_dim": 1280, "hidden_size": 1536, "num_heads": 16, "mlp_ratio": 4,
                       "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2},
        text_config={"vocab_size": 151936, "hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
                     "num_attention_heads": 12, "num_key_value_heads": 2, "max_position_embeddings": 32768,
                     "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
                     "bos_token_id": ids("<|endoftext|>"), "eos_token_id": ids("<|im_end|>")},
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_config(config).eval()
    model.generation_config.eos_token_id = None  # always generate max_new_tokens, as a real worst case
    processor = TinyQwen2VLProcessor(Qwen2VLImageProcessorPil(), tokenizer, chat_template=QWEN2_VL_TEMPLATE)
    return VLLMTeacher(model, processor, vocabulary=VOCABULARY)


def _rows(n: int) -> list[dict]:
    """640x480 rows with two people, a bicycle and a cup detected."""
    person, bicycle, cup = (VOCABULARY.objects.index(name) for name in ("person", "bicycle", "cup"))
    boxes = [[40.0, 60.0, 200.0, 470.0], [300.0, 80.0, 420.0, 460.0], [20.0, 250.0, 330.0, 470.0],
             [380.0, 200.0, 410.0, 240.0]]
    return [{"image": image, "image_id": str(i), "width": 640, "height": 480,
             "detections": {"boxes": boxes, "labels": [person, person, bicycle, cup], "scores": [0.9] * 4},
             "annotation": empty_annotation()} for i, image in enumerate(_images(n, seed=1))]


def bench_pass(teacher_images: int, student_images: int, max_new_tokens: int, batch_size: int) -> None:
    print("== (b) teacher pass vs CL-HOI student, images/s ==")
    rows = _rows(max(teacher_images, student_images))
    n_candidates = len(candidate_hois(rows[0]["detections"]["labels"], VOCABULARY))

    teacher = qwen2_vl_2b_teacher()
    teacher.max_new_tokens = max_new_tokens
    params = sum(p.numel() for p in teacher.model.parameters()) / 1e9
    data = datasets.DatasetDict({"train": datasets.Dataset.from_list(rows[:teacher_images], features=hoi_features())})
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_teacher_pass(teacher, data, tmp, batch_size=batch_size, progress=False)
        teacher_time = time.perf_counter() - start
    teacher_ips = teacher_images / teacher_time
    print(f"teacher: Qwen2-VL-2B shapes, {params:.2f}B parameters, float32; {teacher_images} image(s) of 640x480, "
          f"{n_candidates} candidate HOIs each, {max_new_tokens}-token description: "
          f"{teacher_time:.1f} s, {teacher_ips:.4f} images/s")
    del teacher

    config = CLHOIConfig.from_preset("base")
    student = CLHOIForInteractionDetection(config).eval()
    processor = CLHOIProcessor.from_preset("base")
    params = sum(p.numel() for p in student.parameters()) / 1e6
    images = [row["image"] for row in rows[:student_images]]
    pixel_values = processor(images=images, return_tensors="pt")["pixel_values"]
    scale = torch.tensor([640.0, 480.0, 640.0, 480.0])
    detections = [{"boxes": torch.tensor(row["detections"]["boxes"]) / scale,
                   "labels": torch.tensor(row["detections"]["labels"]),
                   "scores": torch.tensor(row["detections"]["scores"])} for row in rows[:student_images]]
    results = {}
    with torch.no_grad():
        student(pixel_values=pixel_values[:1], detections=detections[:1])  # warm-up
        for name, kwargs in (("cached detections", {"detections": detections}), ("with its DETR detector", {})):
            start = time.perf_counter()
            out = student(pixel_values=pixel_values, **kwargs)
            results[name] = (student_images / (time.perf_counter() - start), out.pair_logits.shape[0])
    for name, (ips, pairs) in results.items():
        print(f"student: CL-HOI base, {params:.0f}M parameters, batch of {student_images} at "
              f"{pixel_values.shape[-1]} px, {name} ({pairs} pairs): {ips:.2f} images/s, "
              f"{ips / teacher_ips:.0f}x the teacher pass")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("prefix", "pass", "all"), default="all")
    parser.add_argument("--candidates", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=1, help="Timed runs of (a); the best is kept.")
    parser.add_argument("--teacher_images", type=int, default=2)
    parser.add_argument("--student_images", type=int, default=8)
    parser.add_argument("--max_new_tokens", type=int, default=32)
    parser.add_argument("--batch_size", type=int, default=1, help="Teacher pass batch size.")
    args = parser.parse_args()
    if args.part in ("prefix", "all"):
        bench_prefix(args.candidates, args.repeats)
    if args.part in ("pass", "all"):
        bench_pass(args.teacher_images, args.student_images, args.max_new_tokens, args.batch_size)


if __name__ == "__main__":
    main()
