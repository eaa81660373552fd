"""CLHOIForInteractionDetection: shapes, pairs, masking, batching, ICN switches, detector, save/load."""

import json

import pytest
import torch
from conftest import SCENE, make_detections
from transformers import AutoModel, CLIPConfig, CLIPModel, DetrForObjectDetection

from modeling_clhoi import (
    CLHOIConfig,
    CLHOIForInteractionDetection,
    HOIVocabulary,
    build_word_level_tokenizer,
)
from modeling_clhoi.modeling_clhoi import batched_nms, roi_pool

MIN = torch.finfo(torch.float32).min


def pixels(batch: int, size: int = 32) -> torch.Tensor:
    return torch.randn(batch, 3, size, size)


def _forward(model, spec, pixel_values=None):
    pixel_values = pixels(len(spec), model.config.image_size) if pixel_values is None else pixel_values
    with torch.no_grad():
        return model(pixel_values, detections=make_detections(model.vocabulary, spec))


# ---------------------------------------------------------------------------------------------- shapes, scores
def test_output_shapes_and_scores(tiny_model):
    vocab, config = tiny_model.vocabulary, tiny_model.config
    out = _forward(tiny_model, [SCENE, SCENE[:2]])
    # Image 0 keeps 2 humans + 2 objects: each human with the 3 others; image 1: one human, one bicycle.
    assert out.pair_logits.shape == (7, vocab.num_hois) == out.pair_scores.shape
    assert out.pair_image_index.tolist() == [0] * 6 + [1]
    assert out.pair_indices.tolist() == [[0, 1], [0, 2], [0, 3], [1, 0], [1, 2], [1, 3], [0, 1]]
    assert out.interaction_logits.shape == (2, vocab.num_hois)
    assert out.interaction_embeds.shape == (2, config.projection_dim)
    assert out.context_embeds.shape == (2, config.num_context_queries, config.projection_dim)
    assert out.context_embedding.shape == (2, config.projection_dim)
    assert out.hoi_text_embeds.shape == (vocab.num_hois, config.projection_dim)
    for unit in (out.interaction_embeds, out.context_embedding, out.hoi_text_embeds):
        torch.testing.assert_close(unit.norm(dim=-1), torch.ones(len(unit)))
    # Detections come back humans first, by score.
    assert out.detections[0]["labels"].tolist() == [vocab.person_id, vocab.person_id,
                                                    vocab.objects.index("bicycle"), vocab.objects.index("cup")]
    assert out.detections[0]["scores"].tolist() == pytest.approx([0.95, 0.8, 0.9, 0.7])

    # Masking: a pair only scores HOIs of its object's category.
    obj = torch.stack([out.detections[i]["labels"][o] for i, o in zip(out.pair_image_index, out.pair_indices[:, 1])])
    allowed = torch.as_tensor(vocab.object_hoi_mask)[obj]
    assert (out.pair_logits[~allowed] == MIN).all() and (out.pair_logits[allowed] > MIN).all()
    assert (out.pair_scores[~allowed] == 0).all()
    # Scores: sigmoid(logit) * (s_h * s_o)^l.
    det = out.detections[0]
    h, o = out.pair_indices[0]
    expected = out.pair_logits[0].sigmoid() * (det["scores"][h] * det["scores"][o]) ** config.score_power
    torch.testing.assert_close(out.pair_scores[0][allowed[0]], expected[allowed[0]])
    # Max pooling per image.
    torch.testing.assert_close(out.interaction_logits[0], out.pair_logits[:6].max(0).values)
    torch.testing.assert_close(out.interaction_logits[1], out.pair_logits[6])


def test_lse_pooling():
    model = CLHOIForInteractionDetection(CLHOIConfig.from_preset("tiny", pooling="lse")).eval()
    out = _forward(model, [SCENE])
    torch.testing.assert_close(out.interaction_logits[0], out.pair_logits.logsumexp(0))


