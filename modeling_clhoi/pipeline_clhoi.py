"""`pipeline("hoi-detection")`: human-object interaction detection in one line.

Importing this module (``import modeling_clhoi`` does it) registers :class:`HOIDetectionPipeline` with
transformers as the ``"hoi-detection"`` task::

    import modeling_clhoi
    from transformers import pipeline

    detector = pipeline("hoi-detection", model="path/to/model")
    detector("image.jpg", detections={"boxes": [[10, 20, 200, 400], [150, 300, 260, 420]],
                                      "labels": ["person", "bicycle"], "scores": [0.99, 0.93]})

A model folder can carry this file too (:func:`save_pipeline_code`), so that users without the package
load everything from the folder or its Hub repo: ``pipeline(model="org/name", trust_remote_code=True)``.
That path goes through the ``custom_pipelines`` entry of ``config.json``, keyed :data:`REMOTE_CODE_TASK`
rather than ``"hoi-detection"``: transformers sends any task named in ``custom_pipelines`` to the
folder's code and requires ``trust_remote_code=True`` for it, which would break the plain
``pipeline("hoi-detection", model=...)`` of package users on every such folder.

Only relative imports here: the file must also run as remote code next to the model's own files.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers import AutoModel, Pipeline
from transformers.dynamic_module_utils import get_relative_import_files
from transformers.image_utils import load_image
from transformers.pipelines import PIPELINE_REGISTRY

from .vocabulary import HOIVocabulary

TASK = "hoi-detection"
# The task under which config.json's `custom_pipelines` names this pipeline (see the module docstring).
REMOTE_CODE_TASK = "hoi-detection-remote-code"
# Output fields of the model that post-processing reads, split per image by `_forward`.
_PAIR_FIELDS = ("pair_logits", "pair_scores", "pair_indices")

ImageInput = str | os.PathLike | Image.Image | np.ndarray
VocabularyInput = HOIVocabulary | Mapping[str, Any] | str | Sequence[Sequence[str] | str]


def _to_pil(image: ImageInput, timeout: float | None) -> Image.Image:
    """A path, URL, PIL image or ``[H, W, C]`` / ``[C, H, W]`` numpy array (uint8, or float in [0, 1]) as RGB."""
    if isinstance(image, os.PathLike):
        image = os.fspath(image)
    if isinstance(image, np.ndarray):
        array = image
        if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
            array = array.transpose(1, 2, 0)
        if array.ndim not in (2, 3):
            raise ValueError(f"A numpy image must be [H, W], [H, W, C] or [C, H, W], got shape {image.shape}")
        if array.dtype != np.uint8:
            array = np.clip(np.rint(array * 255.0 if array.max() <= 1.0 else array), 0, 255).astype(np.uint8)
        return Image.fromarray(array.squeeze()).convert("RGB")
    if isinstance(image, (str, Image.Image)):
        return load_image(image, timeout=timeout).convert("RGB")
    raise ValueError(
        f"Unsupported image type {type(image).__name__}: pass a path, an http(s) URL, a PIL image or a numpy array."
    )


def build_vocabulary(vocabulary: VocabularyInput, base: HOIVocabulary) -> HOIVocabulary:
    """An HOI vocabulary for open-vocabulary use from any of the pipeline's ``vocabulary=`` forms.

    ``vocabulary`` is an :class:`HOIVocabulary`, its dict, a preset name or JSON path, or a list of HOIs,
    each ``(verb, object)``, ``(verb, object, prompt)`` or a ``"verb object"`` string (``HOIVocabulary.hoi_name``
    style, names without spaces). Lists keep the verbs and objects of ``base`` with their ids (new names are
    appended), so detection labels given as ids still mean the same objects.
    """
    if isinstance(vocabulary, (HOIVocabulary, Mapping, str)):
        return HOIVocabulary.from_any(vocabulary)
    if not isinstance(vocabulary, Sequence) or not vocabulary:
        raise ValueError("`vocabulary` must be an HOIVocabulary, a dict, a preset name / JSON path or a non-empty "
                         f"list of (verb, object) pairs, got {vocabulary!r}")
    verbs, objects, triplets, prompts = list(base.verbs), list(base.objects), [], []
    for item in vocabulary:
        parts = item.split() if isinstance(item, str) else list(item)
        if len(parts) not in (2, 3) or not all(isinstance(p, str) for p in parts):
            raise ValueError(f"Each HOI must be (verb, object), (verb, object, prompt) or 'verb object', got {item!r}")
        verb, obj = parts[0], parts[1]
        verbs += [verb] if verb not in verbs else []
        objects += [obj] if obj not in objects else []
        triplets.append((obj, verb))
        prompts.append(parts[2] if len(parts) == 3 else None)
    custom = HOIVocabulary.from_lists(verbs, objects, triplets, name="custom", person_name=base.person_name)
    custom.prompts = [p if p is not None else default for p, default in zip(prompts, custom.prompts)]
    return custom


def _normalize_detections(
    detections: Mapping[str, Any], size: tuple[int, int], vocabulary: HOIVocabulary
) -> dict[str, torch.Tensor]:
    """Absolute xyxy pixel boxes with labels (ids or names) and scores -> the model's normalized format."""
    if not isinstance(detections, Mapping) or not {"boxes", "labels"} <= set(detections):
        raise ValueError("`detections` of an image must be a dict with 'boxes' (absolute [x1, y1, x2, y2] pixels), "
                         "'labels' (object names or vocabulary ids) and optionally 'scores'.")
    height, width = size
    boxes = torch.as_tensor(np.asarray(detections["boxes"], dtype=np.float32)).reshape(-1, 4)
    names = {name: i for i, name in enumerate(vocabulary.objects)}
    labels = []
    for label in detections["labels"]:
        if isinstance(label, str):
            key = label.strip().replace(" ", "_")
            if key not in names:
                raise ValueError(f"Unknown object label {label!r}; the vocabulary's objects are {vocabulary.objects}")
            labels.append(names[key])
        else:
            labels.append(int(label))
    scores = detections.get("scores")
    scores = torch.ones(len(boxes)) if scores is None else torch.as_tensor(np.asarray(scores, dtype=np.float32))
    if not len(boxes) == len(labels) == len(scores):
        raise ValueError(f"`detections`: {len(boxes)} boxes, {len(labels)} labels and {len(scores)} scores.")
    scale = torch.tensor([width, height, width, height], dtype=torch.float32)
    return {
        "boxes": (boxes / scale).clamp(0.0, 1.0),
        "labels": torch.tensor(labels, dtype=torch.long),
        "scores": scores.reshape(-1).float(),
    }


