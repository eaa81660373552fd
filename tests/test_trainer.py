"""CLHOIDistillationTrainer and CLHOIDataCollator on the tiny preset."""

from __future__ import annotations

import datasets
import pytest
import torch
from hoi_fixtures import tiny_hoi_dataset
from transformers import TrainerCallback

from modeling_clhoi import CLHOIConfig, CLHOIForInteractionDetection, CLHOIProcessor
from modeling_clhoi.data_collator import CLHOIDataCollator
from modeling_clhoi.evaluation import hico_det_map
from modeling_clhoi.evaluation.inference import predict_dataset, references_from_dataset
from modeling_clhoi.trainer import CLHOIDistillationTrainer, CLHOITrainingArguments


@pytest.fixture(scope="module")
def processor() -> CLHOIProcessor:
    return CLHOIProcessor.from_preset("tiny")


@pytest.fixture(scope="module")
def dataset(processor) -> datasets.Dataset:
    return tiny_hoi_dataset(12, processor.vocabulary)


def _model(seed: int = 0) -> CLHOIForInteractionDetection:
    torch.manual_seed(seed)
    return CLHOIForInteractionDetection(CLHOIConfig.from_preset("tiny"))


def _trainer(model, processor, dataset, tmp_path, callbacks=None, **overrides) -> CLHOIDistillationTrainer:
    values = {
        "output_dir": str(tmp_path), "stage": "both", "context_max_steps": 2, "max_steps": 3,
        "per_device_train_batch_size": 4, "per_device_eval_batch_size": 6, "learning_rate": 5e-3,
        "context_learning_rate": 5e-3, "logging_steps": 1, "save_strategy": "no", "report_to": [],
        "use_cpu": True, "seed": 0, "dataloader_num_workers": 0,
    }
    values.update(overrides)
    return CLHOIDistillationTrainer(
        model=model, args=CLHOITrainingArguments(**values), train_dataset=dataset, eval_dataset=dataset,
        data_collator=CLHOIDataCollator(processor), processing_class=processor, callbacks=callbacks,
    )


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


def _changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(before[name], value) for name, value in module.state_dict().items())


# ---------------------------------------------------------------------------------------------- collator
def test_collator_builds_dense_teacher_targets_and_normalized_boxes(processor, dataset):
    collator = CLHOIDataCollator(processor)
    rows = [dataset[0], dataset[1]]
    batch = collator(rows)
    num_hois = processor.vocabulary.num_hois
    assert batch["pixel_values"].shape == (2, 3, 32, 32)
    assert batch["original_sizes"].tolist() == [[48, 64], [48, 64]]
    assert batch["image_ids"] == [rows[0]["image_id"], rows[1]["image_id"]]
    assert batch["teacher_scores"].shape == batch["candidate_mask"].shape == (2, num_hois)
    for i, row in enumerate(rows):
        candidates = row["teacher_candidates"]
        assert batch["candidate_mask"][i].nonzero().squeeze(1).tolist() == candidates
        assert torch.allclose(batch["teacher_scores"][i, candidates], torch.tensor(row["teacher_scores"]))
        assert batch["teacher_scores"][i].sum().item() == pytest.approx(sum(row["teacher_scores"]), rel=1e-5)
        boxes = torch.tensor(row["detections"]["boxes"]) / torch.tensor([64.0, 48.0, 64.0, 48.0])
        assert torch.allclose(batch["detections"][i]["boxes"], boxes)
        assert batch["annotations"][i]["hoi"].tolist() == row["annotation"]["hoi"]
    assert batch["context_input_ids"].shape == batch["context_attention_mask"].shape
    assert batch["context_input_ids"].shape[0] == 2


def test_collator_rejects_candidates_outside_the_vocabulary(processor, dataset):
    row = dict(dataset[0])
    row["teacher_candidates"] = [processor.vocabulary.num_hois]
    row["teacher_scores"] = [0.5]
    with pytest.raises(ValueError, match="teacher candidate ids"):
        CLHOIDataCollator(processor)([row])


def test_arguments_validate_stage_and_columns(tmp_path):
    with pytest.raises(ValueError, match="stage"):
        CLHOITrainingArguments(output_dir=str(tmp_path), stage="everything", report_to=[])
    with pytest.raises(ValueError, match="remove_unused_columns"):
        CLHOITrainingArguments(output_dir=str(tmp_path), remove_unused_columns=True, report_to=[])


# ---------------------------------------------------------------------------------------------- stages
class _SnapshotAtStep(TrainerCallback):
    def __init__(self, model, step: int) -> None:
        self.model, self.step, self.snapshot = model, step, None

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            self.snapshot = {"vlt": _snapshot(self.model.vlt), "icn": _snapshot(self.model.icn)}


