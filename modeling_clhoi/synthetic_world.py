"""The synthetic HOI world: procedurally drawn scenes whose human-object interactions are known.

Each image shows 1-4 people, drawn as articulated figures (head with hair and an eye that shows where
they look, torso, two-segment arms and legs, hands and shoes; varied pose, size and colours), and 1-5
objects of 12 HICO-DET categories drawn as recognisable shapes, on a textured background with clutter
(sky, ground, hills or houses, trees, clouds, stones, grass). Every interaction is fixed by geometry
and pose, with HICO-DET's own verb, object and HOI ids:

=================  ==================================================================================
activity           geometry and pose (verbs of the pair)
=================  ==================================================================================
ride               hips on the saddle / seat, hands on the bars or reins, feet on the pedals or along
                   the flanks; on a skateboard, both feet on the deck (ride + sit_on bicycle,
                   ride + straddle horse, ride + stand_on skateboard)
walk               beside a bicycle with a hand on the handlebar, ahead of a horse holding its bridle
                   (walk + hold), or a dog on a leash from the hand (walk)
sit_on             hips on a chair seat, thighs level, shins down
kick               a leg swung forward, the ball at the foot
hold               the object at the end of an extended arm, away from the body
carry              the object pressed against the body under the arm, hand at it (carry + hold)
drink_with         the cup at the mouth, head tilted back (drink_with + hold)
read               an open book held in both hands in front of the face, head bowed to it (read + hold)
stand_under        an open umbrella's handle in the raised hand, the canopy over the head (+ hold)
throw              the arm raised forward, the object in the air just beyond the hand, motion lines
fly                a kite high above, its string running to the raised hand
pet                crouching, a hand on the dog's back
inspect            bent over an object on the ground close ahead, head turned down to it
watch              head turned up to a bird in the sky ahead
no_interaction     the person's and the object's boxes are clearly apart (see below)
=================  ==================================================================================

A person may also hold a second, small object in the free hand. The world has no person-person
interactions and annotates none. ``no_interaction`` rule (kept consistent everywhere): a
(person, object) pair without any verb is annotated ``no_interaction`` when the boxes are clearly apart,
i.e. the gap between them is at least :data:`NO_INTERACTION_GAP` times the person's height; closer pairs
without a verb get no annotation (as HICO-DET leaves ambiguous pairs unannotated). Objects that nobody
uses are placed in their own slots, away from everybody, so they always come out ``no_interaction``.

Ambiguity is real: several people and objects per image, a category often repeats (a second cup on the
ground, two people with bicycles), so the image-level labels alone do not say which pair does what.

Everything is deterministic: image ``index`` of ``split`` draws from its own generator seeded by
``(seed, split, index)``, so images can be made in any order and in parallel. ``detections`` simulate a
detector: truth boxes with jitter, a few misses, a few false positives, and scores.
"""

from __future__ import annotations

import colorsys
import io
import math
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from multiprocessing import get_all_start_methods, get_context
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

from .vocabulary import HOIVocabulary

# The object categories of the world (HICO-DET names).
WORLD_OBJECTS: tuple[str, ...] = (
    "bicycle", "horse", "dog", "skateboard", "sports_ball", "kite", "cup", "umbrella", "chair", "book",
    "frisbee", "bird",
)
# A pair without verbs is "no_interaction" when its boxes are at least this many person heights apart.
NO_INTERACTION_GAP = 0.1
# Supersampling factor of the drawing (anti-aliasing).
_SUPERSAMPLE = 2
# Detector simulation.
_MISS_RATE = 0.03
_FALSE_POSITIVES_PER_IMAGE = 0.35
_BOX_JITTER = 0.04


@dataclass(frozen=True)
class Activity:
    """What a person does with one object: its category, the verbs of the pair, and how it is drawn."""

    name: str
    category: str
    verbs: tuple[str, ...]
    weight: float = 1.0


ACTIVITIES: tuple[Activity, ...] = (
    Activity("ride", "bicycle", ("ride", "sit_on")),
    Activity("walk", "bicycle", ("walk", "hold")),
    Activity("inspect", "bicycle", ("inspect",), 0.5),
    Activity("ride", "horse", ("ride", "straddle")),
    Activity("walk", "horse", ("walk", "hold")),
    Activity("walk", "dog", ("walk",)),
    Activity("pet", "dog", ("pet",)),
    Activity("inspect", "dog", ("inspect",), 0.5),
    Activity("ride", "skateboard", ("ride", "stand_on")),
    Activity("carry", "skateboard", ("carry", "hold")),
    Activity("kick", "sports_ball", ("kick",)),
    Activity("hold", "sports_ball", ("hold",)),
    Activity("carry", "sports_ball", ("carry", "hold")),
    Activity("throw", "sports_ball", ("throw",)),
    Activity("inspect", "sports_ball", ("inspect",), 0.5),
    Activity("fly", "kite", ("fly",)),
    Activity("hold", "kite", ("hold",)),
    Activity("inspect", "kite", ("inspect",), 0.5),
    Activity("drink", "cup", ("drink_with", "hold")),
    Activity("hold", "cup", ("hold",)),
    Activity("stand_under", "umbrella", ("stand_under", "hold")),
    Activity("sit", "chair", ("sit_on",)),
    Activity("read", "book", ("read", "hold")),
    Activity("carry", "book", ("carry", "hold")),
    Activity("hold", "book", ("hold",)),
    Activity("throw", "frisbee", ("throw",)),
    Activity("hold", "frisbee", ("hold",)),
    Activity("watch", "bird", ("watch",)),
)
# Small objects a person may hold in the free hand besides the main activity.
_SECOND_HOLD = ("cup", "book", "frisbee", "sports_ball")
# Activities after which the near hand is still free for a second object.
_FREE_HAND = {"idle", "sit", "inspect", "watch", "kick"}


@lru_cache(maxsize=1)
def _vocabulary() -> HOIVocabulary:
    return HOIVocabulary.hico_det()


def _world_hois() -> tuple[int, ...]:
    vocab = _vocabulary()
    pairs = {(verb, a.category) for a in ACTIVITIES for verb in a.verbs}
    pairs |= {("hold", c) for c in _SECOND_HOLD}
    pairs |= {("no_interaction", c) for c in WORLD_OBJECTS}
    hois = []
    for verb, obj in sorted(pairs):
        try:
            hois.append(vocab.hoi_id(verb, obj))
        except (KeyError, ValueError) as error:  # a world that HICO-DET cannot label is a bug
            raise AssertionError(f"({verb}, {obj}) is not a HICO-DET HOI: {error}") from None
    return tuple(sorted(hois))


# HICO-DET HOI ids the world can produce (sorted).
SYNTHETIC_HOIS: tuple[int, ...] = _world_hois()
# HICO-DET object ids of the world's categories, in WORLD_OBJECTS order.
WORLD_OBJECT_IDS: tuple[int, ...] = tuple(_vocabulary().objects.index(c) for c in WORLD_OBJECTS)
_ACTIVITY_WEIGHTS = np.array([a.weight for a in ACTIVITIES]) / sum(a.weight for a in ACTIVITIES)


# ---------------------------------------------------------------------------------------------- drawing
Colour = tuple[int, int, int]


class _Canvas:
    """Draws in image coordinates onto a supersampled PIL image, or, without one, only measures the
    bounds of what would be drawn (the truth boxes are the bounds of the drawing itself)."""

    def __init__(self, image: Image.Image | None = None, scale: int = _SUPERSAMPLE) -> None:
        self.scale = scale
        self.draw = ImageDraw.Draw(image) if image is not None else None
        self.reset()

    def reset(self) -> None:
        self.bounds = [math.inf, math.inf, -math.inf, -math.inf]

    def box(self) -> np.ndarray:
        return np.array(self.bounds, dtype=np.float64)

    def _grow(self, points: np.ndarray, pad: float) -> None:
        b = self.bounds
        b[0] = min(b[0], float(points[:, 0].min()) - pad)
        b[1] = min(b[1], float(points[:, 1].min()) - pad)
        b[2] = max(b[2], float(points[:, 0].max()) + pad)
        b[3] = max(b[3], float(points[:, 1].max()) + pad)

    def _xy(self, points: np.ndarray) -> list[tuple[float, float]]:
        return [(float(x) * self.scale, float(y) * self.scale) for x, y in points]

    def line(self, points: Any, fill: Colour, width: float, round_ends: bool = True) -> None:
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        self._grow(points, width / 2)
        if self.draw is None:
            return
        w = max(1, round(width * self.scale))
        self.draw.line(self._xy(points), fill=fill, width=w, joint="curve")
        if round_ends and w >= 3:
            for x, y in (points[0], points[-1]):
                self.circle((x, y), width / 2, fill)

    def polygon(self, points: Any, fill: Colour | None, outline: Colour | None = None, width: float = 1.0) -> None:
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        self._grow(points, width / 2 if outline else 0.0)
        if self.draw is None:
            return
        self.draw.polygon(self._xy(points), fill=fill, outline=outline,
                          width=max(1, round(width * self.scale)) if outline else 0)

    def ellipse(self, center: Any, rx: float, ry: float, fill: Colour | None, outline: Colour | None = None,
                width: float = 1.0) -> None:
        cx, cy = float(center[0]), float(center[1])
        self._grow(np.array([[cx - rx, cy - ry], [cx + rx, cy + ry]]), width / 2 if outline else 0.0)
        if self.draw is None:
            return
        s = self.scale
        self.draw.ellipse([(cx - rx) * s, (cy - ry) * s, (cx + rx) * s, (cy + ry) * s], fill=fill,
                          outline=outline, width=max(1, round(width * s)) if outline else 0)

    def circle(self, center: Any, r: float, fill: Colour | None, outline: Colour | None = None,
               width: float = 1.0) -> None:
        self.ellipse(center, r, r, fill, outline, width)


def _shade(colour: Colour, factor: float) -> Colour:
    return tuple(int(min(255, max(0, c * factor))) for c in colour)  # type: ignore[return-value]


def _rand_colour(rng: np.random.Generator, sat: tuple[float, float] = (0.5, 0.95),
                 val: tuple[float, float] = (0.45, 0.95)) -> Colour:
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(*sat), rng.uniform(*val))
    return int(r * 255), int(g * 255), int(b * 255)


