"""SyntheticTeacher: image-level truth only, noise at the set rate, the VLLM teacher's interface."""

import numpy as np
import pytest
import torch
from PIL import Image

from modeling_clhoi.dataset_schema import candidate_hois
from modeling_clhoi.synthetic_teacher import SyntheticTeacher
from modeling_clhoi.synthetic_world import SYNTHETIC_HOIS, generate_example
from modeling_clhoi.vocabulary import HOIVocabulary

VOCAB = HOIVocabulary.hico_det()


def _rows(n, seed=0):
    """Rows with random instance truth drawn from the world's HOIs; detections hold every object (and more)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        hois = rng.choice(SYNTHETIC_HOIS, size=int(rng.integers(1, 6)))
        objects = [VOCAB.triplets[h][0] for h in hois]
        verbs = [VOCAB.triplets[h][1] for h in hois]
        boxes = [[float(k), 0.0, k + 10.0, 10.0] for k in range(len(hois))]
        extra = [int(rng.choice([9, 37, 62]))]
        rows.append({
            "image_id": f"img{i}",
            "detections": {"boxes": boxes + [[0, 0, 5, 5]], "labels": [VOCAB.person_id] + objects + extra,
                           "scores": [0.9] * (len(hois) + 2)},
            "annotation": {"boxes_h": [[0.0, 0.0, 5.0, 5.0]] * len(hois), "boxes_o": boxes,
                           "hoi": [int(h) for h in hois], "object": objects, "verb": verbs},
        })
    return rows


def _labels(result):
    return {c for c, s in zip(result["teacher_candidates"], result["teacher_scores"]) if s > 0.5}


def test_zero_noise_gives_the_union_of_instance_labels():
    rows = _rows(200)
    for row, result in zip(rows, SyntheticTeacher(noise=0.0).label_examples(rows)):
        candidates = candidate_hois(row["detections"]["labels"], VOCAB)
        assert result["teacher_candidates"] == candidates
        assert _labels(result) == set(row["annotation"]["hoi"]) & set(candidates)
        assert np.allclose(np.abs(np.array(result["teacher_scores"]) - 0.5), 0.4)  # exactly 0.9 or 0.1


@pytest.mark.parametrize("noise", [0.1, 0.3])
def test_noise_changes_about_that_share_of_labels(noise):
    rows = _rows(1500, seed=1)
    truth_total = missed = invented = 0
    for row, result in zip(rows, SyntheticTeacher(noise=noise, seed=3).label_examples(rows)):
        truth = set(row["annotation"]["hoi"])
        labels = _labels(result)
        truth_total += len(truth)
        missed += len(truth - labels)
        invented += len(labels - truth)
    assert (missed + invented) / truth_total == pytest.approx(noise, abs=0.03)
    assert missed / truth_total == pytest.approx(noise / 2, abs=0.02)
    assert invented / truth_total == pytest.approx(noise / 2, abs=0.02)


def test_scores_are_probabilities_and_deterministic():
    rows = _rows(50)
    teacher = SyntheticTeacher(noise=0.2, seed=4)
    first, again = teacher.label_examples(rows), teacher.label_examples(rows)
    assert first == again
    other = SyntheticTeacher(noise=0.2, seed=5).label_examples(rows)
    assert first != other
    scores = np.concatenate([r["teacher_scores"] for r in first])
    assert ((scores > 0) & (scores < 1)).all()
    assert len(np.unique(scores)) > 10  # score noise


def test_interface_matches_the_vllm_teacher():
    rows = _rows(3)
    teacher = SyntheticTeacher(noise=0.0)
    candidates = [candidate_hois(r["detections"]["labels"], VOCAB) for r in rows]
    scores = teacher.score_interactions(rows, candidates)
    assert all(isinstance(s, torch.Tensor) and s.dtype == torch.float32 for s in scores)
    assert [len(s) for s in scores] == [len(c) for c in candidates]
    images = [Image.new("RGB", (8, 8))] * 3
    via_annotations = teacher.score_interactions(images, candidates, annotations=[r["annotation"] for r in rows])
    assert [len(s) for s in via_annotations] == [len(c) for c in candidates]
    assert all(((s > 0.5) == (v > 0.5)).all() for s, v in zip(scores, via_annotations))  # noise 0: same labels
    with pytest.raises(ValueError, match="annotation"):
        teacher.describe(images)
    with pytest.raises(ValueError, match="annotation"):
        teacher.score_interactions(images, candidates)
    assert len(teacher.label_examples(rows, candidates="all")[0]["teacher_candidates"]) == VOCAB.num_hois
    with pytest.raises(ValueError):
        teacher.label_examples(rows, candidates="some")
    with pytest.raises(ValueError):
        SyntheticTeacher(noise=1.5)


def test_descriptions_follow_the_image_level_truth():
    example = generate_example(0, seed=0)
    teacher = SyntheticTeacher(noise=0.0)
    text = teacher.describe([example])[0]
    assert text == teacher.label_examples([example])[0]["teacher_context"]
    people = len({tuple(b) for b in example["annotation"]["boxes_h"]})
    number = ["no", "one", "two", "three", "four"][people]
    assert (f"{number} people" in text) if people > 1 else ("a person" in text)
    row = {"image_id": "x", "annotation": {"boxes_h": [[0, 0, 1, 1], [5, 5, 6, 6]], "boxes_o": [[2, 2, 3, 3]] * 2,
                                           "hoi": [VOCAB.hoi_id("ride", "bicycle"), VOCAB.hoi_id("hold", "bicycle")],
                                           "object": [9, 9], "verb": [VOCAB.verbs.index("ride"),
                                                                      VOCAB.verbs.index("hold")]}}
    text = teacher.describe([row])[0]
    assert "two people and a bicycle" in text and "riding a bicycle" in text and "holding a bicycle" in text
