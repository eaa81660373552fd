"""A tiny dataset in the clhoi schema (with teacher columns) shared by the trainer, train-script and
evaluation tests."""

from __future__ import annotations

import random

import datasets
import numpy as np
from PIL import Image

from modeling_clhoi.dataset_schema import hoi_features


def tiny_hoi_dataset(
    num_images: int, vocabulary, seed: int = 0, mirror: bool = True, empty_last: bool = False
) -> datasets.Dataset:
    """Two people and one object per 64x48 image, the first person interacting with the object (one
    HOI); the teacher is confident about that HOI only.

    Args:
        mirror: place the interacting person left or right at random (else always left, at
            ``[2, 2, 22, 44]``, the other person at ``[40, 4, 60, 46]``).
        empty_last: the last image has no detections (its annotation stays).
    """
    rng = random.Random(seed)
    person = vocabulary.person_id
    objects = sorted({o for o, _ in vocabulary.triplets} - {person})
    rows = []
    for i in range(num_images):
        width, height = 64, 48
        obj = rng.choice(objects)
        hoi = rng.choice(vocabulary.hois_for_objects([obj]))
        left = rng.random() < 0.5 if mirror else True
        human_a = [2.0, 2.0, 22.0, 44.0] if left else [40.0, 2.0, 62.0, 44.0]
        human_b = [40.0, 4.0, 60.0, 46.0] if left else [2.0, 4.0, 20.0, 46.0]
        thing = [14.0, 20.0, 30.0, 36.0] if left else [32.0, 20.0, 48.0, 36.0]
        empty = empty_last and i == num_images - 1
        candidates = vocabulary.hois_for_objects([person, obj])
        pixels = np.random.RandomState(i).randint(0, 255, (height, width, 3), dtype=np.uint8)
        rows.append({
            "image": Image.fromarray(pixels), "image_id": f"tiny-{seed}-{i}", "width": width, "height": height,
            "detections": {"boxes": [] if empty else [human_a, human_b, thing],
                           "labels": [] if empty else [person, person, obj],
                           "scores": [] if empty else [0.95, 0.9, 0.85]},
            "annotation": {"boxes_h": [human_a], "boxes_o": [thing], "hoi": [hoi], "object": [obj],
                           "verb": [vocabulary.triplets[hoi][1]]},
            "teacher_context": f"a person with a {vocabulary.objects[obj].replace('_', ' ')}",
            "teacher_candidates": candidates,
            "teacher_scores": [0.9 if c == hoi else 0.05 for c in candidates],
        })
    return datasets.Dataset.from_list(rows, features=hoi_features(with_teacher=True))