def test_both_stages_train_what_each_stage_trains(processor, dataset, tmp_path):
    model = _model()
    initial = {part: _snapshot(getattr(model, part)) for part in ("vlt", "icn", "text_encoder", "vision_encoder")}
    scale = model.logit_scale.detach().clone()
    boundary = _SnapshotAtStep(model, step=2)
    trainer = _trainer(model, processor, dataset, tmp_path, callbacks=[boundary], interaction_contrastive_weight=0.5)
    trainer.train()
    assert trainer.stage_steps == (2, 3)
    assert trainer.state.global_step == 5
    # Stage 1 moved the VLT only; stage 2 moved the ICN only; the text encoder never moved.
    assert _changed(initial["vlt"], model.vlt)
    assert all(torch.equal(initial["icn"][name], value) for name, value in boundary.snapshot["icn"].items())
    assert not _changed(boundary.snapshot["vlt"], model.vlt)
    assert _changed(boundary.snapshot["icn"], model.icn)
    assert not _changed(initial["text_encoder"], model.text_encoder)
    assert _changed(initial["vision_encoder"], model.vision_encoder)  # tiny preset: not frozen
    assert model.logit_scale.item() != scale.item()
    # Each loss term is logged in its stage.
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert [entry["stage"] for entry in logs] == [1, 1, 2, 2, 2]
    assert all("context_loss" in entry for entry in logs[:2])
    assert all({"interaction_contrastive_loss", "multilabel_distillation_loss"} <= set(entry) for entry in logs[2:])
    for entry in logs[2:]:
        total = entry["interaction_contrastive_loss"] + entry["multilabel_distillation_loss"]
        assert entry["loss"] == pytest.approx(total, rel=1e-4)
    # Learning rates: stage 1 decays from its own peak, stage 2 restarts at its peak.
    assert logs[0]["learning_rate"] == pytest.approx(5e-3)
    assert logs[2]["learning_rate"] == pytest.approx(5e-3)
    assert logs[1]["learning_rate"] < logs[0]["learning_rate"]


def test_single_stages_freeze_the_other_stage(processor, dataset, tmp_path):
    model = _model()
    vlt, icn = _snapshot(model.vlt), _snapshot(model.icn)
    _trainer(model, processor, dataset, tmp_path, stage="context", max_steps=2).train()
    assert _changed(vlt, model.vlt) and not _changed(icn, model.icn)

    model = _model()
    vlt, icn = _snapshot(model.vlt), _snapshot(model.icn)
    trainer = _trainer(model, processor, dataset, tmp_path, stage="interaction", max_steps=2)
    trainer.train()
    assert _changed(icn, model.icn) and not _changed(vlt, model.vlt)
    assert trainer.stage_steps == (0, 2)


def test_stage_steps_follow_epochs(processor, dataset, tmp_path):
    # 12 images, batch 4: 3 steps per epoch; stage 1 for 1 epoch, stage 2 for 0.67 epoch -> 2 steps.
    trainer = _trainer(_model(), processor, dataset, tmp_path, context_max_steps=-1, context_num_train_epochs=1,
                       max_steps=-1, num_train_epochs=2 / 3)
    trainer.train()
    assert trainer.stage_steps == (3, 2)
    assert trainer.state.global_step == 5


@pytest.mark.parametrize("supervision", ["instance", "image"])
def test_supervised_baselines_train_pairs_directly(processor, dataset, tmp_path, supervision):
    model = _model()
    icn = _snapshot(model.icn)
    trainer = _trainer(model, processor, dataset, tmp_path, stage="interaction", max_steps=2, supervision=supervision)
    trainer.train()
    assert _changed(icn, model.icn)
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert all(entry["pair_classification_loss"] == pytest.approx(entry["loss"], rel=1e-5) for entry in logs)
    assert all("multilabel_distillation_loss" not in entry for entry in logs)


# ---------------------------------------------------------------------------------------------- resume
def test_resume_from_checkpoint_reaches_the_same_weights(processor, dataset, tmp_path):
    full = _model()
    uninterrupted = _trainer(full, processor, dataset, tmp_path / "full", save_strategy="steps", save_steps=1)
    uninterrupted.train()
    for checkpoint in ("checkpoint-1", "checkpoint-3"):  # inside stage 1, inside stage 2
        resumed = _model(seed=123)  # different initial weights: everything must come from the checkpoint
        trainer = _trainer(resumed, processor, dataset, tmp_path / checkpoint, save_strategy="steps", save_steps=1)
        trainer.train(resume_from_checkpoint=str(tmp_path / "full" / checkpoint))
        assert trainer.state.global_step == 5
        for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
            assert torch.equal(a, b), f"{name} differs after resuming from {checkpoint}"
        for a, b in zip(uninterrupted.temperatures.parameters(), trainer.temperatures.parameters()):
            assert torch.equal(a, b)


# ---------------------------------------------------------------------------------------------- evaluation
def test_evaluate_computes_hico_det_map_of_the_predictions(processor, dataset, tmp_path):
    model = _model()
    trainer = _trainer(model, processor, dataset, tmp_path, eval_top_k=50)
    metrics = trainer.evaluate()
    predictions = predict_dataset(model, processor, dataset, batch_size=5, top_k=50, show_progress=False)
    expected = hico_det_map(predictions, references_from_dataset(dataset), vocabulary=processor.vocabulary)
    assert metrics["eval_map"] == pytest.approx(expected["map"], abs=1e-9)
    assert metrics["eval_num_classes"] == int((expected["n_gt"] > 0).sum()) > 1
    assert 0.0 < metrics["eval_map"] <= 1.0