class HOIDetectionPipeline(Pipeline):
    """Human-object interaction detection with any CL-HOI model.

    Each image goes in as a path, an http(s) URL, a PIL image or a numpy array (or a list of them); each gives a
    list of interactions sorted by score, highest first::

        {"score": 0.91, "verb": "ride", "object": "bicycle", "hoi": 87,
         "human_box": {"xmin": 12, "ymin": 30, "xmax": 140, "ymax": 290},
         "object_box": {"xmin": 40, "ymin": 150, "xmax": 210, "ymax": 300}}

    Boxes are absolute pixels of the input image. One image in gives one list; a list of images gives a list
    of lists. ``batch_size=`` runs several images per forward pass with the same results.

    Call parameters:
        detections: per image a dict ``{"boxes": [[x1, y1, x2, y2], ...] (absolute pixels), "labels": [...]
            (object names or vocabulary object ids, persons included), "scores": [...] (optional, default 1)}``; a
            list of such dicts for a list of images. Needed when the model holds no detector; otherwise they
            replace the detector's output. Images may also be given as dicts ``{"image": ..., "detections": ...}``
            (e.g. rows of a clhoi dataset).
        threshold: keep interactions scoring above this (default 0.1).
        top_k: keep at most this many interactions per image (default 100).
        vocabulary: open-vocabulary use for this call only (see :func:`build_vocabulary`): the model classifies
            against the text embeddings of these HOIs' prompts, and its own vocabulary is restored afterwards.
            Streamed inputs (generators, datasets) are read to the end under it, and the call returns a list.
        timeout: seconds to wait for an image URL.
    """

    _load_processor = True
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.processor is None or not hasattr(self.processor, "post_process_interaction_detection"):
            raise ValueError("HOIDetectionPipeline needs the model's CLHOIProcessor (`processor=`).")
        # Images are the only inputs to batch: keep the tokenizer out of the pipeline's collate function.
        self.tokenizer = None

    # ------------------------------------------------------------------ parameters and calls
    def _sanitize_parameters(
        self,
        threshold: float | None = None,
        top_k: int | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        if kwargs:
            raise ValueError(f"Unknown arguments for the hoi-detection pipeline: {sorted(kwargs)}")
        preprocess = {"timeout": timeout} if timeout is not None else {}
        postprocess: dict[str, Any] = {}
        if threshold is not None:
            if not 0.0 <= threshold <= 1.0:
                raise ValueError(f"`threshold` must lie in [0, 1], got {threshold}")
            postprocess["threshold"] = threshold
        if top_k is not None:
            if top_k < 1:
                raise ValueError(f"`top_k` must be a positive integer, got {top_k}")
            postprocess["top_k"] = top_k
        return preprocess, {}, postprocess

    def __call__(
        self,
        inputs: ImageInput | Sequence[ImageInput] | Any,
        detections: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
        vocabulary: VocabularyInput | None = None,
        **kwargs: Any,
    ) -> list[dict[str, Any]] | list[list[dict[str, Any]]] | Iterator[list[dict[str, Any]]]:
        """Detect interactions; see the class docstring for the parameters and the output."""
        if detections is not None:
            inputs = self._attach_detections(inputs, detections)
        if vocabulary is None:
            return super().__call__(inputs, **kwargs)
        with self.vocabulary_override(vocabulary):
            outputs = super().__call__(inputs, **kwargs)
            return list(outputs) if isinstance(outputs, Iterator) else outputs

    @staticmethod
    def _attach_detections(inputs: Any, detections: Any) -> Any:
        """Pair each image with its detections as ``{"image": ..., "detections": ...}``."""
        if isinstance(inputs, list):
            if isinstance(detections, Mapping) or len(detections) != len(inputs):
                raise ValueError(f"{len(inputs)} images need a list of {len(inputs)} detection dicts, one per image.")
            return [{"image": image, "detections": det} for image, det in zip(inputs, detections)]
        if not isinstance(detections, Mapping):
            raise ValueError("A single image takes one detections dict {'boxes', 'labels', 'scores'}.")
        return {"image": inputs, "detections": detections}

    @contextmanager
    def vocabulary_override(self, vocabulary: VocabularyInput) -> Iterator[HOIVocabulary]:
        """Within the block the model uses ``vocabulary`` (see :func:`build_vocabulary`); restored after."""
        previous, previous_names = self.model.config.vocabulary, self.processor.vocabulary
        custom = build_vocabulary(vocabulary, self.model.vocabulary)
        self.model.set_vocabulary(custom)
        self.processor.vocabulary = custom
        try:
            yield custom
        finally:
            self.model.set_vocabulary(previous)
            self.processor.vocabulary = previous_names

    # ------------------------------------------------------------------ the three steps
    def preprocess(self, item: Any, timeout: float | None = None) -> dict[str, Any]:
        image, detections = item, None
        if isinstance(item, Mapping):
            if "image" not in item:
                raise ValueError("A dict input needs an 'image' key (and optionally 'detections').")
            image, detections = item["image"], item.get("detections")
        image = _to_pil(image, timeout)
        size = (image.height, image.width)
        if detections is None and getattr(self.model, "detector", None) is None:
            raise ValueError(
                "This model holds no object detector, so it needs the detections of each image: pass "
                "`detections={'boxes': [[x1, y1, x2, y2], ...], 'labels': [...], 'scores': [...]}` (absolute pixels; "
                "labels as object names or vocabulary ids), or use a model with a detector "
                "(e.g. CLHOIForInteractionDetection.from_pretrained_components(detector=..., clip=...))."
            )
        pixel_values = self.processor(images=[image], return_tensors="pt")["pixel_values"]
        return {
            "pixel_values": pixel_values.to(self.dtype) if self.dtype is not None else pixel_values,
            "target_size": torch.tensor([size], dtype=torch.long),
            # A dict per image (None: the model's detector), gathered into a list by the batching collate.
            "detections": None if detections is None else _normalize_detections(detections, size, self.model.vocabulary),
        }

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        detections = model_inputs["detections"]
        detections = [detections] if not isinstance(detections, list) else detections
        given = [d is not None for d in detections]
        if any(given) and not all(given):
            raise ValueError("In one batch, give detections for every image or for none.")
        outputs = self.model(pixel_values=model_inputs["pixel_values"], detections=detections if all(given) else None)
        per_image = []
        for i, (size, kept) in enumerate(zip(model_inputs["target_size"], outputs.detections)):
            in_image = outputs.pair_image_index == i
            fields = {name: getattr(outputs, name)[in_image] for name in _PAIR_FIELDS}
            fields["pair_image_index"] = torch.zeros(int(in_image.sum()), dtype=torch.long)
            per_image.append({"outputs": fields, "detections": kept, "target_size": tuple(size.tolist())})
        # One entry per image: the pipeline's batch unrolling hands `postprocess` one image at a time.
        return {"per_image": per_image}

    def postprocess(
        self, model_outputs: dict[str, Any], threshold: float = 0.1, top_k: int = 100
    ) -> list[dict[str, Any]]:
        item = model_outputs["per_image"]
        item = item[0] if isinstance(item, list) else item
        outputs = {**item["outputs"], "detections": [item["detections"]]}
        results = self.processor.post_process_interaction_detection(
            outputs, threshold=threshold, target_sizes=[item["target_size"]], top_k=top_k
        )[0]
        predictions = [
            {
                "score": float(result["score"]),
                "verb": result["verb"],
                "object": result["object"],
                "hoi": int(result["hoi"]),
                "human_box": self._box(result["human_box"]),
                "object_box": self._box(result["object_box"]),
            }
            for result in results
        ]
        return sorted(predictions, key=lambda p: p["score"], reverse=True)

    @staticmethod
    def _box(box: Sequence[float]) -> dict[str, int]:
        xmin, ymin, xmax, ymax = (int(round(float(v))) for v in box)
        return {"xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax}

    # ------------------------------------------------------------------ saving
    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> None:
        """Save the model, its processor and this pipeline's code (loadable with ``trust_remote_code=True``)."""
        os.makedirs(save_directory, exist_ok=True)
        self.model.save_pretrained(save_directory, **kwargs)
        self.processor.save_pretrained(save_directory)
        save_pipeline_code(save_directory)


def save_pipeline_code(save_directory: str | os.PathLike) -> list[Path]:
    """Make a saved model folder runnable with ``pipeline(model=folder, trust_remote_code=True)``.

    Copies this file (and the files it imports relatively) into ``save_directory`` and adds the
    :data:`REMOTE_CODE_TASK` entry to ``custom_pipelines`` in its ``config.json``. Call it after
    ``model.save_pretrained(save_directory)`` (and ``processor.save_pretrained``), which write the model's own
    code and ``auto_map``.

    Returns:
        The files copied into ``save_directory``.
    """
    folder = Path(save_directory)
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{folder} holds no config.json: save the model there first.")
    copied = []
    for source in [__file__, *get_relative_import_files(__file__)]:
        target = folder / Path(source).name
        if Path(source).resolve() != target.resolve():
            shutil.copyfile(source, target)
        copied.append(target)
    with open(config_file, encoding="utf-8") as f:
        config = json.load(f)
    config["custom_pipelines"] = {
        REMOTE_CODE_TASK: {
            "impl": f"{Path(__file__).stem}.{HOIDetectionPipeline.__name__}",
            "pt": [AutoModel.__name__],
            "type": "image",
        }
    }
    with open(config_file, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    return copied


PIPELINE_REGISTRY.register_pipeline(TASK, pipeline_class=HOIDetectionPipeline, pt_model=AutoModel, type="image")
