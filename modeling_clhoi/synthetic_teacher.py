"""A simulated teacher for the synthetic world: image-level knowledge with controlled noise.

:class:`SyntheticTeacher` has the interface of :class:`~modeling_clhoi.teacher.VLLMTeacher` (``describe``,
``score_interactions``, ``label_examples``, ``vocabulary``) but reads no pixels: it sees only the image-level
truth of an example, the union of the HOIs of its ``annotation``, never which pair does what. It then
errs like a VLLM would, at a rate set by ``noise``:

- each true interaction among the candidates is missed with probability ``noise / 2``;
- false interactions are invented among the other candidates, ``noise / 2`` times the number of true ones
  on average (at least one true one counted, so images without interactions get inventions too);
- so at ``noise = p`` the teacher's label set differs from the truth in about ``p`` times as many HOIs
  as the truth holds (``p = 0``: exactly the truth);
- scores are probabilities: about 0.9 for the interactions it reports and 0.1 for the others, with Gaussian
  score noise (``score_noise``, default ``noise / 2``), kept on the right side of 0.5, so that
  ``score > 0.5`` gives back its label set.

The description ("Two people, a bicycle and a cup. A person is riding a bicycle and a person is holding a
cup.") is generated from the same noisy label set. Everything is deterministic in ``(seed, image_id)``.

Because the teacher needs the annotation, ``describe`` and ``score_interactions`` must be given dataset rows
(dicts with ``"annotation"``) or ``annotations=``; bare images raise a ``ValueError``.
:meth:`SyntheticTeacher.label_examples` takes rows and is what the teacher pass calls.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .dataset_schema import candidate_hois
from .vocabulary import NO_INTERACTION, HOIVocabulary

_NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
_IRREGULAR_PLURALS = {"person": "people", "knife": "knives", "mouse": "mice", "sheep": "sheep", "skis": "skis",
                      "scissors": "scissors", "wine_glass": "wine glasses"}
_POSITIVE, _NEGATIVE = 0.9, 0.1


def _plural(noun: str) -> str:
    if noun in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[noun]
    noun = noun.replace("_", " ")
    if noun.endswith(("s", "sh", "ch", "x")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def _count(n: int, noun: str) -> str:
    if n == 1:
        name = noun.replace("_", " ")
        return ("an " if name[0] in "aeiou" else "a ") + name
    return f"{_NUMBERS[n] if n < len(_NUMBERS) else n} {_plural(noun)}"


def _join(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


class SyntheticTeacher:
    """A teacher that knows each image's image-level interactions and reports them with noise.

    Args:
        vocabulary: the HOI vocabulary of the annotations (default HICO-DET, the synthetic world's ids).
        noise: error rate in [0, 1] (see the module docstring: misses and inventions, ``noise / 2`` each).
        seed: seed of the noise; each image's noise depends only on ``(seed, image_id)``.
        score_noise: standard deviation of the score noise (default ``noise / 2``).
    """

    def __init__(self, vocabulary: HOIVocabulary | dict | str | None = None, noise: float = 0.1, seed: int = 0,
                 score_noise: float | None = None) -> None:
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"noise must be in [0, 1], got {noise}")
        score_noise = noise / 2 if score_noise is None else score_noise
        if score_noise < 0:
            raise ValueError(f"score_noise must be non-negative, got {score_noise}")
        self.vocabulary = HOIVocabulary.from_any(vocabulary)
        self.noise, self.seed, self.score_noise = float(noise), int(seed), float(score_noise)
        self._no_interaction = {
            i for i, (_, v) in enumerate(self.vocabulary.triplets) if self.vocabulary.verbs[v] == NO_INTERACTION
        }

    # ------------------------------------------------------------------------------------------ core
    def _rng(self, key: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, zlib.crc32(key.encode("utf-8"))])

    def _labels(self, annotation: Mapping[str, Any], candidates: Sequence[int], key: str) -> tuple[set[int], np.random.Generator]:
        """The teacher's (noisy) image-level label set among ``candidates``, and the image's generator."""
        rng = self._rng(key)
        pool = [int(c) for c in candidates]
        truth = sorted({int(h) for h in annotation["hoi"]} & set(pool))
        kept = {h for h, u in zip(truth, rng.random(len(truth))) if u >= self.noise / 2}
        negatives = sorted(set(pool) - set(truth))
        if negatives and self.noise > 0:
            rate = min(1.0, self.noise / 2 * max(len(truth), 1) / len(negatives))
            kept |= {h for h, u in zip(negatives, rng.random(len(negatives))) if u < rate}
        return kept, rng

    def _scores(self, labels: set[int], candidates: Sequence[int], rng: np.random.Generator) -> torch.Tensor:
        present = np.array([int(c) in labels for c in candidates], dtype=bool)
        noise = np.abs(rng.normal(0.0, self.score_noise, len(candidates))) if self.score_noise > 0 else 0.0
        scores = np.where(present, np.clip(_POSITIVE + noise * rng.choice([-1, 1], len(candidates)), 0.51, 0.999),
                          np.clip(_NEGATIVE + noise * rng.choice([-1, 1], len(candidates)), 0.001, 0.49))
        return torch.as_tensor(scores, dtype=torch.float32)

    def _describe(self, annotation: Mapping[str, Any], labels: set[int], rng: np.random.Generator) -> str:
        vocab = self.vocabulary
        people = len({tuple(b) for b in annotation["boxes_h"]})
        objects: dict[int, set] = {}
        for box, obj in zip(annotation["boxes_o"], annotation["object"]):
            objects.setdefault(int(obj), set()).add(tuple(box))
        things = [_count(people, "person")] if people else []
        things += [_count(len(boxes), vocab.objects[o]) for o, boxes in sorted(objects.items())]
        scene = _join(things) if things else "a scene"
        acts = []
        for hoi in rng.permutation(sorted(labels - self._no_interaction)):
            prompt = vocab.prompts[int(hoi)]
            acts.append(prompt[len("a photo of "):] if prompt.startswith("a photo of ") else prompt)
        opening = str(rng.choice(["A photo of {}.", "There are {} in the picture.", "The image shows {}."]))
        if people == 1 and not objects and "There are" in opening:
            opening = "There is {} in the picture."
        text = opening.format(scene)
        text = text[0].upper() + text[1:]
        if acts:
            text += " " + _join(acts)[0].upper() + _join(acts)[1:] + "."
        else:
            text += " Nobody interacts with anything."
        return text

    # ------------------------------------------------------------------------------------- interface
    def _rows(self, images: Sequence[Any], annotations: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
        """Dataset-row views of the inputs: ``images`` that are rows, or bare images with ``annotations``."""
        if annotations is not None:
            if len(annotations) != len(images):
                raise ValueError(f"{len(images)} images but {len(annotations)} annotations.")
            rows = []
            for i, (image, annotation) in enumerate(zip(images, annotations)):
                row = dict(image) if isinstance(image, Mapping) else {}
                row["annotation"] = annotation
                row.setdefault("image_id", str(i))
                rows.append(row)
            return rows
        if not all(isinstance(image, Mapping) and "annotation" in image for image in images):
            raise ValueError(
                "SyntheticTeacher reads the image-level truth, not pixels: pass dataset rows (dicts with an "
                "'annotation') as `images`, or `annotations=`, or call `label_examples(rows)`."
            )
        return [dict(image, image_id=image.get("image_id", str(i))) for i, image in enumerate(images)]

    def _default_candidates(self, row: Mapping[str, Any]) -> list[int]:
        detections = row.get("detections")
        if detections is not None:
            return candidate_hois(detections["labels"], self.vocabulary)
        return candidate_hois(row["annotation"]["object"], self.vocabulary)

    def describe(self, images: Sequence[Any], annotations: Sequence[Mapping[str, Any]] | None = None,
                 **kwargs: Any) -> list[str]:
        """One description per image, from its noisy image-level interactions.

        ``images`` are dataset rows (with ``annotation``; their ``detections`` give the candidates), or any
        images together with ``annotations``. Extra keyword arguments (generation settings of the VLLM
        teacher) are accepted and ignored.
        """
        rows = self._rows(images, annotations)
        out = []
        for row in rows:
            labels, rng = self._labels(row["annotation"], self._default_candidates(row), str(row["image_id"]))
            out.append(self._describe(row["annotation"], labels, rng))
        return out

    def score_interactions(self, images: Sequence[Any], candidates: Sequence[Sequence[int]],
                           annotations: Sequence[Mapping[str, Any]] | None = None) -> list[torch.Tensor]:
        """P(yes) (float32) for each candidate HOI of each image; rows or ``annotations`` as in :meth:`describe`."""
        rows = self._rows(images, annotations)
        if len(candidates) != len(rows):
            raise ValueError(f"{len(rows)} images but {len(candidates)} candidate lists.")
        out = []
        for row, cands in zip(rows, candidates):
            self._check_candidates(cands)
            labels, rng = self._labels(row["annotation"], cands, str(row["image_id"]))
            out.append(self._scores(labels, cands, rng))
        return out

    def _check_candidates(self, candidates: Sequence[int]) -> None:
        bad = [int(c) for c in candidates if not 0 <= int(c) < self.vocabulary.num_hois]
        if bad:
            raise ValueError(f"Candidate HOI ids out of range for the vocabulary: {bad[:5]}")

    def label_examples(self, examples: Sequence[Mapping[str, Any]], candidates: str = "detected") -> list[dict[str, Any]]:
        """The teacher columns of dataset rows.

        Args:
            examples: rows of the clhoi schema (``annotation`` and ``detections`` are read, pixels are not).
            candidates: ``"detected"`` (every HOI whose object is among the detections) or ``"all"``.

        Returns:
            Per example ``{"teacher_context": str, "teacher_candidates": list[int], "teacher_scores": list[float]}``.
        """
        if candidates not in ("detected", "all"):
            raise ValueError(f"candidates must be 'detected' or 'all', got {candidates!r}")
        rows = self._rows(examples, None)
        out = []
        for row in rows:
            if candidates == "all":
                cands = list(range(self.vocabulary.num_hois))
            else:
                cands = candidate_hois(row["detections"]["labels"], self.vocabulary)
            key = str(row["image_id"])
            labels, rng = self._labels(row["annotation"], cands, key)
            scores = self._scores(labels, cands, rng)
            context_labels, context_rng = self._labels(row["annotation"], cands, key)
            out.append({
                "teacher_context": self._describe(row["annotation"], context_labels, context_rng),
                "teacher_candidates": cands,
                "teacher_scores": scores.tolist(),
            })
        return out
