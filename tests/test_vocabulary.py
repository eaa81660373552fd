"""HOIVocabulary: HICO-DET ids cross-checked against the real annotation file, V-COCO, custom vocabularies."""

import json

import numpy as np
import pytest

from modeling_clhoi import HOIVocabulary
from modeling_clhoi.vocabulary import default_prompt


@pytest.fixture(scope="module")
def hico() -> HOIVocabulary:
    return HOIVocabulary.hico_det()


@pytest.fixture(scope="module")
def hico_test_file(shared_dir):
    path = shared_dir / "data" / "hico_det" / "instances_test2015.json"
    # No skip: CI has ../shared beside the clone, and a missing file must fail loudly.
    assert path.is_file(), f"HICO-DET test annotations not found at {path}"
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def test_hico_det_sizes(hico):
    assert (hico.num_hois, hico.num_verbs, hico.num_objects) == (600, 117, 80)
    assert hico.person_id == 49 and hico.objects[49] == "person"
    assert len(hico.rare) == 138
    assert hico.object_hoi_mask.shape == (80, 600) and hico.object_hoi_mask.sum() == 600


def test_hico_det_matches_annotation_file(hico, hico_test_file):
    data = hico_test_file
    assert data["objects"] == hico.objects
    assert data["verbs"] == hico.verbs
    assert [(o, v) for _, o, v in data["correspondence"]] == hico.triplets
    assert [h for h, _, _ in data["correspondence"]] == list(range(600))
    assert sorted(data["rare"]) == hico.rare
    assert len(data["annotation"]) == len(data["filenames"]) == 9658


def test_annotated_triplets_use_vocabulary_ids(hico, hico_test_file):
    hoi, obj, verb = (np.concatenate([a[k] for a in hico_test_file["annotation"] if a[k]]).astype(int)
                      for k in ("hoi", "object", "verb"))
    assert len(hoi) > 20_000
    np.testing.assert_array_equal(hico.hoi_to_object[hoi], obj)
    np.testing.assert_array_equal(hico.hoi_to_verb[hoi], verb)


def test_prompts_and_lookups(hico):
    ride_bicycle = hico.hoi_id("ride", "bicycle")
    assert hico.prompts[ride_bicycle] == "a photo of a person riding a bicycle"
    assert hico.hoi_name(ride_bicycle) == "ride bicycle"
    assert default_prompt("no_interaction", "apple") == "a photo of a person and an apple"
    assert default_prompt("sit_on", "bench") == "a photo of a person sitting on a bench"
    bicycle = hico.objects.index("bicycle")
    assert all(hico.triplets[h][0] == bicycle for h in hico.hois_for_objects([bicycle]))
    with pytest.raises(KeyError):
        hico.hoi_id("ride", "apple")


def test_vcoco_vocabulary():
    vcoco = HOIVocabulary.vcoco()
    assert vcoco.num_verbs == 24 and vcoco.num_objects == 80 and vcoco.num_hois == 24 * 80


def test_custom_vocabulary_roundtrip(tmp_path):
    vocab = HOIVocabulary.from_lists(["ride", "hold"], ["person", "horse"], [("horse", "ride"), ("horse", "hold")])
    assert vocab.prompts == ["a photo of a person riding a horse", "a photo of a person holding a horse"]
    vocab.save_json(tmp_path / "v.json")
    assert HOIVocabulary.from_any(str(tmp_path / "v.json")) == vocab
    assert HOIVocabulary.from_any(vocab.to_dict()) == vocab
    sub = HOIVocabulary.hico_det().subset([5, 7])
    assert sub.num_hois == 2 and sub.triplets == [HOIVocabulary.hico_det().triplets[i] for i in (5, 7)]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"verbs": ["ride"], "objects": ["horse"], "triplets": [(0, 0)]}, "person"),
        ({"verbs": ["ride"], "objects": ["person"], "triplets": [(0, 3)]}, "out of range"),
        ({"verbs": ["ride", "ride"], "objects": ["person"], "triplets": [(0, 0)]}, "Duplicate"),
    ],
)
def test_bad_vocabularies(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HOIVocabulary(**kwargs)
