"""Publish a trained CL-HOI model on the Hugging Face Hub, ready for `pipeline` and `AutoModel`.

    python scripts/push_to_hub.py --model path/to/model --repo_id my-org/clhoi-hico [--private] [--token hf_...]

The model folder is re-saved into a clean staging folder that holds exactly what the Hub repo needs:
the weights and config, the processor (image processor, tokenizer, vocabulary), the code that
`auto_map` names (so `AutoModel.from_pretrained(repo, trust_remote_code=True)` works without this
package), the pipeline code with its `custom_pipelines` entry (so `pipeline(model=repo,
trust_remote_code=True)` works), `eval_results.json` when the folder has one, and the model card
(README.md) rendered from the eval results and training arguments. Nothing else of the training
folder (checkpoints, optimizer states, logs) is uploaded. Then `HfApi.create_repo` and
`HfApi.upload_folder` push it in one commit.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi, constants
from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError
from transformers import AutoModel, AutoProcessor

# Importing modeling_clhoi registers the CL-HOI Auto classes.
from modeling_clhoi.model_card import EVAL_RESULTS_NAME, TRAINING_ARGS_NAME, save_model_card
from modeling_clhoi.pipeline_clhoi import save_pipeline_code


class PushToHubError(RuntimeError):
    """A push that cannot happen (offline, not logged in, unreachable Hub, bad folder), with what to do."""


def _connection_errors() -> tuple[type[BaseException], ...]:
    """Exceptions meaning "the Hub cannot be reached" for the installed HTTP client of huggingface_hub."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]  # OfflineModeIsEnabled is a ConnectionError
    for module in ("httpx2", "httpx"):
        try:
            errors.append(__import__(module).TransportError)
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


def prepare_folder(model_dir: str | Path, folder: str | Path, repo_id: str, **card_kwargs: Any) -> list[str]:
    """Write into ``folder`` everything the Hub repo gets; returns the file names, sorted.

    ``card_kwargs`` go to :func:`modeling_clhoi.model_card.create_model_card` (e.g. ``license``, ``base_models``).
    """
    model_dir, folder = Path(model_dir), Path(folder)
    model = AutoModel.from_pretrained(model_dir)
    processor = AutoProcessor.from_pretrained(model_dir)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    save_pipeline_code(folder)
    eval_results = model_dir / EVAL_RESULTS_NAME
    if eval_results.is_file():
        shutil.copyfile(eval_results, folder / EVAL_RESULTS_NAME)
    training_args = model_dir / TRAINING_ARGS_NAME
    save_model_card(
        folder,
        repo_id=repo_id,
        eval_results=eval_results if eval_results.is_file() else None,
        training_args=training_args if training_args.is_file() else None,
        **card_kwargs,
    )
    return sorted(p.name for p in folder.iterdir() if p.is_file())


def push_to_hub(
    model_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    commit_message: str = "Upload CL-HOI model",
    api: HfApi | None = None,
    **card_kwargs: Any,
) -> str:
    """Create (or reuse) the model repo ``repo_id`` and upload the prepared folder; returns the repo URL.

    Raises:
        PushToHubError: offline mode (``HF_HUB_OFFLINE=1``), no or invalid token, Hub unreachable, or
            ``model_dir`` not a saved model.
    """
    if not (Path(model_dir) / "config.json").is_file():
        raise PushToHubError(f"{model_dir} is not a saved model folder (no config.json).")
    if constants.is_offline_mode():
        raise PushToHubError("Offline mode is on (HF_HUB_OFFLINE=1): unset it to push to the Hub.")
    if repo_id.count("/") != 1:
        raise PushToHubError(f"--repo_id must look like 'org/name' or 'user/name', got {repo_id!r}")
    api = api if api is not None else HfApi(token=token)
    try:
        user = api.whoami(token=token)
    except LocalTokenNotFoundError as error:
        raise PushToHubError("Not logged in to the Hugging Face Hub: run `hf auth login` or pass --token.") from error
    except HfHubHTTPError as error:
        raise PushToHubError(f"The Hub rejected the token ({error}): check it, or run `hf auth login`.") from error
    except _connection_errors() as error:
        raise PushToHubError(f"Cannot reach the Hugging Face Hub ({error}): check the network connection.") from error

    with tempfile.TemporaryDirectory(prefix="clhoi_push_") as folder:
        files = prepare_folder(model_dir, folder, repo_id, **card_kwargs)
        print(f"Pushing {len(files)} files to {repo_id} as {user.get('name', 'unknown user')}: {', '.join(files)}")
        try:
            url = api.create_repo(repo_id, private=private, repo_type="model", exist_ok=True, token=token)
            api.upload_folder(folder_path=folder, repo_id=repo_id, repo_type="model",
                              commit_message=commit_message, token=token)
        except _connection_errors() as error:
            raise PushToHubError(f"Lost the connection to the Hub ({error}); nothing was committed.") from error
    return str(url)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="the saved model folder (save_pretrained output)")
    parser.add_argument("--repo_id", required=True, help="the Hub repo, 'org/name'")
    parser.add_argument("--private", action="store_true", help="create the repo as private")
    parser.add_argument("--token", default=None, help="a Hub write token (default: the one of `hf auth login`)")
    parser.add_argument("--license", default="apache-2.0", help="license id for the model card")
    parser.add_argument("--commit_message", default="Upload CL-HOI model")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> str:
    args = parse_args(argv)
    try:
        url = push_to_hub(args.model, args.repo_id, private=args.private, token=args.token,
                          commit_message=args.commit_message, license=args.license)
    except PushToHubError as error:
        sys.exit(f"push_to_hub: {error}")
    print(f"Done: {url}")
    return url


if __name__ == "__main__":
    main()
