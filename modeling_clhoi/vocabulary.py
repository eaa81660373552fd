"""HOI vocabularies: verbs, objects, HOI triplets and their text prompts.

An HOI class is a (verb, object) pair, e.g. "ride bicycle". A vocabulary fixes the ids of verbs,
objects and HOIs (HICO-DET's own ids for :meth:`HOIVocabulary.hico_det`), the rare set used by the
HICO-DET protocol, and one text prompt per HOI. CL-HOI classifies with the text embeddings of
these prompts, so a new vocabulary is all that open-vocabulary use needs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

NO_INTERACTION = "no_interaction"

# Verbs whose final consonant doubles before "-ing" (cut -> cutting). Everything else follows
# the regular rules of `_gerund`.
_DOUBLING = {
    "cut", "drag", "flip", "hit", "hop", "hug", "jog", "pet", "run", "set", "sit", "spin",
    "stab", "stir", "stop", "swim", "tag", "zip", "control", "sip", "grab", "rub", "shop", "skip", "slip", "wrap",
}
_IRREGULAR = {"lie": "lying", "tie": "tying", "die": "dying", "ski": "skiing", "see": "seeing"}
# V-COCO's 24 evaluated actions (role-specific where an action has two roles), in the order
# used by the HOI literature (e.g. CDN, UPT).
VCOCO_ACTIONS = [
    "hold_obj", "sit_instr", "ride_instr", "look_obj", "hit_instr", "hit_obj", "eat_obj",
    "eat_instr", "jump_instr", "lay_instr", "talk_on_phone_instr", "carry_obj", "throw_obj",
    "catch_obj", "cut_instr", "cut_obj", "work_on_computer_instr", "ski_instr", "surf_instr",
    "skateboard_instr", "drink_instr", "kick_obj", "read_obj", "snowboard_instr",
]


def _gerund(verb: str) -> str:
    """English "-ing" form of a one-word verb ("ride" -> "riding", "cut" -> "cutting")."""
    if verb in _IRREGULAR:
        return _IRREGULAR[verb]
    if verb in _DOUBLING:
        return verb + verb[-1] + "ing"
    if verb.endswith("e") and not verb.endswith(("ee", "ye", "oe")):
        return verb[:-1] + "ing"
    return verb + "ing"


def _phrase(name: str) -> str:
    return name.replace("_", " ")


def _with_article(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def default_prompt(verb: str, obj: str) -> str:
    """The default prompt of an HOI: "a photo of a person riding a bicycle".

    Multi-word verbs conjugate their first word ("sit_on" -> "sitting on"); the verb
    ``no_interaction`` gives "a photo of a person and a bicycle".
    """
    noun = _with_article(_phrase(obj))
    if verb == NO_INTERACTION:
        return f"a photo of a person and {noun}"
    head, *rest = verb.split("_")
    return " ".join(["a photo of a person", _gerund(head), *rest, noun])


@dataclass
class HOIVocabulary:
    """Verbs, objects and HOI classes with one text prompt per HOI.

    Args:
        verbs: verb names; a verb's id is its index.
        objects: object category names; an object's id is its index. Must contain ``person_name``.
        triplets: per HOI id, its ``(object_id, verb_id)``.
        prompts: per HOI id, the text used to embed it. Defaults to :func:`default_prompt`.
        rare: HOI ids of the rare classes (HICO-DET: fewer than 10 training pairs).
        name: a short name saved with the vocabulary.
        person_name: the object category of humans.
    """

    verbs: list[str]
    objects: list[str]
    triplets: list[tuple[int, int]]
    prompts: list[str] = field(default_factory=list)
    rare: list[int] = field(default_factory=list)
    name: str = "custom"
    person_name: str = "person"

    def __post_init__(self) -> None:
        self.verbs = [str(v) for v in self.verbs]
        self.objects = [str(o) for o in self.objects]
        self.triplets = [(int(o), int(v)) for o, v in self.triplets]
        self.rare = sorted(int(r) for r in self.rare)
        if not self.verbs or not self.objects or not self.triplets:
            raise ValueError("A vocabulary needs at least one verb, one object and one HOI triplet.")
        for names, kind in ((self.verbs, "verb"), (self.objects, "object")):
            if len(set(names)) != len(names):
                raise ValueError(f"Duplicate {kind} names in the vocabulary.")
        if self.person_name not in self.objects:
            raise ValueError(f"The objects must include the person category {self.person_name!r}.")
        for hoi, (o, v) in enumerate(self.triplets):
            if not (0 <= o < len(self.objects) and 0 <= v < len(self.verbs)):
                raise ValueError(f"HOI {hoi}: (object {o}, verb {v}) is out of range.")
        if len(set(self.triplets)) != len(self.triplets):
            raise ValueError("Duplicate (object, verb) triplets in the vocabulary.")
        if not self.prompts:
            self.prompts = [default_prompt(self.verbs[v], self.objects[o]) for o, v in self.triplets]
        if len(self.prompts) != len(self.triplets):
            raise ValueError(f"{len(self.prompts)} prompts for {len(self.triplets)} HOI triplets.")
        bad = [r for r in self.rare if not 0 <= r < len(self.triplets)]
        if bad:
            raise ValueError(f"Rare HOI ids out of range: {bad[:5]}")
        self._index = {t: i for i, t in enumerate(self.triplets)}

    # ------------------------------------------------------------------ sizes and lookups
    @property
    def num_verbs(self) -> int:
        return len(self.verbs)

    @property
    def num_objects(self) -> int:
        return len(self.objects)

    @property
    def num_hois(self) -> int:
        return len(self.triplets)

    @property
    def person_id(self) -> int:
        return self.objects.index(self.person_name)

    @property
    def hoi_to_object(self) -> np.ndarray:
        """``[num_hois]`` object id of each HOI."""
        return np.array([o for o, _ in self.triplets], dtype=np.int64)

    @property
    def hoi_to_verb(self) -> np.ndarray:
        """``[num_hois]`` verb id of each HOI."""
        return np.array([v for _, v in self.triplets], dtype=np.int64)

    @property
    def valid_verb_object_mask(self) -> np.ndarray:
        """``[num_verbs, num_objects]`` True where (verb, object) is an HOI of the vocabulary."""
        mask = np.zeros((self.num_verbs, self.num_objects), dtype=bool)
        for o, v in self.triplets:
            mask[v, o] = True
        return mask

    @property
    def object_hoi_mask(self) -> np.ndarray:
        """``[num_objects, num_hois]`` True where the HOI's object is that category."""
        mask = np.zeros((self.num_objects, self.num_hois), dtype=bool)
        mask[self.hoi_to_object, np.arange(self.num_hois)] = True
        return mask

    def hoi_id(self, verb: str | int, obj: str | int) -> int:
        """HOI id of a (verb, object) given by names or ids; KeyError when it is not a class."""
        v = self.verbs.index(verb) if isinstance(verb, str) else int(verb)
        o = self.objects.index(obj) if isinstance(obj, str) else int(obj)
        try:
            return self._index[(o, v)]
        except KeyError:
            raise KeyError(f"({self.verbs[v]}, {self.objects[o]}) is not an HOI of this vocabulary") from None

    def hoi_name(self, hoi: int) -> str:
        o, v = self.triplets[hoi]
        return f"{self.verbs[v]} {self.objects[o]}"

    def hois_for_objects(self, object_ids: Iterable[int]) -> list[int]:
        """HOI ids (sorted) whose object is among ``object_ids``: the candidates of an image."""
        present = {int(o) for o in object_ids}
        return [i for i, (o, _) in enumerate(self.triplets) if o in present]

    # ------------------------------------------------------------------ construction and io
    @classmethod
    def hico_det(cls) -> HOIVocabulary:
        """HICO-DET: 117 verbs, 80 objects, 600 HOIs, ids as in the official annotation files."""
        return cls.from_json(Path(__file__).parent / "vocabularies" / "hico_det.json")

    @classmethod
    def vcoco(cls) -> HOIVocabulary:
        """V-COCO: its 24 evaluated actions (role-specific) with every one of the 80 COCO objects.

        V-COCO has no closed list of (action, object) pairs, so every pair is a class; objects use
        HICO-DET's names and order (COCO's 80 categories, sorted).
        """
        objects = cls.hico_det().objects
        triplets = [(o, v) for v in range(len(VCOCO_ACTIONS)) for o in range(len(objects))]
        prompts = [
            default_prompt(VCOCO_ACTIONS[v].rsplit("_", 1)[0], objects[o]) for o, v in triplets
        ]
        return cls(VCOCO_ACTIONS, objects, triplets, prompts=prompts, name="vcoco")

    @classmethod
    def from_lists(
        cls,
        verbs: Sequence[str],
        objects: Sequence[str],
        triplets: Sequence[tuple[int, int]] | Sequence[tuple[str, str]],
        prompts: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> HOIVocabulary:
        """A custom vocabulary. ``triplets`` hold ``(object, verb)`` as ids or as names."""
        objects, verbs = list(objects), list(verbs)
        resolved = []
        for o, v in triplets:
            try:
                resolved.append((objects.index(o) if isinstance(o, str) else o,
                                 verbs.index(v) if isinstance(v, str) else v))
            except ValueError:
                raise ValueError(f"Triplet ({o}, {v}) names an unknown object or verb.") from None
        return cls(verbs, objects, resolved, prompts=list(prompts or []), **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HOIVocabulary:
        missing = {"verbs", "objects", "triplets"} - set(data)
        if missing:
            raise ValueError(f"Vocabulary dict is missing {sorted(missing)}")
        known = {"verbs", "objects", "triplets", "prompts", "rare", "name", "person_name"}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_json(cls, path: str | PathLike) -> HOIVocabulary:
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    @classmethod
    def from_any(cls, value: HOIVocabulary | dict | str | None) -> HOIVocabulary:
        """A vocabulary from itself, a dict, a preset name ("hico_det", "vcoco") or a JSON path."""
        if value is None:
            return cls.hico_det()
        if isinstance(value, HOIVocabulary):
            return value
        if isinstance(value, dict):
            return cls.from_dict(value)
        if value in ("hico_det", "vcoco"):
            return getattr(cls, value)()
        return cls.from_json(value)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verbs": list(self.verbs),
            "objects": list(self.objects),
            "triplets": [list(t) for t in self.triplets],
            "prompts": list(self.prompts),
            "rare": list(self.rare),
            "person_name": self.person_name,
        }

    def save_json(self, path: str | PathLike) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=1)

    def subset(self, hois: Sequence[int], name: str | None = None) -> HOIVocabulary:
        """The vocabulary restricted to ``hois`` (new HOI ids are their positions in ``hois``);
        verbs and objects keep their ids."""
        hois = [int(h) for h in hois]
        rare = set(self.rare)
        return HOIVocabulary(
            self.verbs, self.objects, [self.triplets[h] for h in hois],
            prompts=[self.prompts[h] for h in hois],
            rare=[i for i, h in enumerate(hois) if h in rare],
            name=name or f"{self.name}_subset", person_name=self.person_name,
        )

    def __len__(self) -> int:
        return self.num_hois

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HOIVocabulary) and self.to_dict() == other.to_dict()
