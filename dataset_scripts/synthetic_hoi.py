"""Build the synthetic HOI world as a Hugging Face dataset (Parquet in the Hub layout).

    python dataset_scripts/synthetic_hoi.py --output_dir data/synthetic_hoi --num_train 5000 --num_test 500 \
        --seed 0 [--image_size 256] [--teacher_noise 0.1 | --no_teacher] [--num_workers 2]

Writes ``DIR/data/{train,test}-*.parquet``, a dataset card ``DIR/README.md`` and ``DIR/vocabulary.json``
(HICO-DET: the world uses HICO-DET's verb, object and HOI ids). Unless ``--no_teacher`` is given, the
:class:`~modeling_clhoi.synthetic_teacher.SyntheticTeacher` labels every image (``teacher_context``,
``teacher_candidates``, ``teacher_scores``) with ``--teacher_noise``: it sees only image-level truth.
``datasets.load_dataset(DIR)`` then returns ``train`` and ``test``.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

from modeling_clhoi.dataset_schema import hoi_features, save_hub_parquet, write_vocabulary
from modeling_clhoi.synthetic_teacher import SyntheticTeacher
from modeling_clhoi.synthetic_world import SYNTHETIC_HOIS, WORLD_OBJECTS, generate_examples
from modeling_clhoi.vocabulary import HOIVocabulary

logger = logging.getLogger(__name__)

CARD = """# Synthetic HOI world (clhoi)

Procedurally drawn scenes with 1-4 people and 1-5 objects of {num_objects} HICO-DET categories
({objects}). Interactions follow geometry and pose and use HICO-DET's verb, object and HOI ids
({num_hois} HOI classes can occur). `annotation` holds instance-level truth (for evaluation only);
`detections` simulate a detector (jittered truth boxes, a few misses and false positives).
{teacher}

Built with `dataset_scripts/synthetic_hoi.py` (seed {seed}, image size {image_size}).
"""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", required=True, help="dataset folder to write")
    parser.add_argument("--num_train", type=int, default=5000)
    parser.add_argument("--num_test", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image_size", type=int, default=256)
    parser.add_argument("--teacher_noise", type=float, default=0.1, help="noise of the synthetic teacher")
    parser.add_argument("--teacher_seed", type=int, default=0)
    parser.add_argument("--no_teacher", action="store_true", help="leave out the teacher columns")
    parser.add_argument("--num_workers", type=int, default=min(os.cpu_count() or 1, 8))
    parser.add_argument("--max_shard_size", default="500MB")
    args = parser.parse_args(argv)
    if args.num_train < 0 or args.num_test < 0:
        parser.error("--num_train and --num_test must be non-negative")
    return args


def _with_teacher(examples: Iterator[dict[str, Any]], teacher: SyntheticTeacher | None,
                  batch_size: int = 64) -> Iterator[dict[str, Any]]:
    batch: list[dict[str, Any]] = []
    for example in examples:
        batch.append(example)
        if len(batch) == batch_size:
            yield from _label(batch, teacher)
            batch = []
    yield from _label(batch, teacher)


def _label(batch: list[dict[str, Any]], teacher: SyntheticTeacher | None) -> Iterator[dict[str, Any]]:
    if teacher is None or not batch:
        yield from batch
        return
    for example, columns in zip(batch, teacher.label_examples(batch)):
        example.update(columns)
        yield example


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    vocabulary = HOIVocabulary.hico_det()
    teacher = None if args.no_teacher else SyntheticTeacher(vocabulary, noise=args.teacher_noise,
                                                            seed=args.teacher_seed)
    start = time.perf_counter()
    splits = {
        split: _with_teacher(generate_examples(n, args.seed, args.image_size, split, args.num_workers), teacher)
        for split, n in (("train", args.num_train), ("test", args.num_test))
    }
    teacher_text = ("Teacher columns from the synthetic teacher (image-level truth only) with noise "
                    f"{args.teacher_noise}." if teacher else "No teacher columns.")
    card = CARD.format(num_objects=len(WORLD_OBJECTS), objects=", ".join(WORLD_OBJECTS),
                       num_hois=len(SYNTHETIC_HOIS), teacher=teacher_text, seed=args.seed,
                       image_size=args.image_size)
    shards = save_hub_parquet(splits, args.output_dir, features=hoi_features(with_teacher=teacher is not None),
                              max_shard_size=args.max_shard_size, description=card,
                              pretty_name="Synthetic HOI world")
    write_vocabulary(vocabulary, args.output_dir)
    seconds = time.perf_counter() - start
    logger.info("Wrote %d train and %d test images to %s in %.1f s", args.num_train, args.num_test,
                args.output_dir, seconds)
    return {"shards": {k: [str(p) for p in v] for k, v in shards.items()}, "seconds": seconds}


if __name__ == "__main__":
    main()
