"""Model cards of CL-HOI checkpoints: Hub metadata, model-index eval results and a readable page.

:func:`create_model_card` renders ``model_cards/clhoi_model_card_template.md`` with
``huggingface_hub.ModelCard`` / ``ModelCardData`` from what a trained model folder holds:

- ``config.json``: the vocabulary and whether the model carries a detector;
- ``eval_results.json`` (or ``eval_results=``): HICO-DET mAP Full / Rare / Non-rare (Default and, when
  present, Known Object mode) and V-COCO role AP scenarios 1 / 2, as ``model-index`` entries;
- ``training_args.json`` (or ``training_args=``): the training hyperparameters, the teacher / detector
  / CLIP base models and the training data sets.

Hub metadata choices: ``library_name: transformers`` because the checkpoint loads with plain
transformers (``AutoModel`` / ``pipeline`` with ``trust_remote_code=True``), which is what gives the
page its "Use this model" snippet and custom-code badge; the ``clhoi`` tag marks the package.
``pipeline_tag: object-detection``, the closest task the Hub knows (HOI detection detects box pairs).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

DEFAULT_TEMPLATE = Path(__file__).resolve().parent.parent / "model_cards" / "clhoi_model_card_template.md"
EVAL_RESULTS_NAME = "eval_results.json"
TRAINING_ARGS_NAME = "training_args.json"
PIPELINE_TAG = "object-detection"
LIBRARY_NAME = "transformers"
DEFAULT_TAGS = ("clhoi", "human-object-interaction", "hoi-detection", "knowledge-distillation",
                "vision-language", "custom_code")

# Keys of the training arguments that name the base models, by role (first present wins).
BASE_MODEL_KEYS: dict[str, tuple[str, ...]] = {
    "teacher": ("teacher_model_name_or_path", "teacher_model", "teacher"),
    "teacher adapter": ("teacher_adapter", "teacher_adapter_name_or_path", "adapter_name_or_path"),
    "detector": ("detector_model_name_or_path", "detector_name_or_path", "detector"),
    "CLIP": ("clip_model_name_or_path", "vision_model_name_or_path", "clip_model", "clip"),
}
DATASET_KEYS = ("dataset_name", "dataset_name_or_path", "dataset", "train_dataset")
# Hyperparameters shown in the card's table, in this order, when the training arguments hold them.
TRAINING_KEYS = (
    "stage", "num_train_epochs", "max_steps", "learning_rate", "lr_scheduler_type", "warmup_ratio",
    "weight_decay", "per_device_train_batch_size", "gradient_accumulation_steps", "seed", "bf16", "fp16",
    "teacher_candidates", "teacher_noise", "context_loss_weight", "interaction_loss_weight",
    "distillation_loss_weight",
)

_HICO = r"(?:hico_det_|hico_)?"
_VCOCO = r"(?:vcoco_|v_coco_)?(?:role_ap_)?"
# (dataset, setting, metric) -> pattern of a flattened, lower-cased eval_results.json key.
_METRIC_PATTERNS: dict[tuple[str, str, str], re.Pattern[str]] = {
    key: re.compile(pattern)
    for key, pattern in {
        ("HICO-DET", "Default", "Full"): rf"{_HICO}(?:default_)?map(?:_full)?",
        ("HICO-DET", "Default", "Rare"): rf"{_HICO}(?:default_)?map_rare",
        ("HICO-DET", "Default", "Non-rare"): rf"{_HICO}(?:default_)?map_non_?rare",
        ("HICO-DET", "Known Object", "Full"): rf"{_HICO}known_object_map(?:_full)?",
        ("HICO-DET", "Known Object", "Rare"): rf"{_HICO}known_object_map_rare",
        ("HICO-DET", "Known Object", "Non-rare"): rf"{_HICO}known_object_map_non_?rare",
        ("V-COCO", "Scenario 1", "Role AP"): rf"{_VCOCO}(?:scenario_?1|s1)",
        ("V-COCO", "Scenario 2", "Role AP"): rf"{_VCOCO}(?:scenario_?2|s2)",
    }.items()
}
_DATASET_TYPES = {"HICO-DET": "hico_det", "V-COCO": "vcoco"}
_PROTOCOL = {
    "HICO-DET": "HICO-DET: mAP (%) of the official protocol (11-point AP, IoU >= 0.5 for both boxes) over all "
                "600 classes (Full), the 138 classes with fewer than 10 training pairs (Rare) and the rest "
                "(Non-rare).",
    "V-COCO": "V-COCO: role AP (%) as in `vsrl_eval.py`, scenarios 1 and 2.",
}
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(?:/[\w.-]+)?$")


@dataclass(frozen=True)
class BenchmarkResult:
    """One number of the evaluation table: e.g. HICO-DET / Default / Rare = 21.3 (percent)."""

    dataset: str
    setting: str
    metric: str
    value: float
    evaluated_on: str | None = None  # the data set the protocol ran on, when it is not `dataset` itself

    def to_eval_result(self) -> EvalResult:
        hico = self.dataset == "HICO-DET"
        return EvalResult(
            task_type=PIPELINE_TAG,
            task_name="Human-Object Interaction Detection",
            dataset_type=_slug(self.evaluated_on) if self.evaluated_on else _DATASET_TYPES[self.dataset],
            dataset_name=self.evaluated_on or self.dataset,
            dataset_split="test",
            metric_type="map" if hico else "role_ap",
            metric_name=f"mAP {self.setting} {self.metric}" if hico else f"Role AP {self.setting}",
            metric_config=_slug(f"{self.setting} {self.metric}" if hico else self.setting),
            metric_value=round(self.value, 4),
        )


def _slug(text: str) -> str:
    """Lower-case words joined by underscores: "Known Object Non-rare" -> "known_object_non_rare"."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = _slug(f"{prefix}{key}")
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name + "_"))
        else:
            flat[name] = value
    return flat


