"""Known-value tests of the distillation losses."""

import math

import pytest
import torch
import torch.nn.functional as F

from modeling_clhoi.losses import (
    context_distillation_loss,
    interaction_contrastive_loss,
    logit_scale_from_log,
    multilabel_distillation_loss,
    pair_classification_loss,
    pair_targets_from_annotations,
    symmetric_info_nce,
    teacher_interaction_targets,
)
from modeling_clhoi.modeling_clhoi import box_iou

LOW = torch.finfo(torch.float32).min


def _orthonormal(n: int, d: int) -> torch.Tensor:
    return torch.eye(d)[:n]


def test_info_nce_known_value_for_orthonormal_pairs():
    a = _orthonormal(4, 8)
    scale = torch.tensor(2.0)
    # Positive logit 2, three negatives at 0: -log(e^2 / (e^2 + 3)).
    expected = -math.log(math.exp(2) / (math.exp(2) + 3))
    assert symmetric_info_nce(a, a, scale).item() == pytest.approx(expected, rel=1e-5)
    # One image: nothing to contrast with.
    assert symmetric_info_nce(a[:1], a[:1], scale).item() == pytest.approx(0.0, abs=1e-7)


def test_context_loss_minimum_at_alignment_and_shuffle_raises_it():
    torch.manual_seed(0)
    text = F.normalize(torch.randn(6, 16), dim=-1)
    scale = torch.tensor(20.0)
    aligned = context_distillation_loss(text, text, scale)
    shuffled = context_distillation_loss(text[torch.tensor([1, 2, 3, 4, 5, 0])], text, scale)
    noisy = context_distillation_loss(F.normalize(text + 0.3 * torch.randn(6, 16), dim=-1), text, scale)
    assert aligned < noisy < shuffled
    assert shuffled.item() > math.log(6)  # worse than chance


def test_context_loss_rejects_bad_shapes():
    with pytest.raises(ValueError, match="same shape"):
        context_distillation_loss(torch.zeros(3, 4), torch.zeros(2, 4), torch.tensor(1.0))


def test_teacher_targets_weight_prompt_embeddings():
    prompts = _orthonormal(3, 3)
    scores = torch.tensor([[0.6, 0.8, 0.0], [0.0, 0.0, 0.0]])
    targets, valid = teacher_interaction_targets(scores, prompts)
    assert torch.allclose(targets[0], torch.tensor([0.6, 0.8, 0.0]))
    assert valid.tolist() == [True, False]
    assert torch.all(targets[1] == 0)


def test_interaction_contrastive_minimum_and_shuffle():
    prompts = _orthonormal(4, 4)
    scores = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0.5, 0.5], [0, 0, 0, 0]])
    targets, _ = teacher_interaction_targets(scores, prompts)
    scale = torch.tensor(2.0)
    perfect = interaction_contrastive_loss(targets.clone(), scores, prompts, scale)
    shuffled = interaction_contrastive_loss(targets[torch.tensor([1, 2, 0, 3])], scores, prompts, scale)
    # Image 3 has no teacher mass and is left out: three valid images, the third target is
    # (0, 0, .707, .707), orthogonal to the other two.
    expected = -math.log(math.exp(2) / (math.exp(2) + 2))
    assert perfect.item() == pytest.approx(expected, rel=1e-5)
    assert shuffled > perfect + 1.5


def test_interaction_contrastive_needs_two_images():
    prompts = _orthonormal(2, 2)
    embeds = torch.randn(2, 2, requires_grad=True)
    loss = interaction_contrastive_loss(embeds, torch.tensor([[1.0, 0], [0, 0]]), prompts, torch.tensor(5.0))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.all(embeds.grad == 0)