def test_filtering_thresholds_nms_and_limits():
    model = CLHOIForInteractionDetection(
        CLHOIConfig.from_preset("tiny", human_score_threshold=0.5, object_score_threshold=0.3, max_humans=1)
    ).eval()
    spec = [[
        ("person", [0.1, 0.1, 0.5, 0.9], 0.9),
        ("person", [0.11, 0.1, 0.5, 0.9], 0.85),  # duplicate of the first: removed by NMS
        ("person", [0.6, 0.1, 0.9, 0.9], 0.7),  # beyond max_humans
        ("person", [0.6, 0.5, 0.7, 0.9], 0.4),  # below the human threshold
        ("cup", [0.3, 0.3, 0.4, 0.4], 0.35),
        ("cup", [0.31, 0.3, 0.4, 0.4], 0.34),  # NMS
        ("bicycle", [0.3, 0.3, 0.4, 0.4], 0.32),  # overlaps the cup but another class: kept
        ("horse", [0.0, 0.0, 1.0, 1.0], 0.2),  # below the object threshold
    ]]
    det = _forward(model, spec).detections[0]
    vocab = model.vocabulary
    assert det["labels"].tolist() == [vocab.person_id, vocab.objects.index("cup"), vocab.objects.index("bicycle")]
    assert det["scores"].tolist() == pytest.approx([0.9, 0.35, 0.32])


def test_images_without_pairs(tiny_model):
    spec = [
        SCENE,
        [],
        [("person", [0.1, 0.1, 0.5, 0.9], 0.9)],  # a lone person
        [("cup", [0.1, 0.1, 0.2, 0.2], 0.9), ("bicycle", [0.3, 0.3, 0.9, 0.9], 0.9)],  # objects only
        [("person", [0.1, 0.1, 0.5, 0.9], 0.9), ("person", [0.5, 0.1, 0.9, 0.9], 0.8)],  # person-person pairs
    ]
    out = _forward(tiny_model, spec)
    assert torch.bincount(out.pair_image_index, minlength=5).tolist() == [6, 0, 0, 0, 2]
    assert (out.interaction_logits[1:4] == MIN).all()
    assert torch.isfinite(out.interaction_embeds).all()
    torch.testing.assert_close(out.interaction_embeds[1], out.context_embedding[1])


def test_batch_without_any_pair(tiny_config):
    model = CLHOIForInteractionDetection(tiny_config).train()
    out = model(pixels(2), detections=make_detections(model.vocabulary, [[], [("cup", [0.1, 0.1, 0.2, 0.2], 0.9)]]))
    assert out.pair_logits.shape == (0, model.vocabulary.num_hois) and out.pair_indices.shape == (0, 2)
    assert (out.interaction_logits == MIN).all()
    out.context_embedding.sum().backward()
    assert model.vlt.queries.grad is not None


def test_mixed_batch_matches_single_images(tiny_model):
    spec = [SCENE, [], SCENE[:2], [SCENE[0], SCENE[2]]]
    images = pixels(4)
    batched = _forward(tiny_model, spec, images)
    for i in range(4):
        single = _forward(tiny_model, [spec[i]], images[i:i + 1])
        rows = batched.pair_image_index == i
        torch.testing.assert_close(batched.pair_logits[rows], single.pair_logits, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(batched.interaction_embeds[i], single.interaction_embeds[0], atol=1e-5, rtol=1e-5)


def test_gradients_reach_student_not_frozen_parts(tiny_config):
    model = CLHOIForInteractionDetection(tiny_config).train()
    out = model(pixels(2), detections=make_detections(model.vocabulary, [SCENE, SCENE[:2]]))
    valid = out.interaction_logits > MIN
    (out.interaction_logits[valid].sum() + out.interaction_embeds.sum() + out.context_embedding.sum()).backward()
    for module in (model.vlt, model.icn):
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in module.parameters())
    assert model.logit_scale.grad is not None
    assert all(not p.requires_grad for p in model.text_encoder.parameters())
    assert not model.text_encoder.training and model.vlt.training


