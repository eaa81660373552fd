"""`make demo`: the default CL-HOI run of DESIGN.md, end to end on the synthetic world, on CPU.

1. builds the synthetic world if missing (``data/synthetic``: drawn scenes, simulated detections, instance
   truth kept for evaluation only);
2. runs the synthetic teacher pass (``data/synthetic_teacher``: per image a description and P(yes) per
   candidate HOI, image level only, with noise; resumable);
3. trains CL-HOI with ``scripts/train.py``: stage 1 (context distillation), then stage 2 (interaction
   distillation); the student never sees a box-pair label;
4. reloads the saved model with ``AutoModel.from_pretrained`` and evaluates it on the test split with the
   HICO-DET protocol (Default and Known Object mAP over the HOI classes present in the test split; the
   synthetic world has its own class frequencies, so HICO-DET's rare split does not apply and is not shown);
5. draws predictions on test images into ``outputs/clhoi-synthetic/predictions.png`` and prints the table.

About 10 minutes on 2 CPU cores. ``--quick`` runs a few-minute smoke version (smaller world, fewer epochs)
into ``outputs/clhoi-synthetic-quick``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import datasets
import numpy as np
import torch
from PIL import Image
from transformers import AutoModel, AutoProcessor

from modeling_clhoi.dataset_schema import load_hoi_dataset
from modeling_clhoi.evaluation import hico_det_map
from modeling_clhoi.evaluation.inference import predict_dataset, references_from_dataset
from modeling_clhoi.visualize import visualize

ROOT = Path(__file__).resolve().parent.parent
THREADS = 2
# The synthetic world and the training schedule, tuned to about 10 minutes on 2 CPU cores.
FULL = {
    "data": "data/synthetic", "teacher": "data/synthetic_teacher", "output": "outputs/clhoi-synthetic",
    "num_train": 3000, "num_test": 300, "context_epochs": 1, "epochs": 8,
}
QUICK = {
    "data": "data/synthetic-quick", "teacher": "data/synthetic-quick_teacher", "output": "outputs/clhoi-synthetic-quick",
    "num_train": 400, "num_test": 100, "context_epochs": 1, "epochs": 2,
}
IMAGE_SIZE = 128  # the synthetic preset's input size: drawing larger only costs time
TEACHER_NOISE = 0.1
DRAWN_IMAGES, DRAW_SCALE, DRAW_TOP_K = 6, 3, 3


def _run(script: str, *args: object) -> None:
    """Runs one of the project's scripts in a child process with the demo's thread budget."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": str(THREADS),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, str(ROOT / script), *map(str, args)]
    print(f"\n$ {' '.join(command[1:])}", flush=True)
    subprocess.run(command, check=True, env=env, cwd=ROOT)


def build_data(setup: dict) -> None:
    if (ROOT / setup["data"] / "vocabulary.json").is_file():
        print(f"Using the synthetic world in {setup['data']}.")
        return
    _run("dataset_scripts/synthetic_hoi.py", "--output_dir", setup["data"], "--num_train", setup["num_train"],
         "--num_test", setup["num_test"], "--image_size", IMAGE_SIZE, "--no_teacher", "--num_workers", THREADS)


def train(setup: dict) -> None:
    _run(
        "scripts/train.py", "--preset", "synthetic", "--teacher_labels", setup["teacher"], "--dataset", setup["data"],
        "--output_dir", setup["output"], "--stage", "both",
        "--context_num_train_epochs", setup["context_epochs"], "--context_learning_rate", "1e-3",
        "--num_train_epochs", setup["epochs"], "--learning_rate", "1e-3", "--warmup_steps", "0.05",
        "--weight_decay", "0.01", "--per_device_train_batch_size", "16", "--per_device_eval_batch_size", "32",
        "--eval_strategy", "no", "--save_strategy", "no", "--logging_steps", "50", "--report_to", "none",
        "--dataloader_num_workers", "0", "--use_cpu", "true", "--seed", "0", "--disable_tqdm", "true",
    )