def test_multilabel_distillation_known_values_and_minimum():
    teacher = torch.tensor([[0.9, 0.2, 0.7], [0.0, 1.0, 0.5]])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    # Logits at the teacher's own probabilities: the loss is the teacher's mean binary entropy.
    logits = torch.logit(teacher.clamp(1e-6, 1 - 1e-6))
    logits[1, 2] = LOW  # not scorable: no pair of that object; left out
    loss = multilabel_distillation_loss(logits, teacher, mask)
    kept = torch.tensor([0.9, 0.2, 0.0, 1.0])
    entropy = -(kept * kept.clamp_min(1e-6).log() + (1 - kept) * (1 - kept).clamp_min(1e-6).log()).mean()
    assert loss.item() == pytest.approx(entropy.item(), abs=1e-4)
    # Moving any logit away from the teacher raises it; masked entries do not matter.
    for i, j in [(0, 0), (0, 1), (1, 0)]:
        moved = logits.clone()
        moved[i, j] += 1.0
        assert multilabel_distillation_loss(moved, teacher, mask) > loss
    moved = logits.clone()
    moved[0, 2] = 30.0  # outside the candidates
    assert multilabel_distillation_loss(moved, teacher, mask).item() == pytest.approx(loss.item())


def test_multilabel_distillation_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="share one"):
        multilabel_distillation_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(2, 4, dtype=torch.bool))


def test_pair_targets_match_annotations_by_iou():
    dets = [{"boxes": torch.tensor([[0.0, 0, 0.2, 0.2], [0.5, 0.5, 0.7, 0.7], [0.0, 0.5, 0.2, 0.7]])}]
    pair_image_index = torch.tensor([0, 0])
    pair_indices = torch.tensor([[0, 1], [0, 2]])
    ann = [{"boxes_h": torch.tensor([[0.0, 0, 0.21, 0.2]]), "boxes_o": torch.tensor([[0.5, 0.5, 0.7, 0.72]]),
            "hoi": torch.tensor([3])}]
    targets = pair_targets_from_annotations(dets, pair_image_index, pair_indices, ann, num_hois=5)
    assert targets.tolist() == [[0, 0, 0, 1, 0], [0, 0, 0, 0, 0]]
    assert box_iou(torch.tensor([[0.0, 0, 2, 2]]), torch.tensor([[1.0, 1, 3, 3]])).item() == pytest.approx(1 / 7)


def test_pair_classification_loss_ignores_masked_entries():
    logits = torch.tensor([[20.0, LOW], [-20.0, 0.0]])
    targets = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    expected = F.binary_cross_entropy_with_logits(torch.tensor([20.0, -20.0, 0.0]), torch.tensor([1.0, 0, 1]))
    assert pair_classification_loss(logits, targets).item() == pytest.approx(expected.item(), rel=1e-6)


def test_gradients_reach_only_the_intended_parameters():
    torch.manual_seed(0)
    vlt = torch.nn.Linear(4, 8)
    icn = torch.nn.Linear(4, 8)
    text = torch.nn.Linear(4, 8)
    log_scale = torch.nn.Parameter(torch.tensor(math.log(10.0)))
    x = torch.randn(5, 4)
    scale = logit_scale_from_log(log_scale)

    # Context loss: the VLT and the temperature; the frozen text encoder is never reached.
    with torch.no_grad():
        described = F.normalize(text(x), dim=-1)
    context_distillation_loss(F.normalize(vlt(x), dim=-1), described, scale).backward()
    assert vlt.weight.grad is not None and vlt.weight.grad.abs().sum() > 0
    assert log_scale.grad is not None and log_scale.grad.abs() > 0
    assert icn.weight.grad is None and text.weight.grad is None

    # Interaction losses: the ICN only; the HOI text embeddings and teacher scores are constants.
    vlt.zero_grad()
    prompts = F.normalize(torch.randn(3, 8), dim=-1).requires_grad_(True)
    teacher = torch.rand(5, 3).requires_grad_(True)
    embeds = F.normalize(icn(x), dim=-1)
    logits = icn(x)[:, :3]
    loss = interaction_contrastive_loss(embeds, teacher.detach(), prompts.detach(), torch.tensor(10.0))
    loss = loss + multilabel_distillation_loss(logits, teacher.detach(), torch.ones(5, 3, dtype=torch.bool))
    loss.backward()
    assert icn.weight.grad.abs().sum() > 0
    assert vlt.weight.grad is None or vlt.weight.grad.abs().sum() == 0
    assert prompts.grad is None and teacher.grad is None


def test_logit_scale_is_clamped():
    assert logit_scale_from_log(torch.tensor(10.0)).item() == 100.0
    assert logit_scale_from_log(torch.tensor(math.log(7.0))).item() == pytest.approx(7.0)