# ---------------------------------------------------------------------------------------------- ICN switches
@pytest.mark.parametrize("switch", ["use_spatial_relation", "use_visual_relation", "use_context_relation"])
def test_each_icn_relation_switch_changes_the_computation(switch):
    full = CLHOIForInteractionDetection(CLHOIConfig.from_preset("tiny")).eval()
    ablated = CLHOIForInteractionDetection(CLHOIConfig.from_preset("tiny", **{switch: False})).eval()
    full_names, ablated_names = set(full.state_dict()), set(ablated.state_dict())
    assert ablated_names < full_names  # the switch removes that relation's weights and nothing else
    removed = {name.split(".")[1] for name in full_names - ablated_names}
    expected = {"use_spatial_relation": {"spatial_encoder"},
                "use_visual_relation": {"visual_proj", "visual_fuse"},
                "use_context_relation": {"context_proj", "layers"}}[switch]
    assert removed == expected
    ablated.load_state_dict(full.state_dict(), strict=False)  # same weights wherever they exist
    images = pixels(2)
    a, b = _forward(full, [SCENE, SCENE[:2]], images), _forward(ablated, [SCENE, SCENE[:2]], images)
    torch.testing.assert_close(a.context_embeds, b.context_embeds)
    assert (a.pair_logits - b.pair_logits).abs().max() > 1e-4


def test_spatial_relation_sees_geometry():
    """With only spatial relation (no visual/context), moving the object changes the pair logits."""
    model = CLHOIForInteractionDetection(
        CLHOIConfig.from_preset("tiny", use_visual_relation=False, use_context_relation=False)
    ).eval()
    images = pixels(1)
    near = _forward(model, [SCENE[:2]], images).pair_logits
    far = _forward(model, [[SCENE[0], ("bicycle", [0.7, 0.7, 0.95, 0.95], 0.9)]], images).pair_logits
    assert (near - far).abs().max() > 1e-4


def test_icn_needs_spatial_or_visual_relation():
    with pytest.raises(Exception, match="use_spatial_relation or use_visual_relation"):
        CLHOIConfig.from_preset("tiny", use_spatial_relation=False, use_visual_relation=False)


# ---------------------------------------------------------------------------------------------- text side
def test_text_embeddings_cached_and_vocabulary_swappable(tiny_config):
    model = CLHOIForInteractionDetection(tiny_config).eval()
    first = model.get_hoi_text_embeds()
    assert model.get_hoi_text_embeds() is first and not first.requires_grad
    tokenizer = model.get_tokenizer()
    batch = tokenizer(model.vocabulary.prompts[:3], padding=True, return_tensors="pt")
    torch.testing.assert_close(model.get_text_features(batch["input_ids"], batch["attention_mask"]), first[:3])

    new = HOIVocabulary.from_lists(["ride", "kick"], ["person", "horse", "sports_ball"],
                                   [("horse", "ride"), ("sports_ball", "kick")])
    model.set_vocabulary(new)
    assert model.config.vocabulary == new.to_dict()
    embeds = model.get_hoi_text_embeds()
    assert embeds.shape == (2, model.config.projection_dim)
    old = model.config.__class__.from_preset("tiny").get_vocabulary()
    torch.testing.assert_close(embeds[0], first[old.prompts.index("a photo of a person riding a horse")])
    out = _forward(model, [[("person", [0.1, 0.1, 0.5, 0.9], 0.9), ("horse", [0.3, 0.3, 0.9, 0.9], 0.9)]])
    assert out.pair_logits.shape == (1, 2) and out.pair_logits[0, 1] == MIN
    model.set_vocabulary(old)  # switching back reuses the cached embeddings
    assert model.get_hoi_text_embeds() is first


# ---------------------------------------------------------------------------------------------- bad inputs
def test_bad_inputs(tiny_model):
    vocab = tiny_model.vocabulary
    with pytest.raises(ValueError, match="detections=.*detector"):
        tiny_model(pixels(1))
    good = make_detections(vocab, [SCENE])
    with pytest.raises(ValueError, match="list of 2"):
        tiny_model(pixels(2), detections=good)
    with pytest.raises(ValueError, match="pixel_values must have shape"):
        tiny_model(pixels(1, 48), detections=good)
    bad_box = [{**good[0], "boxes": good[0]["boxes"] * 100}]
    with pytest.raises(ValueError, match="normalized"):
        tiny_model(pixels(1), detections=bad_box)
    with pytest.raises(ValueError, match="object ids"):
        tiny_model(pixels(1), detections=[{**good[0], "labels": good[0]["labels"] + 100}])
    with pytest.raises(ValueError, match="scores"):
        tiny_model(pixels(1), detections=[{**good[0], "scores": good[0]["scores"][:2]}])
    with pytest.raises(ValueError, match="'boxes', 'labels' and 'scores'"):
        tiny_model(pixels(1), detections=[{"boxes": good[0]["boxes"]}])


