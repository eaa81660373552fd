"""CLHOIImageProcessor and CLHOIProcessor: inputs, errors, save/load, post-processing to absolute pixels."""

import numpy as np
import pytest
import torch
from conftest import SCENE, make_detections
from PIL import Image
from transformers import AutoImageProcessor, AutoProcessor

from modeling_clhoi import CLHOIConfig, CLHOIImageProcessor, CLHOIOutput, CLHOIProcessor, HOIVocabulary


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(20, 30, 3), dtype=np.uint8)


def test_image_inputs_agree(tiny_processor, rgb):
    proc = tiny_processor.image_processor
    reference = proc(Image.fromarray(rgb), return_tensors="pt")
    assert reference["pixel_values"].shape == (1, 3, 32, 32)
    assert reference["original_sizes"].tolist() == [[20, 30]]
    same = [rgb, rgb.transpose(2, 0, 1), torch.from_numpy(rgb.transpose(2, 0, 1)),
            np.concatenate([rgb, np.full((20, 30, 1), 255, np.uint8)], axis=-1)]  # HWC, CHW, torch, opaque RGBA
    for image in same:
        out = proc(image, return_tensors="pt")
        torch.testing.assert_close(out["pixel_values"], reference["pixel_values"], atol=1e-5, rtol=0)
        assert out["original_sizes"].tolist() == [[20, 30]]
    gray = rgb[..., 0]
    expected = proc(np.repeat(gray[..., None], 3, axis=-1), return_tensors="pt")["pixel_values"]
    for image in (gray, gray[None], Image.fromarray(gray)):  # HW, 1HW, PIL "L"
        torch.testing.assert_close(proc(image, return_tensors="pt")["pixel_values"], expected, atol=1e-5, rtol=0)
    batch = proc([Image.fromarray(rgb), np.zeros((7, 5, 3), np.uint8), Image.fromarray(rgb).convert("RGBA")],
                 return_tensors="pt")
    assert batch["pixel_values"].shape == (3, 3, 32, 32)
    assert batch["original_sizes"].tolist() == [[20, 30], [7, 5], [20, 30]]


def test_image_normalization(tiny_processor):
    out = tiny_processor.image_processor(np.full((8, 8, 3), 255, np.uint8), return_tensors="pt")["pixel_values"]
    proc = tiny_processor.image_processor
    expected = (1 - torch.tensor(proc.image_mean)) / torch.tensor(proc.image_std)
    torch.testing.assert_close(out[0, :, 0, 0], expected.float())


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((0, 0, 3), np.uint8), "empty"),
        (np.zeros((10, 0, 3), np.uint8), "empty"),
        (Image.new("RGB", (0, 5)), "empty"),
        ([], "No images"),
        ("not an image", "PIL image, numpy array or torch tensor"),
        (np.zeros((2, 3, 4, 5, 6)), "2 or 3 dimensions"),
        (np.zeros((10, 10, 7), np.uint8), "1, 3 or 4 channels"),
    ],
)
def test_bad_images(tiny_processor, image, message):
    with pytest.raises(ValueError, match=message):
        tiny_processor(images=image)


@pytest.mark.parametrize("preset", ["tiny", "synthetic", "base"])
def test_presets_match_config(preset):
    processor = CLHOIProcessor.from_preset(preset)
    config = CLHOIConfig.from_preset(preset)
    assert processor.image_processor.size == {"height": config.image_size, "width": config.image_size}
    assert processor.vocabulary == config.get_vocabulary()
    assert processor.tokenizer.model_max_length == config.text_config.max_position_embeddings


def test_processor_text_and_save_load(tiny_processor, tiny_model, tmp_path, rgb):
    inputs = tiny_processor(images=[rgb, rgb], text=["two people, one rides a horse", "a cup"])
    assert set(inputs) == {"pixel_values", "original_sizes", "input_ids", "attention_mask"}
    assert inputs["input_ids"][0, 0] == tiny_processor.tokenizer.cls_token_id
    tokens = tiny_processor.tokenizer.convert_ids_to_tokens(inputs["input_ids"][0])
    assert "[UNK]" not in tokens and tokens[-1] == "[SEP]"
    features = tiny_model.get_text_features(inputs["input_ids"], inputs["attention_mask"])
    assert features.shape == (2, tiny_model.config.projection_dim)

    tiny_processor.save_pretrained(tmp_path)
    loaded = AutoProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded, CLHOIProcessor) and isinstance(loaded.image_processor, CLHOIImageProcessor)
    assert loaded.vocabulary == tiny_processor.vocabulary
    again = loaded(images=[rgb, rgb], text=["two people, one rides a horse", "a cup"])
    for key in inputs:
        assert torch.equal(inputs[key], again[key]), key
    assert isinstance(AutoImageProcessor.from_pretrained(tmp_path), CLHOIImageProcessor)
    with pytest.raises(ValueError, match="images"):
        tiny_processor()