def draw(model, processor, test: datasets.Dataset, path: Path) -> None:
    """The top predictions on the first test images, enlarged, side by side."""
    rows = test.select(range(DRAWN_IMAGES))
    predictions = predict_dataset(model, processor, rows, batch_size=DRAWN_IMAGES, show_progress=False)
    vocabulary = model.vocabulary
    panels = []
    for row, prediction in zip(rows, predictions):
        image = row["image"].convert("RGB")
        image = image.resize((image.width * DRAW_SCALE, image.height * DRAW_SCALE), Image.BICUBIC)
        triplets = [
            {"verb": vocabulary.verbs[vocabulary.hoi_to_verb[hoi]], "object": vocabulary.objects[vocabulary.hoi_to_object[hoi]],
             "score": float(score), "human_box": (box_h * DRAW_SCALE).tolist(), "object_box": (box_o * DRAW_SCALE).tolist()}
            for box_h, box_o, hoi, score in zip(prediction["boxes_h"], prediction["boxes_o"], prediction["hoi"],
                                                prediction["scores"])
        ]
        panels.append(visualize(image, triplets, top_k=DRAW_TOP_K))
    width, height = panels[0].size
    columns = 3
    sheet = Image.new("RGB", (width * columns, height * ((len(panels) + columns - 1) // columns)), "white")
    for i, panel in enumerate(panels):
        sheet.paste(panel, ((i % columns) * width, (i // columns) * height))
    sheet.save(path)


def report(model, test: datasets.Dataset, predictions: list, seconds: float) -> str:
    """The mAP table: Default and Known Object mAP, then AP per HOI class present."""
    references = references_from_dataset(test)
    vocabulary = model.vocabulary
    default = hico_det_map(predictions, references, vocabulary=vocabulary, rare=[])
    known = hico_det_map(predictions, references, vocabulary=vocabulary, rare=[], known_object=True)
    present = np.flatnonzero(default["n_gt"] > 0)
    lines = [
        "",
        f"CL-HOI distilled from the synthetic teacher (noise {TEACHER_NOISE}); no box-pair label used in training.",
        f"Test split: {len(test)} images, {len(present)} HOI classes with ground truth. Total time {seconds / 60:.1f} min.",
        "",
        f"{'HICO-DET protocol':<28}{'mAP (%)':>8}",
        f"{'Default':<28}{100 * default['map']:>8.2f}",
        f"{'Known Object':<28}{100 * known['map']:>8.2f}",
        "",
        f"{'HOI class':<28}{'#GT':>6}{'AP (%)':>8}",
    ]
    for hoi in sorted(present, key=lambda h: -default["ap"][h]):
        lines.append(f"{vocabulary.hoi_name(hoi):<28}{int(default['n_gt'][hoi]):>6}{100 * default['ap'][hoi]:>8.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="A few-minute smoke run (smaller world, 2 epochs).")
    args = parser.parse_args(argv)
    setup = QUICK if args.quick else FULL
    torch.set_num_threads(THREADS)
    start = time.perf_counter()
    build_data(setup)
    _run("scripts/label_with_teacher.py", "--teacher", "synthetic", "--dataset", setup["data"], "--output_dir",
         setup["teacher"], "--synthetic_noise", TEACHER_NOISE, "--no_progress")
    train(setup)

    output = ROOT / setup["output"]
    model = AutoModel.from_pretrained(output)
    processor = AutoProcessor.from_pretrained(output)
    test = load_hoi_dataset(ROOT / setup["data"], split="test")
    predictions = predict_dataset(model, processor, test, batch_size=32)
    draw(model, processor, test, output / "predictions.png")
    table = report(model, test, predictions, time.perf_counter() - start)
    (output / "demo_results.txt").write_text(table + "\n", encoding="utf-8")
    print(table)
    print(f"\nModel, processor and model card: {output}\nPredictions drawn: {output / 'predictions.png'}")


if __name__ == "__main__":
    main()