# ---------------------------------------------------------------------------------------------- building blocks
def test_nms_and_roi_pool_known_values():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 0, 10, 10], [0, 0, 10, 10], [20, 20, 30, 30]], dtype=torch.float)
    scores = torch.tensor([0.5, 0.9, 0.8, 0.1])
    classes = torch.tensor([0, 0, 1, 0])
    assert batched_nms(boxes, scores, classes, 0.5).tolist() == [1, 2, 3]
    # A map whose value is the x coordinate: the pooled value is the box's centre x.
    xs = (torch.arange(8) + 0.5) / 8
    feature_map = xs.expand(1, 1, 8, 8).clone()
    pooled = roi_pool(feature_map, torch.tensor([[[0.25, 0.0, 0.75, 0.5], [0.0, 0.5, 0.5, 1.0]]]), size=4)
    torch.testing.assert_close(pooled.flatten(), torch.tensor([0.5, 0.25]), atol=1e-6, rtol=0)


# ---------------------------------------------------------------------------------------------- detector inside
def test_model_runs_its_detector(tiny_detector_config, monkeypatch):
    config = CLHOIConfig.from_preset("tiny", detector_config=tiny_detector_config)
    model = CLHOIForInteractionDetection(config).eval()
    vocab = model.vocabulary
    person, bicycle, cup = vocab.person_id, vocab.objects.index("bicycle"), vocab.objects.index("cup")
    assert model._detector_label_to_object(torch.device("cpu")).tolist() == [person, bicycle, cup, -1]
    assert all(not p.requires_grad for p in model.detector.parameters())
    images = pixels(2)
    with torch.no_grad():
        real = model(images)  # the random DETR really runs (its detections may be empty)
    assert len(real.detections) == 2

    # A known detector output: 4 queries over 4 labels + "no object" (softmax), boxes as (cx, cy, w, h).
    logits = torch.full((2, 4, 5), -10.0)
    for query, label in enumerate([0, 1, 3, 4]):  # person, bicycle, N/A (dropped), no object (low scores)
        logits[:, query, label] = 10.0
    boxes = torch.tensor([[0.3, 0.5, 0.2, 0.8], [0.5, 0.7, 0.6, 0.4], [0.5, 0.5, 0.1, 0.1], [0.5, 0.5, 0.2, 0.2]])
    features = torch.randn(2, 4, 16)
    from transformers.models.detr.modeling_detr import DetrObjectDetectionOutput

    monkeypatch.setattr(model.detector, "forward", lambda pixel_values: DetrObjectDetectionOutput(
        logits=logits, pred_boxes=boxes.expand(2, 4, 4), last_hidden_state=features))
    config.human_score_threshold = config.object_score_threshold = 0.5
    with torch.no_grad():
        out = model(images)
    assert out.detections[0]["labels"].tolist() == [person, bicycle]
    torch.testing.assert_close(out.detections[0]["boxes"], torch.tensor([[0.2, 0.1, 0.4, 0.9], [0.2, 0.5, 0.8, 0.9]]))
    assert out.pair_indices.tolist() == [[0, 1], [0, 1]] and out.pair_image_index.tolist() == [0, 1]
    # The ICN uses the detector's instance features.
    features.mul_(3.0)
    with torch.no_grad():
        assert (model(images).pair_logits - out.pair_logits).abs().max() > 1e-4
    # An explicit label map wins over names.
    config = CLHOIConfig.from_preset("tiny", detector_config=tiny_detector_config, detector_label_map={"0": 0})
    assert CLHOIForInteractionDetection(config)._detector_label_to_object(torch.device("cpu")).tolist() == [0, -1, -1, -1]


