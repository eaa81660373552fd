"""Auto-class registration and `auto_map` loading in a fresh interpreter that cannot import the package."""

import ast
import json
import os
import subprocess
import sys
import textwrap

import torch
from conftest import SCENE, make_detections
from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoProcessor

from modeling_clhoi import CLHOIConfig, CLHOIForInteractionDetection, CLHOIImageProcessor, CLHOIProcessor

ALLOWED_IMPORTS = {"__future__", "copy", "dataclasses", "json", "math", "os", "typing", "collections", "pathlib",
                   "torch", "numpy", "PIL", "transformers", "tokenizers", "huggingface_hub"}


def test_auto_classes_registered(tmp_path):
    config = CLHOIConfig.from_preset("tiny")
    config.save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), CLHOIConfig)
    assert isinstance(AutoModel.from_config(config), CLHOIForInteractionDetection)
    CLHOIProcessor.from_preset("tiny").save_pretrained(tmp_path)
    assert isinstance(AutoImageProcessor.from_pretrained(tmp_path), CLHOIImageProcessor)
    assert isinstance(AutoProcessor.from_pretrained(tmp_path), CLHOIProcessor)


def test_saved_code_is_self_contained(tiny_model, tiny_processor, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    tiny_processor.save_pretrained(tmp_path)
    code = sorted(p.name for p in tmp_path.glob("*.py"))
    assert code == ["configuration_clhoi.py", "image_processing_clhoi.py", "modeling_clhoi.py", "processing_clhoi.py",
                    "tokenization_clhoi.py", "vocabulary.py"]
    for name in code:
        tree = ast.parse((tmp_path / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = {node.module.split(".")[0]}
            else:
                continue
            assert roots <= ALLOWED_IMPORTS, (name, roots)
    processor_config = json.loads((tmp_path / "processor_config.json").read_text())
    assert processor_config["auto_map"] == {"AutoProcessor": "processing_clhoi.CLHOIProcessor"}


FRESH_INTERPRETER = textwrap.dedent(
    """
    import importlib.abc, sys

    class BlockPackage(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "modeling_clhoi" or name.startswith("modeling_clhoi."):
                raise ImportError("modeling_clhoi is blocked in this interpreter")

    sys.meta_path.insert(0, BlockPackage())
    import torch
    from transformers import AutoModel, AutoProcessor

    folder = sys.argv[1]
    try:
        import modeling_clhoi  # noqa: F401
        raise SystemExit("the package should not be importable here")
    except ImportError:
        pass
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    assert type(processor).__name__ == "CLHOIProcessor"
    reference = torch.load(folder + "/reference.pt")
    with torch.no_grad():
        out = model(reference["pixel_values"], detections=reference["detections"])
    assert torch.equal(out.pair_logits, reference["pair_logits"])
    results = processor.post_process_interaction_detection(out, threshold=0.0, target_sizes=[(32, 32)], top_k=3)
    assert len(results[0]) == 3
    print("REMOTE CODE OK")
    """
)


def test_auto_map_in_fresh_interpreter_without_package(tiny_model, tiny_processor, tmp_path):
    folder = tmp_path / "checkpoint"
    tiny_model.save_pretrained(folder)
    tiny_processor.save_pretrained(folder)
    pixel_values = torch.randn(1, 3, 32, 32)
    detections = make_detections(tiny_model.vocabulary, [SCENE])
    with torch.no_grad():
        pair_logits = tiny_model(pixel_values, detections=detections).pair_logits
    torch.save({"pixel_values": pixel_values, "detections": detections, "pair_logits": pair_logits},
               folder / "reference.pt")
    script = tmp_path / "fresh.py"
    script.write_text(FRESH_INTERPRETER)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"),
           "PYTHONPATH": ""}
    result = subprocess.run([sys.executable, str(script), str(folder)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "REMOTE CODE OK" in result.stdout
