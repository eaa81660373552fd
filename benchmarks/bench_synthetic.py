"""Does distillation from image-level teacher labels reach instance-level HOI detection? (synthetic world)

The same CL-HOI model (synthetic preset), the same data and the same schedule, trained three ways:

(a) distillation from the noisy synthetic teacher (the method: stage 1 context, stage 2 interaction);
(b) fully supervised: stage 2 from the instance labels (pairs labelled by IoU matching) - the upper bound;
(c) naive: stage 2 gives every pair its image's teacher scores (image-level labels copied to all pairs);

plus ablations of (a): the ICN without context / spatial / visual relation, no stage 1, and the
interaction losses' weights and pooling. Every run shares stage 1 where it has one (same seed), and only
stage 2's signal or architecture changes. mAP is the HICO-DET protocol (Default) on the synthetic test split,
over the HOI classes present there. Runs go ``--jobs`` at a time, one thread each.

    python benchmarks/bench_synthetic.py                      # everything, about 45 min on 2 cores
    python benchmarks/bench_synthetic.py --runs distillation supervised naive --epochs 2   # a quick look

Prints a Markdown table; ``--output`` gets the JSON (per run: mAP, Known Object mAP, AP per class, time).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# name -> (description, CLHOITrainingArguments overrides, CLHOIConfig overrides)
RUNS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "distillation": ("(a) distillation from the teacher (the method)", {}, {}),
    "supervised": ("(b) fully supervised, instance labels (upper bound)", {"supervision": "instance"}, {}),
    "naive": ("(c) naive: every pair gets its image's teacher labels", {"supervision": "image"}, {}),
    "no_context": ("(a) without ICN context relation", {}, {"use_context_relation": False}),
    "no_spatial": ("(a) without ICN spatial relation", {}, {"use_spatial_relation": False}),
    "no_visual": ("(a) without ICN visual relation", {}, {"use_visual_relation": False}),
    "no_stage1": ("(a) without stage 1 (context distillation)", {"stage": "interaction"}, {}),
    "contrastive_0.1": ("(a) + contrastive interaction loss, weight 0.1", {"interaction_contrastive_weight": 0.1}, {}),
    "contrastive_1": ("(a) + contrastive interaction loss, weight 1", {"interaction_contrastive_weight": 1.0}, {}),
    "lse_pooling": ("(a) log-sum-exp pooling instead of max", {}, {"pooling": "lse"}),
}


def _script(script: str, *args: object) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], check=True, env=env, cwd=ROOT)


def prepare_data(args: argparse.Namespace) -> Path:
    """The synthetic world and its teacher pass, built once (both steps are skipped or resumed when done)."""
    data = Path(args.data_dir)
    if not (data / "vocabulary.json").is_file():
        _script("dataset_scripts/synthetic_hoi.py", "--output_dir", data, "--num_train", args.num_train,
                "--num_test", args.num_test, "--image_size", 128, "--no_teacher", "--num_workers", args.jobs)
    teacher = Path(f"{data}_teacher")
    _script("scripts/label_with_teacher.py", "--teacher", "synthetic", "--dataset", data, "--output_dir", teacher,
            "--synthetic_noise", args.teacher_noise, "--no_progress")
    return teacher


def run_one(name: str, teacher: str, options: dict[str, Any]) -> dict[str, Any]:
    """Trains and evaluates one variant in this (child) process, on one thread."""
    import datasets
    import numpy as np
    import torch

    from modeling_clhoi import CLHOIConfig, CLHOIForInteractionDetection, CLHOIProcessor
    from modeling_clhoi.data_collator import CLHOIDataCollator
    from modeling_clhoi.dataset_schema import read_vocabulary
    from modeling_clhoi.evaluation import hico_det_map
    from modeling_clhoi.evaluation.inference import predict_dataset, references_from_dataset
    from modeling_clhoi.trainer import CLHOIDistillationTrainer, CLHOITrainingArguments

    torch.set_num_threads(1)
    _, training_overrides, config_overrides = RUNS[name]
    data = datasets.load_dataset(teacher)
    vocabulary = read_vocabulary(teacher)
    torch.manual_seed(options["seed"])
    model = CLHOIForInteractionDetection(
        CLHOIConfig.from_preset("synthetic", vocabulary=vocabulary.to_dict(), **config_overrides)
    )
    processor = CLHOIProcessor.from_preset("synthetic")
    processor.vocabulary = vocabulary
    arguments = {
        "output_dir": str(Path(options["work_dir"]) / name), "stage": "both",
        "context_num_train_epochs": options["context_epochs"], "context_learning_rate": 1e-3,
        "num_train_epochs": options["epochs"], "learning_rate": 1e-3, "warmup_steps": 0.05, "weight_decay": 0.01,
        "per_device_train_batch_size": 16, "per_device_eval_batch_size": 32, "save_strategy": "no",
        "eval_strategy": "no", "logging_steps": 100, "report_to": [], "use_cpu": True, "seed": options["seed"],
        "dataloader_num_workers": 0, "disable_tqdm": True,
    }
    arguments.update(training_overrides)
    trainer = CLHOIDistillationTrainer(
        model=model, args=CLHOITrainingArguments(**arguments), train_dataset=data["train"],
        data_collator=CLHOIDataCollator(processor, vocabulary), processing_class=processor,
    )
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    test = data["test"]
    predictions = predict_dataset(model, processor, test, batch_size=32, show_progress=False)
    references = references_from_dataset(test)
    default = hico_det_map(predictions, references, vocabulary=vocabulary, rare=[])
    known = hico_det_map(predictions, references, vocabulary=vocabulary, rare=[], known_object=True)
    present = np.flatnonzero(default["n_gt"] > 0)
    return {
        "name": name, "description": RUNS[name][0], "map": default["map"], "map_known_object": known["map"],
        "train_seconds": seconds, "steps": trainer.state.global_step,
        "ap": {vocabulary.hoi_name(h): float(default["ap"][h]) for h in present},
    }


def table(results: dict[str, dict[str, Any]]) -> str:
    reference = results.get("supervised", {}).get("map")
    lines = ["| run | mAP (%) | Known Object mAP (%) | vs (b) supervised | train time (min) |",
             "|---|---:|---:|---:|---:|"]
    for name in RUNS:
        if name not in results:
            continue
        r = results[name]
        ratio = f"{100 * r['map'] / reference:.1f}%" if reference else "-"
        lines.append(f"| {r['description']} | {100 * r['map']:.2f} | {100 * r['map_known_object']:.2f} | {ratio} | "
                     f"{r['train_seconds'] / 60:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--data_dir", default="data/synthetic-bench")
    parser.add_argument("--num_train", type=int, default=3000)
    parser.add_argument("--num_test", type=int, default=500)
    parser.add_argument("--teacher_noise", type=float, default=0.1)
    parser.add_argument("--context_epochs", type=float, default=1.0)
    parser.add_argument("--epochs", type=float, default=8.0, help="Epochs of stage 2 (as make demo).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="Runs trained at once (one thread each).")
    parser.add_argument("--work_dir", default="outputs/bench_synthetic")
    parser.add_argument("--output", default="outputs/bench_synthetic/results.json")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    teacher = str(prepare_data(args))
    options = {"seed": args.seed, "context_epochs": args.context_epochs, "epochs": args.epochs,
               "work_dir": args.work_dir}
    results: dict[str, dict[str, Any]] = {}
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = {name: pool.submit(run_one, name, teacher, options) for name in args.runs}
        for name, future in futures.items():
            results[name] = future.result()
            print(f"{name}: mAP {100 * results[name]['map']:.2f}", flush=True)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    summary = {"settings": vars(args), "total_seconds": time.perf_counter() - start, "runs": results}
    Path(args.output).write_text(json.dumps(summary, indent=1), encoding="utf-8")
    print()
    print(table(results))
    print(f"\nTotal {summary['total_seconds'] / 60:.1f} min; details in {args.output}")
    return results


if __name__ == "__main__":
    main()