def _known_outputs(vocab: HOIVocabulary) -> CLHOIOutput:
    """Two images: image 0 has a person and a bicycle (one pair), image 1 has no pair."""
    ride, hold = vocab.hoi_id("ride", "bicycle"), vocab.hoi_id("hold", "bicycle")
    scores = torch.zeros(2, vocab.num_hois)
    scores[0, ride], scores[0, hold] = 0.9, 0.3
    scores[1, hold] = 0.5
    detections = make_detections(vocab, [[("person", [0.1, 0.2, 0.5, 1.0], 0.9),
                                          ("bicycle", [0.0, 0.5, 1.0, 1.0], 0.8)], []])
    return CLHOIOutput(pair_scores=scores, pair_image_index=torch.tensor([0, 0]),
                       pair_indices=torch.tensor([[0, 1], [1, 0]]), detections=detections)


def test_post_process_known_case(tiny_processor):
    vocab = tiny_processor.vocabulary
    results = tiny_processor.post_process_interaction_detection(
        _known_outputs(vocab), threshold=0.2, target_sizes=torch.tensor([[100, 200], [50, 50]]), top_k=100
    )
    assert [len(r) for r in results] == [3, 0]
    first = results[0][0]
    assert first == {
        "score": pytest.approx(0.9), "hoi": vocab.hoi_id("ride", "bicycle"), "verb": "ride", "object": "bicycle",
        "verb_id": vocab.verbs.index("ride"), "object_id": vocab.objects.index("bicycle"),
        "human_box": pytest.approx([20.0, 20.0, 100.0, 100.0]), "object_box": pytest.approx([0.0, 50.0, 200.0, 100.0]),
    }
    assert [r["score"] for r in results[0]] == pytest.approx([0.9, 0.5, 0.3])
    # The second pair has the bicycle as "human" index 1 and the person as object: boxes follow the indices.
    assert results[0][1]["human_box"] == pytest.approx([0.0, 50.0, 200.0, 100.0])
    top = tiny_processor.post_process_interaction_detection(_known_outputs(vocab), threshold=0.4,
                                                            target_sizes=[(100, 200), (50, 50)], top_k=1)
    assert [[r["score"] for r in image] for image in top] == [[pytest.approx(0.9)], []]


def test_post_process_errors(tiny_processor):
    outputs = _known_outputs(tiny_processor.vocabulary)
    with pytest.raises(ValueError, match="target_sizes"):
        tiny_processor.post_process_interaction_detection(outputs)
    with pytest.raises(ValueError, match="2 images"):
        tiny_processor.post_process_interaction_detection(outputs, target_sizes=[(10, 10)])
    other = CLHOIProcessor(tiny_processor.image_processor, tiny_processor.tokenizer, vocabulary="hico_det")
    with pytest.raises(ValueError, match="vocabulary"):
        other.post_process_interaction_detection(outputs, target_sizes=[(10, 10), (10, 10)])


def test_end_to_end_with_tiny_model(tiny_processor, tiny_model, rgb):
    inputs = tiny_processor(images=[rgb, Image.fromarray(rgb).resize((60, 40))])
    detections = make_detections(tiny_model.vocabulary, [SCENE, SCENE[:2]])
    with torch.no_grad():
        outputs = tiny_model(inputs["pixel_values"], detections=detections)
    results = tiny_processor.post_process_interaction_detection(outputs, threshold=0.0,
                                                                target_sizes=inputs["original_sizes"], top_k=5)
    assert [len(r) for r in results] == [5, 5]
    for image, (height, width) in zip(results, inputs["original_sizes"].tolist()):
        scores = [r["score"] for r in image]
        assert scores == sorted(scores, reverse=True)
        for r in image:
            assert r["object"] == tiny_processor.vocabulary.objects[r["object_id"]]
            for box in (r["human_box"], r["object_box"]):
                assert 0 <= box[0] <= box[2] <= width and 0 <= box[1] <= box[3] <= height
