"""Shared test setup: offline hub, quiet tokenizers, fixed seeds, tiny CL-HOI fixtures."""

import os
import sys
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
# A cache of its own per test session: datasets keys some caches by folder name, and tests reuse names.
os.environ["HF_DATASETS_CACHE"] = tempfile.mkdtemp(prefix="clhoi-datasets-cache-")

REPO_ROOT = Path(__file__).resolve().parents[1]
# The editable install can resolve `modeling_clhoi` as a namespace package when the repo root is not on
# sys.path (e.g. `.venv/bin/pytest`); put the checkout first.
sys.path.insert(0, str(REPO_ROOT))

import random  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from modeling_clhoi import CLHOIConfig, CLHOIForInteractionDetection, CLHOIProcessor  # noqa: E402

SHARED_DIR = REPO_ROOT.parent / "shared"


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture
def one_thread():
    """Tiny models run faster single-threaded, and the suite shares two cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """`../shared` beside the clone (CI has it there)."""
    return SHARED_DIR


@pytest.fixture
def tiny_config() -> CLHOIConfig:
    return CLHOIConfig.from_preset("tiny")


@pytest.fixture(scope="session")
def tiny_model() -> CLHOIForInteractionDetection:
    """A shared tiny model in eval mode; tests that change it must build their own."""
    torch.manual_seed(0)
    return CLHOIForInteractionDetection(CLHOIConfig.from_preset("tiny")).eval()


@pytest.fixture(scope="session")
def tiny_processor() -> CLHOIProcessor:
    return CLHOIProcessor.from_preset("tiny")


def make_detections(vocabulary, spec):
    """Detections from ``[(object name, [x1, y1, x2, y2] normalized, score), ...]`` per image."""
    return [
        {
            "boxes": torch.tensor([box for _, box, _ in image], dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor([vocabulary.objects.index(name) for name, _, _ in image], dtype=torch.long),
            "scores": torch.tensor([score for _, _, score in image], dtype=torch.float32),
        }
        for image in spec
    ]


# One person riding a bicycle with a second person nearby; used across test files.
SCENE = [
    ("person", [0.10, 0.10, 0.45, 0.90], 0.95),
    ("bicycle", [0.05, 0.50, 0.60, 0.95], 0.90),
    ("person", [0.60, 0.20, 0.90, 0.85], 0.80),
    ("cup", [0.70, 0.40, 0.75, 0.48], 0.70),
]


@pytest.fixture
def tiny_detector_config():
    """A DETR with a 4-stage ResNet of width 8 (no timm, no download), labels named like vocabulary objects."""
    from transformers import DetrConfig, ResNetConfig

    backbone = ResNetConfig(embedding_size=8, hidden_sizes=[8, 8, 8, 8], depths=[1, 1, 1, 1], layer_type="basic",
                            out_features=["stage4"])
    return DetrConfig(
        backbone_config=backbone, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, num_queries=6,
        id2label={0: "person", 1: "bicycle", 2: "cup", 3: "N/A"},
    )
