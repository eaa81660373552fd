"""scripts/push_to_hub.py against a mocked HfApi: the uploaded folder, the card, and the clear errors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import pytest
import yaml
from huggingface_hub import HfApi, constants
from huggingface_hub.errors import LocalTokenNotFoundError

from modeling_clhoi import CLHOIForInteractionDetection, CLHOIProcessor

ROOT = Path(__file__).resolve().parents[1]
EXPECTED_FILES = [
    "README.md", "config.json", "configuration_clhoi.py", "eval_results.json", "image_processing_clhoi.py",
    "model.safetensors", "modeling_clhoi.py", "pipeline_clhoi.py", "processing_clhoi.py", "processor_config.json",
    "tokenization_clhoi.py", "tokenizer.json", "tokenizer_config.json", "vocabulary.py",
]


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("push_to_hub_script", ROOT / "scripts" / "push_to_hub.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def model_dir(
    tmp_path_factory: pytest.TempPathFactory, tiny_model: CLHOIForInteractionDetection, tiny_processor: CLHOIProcessor
) -> Path:
    """A training output folder: model, processor, results, arguments, and clutter that must stay local."""
    folder = tmp_path_factory.mktemp("trained")
    tiny_model.save_pretrained(folder)
    tiny_processor.save_pretrained(folder)
    (folder / "eval_results.json").write_text(json.dumps(
        {"eval_hico_det_map": 0.31, "eval_hico_det_map_rare": 0.22, "eval_hico_det_map_non_rare": 0.34,
         "eval_vcoco_scenario_1": 0.5, "eval_vcoco_scenario_2": 0.52, "eval_loss": 0.7}))
    (folder / "training_args.json").write_text(json.dumps({"learning_rate": 5e-5, "seed": 0,
                                                          "teacher_model_name_or_path": "Qwen/Qwen2-VL-2B-Instruct"}))
    (folder / "checkpoint-10").mkdir()
    (folder / "checkpoint-10" / "optimizer.pt").write_bytes(b"x")
    (folder / "trainer_state.json").write_text("{}")
    return folder


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def _api(uploaded: dict[str, Any]) -> mock.MagicMock:
    """An autospec'd HfApi whose upload_folder records the folder's files and card before it disappears."""
    api = mock.create_autospec(HfApi, instance=True)
    api.whoami.return_value = {"name": "tester"}
    api.create_repo.return_value = "https://huggingface.co/my-org/clhoi-tiny"

    def upload_folder(*, folder_path: str, **kwargs: Any) -> None:
        folder = Path(folder_path)
        uploaded["files"] = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        uploaded["readme"] = (folder / "README.md").read_text()
        uploaded["config"] = json.loads((folder / "config.json").read_text())
        uploaded["kwargs"] = kwargs

    api.upload_folder.side_effect = upload_folder
    return api


@pytest.mark.usefixtures("online")
def test_push_uploads_exactly_the_model_files_and_card(script: ModuleType, model_dir: Path) -> None:
    uploaded: dict[str, Any] = {}
    api = _api(uploaded)
    url = script.push_to_hub(model_dir, "my-org/clhoi-tiny", private=True, api=api)
    assert url == "https://huggingface.co/my-org/clhoi-tiny"
    api.create_repo.assert_called_once_with("my-org/clhoi-tiny", private=True, repo_type="model", exist_ok=True,
                                            token=None)
    api.upload_folder.assert_called_once()
    assert uploaded["kwargs"]["repo_id"] == "my-org/clhoi-tiny" and uploaded["kwargs"]["repo_type"] == "model"
    assert uploaded["files"] == EXPECTED_FILES
    # The code auto_map and custom_pipelines name is in the folder.
    config = uploaded["config"]
    assert set(config["auto_map"]) == {"AutoConfig", "AutoModel"}
    for reference in [*config["auto_map"].values(), *(p["impl"] for p in config["custom_pipelines"].values())]:
        assert reference.split(".")[0] + ".py" in uploaded["files"]
    # The card's YAML parses and holds the metrics.
    readme = uploaded["readme"]
    meta = yaml.safe_load(readme.split("---\n")[1])
    results = {r["dataset"]["name"]: {m["name"]: m["value"] for m in r["metrics"]}
               for r in meta["model-index"][0]["results"]}
    assert results == {
        "HICO-DET": {"mAP Default Full": 31.0, "mAP Default Rare": 22.0, "mAP Default Non-rare": 34.0},
        "V-COCO": {"Role AP Scenario 1": 50.0, "Role AP Scenario 2": 52.0},
    }
    assert meta["base_model"] == ["Qwen/Qwen2-VL-2B-Instruct"] and meta["library_name"] == "transformers"
    assert "my-org/clhoi-tiny" in readme and "| learning_rate | `5e-05` |" in readme


def test_offline_is_a_clear_error(script: ModuleType, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    api = _api({})
    with pytest.raises(script.PushToHubError, match="HF_HUB_OFFLINE"):
        script.push_to_hub(model_dir, "my-org/clhoi-tiny", api=api)
    api.create_repo.assert_not_called()
    with pytest.raises(SystemExit, match="push_to_hub: Offline mode"):
        script.main(["--model", str(model_dir), "--repo_id", "my-org/clhoi-tiny"])


@pytest.mark.usefixtures("online")
@pytest.mark.parametrize(
    ("error", "message"),
    [
        (LocalTokenNotFoundError("no token"), "Not logged in"),
        (ConnectionError("refused"), "Cannot reach the Hugging Face Hub"),
    ],
)
def test_login_and_connection_errors(script: ModuleType, model_dir: Path, error: Exception, message: str) -> None:
    api = _api({})
    api.whoami.side_effect = error
    with pytest.raises(script.PushToHubError, match=message):
        script.push_to_hub(model_dir, "my-org/clhoi-tiny", api=api)
    api.upload_folder.assert_not_called()


@pytest.mark.usefixtures("online")
def test_bad_arguments(script: ModuleType, model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(script.PushToHubError, match="org/name"):
        script.push_to_hub(model_dir, "no-namespace", api=_api({}))
    with pytest.raises(script.PushToHubError, match="no config.json"):
        script.push_to_hub(tmp_path, "my-org/x", api=_api({}))