# ---------------------------------------------------------------------------------------------- save / load
def test_save_load_tiny_identical(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "clhoi"
    assert saved["auto_map"] == {"AutoConfig": "configuration_clhoi.CLHOIConfig",
                                 "AutoModel": "modeling_clhoi.CLHOIForInteractionDetection"}
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, CLHOIForInteractionDetection)
    images = pixels(2)
    a, b = _forward(tiny_model, [SCENE, SCENE[:2]], images), _forward(loaded, [SCENE, SCENE[:2]], images)
    for key in ("pair_logits", "pair_scores", "interaction_logits", "interaction_embeds", "context_embeds",
                "hoi_text_embeds", "logit_scale"):
        assert torch.equal(a[key], b[key]), key


def test_save_load_base_identical(tmp_path):
    # Base shapes (DETR-R50 + ViT-B/16); a 6-HOI vocabulary keeps the prompt encoding short.
    vocab = HOIVocabulary.hico_det()
    vocabulary = vocab.subset(vocab.hois_for_objects([vocab.objects.index("bicycle")])[:6])
    model = CLHOIForInteractionDetection(CLHOIConfig.from_preset("base", vocabulary=vocabulary.to_dict())).eval()
    assert (model._detector_label_to_object(torch.device("cpu")) >= 0).sum() == 80  # COCO names -> HICO objects
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    images = pixels(1, 224)
    spec = [SCENE[:2]]
    a, b = _forward(model, spec, images), _forward(loaded, spec, images)
    assert a.pair_logits.shape == (1, 6)
    for key in ("pair_logits", "pair_scores", "interaction_embeds", "context_embeds", "hoi_text_embeds"):
        assert torch.equal(a[key], b[key]), key
    saved, restored = model.state_dict(), loaded.state_dict()  # the detector's weights too
    assert saved.keys() == restored.keys() and all(torch.equal(saved[k], restored[k]) for k in saved)


def test_from_pretrained_components(tmp_path, tiny_detector_config):
    detector = DetrForObjectDetection(tiny_detector_config)
    detector.save_pretrained(tmp_path / "detr")
    clip_config = CLIPConfig(
        text_config=CLHOIConfig.from_preset("tiny").text_config.to_dict(),
        vision_config=CLHOIConfig.from_preset("tiny").vision_config.to_dict(),
        projection_dim=24,
    )
    clip = CLIPModel(clip_config)
    clip.save_pretrained(tmp_path / "clip")
    build_word_level_tokenizer(32).save_pretrained(tmp_path / "clip")

    vocab = CLHOIConfig.from_preset("tiny").get_vocabulary()
    model = CLHOIForInteractionDetection.from_pretrained_components(
        detector=str(tmp_path / "detr"), clip=str(tmp_path / "clip"), vocabulary=vocab, hidden_size=16,
        vlt_heads=2, icn_heads=2, human_score_threshold=0.0, object_score_threshold=0.0,
    ).eval()
    assert model.config.projection_dim == 24 and model.config.hidden_size == 16
    assert model.vocabulary == vocab
    torch.testing.assert_close(model.vision_encoder.embeddings.patch_embedding.weight,
                               clip.vision_model.embeddings.patch_embedding.weight)
    torch.testing.assert_close(model.text_projection.weight, clip.text_projection.weight)
    torch.testing.assert_close(model.detector.class_labels_classifier.weight, detector.class_labels_classifier.weight)
    # The prompt embeddings are CLIP's own text features.
    tokens = model.get_tokenizer()(vocab.prompts[:2], padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = torch.nn.functional.normalize(clip.get_text_features(**tokens).pooler_output, dim=-1)
    torch.testing.assert_close(model.get_hoi_text_embeds()[:2], expected)

    images = pixels(1)
    with torch.no_grad():
        out = model(images)
    model.save_pretrained(tmp_path / "clhoi")
    assert json.loads((tmp_path / "clhoi" / "config.json").read_text())["text_tokenizer"] is None
    assert (tmp_path / "clhoi" / "tokenizer.json").is_file()
    loaded = AutoModel.from_pretrained(tmp_path / "clhoi").eval()
    with torch.no_grad():
        again = loaded(images)
    assert torch.equal(out.pair_logits, again.pair_logits)