def _load_json(source: Mapping[str, Any] | str | os.PathLike | None, what: str) -> dict[str, Any]:
    if source is None:
        return {}
    if isinstance(source, Mapping):
        return dict(source)
    if hasattr(source, "to_dict"):  # e.g. transformers.TrainingArguments
        return dict(source.to_dict())
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file not found: {path}")
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{what} file {path} must hold a JSON object, got {type(data).__name__}")
    return data


def read_eval_results(
    source: Mapping[str, Any] | str | os.PathLike, *, metrics_in_percent: bool = False
) -> list[BenchmarkResult]:
    """The benchmark numbers found in an ``eval_results.json`` (or its dict), as percentages.

    Keys may be nested (``{"hico_det": {"map": ..., "map_rare": ...}, "vcoco": {"scenario_1": ...}}``) or flat
    (``"hico_det_map_non_rare"``, ``"vcoco_role_ap_scenario_2"``), with an optional ``eval_`` / ``test_`` prefix
    as `Trainer.save_metrics` writes them; other keys (loss, runtime, per-class AP arrays) are ignored.

    Args:
        source: the JSON file or its content.
        metrics_in_percent: the values are percentages already; by default they are fractions in [0, 1], as
            `hico_det_map` and `vcoco_role_ap` return them.
    """
    data = _flatten(_load_json(source, "eval results"))
    results: dict[tuple[str, str, str], float] = {}
    for raw_key, value in data.items():
        key = re.sub(r"^(?:eval|test|predict)_", "", raw_key)
        for target, pattern in _METRIC_PATTERNS.items():
            if pattern.fullmatch(key) and isinstance(value, (int, float)) and not isinstance(value, bool):
                value = float(value)
                if math.isnan(value):
                    continue
                if not metrics_in_percent and not 0.0 <= value <= 1.0:
                    raise ValueError(
                        f"{raw_key} = {value} is not a fraction in [0, 1]; pass metrics_in_percent=True if the "
                        "results are percentages."
                    )
                results[target] = value if metrics_in_percent else 100.0 * value
    return [BenchmarkResult(*key, value=value) for key, value in sorted(
        results.items(), key=lambda kv: list(_METRIC_PATTERNS).index(kv[0]))]


def _is_hub_id(value: Any) -> bool:
    """Whether ``value`` looks like a Hub repo id (not a local path), the only thing Hub metadata accepts."""
    return isinstance(value, str) and bool(_REPO_ID.match(value)) and not os.path.exists(value)


def _first(mapping: Mapping[str, Any], keys: Sequence[str]) -> Any:
    return next((mapping[k] for k in keys if mapping.get(k) not in (None, "")), None)


def _model_summary(config: Mapping[str, Any]) -> dict[str, Any]:
    vocabulary = config.get("vocabulary") or {}
    detector = config.get("detector_config")
    if detector:
        source = detector.get("_name_or_path") or ""
        description = f"{detector.get('model_type', 'object detection')} model held inside the checkpoint" + (
            f" (`{source}`)" if source else "")
    else:
        description = "none inside the checkpoint: pass `detections=` (boxes, labels, scores) per image"
    return {
        "vocabulary_name": vocabulary.get("name", "HICO-DET"),
        "num_hois": len(vocabulary.get("triplets", [])) or 600,
        "num_verbs": len(vocabulary.get("verbs", [])) or 117,
        "num_objects": len(vocabulary.get("objects", [])) or 80,
        "detector_description": description,
        "needs_detections": not detector,
    }