def _pick(rng: np.random.Generator, options: Sequence[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


def _unit(angle: float, facing: int) -> np.ndarray:
    """Direction of a limb ``angle`` radians from straight down, turned toward ``facing`` (+1 right)."""
    return np.array([facing * math.sin(angle), math.cos(angle)])


def _rotate(points: np.ndarray, center: np.ndarray, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    d = np.asarray(points, dtype=np.float64) - center
    return center + d @ np.array([[c, s], [-s, c]])


def _ellipse_points(center: np.ndarray, rx: float, ry: float, start: float = 0.0, end: float = 2 * math.pi,
                    n: int = 24) -> np.ndarray:
    t = np.linspace(start, end, n)
    return np.stack([center[0] + rx * np.cos(t), center[1] + ry * np.sin(t)], axis=1)


SKIN: tuple[Colour, ...] = ((255, 224, 189), (241, 194, 125), (224, 172, 105), (198, 134, 66),
                            (141, 85, 36), (92, 58, 36))
HAIR: tuple[Colour, ...] = ((30, 20, 15), (70, 45, 25), (120, 80, 40), (200, 170, 90), (150, 150, 150),
                            (160, 60, 30))
PANTS: tuple[Colour, ...] = ((40, 50, 90), (30, 30, 35), (90, 90, 100), (110, 80, 50), (60, 80, 60),
                             (20, 60, 120))


# ------------------------------------------------------------------------------------------- entities
class _Entity:
    """Something drawn, with its geometry as named arrays of (x, y) points (all moved by ``shift``)."""

    def __init__(self) -> None:
        self.points: dict[str, np.ndarray] = {}

    def shift(self, dx: float, dy: float = 0.0) -> None:
        for key, value in self.points.items():
            self.points[key] = value + np.array([dx, dy])

    def draw(self, cv: _Canvas) -> None:
        raise NotImplementedError


class _Rope(_Entity):
    """A string, leash or rein: a sagging line that belongs to no box."""

    def __init__(self, start: np.ndarray, end: np.ndarray, sag: float, colour: Colour, width: float) -> None:
        super().__init__()
        t = np.linspace(0, 1, 12)[:, None]
        line = start + (end - start) * t
        line[:, 1] += sag * 4 * t[:, 0] * (1 - t[:, 0])
        self.points["line"] = line
        self.colour, self.width = colour, width

    def draw(self, cv: _Canvas) -> None:
        cv.line(self.points["line"], self.colour, self.width, round_ends=False)


class _Streaks(_Entity):
    """Motion lines between a throwing hand and the thrown object."""

    def __init__(self, start: np.ndarray, end: np.ndarray, spread: float, colour: Colour, width: float) -> None:
        super().__init__()
        d = end - start
        n = np.array([-d[1], d[0]]) / (np.linalg.norm(d) + 1e-9)
        for i, off in enumerate((-spread, 0.0, spread)):
            self.points[f"s{i}"] = np.stack([start + 0.25 * d + off * n, start + 0.7 * d + off * n])
        self.colour, self.width = colour, width

    def draw(self, cv: _Canvas) -> None:
        for key in ("s0", "s1", "s2"):
            cv.line(self.points[key], self.colour, self.width)


@dataclass
class _Skeleton:
    """Segment lengths of a figure of height ``h`` (pixels)."""

    h: float

    def __post_init__(self) -> None:
        h = self.h
        self.head_r, self.neck, self.torso = 0.075 * h, 0.035 * h, 0.3 * h
        self.upper_arm, self.forearm, self.thigh, self.shin = 0.16 * h, 0.15 * h, 0.22 * h, 0.22 * h


def _two_link(root: np.ndarray, target: np.ndarray, l1: float, l2: float,
              prefer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Elbow/knee and end of a two-segment limb reaching for ``target`` (as close as it can), bending
    toward ``prefer``."""
    d = target - root
    dist = float(np.linalg.norm(d))
    u = d / dist if dist > 1e-6 else np.array([0.0, 1.0])
    reach = min(max(dist, abs(l1 - l2) + 1e-3), l1 + l2 - 1e-3)
    a = (l1 * l1 - l2 * l2 + reach * reach) / (2 * reach)
    side = math.sqrt(max(l1 * l1 - a * a, 0.0))
    perp = np.array([-u[1], u[0]])
    if float(perp @ prefer) < 0:
        perp = -perp
    return root + u * a + perp * side, root + u * reach


LimbSpec = tuple  # ("angles", upper, lower) or ("target", point, prefer_vector)


class _Person(_Entity):
    """An articulated figure. Joints (``points``): pelvis, shoulder, neck, head, elbow/hand and knee/foot
    of the near and far side. ``gaze`` is the unit vector the face looks along."""

    def __init__(self, h: float, facing: int, pelvis: np.ndarray, lean: float, arms: tuple[LimbSpec, LimbSpec],
                 legs: tuple[LimbSpec, LimbSpec], gaze: np.ndarray | None, rng: np.random.Generator) -> None:
        super().__init__()
        sk = self.skeleton = _Skeleton(h)
        self.h, self.facing = h, facing
        up = -_unit(lean, facing)  # torso axis, pelvis -> neck (lean > 0 bends forward)
        p = self.points
        p["pelvis"] = np.asarray(pelvis, dtype=np.float64)
        p["neck"] = p["pelvis"] + up * sk.torso
        p["shoulder"] = p["pelvis"] + up * sk.torso * 0.92
        p["head"] = p["neck"] + up * (sk.neck + sk.head_r)
        for side, spec in zip(("near", "far"), arms):
            p[f"elbow_{side}"], p[f"hand_{side}"] = self._limb(p["shoulder"], spec, sk.upper_arm, sk.forearm,
                                                                np.array([-facing * 0.5, 1.0]))
        for side, spec in zip(("near", "far"), legs):
            p[f"knee_{side}"], p[f"foot_{side}"] = self._limb(p["pelvis"], spec, sk.thigh, sk.shin,
                                                              np.array([facing * 1.0, -0.2]))
        g = np.array([facing, 0.0]) if gaze is None else np.asarray(gaze, dtype=np.float64)
        self.gaze = g / (np.linalg.norm(g) + 1e-9)
        self.skin, self.hair = _pick(rng, SKIN), _pick(rng, HAIR)
        self.shirt, self.pants = _rand_colour(rng), _pick(rng, PANTS)
        self.shoes = _pick(rng, ((30, 30, 30), (120, 70, 40), (230, 230, 230), (150, 20, 20)))
        self.bald = rng.random() < 0.1

    def _limb(self, root: np.ndarray, spec: LimbSpec, l1: float, l2: float,
              prefer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if spec[0] == "angles":
            mid = root + _unit(spec[1], self.facing) * l1
            return mid, mid + _unit(spec[2], self.facing) * l2
        return _two_link(root, np.asarray(spec[1], dtype=np.float64), l1, l2,
                         np.asarray(spec[2], dtype=np.float64) if len(spec) > 2 else prefer)

    def look_at(self, point: np.ndarray) -> None:
        g = np.asarray(point, dtype=np.float64) - self.points["head"]
        self.gaze = g / (np.linalg.norm(g) + 1e-9)

    def _leg(self, cv: _Canvas, side: str, shade: float) -> None:
        p, h = self.points, self.h
        cv.line([p["pelvis"], p[f"knee_{side}"], p[f"foot_{side}"]], _shade(self.pants, shade), 0.075 * h)
        foot = p[f"foot_{side}"]
        cv.line([foot, foot + np.array([self.facing * 0.06 * h, 0.0])], _shade(self.shoes, shade), 0.045 * h)

    def _arm(self, cv: _Canvas, side: str, shade: float) -> None:
        p, h = self.points, self.h
        cv.line([p["shoulder"], p[f"elbow_{side}"], p[f"hand_{side}"]], _shade(self.shirt, shade), 0.058 * h)
        cv.circle(p[f"hand_{side}"], 0.034 * h, _shade(self.skin, shade))

    def draw_back(self, cv: _Canvas) -> None:
        """The far arm and leg (drawn before whatever the person sits on or stands behind)."""
        self._leg(cv, "far", 0.75)
        self._arm(cv, "far", 0.75)

    def draw_front(self, cv: _Canvas, under_arm: Callable[[_Canvas], Any] | None = None) -> None:
        """Near leg, torso, head and near arm; ``under_arm`` draws what is pressed under the near arm."""
        p, h, sk = self.points, self.h, self.skeleton
        self._leg(cv, "near", 1.0)
        cv.line([p["pelvis"], p["neck"]], self.shirt, 0.14 * h)
        cv.line([p["neck"], p["head"]], self.skin, 0.05 * h)
        head, r = p["head"], sk.head_r
        cv.circle(head, r, self.skin)
        angle = math.atan2(self.gaze[1], self.gaze[0])
        if not self.bald:  # hair on the back of the head: the head's orientation shows where it looks
            arc = _ellipse_points(head, r * 1.08, r * 1.08, angle + 1.9, angle + 2 * math.pi - 1.9, 12)
            cv.polygon(np.vstack([head, arc]), self.hair)
        cv.circle(head + self.gaze * r * 0.55 + np.array([0, -0.15 * r]), 0.16 * r, (20, 20, 20))
        if under_arm is not None:
            under_arm(cv)
        self._arm(cv, "near", 1.0)

    def draw(self, cv: _Canvas) -> None:
        self.draw_back(cv)
        self.draw_front(cv)


class _Object(_Entity):
    """An object of the world: category, colours and geometry; drawn by ``_DRAW[category]``."""

    def __init__(self, category: str, size: float, facing: int, colour: Colour, **params: Any) -> None:
        super().__init__()
        self.category, self.size, self.facing, self.colour = category, size, facing, colour
        self.params = params

    def draw(self, cv: _Canvas) -> None:
        _DRAW[self.category](cv, self)


# ------------------------------------------------------------------------------- object shapes (geometry)
def _bicycle(x: float, ground: float, s: float, f: int, rng: np.random.Generator) -> _Object:
    o = _Object("bicycle", s, f, _rand_colour(rng))
    r = 0.19 * s
    p = o.points
    p["rear"] = np.array([x - f * 0.29 * s, ground - r])
    p["front"] = np.array([x + f * 0.29 * s, ground - r])
    p["crank"] = np.array([x - f * 0.03 * s, ground - r * 0.95])
    p["seat"] = np.array([x - f * 0.13 * s, ground - r - 0.33 * s])
    p["seat_post"] = p["seat"] + np.array([f * 0.02 * s, 0.03 * s])
    p["head_tube"] = np.array([x + f * 0.2 * s, ground - r - 0.24 * s])
    p["bar"] = np.array([x + f * 0.23 * s, ground - r - 0.38 * s])
    phase = rng.uniform(0, 2 * math.pi)
    arm = 0.075 * s
    p["pedal_near"] = p["crank"] + arm * np.array([math.cos(phase), math.sin(phase)])
    p["pedal_far"] = p["crank"] - arm * np.array([math.cos(phase), math.sin(phase)])
    o.params["r"] = r
    return o


def _draw_bicycle(cv: _Canvas, o: _Object) -> None:
    p, s, r, c = o.points, o.size, o.params["r"], o.colour
    tyre = (35, 35, 35)
    for wheel in ("rear", "front"):
        cv.circle(p[wheel], r, None, tyre, 0.035 * s)
        for k in range(4):
            a = k * math.pi / 4
            d = np.array([math.cos(a), math.sin(a)]) * r * 0.95
            cv.line([p[wheel] - d, p[wheel] + d], (150, 150, 150), 0.008 * s, round_ends=False)
    w = 0.03 * s
    cv.line([p["rear"], p["crank"], p["head_tube"]], c, w)
    cv.line([p["rear"], p["seat_post"], p["crank"]], c, w)
    cv.line([p["seat_post"], p["head_tube"]], c, w)
    cv.line([p["front"], p["head_tube"], p["bar"]], c, w)
    cv.line([p["bar"], p["bar"] + np.array([-o.facing * 0.06 * s, -0.01 * s])], (40, 40, 40), 0.03 * s)
    cv.line([p["seat"] - np.array([0.05 * s, 0]), p["seat"] + np.array([0.04 * s, 0])], (30, 30, 30), 0.035 * s)
    cv.line([p["pedal_near"], p["pedal_far"]], (90, 90, 90), 0.018 * s)
    cv.circle(p["crank"], 0.03 * s, (90, 90, 90))


def _horse(x: float, ground: float, s: float, f: int, rng: np.random.Generator) -> _Object:
    colour = _pick(rng, ((139, 69, 19), (101, 67, 33), (160, 82, 45), (50, 35, 25), (225, 220, 210),
                         (120, 120, 125), (200, 150, 90)))
    o = _Object("horse", s, f, colour)
    p = o.points
    p["body"] = np.array([x, ground - 0.52 * s])
    p["saddle"] = np.array([x - f * 0.04 * s, ground - 0.64 * s])
    p["withers"] = np.array([x + f * 0.24 * s, ground - 0.63 * s])
    p["poll"] = np.array([x + f * 0.42 * s, ground - 0.88 * s])
    p["mouth"] = np.array([x + f * 0.58 * s, ground - 0.74 * s])
    p["tail"] = np.array([x - f * 0.36 * s, ground - 0.58 * s])
    step = rng.uniform(-0.06, 0.06) * s
    for i, (dx, lx) in enumerate(((0.25, 0.27 + step / s), (0.19, 0.17 - step / s), (-0.24, -0.26 + step / s),
                                  (-0.3, -0.32 - step / s))):
        p[f"leg{i}"] = np.array([[x + f * dx * s, ground - 0.46 * s], [x + f * lx * s, ground - 0.22 * s],
                                 [x + f * lx * s, ground - 0.02 * s]])
    return o


def _draw_horse(cv: _Canvas, o: _Object) -> None:
    p, s, f, c = o.points, o.size, o.facing, o.colour
    dark = _shade(c, 0.6)
    for i in (1, 3):
        cv.line(p[f"leg{i}"], _shade(c, 0.8), 0.06 * s)
    tail = p["tail"]
    cv.line([tail, tail + np.array([-f * 0.07 * s, 0.12 * s]), tail + np.array([-f * 0.06 * s, 0.28 * s])],
            dark, 0.05 * s)
    cv.ellipse(p["body"], 0.36 * s, 0.14 * s, c)
    neck = np.array([p["withers"] + np.array([-f * 0.04 * s, 0.0]), p["poll"] + np.array([-f * 0.05 * s, 0.0]),
                     p["poll"] + np.array([f * 0.06 * s, 0.03 * s]),
                     p["withers"] + np.array([f * 0.1 * s, 0.13 * s])])
    cv.polygon(neck, c)
    head = np.array([p["poll"] + np.array([-f * 0.04 * s, -0.01 * s]), p["poll"] + np.array([f * 0.05 * s, -0.02 * s]),
                     p["mouth"] + np.array([f * 0.02 * s, -0.02 * s]), p["mouth"] + np.array([0.0, 0.04 * s]),
                     p["poll"] + np.array([f * 0.04 * s, 0.09 * s])])
    cv.polygon(head, c)
    cv.polygon([p["poll"] + np.array([-f * 0.02 * s, 0]), p["poll"] + np.array([f * 0.0 * s, -0.07 * s]),
                p["poll"] + np.array([f * 0.03 * s, -0.01 * s])], c)
    cv.line([p["poll"] + np.array([-f * 0.03 * s, 0.0]), p["withers"] + np.array([-f * 0.02 * s, -0.01 * s])],
            dark, 0.035 * s)
    cv.circle(p["poll"] + np.array([f * 0.05 * s, 0.04 * s]), 0.013 * s, (15, 15, 15))
    for i in (0, 2):
        cv.line(p[f"leg{i}"], c, 0.065 * s)
        cv.line([p[f"leg{i}"][-1], p[f"leg{i}"][-1] + np.array([f * 0.02 * s, 0.01 * s])], (30, 30, 30), 0.05 * s)


def _dog(x: float, ground: float, s: float, f: int, rng: np.random.Generator) -> _Object:
    colour = _pick(rng, ((120, 80, 40), (30, 30, 30), (230, 220, 200), (200, 150, 70), (150, 110, 80),
                         (90, 90, 90)))
    o = _Object("dog", s, f, colour)
    p = o.points
    p["body"] = np.array([x, ground - 0.18 * s])
    p["back"] = np.array([x, ground - 0.245 * s])
    p["collar"] = np.array([x + f * 0.14 * s, ground - 0.26 * s])
    p["head"] = np.array([x + f * 0.2 * s, ground - 0.3 * s])
    p["tail"] = np.array([x - f * 0.17 * s, ground - 0.2 * s])
    for i, dx in enumerate((0.12, 0.09, -0.11, -0.14)):
        p[f"leg{i}"] = np.array([[x + f * dx * s, ground - 0.16 * s], [x + f * (dx + 0.01) * s, ground - 0.01 * s]])
    return o


def _draw_dog(cv: _Canvas, o: _Object) -> None:
    p, s, f, c = o.points, o.size, o.facing, o.colour
    for i in (1, 3):
        cv.line(p[f"leg{i}"], _shade(c, 0.75), 0.035 * s)
    cv.line([p["tail"], p["tail"] + np.array([-f * 0.06 * s, -0.08 * s])], c, 0.03 * s)
    cv.ellipse(p["body"], 0.17 * s, 0.065 * s, c)
    cv.line([p["body"] + np.array([f * 0.1 * s, -0.02 * s]), p["head"]], c, 0.07 * s)
    cv.circle(p["head"], 0.055 * s, c)
    cv.polygon([p["head"] + np.array([f * 0.03 * s, -0.02 * s]), p["head"] + np.array([f * 0.11 * s, 0.01 * s]),
                p["head"] + np.array([f * 0.1 * s, 0.035 * s]), p["head"] + np.array([f * 0.02 * s, 0.04 * s])], c)
    cv.circle(p["head"] + np.array([f * 0.105 * s, 0.015 * s]), 0.014 * s, (10, 10, 10))
    cv.polygon([p["head"] + np.array([-f * 0.03 * s, -0.03 * s]), p["head"] + np.array([-f * 0.05 * s, 0.05 * s]),
                p["head"] + np.array([-f * 0.0 * s, 0.02 * s])], _shade(c, 0.6))
    cv.circle(p["head"] + np.array([f * 0.03 * s, -0.015 * s]), 0.01 * s, (10, 10, 10))
    for i in (0, 2):
        cv.line(p[f"leg{i}"], c, 0.04 * s)


def _skateboard(center: np.ndarray, s: float, angle: float, f: int, rng: np.random.Generator) -> _Object:
    o = _Object("skateboard", s, f, _rand_colour(rng))
    c = np.asarray(center, dtype=np.float64)
    half, t, wr = 0.2 * s, 0.02 * s, 0.03 * s
    deck = np.array([[-half, -t], [half, -t], [half + 0.03 * s, -t - 0.03 * s], [half + 0.035 * s, -t - 0.02 * s],
                     [half, t], [-half, t], [-half - 0.035 * s, -t - 0.02 * s], [-half - 0.03 * s, -t - 0.03 * s]])
    o.points["deck"] = _rotate(c + deck, c, angle)
    o.points["wheels"] = _rotate(c + np.array([[-0.13 * s, t + wr], [0.13 * s, t + wr]]), c, angle)
    o.points["center"] = c
    o.points["foot_front"] = _rotate(c + np.array([[f * 0.11 * s, -t]]), c, angle)[0]
    o.points["foot_back"] = _rotate(c + np.array([[-f * 0.12 * s, -t]]), c, angle)[0]
    o.params["wheel_r"] = wr
    return o


def _draw_skateboard(cv: _Canvas, o: _Object) -> None:
    for w in o.points["wheels"]:
        cv.circle(w, o.params["wheel_r"], (240, 220, 120), (40, 40, 40), 0.006 * o.size)
    cv.polygon(o.points["deck"], o.colour, (25, 25, 25), 0.01 * o.size)


def _ball(center: np.ndarray, s: float, rng: np.random.Generator) -> _Object:
    style = _pick(rng, ("soccer", "basket", "volley", "tennis"))
    colour = {"soccer": (245, 245, 245), "basket": (230, 110, 30), "volley": (250, 230, 120),
              "tennis": (200, 230, 60)}[style]
    r = (0.055 if style == "tennis" else 0.075) * s
    o = _Object("sports_ball", s, 1, colour, style=style, r=r)
    o.points["center"] = np.asarray(center, dtype=np.float64)
    return o


def _draw_ball(cv: _Canvas, o: _Object) -> None:
    c, r, style = o.points["center"], o.params["r"], o.params["style"]
    cv.circle(c, r, o.colour, (30, 30, 30), max(0.6, 0.08 * r))
    if style == "soccer":
        cv.polygon(_ellipse_points(c, 0.38 * r, 0.38 * r, 0, 2 * math.pi, 6)[:5], (20, 20, 20))
        for a in np.linspace(0, 2 * math.pi, 5, endpoint=False):
            d = np.array([math.cos(a), math.sin(a)])
            cv.line([c + 0.38 * r * d, c + 0.95 * r * d], (30, 30, 30), 0.08 * r)
    elif style == "basket":
        cv.line([c - np.array([r, 0]), c + np.array([r, 0])], (30, 30, 30), 0.1 * r)
        cv.line([c - np.array([0, r]), c + np.array([0, r])], (30, 30, 30), 0.1 * r)
    elif style == "volley":
        for a in (0.3, 2.4, 4.5):
            cv.line(_ellipse_points(c + 0.9 * r * np.array([math.cos(a), math.sin(a)]), 0.9 * r, 0.9 * r,
                                    a + 2.3, a + 3.9, 6), (60, 90, 200), 0.1 * r)
    else:
        cv.line(_ellipse_points(c + np.array([-1.3 * r, 0]), r, r, -0.8, 0.8, 6), (250, 250, 250), 0.12 * r)


def _kite(center: np.ndarray, s: float, rng: np.random.Generator, angle: float = 0.0) -> _Object:
    o = _Object("kite", s, 1, _rand_colour(rng, (0.7, 1.0), (0.8, 1.0)))
    o.params["second"] = _rand_colour(rng, (0.7, 1.0), (0.8, 1.0))
    c = np.asarray(center, dtype=np.float64)
    w, h = 0.11 * s, 0.16 * s
    diamond = c + np.array([[0, -h], [w, -0.3 * h], [0, h], [-w, -0.3 * h]])
    o.points["diamond"] = _rotate(diamond, c, angle)
    o.points["bottom"] = o.points["diamond"][2]
    phase = rng.uniform(0, 2 * math.pi)
    t = np.linspace(0, 1, 8)
    tail = np.stack([0.03 * s * np.sin(phase + t * 7), t * 0.22 * s], axis=1) + o.points["bottom"]
    o.points["tail"] = tail
    return o


def _draw_kite(cv: _Canvas, o: _Object) -> None:
    d, s = o.points["diamond"], o.size
    cv.line(o.points["tail"], (60, 60, 60), 0.008 * s, round_ends=False)
    for k in (2, 5):
        q = o.points["tail"][k]
        cv.polygon([q + [-0.025 * s, -0.012 * s], q + [0.025 * s, 0.012 * s], q + [0.025 * s, -0.012 * s],
                    q + [-0.025 * s, 0.012 * s]], o.params["second"])
    cv.polygon(d, o.colour, (40, 40, 40), 0.01 * s)
    center = (d[0] + d[2]) / 2
    cv.polygon([d[0], d[1], center, d[3]], o.params["second"])
    cv.line([d[0], d[2]], (60, 40, 20), 0.008 * s)
    cv.line([d[1], d[3]], (60, 40, 20), 0.008 * s)


def _cup(center: np.ndarray, s: float, f: int, rng: np.random.Generator, angle: float = 0.0) -> _Object:
    o = _Object("cup", s, f, _rand_colour(rng, (0.3, 0.9), (0.6, 1.0)))
    c = np.asarray(center, dtype=np.float64)
    w, h = 0.065 * s, 0.085 * s
    body = c + np.array([[-w, -h], [w, -h], [0.75 * w, h], [-0.75 * w, h]])
    o.points["body"] = _rotate(body, c, angle)
    start = 0.5 * math.pi if f > 0 else -0.5 * math.pi  # the handle faces the person holding the cup
    handle = _ellipse_points(c + np.array([-f * w, -0.1 * h]), 0.5 * w, 0.5 * h, start, start + math.pi, 8)
    o.points["handle"] = _rotate(handle, c, angle)
    o.points["rim"] = _rotate(c + np.array([[-w, -h], [w, -h]]), c, angle)
    return o


def _draw_cup(cv: _Canvas, o: _Object) -> None:
    s = o.size
    cv.line(o.points["handle"], _shade(o.colour, 0.8), 0.014 * s, round_ends=False)
    cv.polygon(o.points["body"], o.colour, _shade(o.colour, 0.5), 0.008 * s)
    cv.line(o.points["rim"], (80, 50, 30), 0.012 * s)


def _umbrella(handle: np.ndarray, s: float, angle: float, rng: np.random.Generator) -> _Object:
    o = _Object("umbrella", s, 1, _rand_colour(rng, (0.5, 1.0), (0.5, 1.0)))
    o.params["second"] = _rand_colour(rng, (0.3, 0.7), (0.7, 1.0))
    hd = np.asarray(handle, dtype=np.float64)
    top = hd + np.array([0.0, -0.5 * s])
    rx, ry = 0.36 * s, 0.2 * s
    arc = _ellipse_points(top + np.array([0, 0.08 * s]), rx, ry, math.pi, 2 * math.pi, 17)
    edge = arc[::-1]  # right to left along the rim, scalloped
    scallops = []
    for i in range(4):
        a, b = edge[0] + (edge[-1] - edge[0]) * i / 4, edge[0] + (edge[-1] - edge[0]) * (i + 1) / 4
        mid = (a + b) / 2 + np.array([0, -0.035 * s])
        scallops += [a, mid]
    scallops.append(edge[-1])
    o.points["canopy"] = _rotate(np.vstack([arc, np.array(scallops)[::-1][1:]]), hd, angle)
    o.points["pole"] = _rotate(np.array([top, hd]), hd, angle)
    hook = _ellipse_points(hd + np.array([0.025 * s, 0.0]), 0.025 * s, 0.03 * s, math.pi, 0.0, 6)
    o.points["hook"] = _rotate(hook, hd, angle)
    o.points["handle"] = hd
    return o


def _draw_umbrella(cv: _Canvas, o: _Object) -> None:
    s = o.size
    cv.line(o.points["pole"], (60, 60, 60), 0.018 * s)
    cv.line(o.points["hook"], (70, 40, 20), 0.025 * s)
    cv.polygon(o.points["canopy"], o.colour, _shade(o.colour, 0.55), 0.012 * s)
    canopy = o.points["canopy"]
    apex = canopy[8]
    for k in (2, 14):
        cv.line([apex, canopy[k]], o.params["second"], 0.012 * s)


def _chair(x: float, ground: float, s: float, f: int, rng: np.random.Generator) -> _Object:
    wood = _pick(rng, ((140, 90, 50), (100, 60, 30), (180, 130, 80), (60, 60, 70), (200, 60, 50),
                       (60, 120, 180)))
    o = _Object("chair", s, f, wood)
    p = o.points
    seat_y = ground - 0.25 * s
    front, back = x + f * 0.12 * s, x - f * 0.12 * s
    p["seat"] = np.array([[back, seat_y], [front, seat_y]])
    p["leg_front"] = np.array([[front - f * 0.01 * s, seat_y], [front - f * 0.01 * s, ground]])
    p["leg_back"] = np.array([[back + f * 0.01 * s, seat_y], [back, ground]])
    p["back"] = np.array([[back + f * 0.01 * s, seat_y], [back - f * 0.03 * s, seat_y - 0.3 * s]])
    p["rail"] = np.array([[back - f * 0.0 * s, seat_y - 0.2 * s], [back - f * 0.025 * s, seat_y - 0.28 * s]])
    p["sit"] = np.array([x - f * 0.03 * s, seat_y - 0.015 * s])
    return o


def _draw_chair(cv: _Canvas, o: _Object) -> None:
    p, s, c = o.points, o.size, o.colour
    cv.line(p["leg_back"], _shade(c, 0.8), 0.028 * s)
    cv.line(p["back"], c, 0.03 * s)
    cv.line(p["rail"], c, 0.05 * s)
    cv.line(p["leg_front"], c, 0.028 * s)
    cv.line(p["seat"], _shade(c, 1.15), 0.035 * s)


def _book(center: np.ndarray, s: float, angle: float, opened: bool, rng: np.random.Generator) -> _Object:
    o = _Object("book", s, 1, _rand_colour(rng, (0.5, 0.9), (0.35, 0.8)), opened=opened)
    c = np.asarray(center, dtype=np.float64)
    if opened:
        w, h = 0.1 * s, 0.075 * s
        left = c + np.array([[0, -h + 0.012 * s], [-w, -h], [-w, h], [0, h + 0.012 * s]])
        right = c + np.array([[0, -h + 0.012 * s], [w, -h], [w, h], [0, h + 0.012 * s]])
        o.points["left"], o.points["right"] = _rotate(left, c, angle), _rotate(right, c, angle)
        lines = []
        for k in range(4):
            y = -h + (k + 1) * 2 * h / 5
            lines += [c + np.array([[-0.8 * w, y], [-0.15 * w, y]]), c + np.array([[0.15 * w, y], [0.8 * w, y]])]
        o.points["text"] = _rotate(np.vstack(lines), c, angle)
    else:
        w, h = 0.07 * s, 0.095 * s
        o.points["cover"] = _rotate(c + np.array([[-w, -h], [w, -h], [w, h], [-w, h]]), c, angle)
        o.points["pages"] = _rotate(c + np.array([[w, -h + 0.01 * s], [w, h - 0.01 * s]]), c, angle)
        o.points["spine"] = _rotate(c + np.array([[-w + 0.012 * s, -h], [-w + 0.012 * s, h]]), c, angle)
    return o


def _draw_book(cv: _Canvas, o: _Object) -> None:
    p, s, c = o.points, o.size, o.colour
    if o.params["opened"]:
        for side in ("left", "right"):
            cv.polygon(p[side], (250, 248, 235), c, 0.014 * s)
        text = p["text"]
        for k in range(0, len(text), 2):
            cv.line(text[k:k + 2], (120, 120, 120), 0.006 * s, round_ends=False)
    else:
        cv.polygon(p["cover"], c, _shade(c, 0.5), 0.008 * s)
        cv.line(p["pages"], (250, 248, 235), 0.014 * s, round_ends=False)
        cv.line(p["spine"], _shade(c, 0.6), 0.012 * s, round_ends=False)


def _frisbee(center: np.ndarray, s: float, angle: float, rng: np.random.Generator) -> _Object:
    o = _Object("frisbee", s, 1, _rand_colour(rng, (0.7, 1.0), (0.8, 1.0)))
    c = np.asarray(center, dtype=np.float64)
    o.points["disc"] = _rotate(_ellipse_points(c, 0.11 * s, 0.034 * s, 0, 2 * math.pi, 20), c, angle)
    o.points["rim"] = _rotate(_ellipse_points(c, 0.075 * s, 0.017 * s, 0, 2 * math.pi, 16), c, angle)
    return o


def _draw_frisbee(cv: _Canvas, o: _Object) -> None:
    cv.polygon(o.points["disc"], o.colour, _shade(o.colour, 0.5), 0.01 * o.size)
    cv.polygon(o.points["rim"], None, _shade(o.colour, 0.7), 0.008 * o.size)


def _bird(center: np.ndarray, s: float, f: int, rng: np.random.Generator) -> _Object:
    s = 1.8 * s  # birds are drawn larger than life to stay visible
    o = _Object("bird", s, f, _pick(rng, ((40, 40, 50), (200, 60, 40), (60, 90, 180), (240, 240, 240),
                                          (150, 110, 70))))
    c = np.asarray(center, dtype=np.float64)
    flap = rng.uniform(-0.5, 0.8)
    o.points["body"] = c
    o.points["head"] = c + np.array([f * 0.06 * s, -0.015 * s])
    o.points["beak"] = np.array([o.points["head"] + [f * 0.02 * s, -0.008 * s], o.points["head"] + [f * 0.05 * s, 0.0],
                                 o.points["head"] + [f * 0.02 * s, 0.01 * s]])
    o.points["wing"] = np.array([c + [-f * 0.03 * s, 0.0], c + [-f * 0.07 * s, -0.09 * s * flap - 0.01 * s],
                                 c + [f * 0.03 * s, -0.005 * s]])
    o.points["tail"] = np.array([c + [-f * 0.04 * s, 0.0], c + [-f * 0.1 * s, -0.02 * s], c + [-f * 0.095 * s, 0.02 * s]])
    return o


def _draw_bird(cv: _Canvas, o: _Object) -> None:
    p, s, c = o.points, o.size, o.colour
    cv.polygon(p["tail"], _shade(c, 0.8))
    cv.ellipse(p["body"], 0.055 * s, 0.025 * s, c)
    cv.circle(p["head"], 0.025 * s, c)
    cv.polygon(p["beak"], (240, 180, 40))
    cv.polygon(p["wing"], _shade(c, 0.7))
    cv.circle(p["head"] + np.array([o.facing * 0.008 * s, -0.006 * s]), 0.006 * s, (250, 250, 250))


_DRAW: dict[str, Callable[[_Canvas, _Object], None]] = {
    "bicycle": _draw_bicycle, "horse": _draw_horse, "dog": _draw_dog, "skateboard": _draw_skateboard,
    "sports_ball": _draw_ball, "kite": _draw_kite, "cup": _draw_cup, "umbrella": _draw_umbrella,
    "chair": _draw_chair, "book": _draw_book, "frisbee": _draw_frisbee, "bird": _draw_bird,
}


# ------------------------------------------------------------------------------------------- activities
@dataclass
class _Group:
    """A person with what they do (or a lone object): entities by drawing layer, and the verbs of each
    (person, object) pair of the group."""

    person: _Person | None
    activity: str
    objects: list[tuple[_Object, tuple[str, ...], str]] = field(default_factory=list)  # (object, verbs, layer)
    extras: list[_Entity] = field(default_factory=list)
    depth: float = 0.0  # ground line: larger is nearer, drawn later

    def entities(self) -> list[_Entity]:
        return ([self.person] if self.person else []) + [o for o, _, _ in self.objects] + self.extras

    def shift(self, dx: float) -> None:
        for entity in self.entities():
            entity.shift(dx)

    def draw(self, cv: _Canvas) -> None:
        layers: dict[str, list[_Object]] = {"behind": [], "between": [], "under_arm": [], "front": []}
        for obj, _, layer in self.objects:
            layers[layer].append(obj)
        for obj in layers["behind"]:
            obj.draw(cv)
        if self.person:
            self.person.draw_back(cv)
        for obj in layers["between"]:
            obj.draw(cv)
        if self.person:
            self.person.draw_front(cv, lambda c: [o.draw(c) for o in layers["under_arm"]])
        for obj in layers["front"]:
            obj.draw(cv)
        for extra in self.extras:
            extra.draw(cv)

    def box(self) -> np.ndarray:
        cv = _Canvas()
        self.draw(cv)
        return cv.box()


def _measure(entity: _Entity) -> np.ndarray:
    cv = _Canvas()
    entity.draw(cv)
    return cv.box()


def _standing(rng: np.random.Generator, sk: _Skeleton, ground: float, x: float = 0.0,
              stride: float | None = None) -> tuple[np.ndarray, tuple[LimbSpec, LimbSpec]]:
    """Pelvis and legs of a standing (or walking) figure whose lower foot is on the ground."""
    a = rng.uniform(-0.3, 0.3) if stride is None else stride
    near, far = (a, a - 0.15), (-a, -a - 0.15)
    drop = max(sk.thigh * math.cos(t) + sk.shin * math.cos(s) for t, s in (near, far))
    return np.array([x, ground - drop]), (("angles", *near), ("angles", *far))


def _idle_arms(rng: np.random.Generator) -> tuple[LimbSpec, LimbSpec]:
    arms = []
    for _ in range(2):
        upper = rng.uniform(-0.45, 0.5)
        arms.append(("angles", upper, upper + rng.uniform(0.0, 0.7)))
    return arms[0], arms[1]


def _hold_arm(rng: np.random.Generator) -> LimbSpec:
    return "angles", rng.uniform(0.9, 1.45), rng.uniform(1.3, 1.85)


def _shoulder(sk: _Skeleton, f: int, pelvis: np.ndarray, lean: float) -> np.ndarray:
    return pelvis - _unit(lean, f) * sk.torso * 0.92


def _held(category: str, hand: np.ndarray, h: float, f: int, rng: np.random.Generator) -> _Object:
    """A small object gripped at ``hand``, away from the body."""
    if category == "cup":
        return _cup(hand + np.array([f * 0.05 * h, -0.01 * h]), h, f, rng)
    if category == "sports_ball":
        ball = _ball(hand, h, rng)
        ball.shift(f * 0.8 * ball.params["r"], -0.2 * ball.params["r"])
        return ball
    if category == "frisbee":
        return _frisbee(hand + np.array([f * 0.09 * h, 0.0]), h, f * rng.uniform(-0.4, 0.2), rng)
    if category == "book":
        return _book(hand + np.array([f * 0.04 * h, -0.05 * h]), h, f * rng.uniform(-0.3, 0.3), False, rng)
    if category == "kite":
        return _kite(hand + np.array([f * 0.02 * h, -0.15 * h]), h, rng, f * rng.uniform(-0.4, 0.1))
    raise ValueError(f"Nobody holds a {category} in this world.")


def _on_ground(category: str, ground: float, s: float, f: int, rng: np.random.Generator) -> _Object:
    """An object at rest on the ground (or a bird in the air), centred on x = 0."""
    if category == "bicycle":
        return _bicycle(0.0, ground, s, f, rng)
    if category == "horse":
        return _horse(0.0, ground, s, f, rng)
    if category == "dog":
        return _dog(0.0, ground, s, f, rng)
    if category == "skateboard":
        return _skateboard(np.array([0.0, ground - 0.08 * s]), s, 0.0, f, rng)
    if category == "sports_ball":
        ball = _ball(np.zeros(2), s, rng)
        ball.shift(0.0, ground - ball.params["r"])
        return ball
    if category == "kite":
        return _kite(np.array([0.0, ground - 0.11 * s]), s, rng, f * math.pi / 2 + rng.uniform(-0.2, 0.2))
    if category == "cup":
        return _cup(np.array([0.0, ground - 0.085 * s]), s, f, rng)
    if category == "umbrella":
        angle = f * rng.uniform(1.2, 1.45)
        return _umbrella(np.array([0.0, ground - 0.05 * s]), s, angle, rng)
    if category == "chair":
        return _chair(0.0, ground, s, f, rng)
    if category == "book":
        return _book(np.array([0.0, ground - 0.07 * s]), s, math.pi / 2, False, rng)
    if category == "frisbee":
        return _frisbee(np.array([0.0, ground - 0.034 * s]), s, 0.0, rng)
    if category == "bird":
        lift = 0.5 * s if rng.random() < 0.5 else 0.03 * s
        return _bird(np.array([0.0, ground - lift]), s, f, rng)
    raise ValueError(f"Unknown world object {category!r}")


def _place_ahead(obj: _Object, edge: float, f: int) -> None:
    """Moves ``obj`` so that its box starts at ``edge`` and extends in direction ``f``."""
    box = _measure(obj)
    obj.shift(edge - box[0] if f > 0 else edge - box[2])


def _build_person(activity: Activity | None, second: str | None, h: float, f: int, ground: float,
                  rng: np.random.Generator) -> _Group:
    """A person doing ``activity`` (``None``: standing around), near x = 0, optionally holding ``second``."""
    sk = _Skeleton(h)
    name = activity.name if activity else "idle"
    cat = activity.category if activity else ""
    verbs = activity.verbs if activity else ()
    arms = _idle_arms(rng)
    if second:
        arms = (_hold_arm(rng), arms[1])
    lean, gaze = rng.uniform(-0.05, 0.12), None
    pelvis, legs = _standing(rng, sk, ground)
    group = _Group(None, name if activity else "idle", depth=ground)
    objects: list[tuple[_Object, tuple[str, ...], str]] = []

    def person(look: np.ndarray | None = None) -> _Person:
        return _Person(h, f, pelvis, lean, arms, legs, gaze if look is None else look, rng)

    if name == "ride" and cat == "bicycle":
        bike = _bicycle(0.0, ground, h, f, rng)
        bp = bike.points
        pelvis, lean = bp["seat"] + np.array([0.0, -0.035 * h]), rng.uniform(0.5, 0.7)
        arms = (("target", bp["bar"] + np.array([0, 0.01 * h])), ("target", bp["bar"] + np.array([-f * 0.02 * h, 0.015 * h])))
        legs = (("target", bp["pedal_near"], np.array([f, -0.3])), ("target", bp["pedal_far"], np.array([f, -0.3])))
        p = person()
        objects.append((bike, verbs, "between"))
    elif name == "walk" and cat == "bicycle":
        bike = _bicycle(0.0, ground, h, f, rng)
        bar = bike.points["bar"]
        pelvis, legs = _standing(rng, sk, ground, bar[0] - f * rng.uniform(0.16, 0.24) * h)
        arms = (("target", bar + np.array([0, 0.01 * h])), ("target", bar + np.array([-f * 0.03 * h, 0.01 * h])))
        p = person()
        objects.append((bike, verbs, "behind"))
    elif name == "ride" and cat == "horse":
        horse = _horse(0.0, ground, h, f, rng)
        hp = horse.points
        pelvis, lean = hp["saddle"] + np.array([0.0, -0.03 * h]), rng.uniform(0.05, 0.25)
        reins = hp["withers"] + np.array([f * 0.04 * h, -0.1 * h])
        arms = (("target", reins), ("target", reins + np.array([-f * 0.02 * h, 0.01 * h])))
        kick = rng.uniform(-0.1, 0.15)
        legs = (("angles", 0.45 + kick, -0.1 + kick), ("angles", 0.35 + kick, -0.2 + kick))
        p = person()
        objects.append((horse, verbs, "between"))
        group.extras.append(_Rope(p.points["hand_near"], hp["mouth"], 0.03 * h, (60, 40, 20), 0.012 * h))
    elif name == "walk" and cat == "horse":
        horse = _horse(0.0, ground, h, f, rng)
        mouth = horse.points["mouth"]
        pelvis, legs = _standing(rng, sk, ground, mouth[0] + f * rng.uniform(0.08, 0.15) * h)
        arms = (("target", mouth + np.array([f * 0.01 * h, 0.01 * h]), np.array([0.0, 1.0])), arms[1])
        p = person(np.array([-f, 0.2]) if rng.random() < 0.4 else None)
        objects.append((horse, verbs, "behind"))
    elif name == "walk" and cat == "dog":
        arms = (("angles", rng.uniform(0.25, 0.5), rng.uniform(0.4, 0.7)), arms[1])
        p = person()
        hand = p.points["hand_near"]
        dog = _dog(0.0, ground, h, f, rng)
        _place_ahead(dog, hand[0] + f * rng.uniform(0.1, 0.25) * h, f)
        objects.append((dog, verbs, "front"))
        group.extras.append(_Rope(hand, dog.points["collar"], 0.04 * h, (200, 30, 30), 0.012 * h))
    elif name == "pet":
        crouch = rng.uniform(-0.1, 0.15)
        near, far = (1.2 + crouch, -0.45), (0.9 + crouch, -0.6)
        legs = (("angles", *near), ("angles", *far))
        drop = max(sk.thigh * math.cos(t) + sk.shin * math.cos(s) for t, s in (near, far))
        pelvis, lean = np.array([0.0, ground - drop]), rng.uniform(0.6, 0.9)
        knee = pelvis + _unit(near[0], f) * sk.thigh
        toward = rng.random() < 0.5  # the dog faces the person (pet its head) or away (pet its back)
        dog = _dog(0.0, ground, h, -f if toward else f, rng)
        _place_ahead(dog, knee[0] + f * 0.03 * h, f)
        spot = dog.points["head"] + np.array([0.0, -0.045 * h]) if toward else dog.points["back"]
        arms = (("target", spot, np.array([0.0, -1.0])), arms[1])
        p = person()
        p.look_at(dog.points["head"])
        objects.append((dog, verbs, "behind"))
    elif name == "inspect":
        lean = rng.uniform(0.45, 0.75)
        if not second:
            arms = (("angles", -0.6, -0.2), ("angles", -0.5, -0.1)) if rng.random() < 0.5 else arms
        p = person()
        obj = _on_ground(cat, ground, h, int(_pick(rng, (f, -f))), rng)
        front = p.points["head"][0] + f * (p.skeleton.head_r + 0.02 * h)
        _place_ahead(obj, front + f * rng.uniform(0.04, 0.18) * h, f)
        b = _measure(obj)
        p.look_at(np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2]))
        objects.append((obj, verbs, "behind"))
    elif name == "ride" and cat == "skateboard":
        board = _skateboard(np.array([0.0, ground - 0.08 * h]), h, 0.0, f, rng)
        feet = board.points["foot_front"], board.points["foot_back"]
        bend = rng.uniform(0.85, 0.95)
        pelvis = (feet[0] + feet[1]) / 2 + np.array([f * 0.02 * h, -(sk.thigh + sk.shin) * bend])
        lean = rng.uniform(0.05, 0.3)
        arms = (("angles", rng.uniform(1.2, 1.7), rng.uniform(1.3, 1.9)), ("angles", -rng.uniform(1.0, 1.5), -1.4))
        legs = (("target", feet[0], np.array([f, -0.2])), ("target", feet[1], np.array([f, -0.2])))
        p = person()
        objects.append((board, verbs, "behind"))
    elif name == "carry":
        pm = person().points
        mid = (pm["pelvis"] + pm["neck"]) / 2
        if cat == "book":
            obj = _book(mid + np.array([f * 0.075 * h, 0.03 * h]), h, rng.uniform(-0.2, 0.2), False, rng)
            grip = obj.points["cover"][2:].mean(axis=0)
        elif cat == "sports_ball":
            obj = _ball(pm["pelvis"] + np.array([f * 0.1 * h, -0.09 * h]), h, rng)
            grip = obj.points["center"] + np.array([f * 0.02 * h, 0.04 * h])
        else:
            obj = _skateboard(pm["pelvis"] + np.array([f * 0.1 * h, -0.1 * h]), h,
                              f * (math.pi / 2 - rng.uniform(0.0, 0.3)), f, rng)
            grip = obj.points["center"] + np.array([f * 0.03 * h, 0.0])
        arms = (("target", grip, np.array([-f * 0.3, 1.0])), arms[1])
        p = person()
        objects.append((obj, verbs, "under_arm"))
    elif name == "kick":
        near, far = (rng.uniform(0.7, 1.1), rng.uniform(0.9, 1.5)), (-0.1, -0.2)
        legs = (("angles", *near), ("angles", *far))
        pelvis = np.array([0.0, ground - (sk.thigh * math.cos(far[0]) + sk.shin * math.cos(far[1]))])
        lean = rng.uniform(-0.15, 0.05)
        if not second:
            arms = (("angles", -0.6, -0.3), ("angles", 0.7, 1.2))
        p = person()
        ball = _ball(np.zeros(2), h, rng)
        r = ball.params["r"]
        foot = p.points["foot_near"]
        ball.shift(foot[0] + f * (r + 0.05 * h), min(foot[1] - 0.2 * r, ground - r))
        p.look_at(ball.points["center"])
        objects.append((ball, verbs, "front"))
    elif name == "hold":
        arms = (_hold_arm(rng), arms[1])
        p = person()
        obj = _held(cat, p.points["hand_near"], h, f, rng)
        if rng.random() < 0.6:
            p.look_at(_measure(obj).reshape(2, 2).mean(axis=0))
        objects.append((obj, verbs, "front"))
    elif name == "drink":
        sk_head = pelvis - _unit(lean, f) * (sk.torso + sk.neck + sk.head_r)
        mouth = sk_head + np.array([f * 1.1 * sk.head_r, 0.6 * sk.head_r])
        arms = (("target", mouth, np.array([0.0, 1.0])), arms[1])
        p = person(np.array([f, -0.6]))
        cup = _cup(p.points["hand_near"] + np.array([f * 0.01 * h, -0.03 * h]), h, f, rng, -f * 0.5)
        objects.append((cup, verbs, "front"))
    elif name == "stand_under":
        shoulder = _shoulder(sk, f, pelvis, lean)
        arms = (("target", shoulder + np.array([f * 0.12 * h, -0.12 * h]), np.array([0.0, 1.0])), arms[1])
        p = person()
        umbrella = _umbrella(p.points["hand_near"], h * 0.85, rng.uniform(-0.2, 0.2), rng)
        objects.append((umbrella, verbs, "front"))
    elif name == "sit":
        chair = _chair(0.0, ground, h, f, rng)
        pelvis, lean = chair.points["sit"] + np.array([0.0, -0.02 * h]), rng.uniform(-0.15, 0.1)
        foot = np.array([chair.points["seat"][1][0] + f * 0.05 * h, ground - 0.01 * h])
        legs = (("target", foot, np.array([f, -0.4])), ("target", foot + np.array([-f * 0.04 * h, 0]),
                                                         np.array([f, -0.4])))
        if not second:
            arms = (("angles", 0.4, 1.2), ("angles", 0.3, 1.1))
        p = person()
        objects.append((chair, verbs, "between"))
    elif name == "read":
        head = pelvis - _unit(lean, f) * (sk.torso + sk.neck + sk.head_r)
        grip = head + np.array([f * 0.27 * h, 0.17 * h])
        arms = (("target", grip, np.array([0.0, 1.0])), ("target", grip + np.array([-f * 0.02 * h, 0.02 * h]),
                                                         np.array([0.0, 1.0])))
        p = person()
        book = _book(p.points["hand_near"] + np.array([0.0, -0.05 * h]), h, f * rng.uniform(0.25, 0.55), True, rng)
        p.look_at(book.points["text"].mean(axis=0))
        objects.append((book, verbs, "front"))
    elif name == "throw":
        lean = rng.uniform(0.0, 0.2)
        arms = (("angles", rng.uniform(2.0, 2.5), rng.uniform(2.3, 2.9)), ("angles", -0.7, -0.3))
        p = person()
        hand = p.points["hand_near"]
        direction = np.array([f * 0.85, -0.5])
        target = hand + direction * rng.uniform(0.16, 0.28) * h
        obj = _ball(target, h, rng) if cat == "sports_ball" else _frisbee(target, h, f * rng.uniform(-0.5, 0.1), rng)
        group.extras.append(_Streaks(hand, target, 0.02 * h, (90, 90, 90), 0.008 * h))
        p.look_at(target)
        objects.append((obj, verbs, "front"))
    elif name == "fly":
        arms = (("angles", rng.uniform(2.2, 2.7), rng.uniform(2.4, 3.0)), arms[1])
        p = person()
        hand = p.points["hand_near"]
        kite = _kite(hand + np.array([f * rng.uniform(0.1, 0.45) * h, -rng.uniform(0.5, 0.85) * h]), h, rng,
                     rng.uniform(-0.3, 0.3))
        group.extras.append(_Rope(hand, kite.points["bottom"], 0.05 * h, (70, 70, 70), 0.007 * h))
        p.look_at(kite.points["diamond"].mean(axis=0))
        objects.append((kite, verbs, "front"))
    elif name == "watch":
        if not second and rng.random() < 0.5:
            arms = (("angles", rng.uniform(2.0, 2.4), rng.uniform(2.1, 2.5)), arms[1])  # pointing at it
        p = person()
        head = p.points["head"]
        bird = _bird(head + np.array([f * rng.uniform(0.3, 0.6) * h, -rng.uniform(0.25, 0.55) * h]), h, f, rng)
        p.look_at(bird.points["body"])
        objects.append((bird, verbs, "front"))
    else:  # standing around, looking ahead or back
        look = np.array([f if rng.random() < 0.7 else -f, rng.uniform(-0.3, 0.4)])
        p = person(look)
    if second:
        objects.append((_held(second, p.points["hand_near"], h, f, rng), ("hold",), "front"))
    group.person = p
    group.objects = objects
    return group


def _build_free(category: str, h: float, f: int, ground: float, rng: np.random.Generator) -> _Group:
    obj = _on_ground(category, ground, h, f, rng)
    return _Group(None, "free", [(obj, (), "front")], depth=ground)


# ------------------------------------------------------------------------------------------ background
def _background(rng: np.random.Generator, size: int, horizon: float) -> Image.Image:
    """Sky, ground, distant scenery and clutter; ``size`` in supersampled pixels, ``horizon`` in image px."""
    hz = int(horizon * _SUPERSAMPLE)
    sky_top, sky_low = _pick(rng, (((70, 130, 210), (170, 210, 240)), ((40, 60, 120), (240, 160, 110)),
                                   ((130, 140, 150), (200, 205, 210)), ((90, 170, 230), (220, 235, 245))))
    ground_near, ground_far = _pick(rng, (((60, 140, 50), (110, 170, 80)), ((200, 180, 130), (225, 210, 170)),
                                          ((90, 90, 95), (140, 140, 145)), ((120, 90, 60), (160, 130, 90)),
                                          ((235, 235, 240), (215, 220, 230)), ((150, 110, 80), (185, 150, 110))))
    image = Image.new("RGB", (size, size))
    # sky and ground: colour gradients with low-frequency texture, drawn small and scaled up
    for top, low, start, stop, amplitude in ((sky_top, sky_low, 0, hz, 5.0),
                                             (ground_far, ground_near, hz, size, 16.0)):
        if stop <= start:
            continue
        t = np.linspace(0.0, 1.0, 32, dtype=np.float32)[:, None, None]
        small = np.array(top, np.float32) * (1 - t) + np.array(low, np.float32) * t
        blotches = rng.normal(0.0, 1.0, (8, 8)).astype(np.float32)
        blotches = np.asarray(Image.fromarray(blotches).resize((32, 32), Image.BILINEAR))[..., None]
        tint = 1.0 + rng.normal(0.0, 0.25, (1, 1, 3)).astype(np.float32)
        small = np.clip(small + blotches * tint * amplitude, 0, 255).astype(np.uint8)
        patch = Image.fromarray(small).resize((size, stop - start), Image.BICUBIC)
        image.paste(patch, (0, start))
    cv = _Canvas(image, _SUPERSAMPLE)
    S = size / _SUPERSAMPLE
    # distant scenery on the horizon
    kind = int(rng.integers(3))
    if kind == 0:  # hills
        xs = np.linspace(-0.1 * S, 1.1 * S, 7)
        ys = horizon - rng.uniform(0.03, 0.15, 7) * S
        colour = _shade(ground_far, rng.uniform(0.6, 0.85))
        cv.polygon(np.vstack([np.stack([xs, ys], 1), [[1.1 * S, horizon + 1], [-0.1 * S, horizon + 1]]]), colour)
    elif kind == 1:  # houses
        x = rng.uniform(-0.1, 0.05) * S
        while x < S:
            w, hh = rng.uniform(0.08, 0.18) * S, rng.uniform(0.05, 0.14) * S
            wall = _rand_colour(rng, (0.1, 0.4), (0.6, 0.9))
            cv.polygon([[x, horizon], [x + w, horizon], [x + w, horizon - hh], [x, horizon - hh]], wall)
            cv.polygon([[x - 0.01 * S, horizon - hh], [x + w + 0.01 * S, horizon - hh],
                        [x + w / 2, horizon - hh - 0.05 * S]], _rand_colour(rng, (0.4, 0.7), (0.3, 0.6)))
            cv.polygon([[x + w * 0.3, horizon - hh * 0.6], [x + w * 0.5, horizon - hh * 0.6],
                        [x + w * 0.5, horizon - hh * 0.3], [x + w * 0.3, horizon - hh * 0.3]], (60, 70, 90))
            x += w + rng.uniform(0.02, 0.12) * S
    else:  # tree line
        for x in np.arange(-0.05 * S, 1.05 * S, 0.04 * S):
            r = rng.uniform(0.025, 0.05) * S
            cv.circle((x, horizon - r * 0.6), r, _shade((50, 110, 50), rng.uniform(0.6, 1.1)))
    for _ in range(int(rng.integers(0, 4))):  # clouds
        cx, cy, w = rng.uniform(0, S), rng.uniform(0.03, 0.8) * horizon, rng.uniform(0.05, 0.12) * S
        for k in range(3):
            cv.ellipse((cx + (k - 1) * w * 0.6, cy + (k % 2) * 0.01 * S), w * 0.55, w * 0.3, (245, 245, 248))
    for _ in range(int(rng.integers(0, 3))):  # trees standing on the ground
        x, base = rng.uniform(0, S), horizon + rng.uniform(0.0, 0.1) * (S - horizon)
        th = rng.uniform(0.12, 0.25) * S
        cv.line([(x, base), (x, base - th * 0.6)], (90, 60, 35), 0.025 * S)
        cv.circle((x, base - th * 0.75), th * 0.3, _shade((60, 130, 50), rng.uniform(0.7, 1.2)))
    for _ in range(int(rng.integers(3, 12))):  # stones and bushes
        x, y = rng.uniform(0, S), rng.uniform(horizon, S)
        r = rng.uniform(0.006, 0.02) * S * (0.5 + (y - horizon) / (S - horizon))
        if rng.random() < 0.5:
            cv.ellipse((x, y), r * 1.4, r, _shade((128, 128, 128), rng.uniform(0.6, 1.2)))
        else:
            cv.ellipse((x, y), r * 1.6, r * 1.1, _shade((40, 110, 40), rng.uniform(0.7, 1.2)))
    blade = _shade(ground_near, 0.7)
    for _ in range(int(rng.integers(20, 60))):  # grass / texture strokes
        x, y = rng.uniform(0, S), rng.uniform(horizon, S)
        ln = rng.uniform(0.005, 0.015) * S
        cv.line([(x, y), (x + rng.uniform(-0.4, 0.4) * ln, y - ln)], blade, 0.003 * S + 0.3, round_ends=False)
    if rng.random() < 0.3:  # a path or road marking
        y = rng.uniform(horizon + 0.2 * (S - horizon), S)
        cv.line([(0, y), (S, y + rng.uniform(-0.05, 0.05) * S)], _shade(ground_near, 1.25), 0.02 * S)
    return image


# ------------------------------------------------------------------------------------------------ scene
@dataclass
class SceneTruth:
    """What a synthetic image holds, for tests and debugging (boxes absolute xyxy pixels).

    Attributes:
        people: per person ``{"box", "joints": {name: [x, y]}, "height", "facing", "activity"}``; joints are
            ``pelvis, shoulder, neck, head, elbow_near, hand_near, elbow_far, hand_far, knee_near, foot_near,
            knee_far, foot_far``.
        objects: per object ``{"box", "category", "object_id"}``.
        interactions: per annotated pair ``{"person", "object", "verbs"}`` (indices into the lists above;
            ``no_interaction`` included).
    """

    people: list[dict[str, Any]]
    objects: list[dict[str, Any]]
    interactions: list[dict[str, Any]]


_SPLIT_CODES = {"train": 0, "test": 1, "validation": 2}


def _image_rng(index: int, seed: int, split: str) -> np.random.Generator:
    code = _SPLIT_CODES.get(split, zlib.crc32(split.encode()))
    return np.random.default_rng([int(seed), code, int(index)])


def _plan(rng: np.random.Generator) -> list[tuple[str, Any, Any]]:
    """Who does what: ("person", activity | None, second held category | None) and ("free", category)."""
    n_people = int(rng.choice([1, 2, 3, 4], p=[0.25, 0.35, 0.25, 0.15]))
    budget = int(rng.integers(1, 6))  # objects in the image
    plan: list[tuple[str, Any, Any]] = []
    used: list[str] = []
    for _ in range(n_people):
        activity = None
        if budget > 0 and rng.random() < 0.85:
            if used and rng.random() < 0.3:  # same category as someone else: image labels get ambiguous
                options = [i for i, a in enumerate(ACTIVITIES) if a.category in used]
                weights = _ACTIVITY_WEIGHTS[options] / _ACTIVITY_WEIGHTS[options].sum()
                activity = ACTIVITIES[int(rng.choice(options, p=weights))]
            else:
                activity = ACTIVITIES[int(rng.choice(len(ACTIVITIES), p=_ACTIVITY_WEIGHTS))]
            budget -= 1
            used.append(activity.category)
        second = None
        name = activity.name if activity else "idle"
        if budget > 0 and name in _FREE_HAND and rng.random() < 0.3:
            second = _pick(rng, _SECOND_HOLD)
            budget -= 1
            used.append(second)
        plan.append(("person", activity, second))
    n_free = min(budget, int(rng.integers(0, 3)))
    if not used:
        n_free = max(n_free, 1)
    for _ in range(n_free):
        if used and rng.random() < 0.5:
            category = _pick(rng, used)
        else:
            category = _pick(rng, WORLD_OBJECTS)
        plan.append(("free", category, None))
        used.append(category)
    order = rng.permutation(len(plan))
    return [plan[i] for i in order]


def _compose(rng: np.random.Generator, size: int, horizon: float) -> list[_Group]:
    """Builds the groups of the plan at their depths and lays them out left to right without overlap."""
    plan = _plan(rng)
    specs = []
    for kind, what, second in plan:
        t = rng.uniform(0.0, 1.0)
        specs.append({
            "kind": kind, "what": what, "second": second, "facing": int(_pick(rng, (1, -1))),
            "ground": horizon + (size - horizon) * (0.3 + 0.66 * t), "height": size * (0.22 + 0.24 * t),
            "seed": int(rng.integers(2**62)),
        })

    def build(spec: dict[str, Any], height: float) -> tuple[_Group, np.ndarray, float]:
        group_rng = np.random.default_rng(spec["seed"])
        if spec["kind"] == "person":
            group = _build_person(spec["what"], spec["second"], height, spec["facing"], spec["ground"], group_rng)
            margin = 0.02 * height
        else:
            group = _build_free(spec["what"], height, spec["facing"], spec["ground"], group_rng)
            margin = 0.3 * height  # lone objects keep clear of everybody
        return group, group.box(), margin

    built = []
    for spec in specs:
        height = spec["height"]
        for _ in range(6):  # shrink what sticks out of the top of the image
            group, box, margin = build(spec, height)
            if box[1] >= 1.0:
                break
            height *= 0.85
        built.append([spec, height, group, box, margin])
    for _ in range(4):  # shrink everybody when the row is wider than the image
        total = sum(b[3][2] - b[3][0] + 2 * b[4] for b in built)
        if total <= 0.98 * size:
            break
        factor = max(0.98 * size / total, 0.75)
        for b in built:
            b[1] *= factor
            b[2], b[3], b[4] = build(b[0], b[1])
    while len(built) > 1 and sum(b[3][2] - b[3][0] + 2 * b[4] for b in built) > 0.98 * size:
        drop = max(range(len(built)), key=lambda i: (built[i][0]["kind"] == "free", i))
        built.pop(drop)
    widths = [b[3][2] - b[3][0] + 2 * b[4] for b in built]
    spare = max(size - sum(widths), 0.0)
    gaps = rng.dirichlet(np.ones(len(built) + 1)) * spare
    x = gaps[0]
    groups = []
    for (_, _, group, box, margin), width, gap in zip(built, widths, gaps[1:]):
        group.shift(x + margin - box[0])
        groups.append(group)
        x += width + gap
    return groups


def _clip_box(box: Sequence[float], size: int) -> list[float]:
    return [min(max(float(v), 0.0), float(size)) for v in box]


def _gap(a: Sequence[float], b: Sequence[float]) -> float:
    """Distance between two boxes (0 when they touch or overlap)."""
    dx = max(a[0] - b[2], b[0] - a[2], 0.0)
    dy = max(a[1] - b[3], b[1] - a[3], 0.0)
    return math.hypot(dx, dy)


def _simulate_detections(rng: np.random.Generator, boxes: list[list[float]], labels: list[int],
                         size: int) -> dict[str, list]:
    """A detector's output: jittered truth boxes (a few missed), a few false positives, sorted by score."""
    out_boxes, out_labels, out_scores = [], [], []
    for box, label in zip(boxes, labels):
        if rng.random() < _MISS_RATE:
            continue
        w, h = box[2] - box[0], box[3] - box[1]
        jitter = rng.normal(0.0, _BOX_JITTER, 4) * np.array([w, h, w, h])
        x1, y1, x2, y2 = _clip_box((np.array(box) + jitter).tolist(), size)
        x1, x2 = sorted((x1, x2))
        y1, y2 = sorted((y1, y2))
        if x2 - x1 < 1 or y2 - y1 < 1:
            continue
        out_boxes.append([x1, y1, x2, y2])
        out_labels.append(int(label))
        out_scores.append(min(max(float(rng.normal(0.85, 0.1)), 0.3), 0.99))
    person_id = _vocabulary().person_id
    for _ in range(int(rng.poisson(_FALSE_POSITIVES_PER_IMAGE))):
        label = person_id if rng.random() < 0.3 else int(_pick(rng, WORLD_OBJECT_IDS))
        w, h = rng.uniform(0.05, 0.3, 2) * size
        x1, y1 = rng.uniform(0, size - w), rng.uniform(0, size - h)
        out_boxes.append([float(x1), float(y1), float(x1 + w), float(y1 + h)])
        out_labels.append(label)
        out_scores.append(float(rng.uniform(0.05, 0.55)))
    order = np.argsort(-np.array(out_scores), kind="stable")
    return {"boxes": [out_boxes[i] for i in order], "labels": [out_labels[i] for i in order],
            "scores": [out_scores[i] for i in order]}


def generate_example(index: int, seed: int = 0, image_size: int = 256, split: str = "train",
                     return_truth: bool = False) -> dict[str, Any] | tuple[dict[str, Any], SceneTruth]:
    """Draws synthetic image ``index`` of ``split`` for ``seed``: one example of the clhoi schema.

    Args:
        index: the image's index in its split.
        seed: the world's global seed; each image draws from its own generator seeded by
            ``(seed, split, index)``, so the result does not depend on what else is generated.
        image_size: side of the square image in pixels (the scene scales with it).
        split: the split name (train and test of one seed are different images).
        return_truth: also return the :class:`SceneTruth` (joints, boxes, interactions).

    Returns:
        ``{"image": PIL.Image, "image_id", "width", "height", "detections", "annotation"}`` (and the truth).
    """
    if index < 0:
        raise ValueError(f"index must be non-negative, got {index}")
    if image_size < 32:
        raise ValueError(f"image_size must be at least 32 pixels, got {image_size}")
    rng = _image_rng(index, seed, split)
    vocab = _vocabulary()
    horizon = image_size * rng.uniform(0.3, 0.5)
    groups = _compose(rng, image_size, horizon)
    image = _background(rng, image_size * _SUPERSAMPLE, horizon)
    cv = _Canvas(image, _SUPERSAMPLE)
    for group in sorted(groups, key=lambda g: g.depth):
        group.draw(cv)
    image = image.resize((image_size, image_size), Image.BOX)

    people, objects, pair_verbs = [], [], {}
    for group in groups:
        if group.person is not None:
            people.append({
                "box": _clip_box(_measure(group.person), image_size),
                "joints": {k: [float(v[0]), float(v[1])] for k, v in group.person.points.items()},
                "height": float(group.person.h), "facing": group.person.facing, "activity": group.activity,
            })
        for obj, verbs, _ in group.objects:
            objects.append({"box": _clip_box(_measure(obj), image_size), "category": obj.category,
                            "object_id": vocab.objects.index(obj.category)})
            if group.person is not None:
                pair_verbs[(len(people) - 1, len(objects) - 1)] = verbs
    interactions = []
    annotation: dict[str, list] = {"boxes_h": [], "boxes_o": [], "hoi": [], "object": [], "verb": []}
    for i, person in enumerate(people):
        for j, obj in enumerate(objects):
            verbs = pair_verbs.get((i, j), ())
            if not verbs and _gap(person["box"], obj["box"]) >= NO_INTERACTION_GAP * person["height"]:
                verbs = ("no_interaction",)
            if not verbs:
                continue
            interactions.append({"person": i, "object": j, "verbs": list(verbs)})
            for verb in verbs:
                annotation["boxes_h"].append(person["box"])
                annotation["boxes_o"].append(obj["box"])
                annotation["hoi"].append(vocab.hoi_id(verb, obj["category"]))
                annotation["object"].append(obj["object_id"])
                annotation["verb"].append(vocab.verbs.index(verb))
    detections = _simulate_detections(
        rng, [p["box"] for p in people] + [o["box"] for o in objects],
        [vocab.person_id] * len(people) + [o["object_id"] for o in objects], image_size)
    example = {"image": image, "image_id": f"synthetic_{split}_{index:07d}", "width": image_size,
               "height": image_size, "detections": detections, "annotation": annotation}
    if return_truth:
        return example, SceneTruth(people, objects, interactions)
    return example


def _plain_example(args: tuple[int, int, int, str]) -> dict[str, Any]:
    return generate_example(*args)  # type: ignore[return-value]


def _encoded_example(args: tuple[int, int, int, str]) -> dict[str, Any]:
    example = generate_example(*args)
    buffer = io.BytesIO()
    example["image"].save(buffer, format="PNG", compress_level=6)
    example["image"] = {"bytes": buffer.getvalue(), "path": None}
    return example


def generate_examples(num_examples: int, seed: int = 0, image_size: int = 256, split: str = "train",
                      num_workers: int = 1, encode: bool = True, progress: bool = True) -> Iterator[dict[str, Any]]:
    """Yields examples ``0 .. num_examples - 1`` of ``split`` in order, drawn by ``num_workers`` processes.

    With ``encode`` the image comes as ``{"bytes": PNG, "path": None}`` (ready for Parquet), else as PIL.
    The output is identical for any ``num_workers``.
    """
    if num_examples < 0:
        raise ValueError(f"num_examples must be non-negative, got {num_examples}")
    jobs = [(i, seed, image_size, split) for i in range(num_examples)]
    worker = _encoded_example if encode else _plain_example
    bar = tqdm(total=num_examples, desc=f"synthetic {split}", disable=not progress, unit="img")
    if num_workers > 1 and num_examples > 1:
        # fork starts workers at once where the platform has it; the workers only draw with numpy and PIL
        method = "fork" if "fork" in get_all_start_methods() else "spawn"
        with get_context(method).Pool(num_workers) as pool:
            for example in pool.imap(worker, jobs, chunksize=16):
                bar.update()
                yield example
    else:
        for job in jobs:
            bar.update()
            yield worker(job)
    bar.close()