def create_model_card(
    model_dir: str | os.PathLike,
    *,
    repo_id: str | None = None,
    eval_results: Mapping[str, Any] | str | os.PathLike | None = None,
    training_args: Any = None,
    base_models: Mapping[str, str] | None = None,
    datasets: Sequence[str] | None = None,
    license: str = "apache-2.0",
    tags: Sequence[str] = (),
    template_path: str | os.PathLike | None = None,
    metrics_in_percent: bool = False,
    eval_dataset_name: str | None = None,
) -> ModelCard:
    """Render the model card of a saved CL-HOI model folder.

    Args:
        model_dir: the folder written by ``save_pretrained`` (its ``config.json`` is read).
        repo_id: the Hub repo (``"org/name"``) used in the card's code snippets; defaults to the folder's name.
        eval_results: a dict or JSON path (see :func:`read_eval_results`); defaults to
            ``model_dir/eval_results.json`` when present.
        training_args: a dict, a JSON path or an object with ``to_dict()`` (e.g. ``TrainingArguments``);
            defaults to ``model_dir/training_args.json`` when present. Base models and data sets are read from
            it under the keys of :data:`BASE_MODEL_KEYS` and :data:`DATASET_KEYS`.
        base_models: role -> model id (``{"teacher": ..., "detector": ..., "CLIP": ...}``); overrides the
            training arguments. Ids that are Hub repo ids go to the ``base_model`` metadata, local paths only
            to the text.
        datasets: data set ids; override the training arguments' one. Hub ids go to the ``datasets`` metadata.
        license: an SPDX-style license id understood by the Hub.
        tags: extra tags, added to :data:`DEFAULT_TAGS`.
        template_path: a Jinja template; defaults to ``model_cards/clhoi_model_card_template.md``.
        metrics_in_percent: see :func:`read_eval_results`.
        eval_dataset_name: the data set the evaluation ran on (e.g. "Synthetic HOI world"), when it is not the
            protocol's own (HICO-DET, V-COCO); defaults to the training arguments' ``eval_dataset_name``. The
            model-index then names that data set, so numbers on other data never pass for HICO-DET results.
    """
    model_dir = Path(model_dir)
    config_file = model_dir / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{model_dir} holds no config.json: save the model there first.")
    config = _load_json(config_file, "model config")
    if eval_results is None and (model_dir / EVAL_RESULTS_NAME).is_file():
        eval_results = model_dir / EVAL_RESULTS_NAME
    if training_args is None and (model_dir / TRAINING_ARGS_NAME).is_file():
        training_args = model_dir / TRAINING_ARGS_NAME
    benchmarks = read_eval_results(eval_results, metrics_in_percent=metrics_in_percent) if eval_results else []
    args = _load_json(training_args, "training arguments") if training_args is not None else {}

    evaluated_on = eval_dataset_name or args.get("eval_dataset_name")
    if evaluated_on and evaluated_on not in _DATASET_TYPES:
        benchmarks = [replace(b, evaluated_on=evaluated_on) for b in benchmarks]
    roles = {role: _first(args, keys) for role, keys in BASE_MODEL_KEYS.items()}
    roles.update(base_models or {})
    roles = {role: str(name) for role, name in roles.items() if name}
    dataset_ids = [str(d) for d in (datasets if datasets is not None else [_first(args, DATASET_KEYS)]) if d]
    repo_id = repo_id or model_dir.resolve().name
    model_name = repo_id.split("/")[-1]

    template = Path(template_path) if template_path is not None else DEFAULT_TEMPLATE
    if not template.is_file():
        raise FileNotFoundError(f"Model card template not found: {template}; pass template_path=.")
    card_data = ModelCardData(
        model_name=model_name,
        library_name=LIBRARY_NAME,
        pipeline_tag=PIPELINE_TAG,
        license=license,
        tags=list(dict.fromkeys([*DEFAULT_TAGS, *tags])),
        datasets=[d for d in dataset_ids if _is_hub_id(d)] or None,
        base_model=[name for name in roles.values() if _is_hub_id(name)] or None,
        eval_results=[b.to_eval_result() for b in benchmarks] or None,
    )
    training_rows = [(key, args[key]) for key in TRAINING_KEYS if key in args and args[key] is not None]
    return ModelCard.from_template(
        card_data,
        template_path=str(template),
        repo_id=repo_id,
        model_name=model_name,
        base_model_roles=list(roles.items()),
        dataset_names=[Path(d).name if os.path.exists(d) else d for d in dataset_ids],
        evaluation_rows=benchmarks,
        evaluation_protocol=" ".join(_PROTOCOL[d] for d in dict.fromkeys(b.dataset for b in benchmarks)),
        training_rows=training_rows,
        **_model_summary(config),
    )


def save_model_card(model_dir: str | os.PathLike, **kwargs: Any) -> Path:
    """Render the card of ``model_dir`` (see :func:`create_model_card`) and write it to ``model_dir/README.md``."""
    path = Path(model_dir) / "README.md"
    create_model_card(model_dir, **kwargs).save(path)
    return path
