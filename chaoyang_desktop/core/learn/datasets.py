"""Labelled image data for evaluation and fine-tuning: discovery, class matching, checks.

Two layouts are read:

- A folder with one sub-folder per class (``DATA/Normal/*.png``, searched recursively). Folder
  names are matched to class names case-insensitively, or through a class map.
- A Chaoyang-style JSON label list: ``[{"label": 0, "name": "train/x.JPG"}, ...]`` with the
  names relative to an image root (by default the JSON file's folder). An integer label is a
  class index in the Chaoyang coding, which is the model's ``id2label`` order; a string label
  is a class name.

A class map is a JSON object from the data's labels (folder names, or JSON labels written as
strings) to class names, with ``null`` to leave a label out: ``{"TUM": "Adenocarcinoma",
"NORM": "Normal", "ADI": null}``.

Problems a person has to fix (a label that matches no class, an empty class folder, images the
JSON names that are not there) are errors that say what to do. Images that exist but cannot be
decoded are not found here; the evaluation and training loops record and skip them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chaoyang_desktop.core.errors import ChaoyangError
from chaoyang_desktop.core.slide.imageio import IMAGE_SUFFIXES, is_image_file

#: A class map: data label -> class name, or ``None`` to leave that label out.
ClassMap = Mapping[str, str | None]


class DatasetError(ChaoyangError, ValueError):
    """Labelled data cannot be read or does not fit the model's classes."""


@dataclass(frozen=True)
class LabelledImage:
    """One image and its class index (into :attr:`LabelledDataset.class_names`)."""

    path: Path
    label: int


@dataclass(frozen=True)
class LabelledDataset:
    """Images with class labels, in a stable order.

    Attributes:
        items: The images and their labels.
        class_names: Class names in index order (the model's, or the data's for a new head).
        source: The folder or JSON file given.
        kind: ``"folders"`` or ``"json"``.
        label_sources: For each class, the data labels (folder names, JSON labels) mapped to it.
        left_out: Data labels the class map set to ``null``, with their image counts.
        notes: Things a person may want to know (loose files ignored, ...).
        root: The folder image paths are relative to (the class-folder tree, or the image root).
    """

    items: tuple[LabelledImage, ...]
    class_names: tuple[str, ...]
    source: str
    kind: str
    label_sources: tuple[tuple[str, ...], ...] = ()
    left_out: tuple[tuple[str, int], ...] = ()
    notes: tuple[str, ...] = ()
    root: str = ""

    def __len__(self) -> int:
        return len(self.items)

    @property
    def labels(self) -> np.ndarray:
        return np.array([it.label for it in self.items], dtype=np.int64)

    @property
    def paths(self) -> list[Path]:
        return [it.path for it in self.items]

    def class_counts(self) -> list[int]:
        counts = Counter(it.label for it in self.items)
        return [counts.get(i, 0) for i in range(len(self.class_names))]

    def subset(self, indices: Sequence[int]) -> LabelledDataset:
        """The same dataset restricted to ``indices`` (in that order)."""
        return dataclasses.replace(self, items=tuple(self.items[i] for i in indices))

    def fingerprint(self) -> str:
        """SHA-256 of the class names and every (path, label): changes when the data changes.

        Paths count relative to :attr:`root`, so the same data given by another path (relative
        or absolute, another mount point) has the same fingerprint.
        """
        digest = hashlib.sha256()
        digest.update(json.dumps(list(self.class_names)).encode())
        root = Path(self.root).resolve() if self.root else None
        for it in self.items:
            path = it.path.resolve()
            rel = path.relative_to(root).as_posix() if root is not None and path.is_relative_to(root) else str(path)
            digest.update(f"{rel}\0{it.label}\n".encode())
        return digest.hexdigest()

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description for provenance files."""
        return {
            "source": self.source,
            "kind": self.kind,
            "n_images": len(self.items),
            "class_counts": dict(zip(self.class_names, self.class_counts())),
            "label_sources": {n: list(s) for n, s in zip(self.class_names, self.label_sources)} if self.label_sources else {},
            "left_out": dict(self.left_out),
            "fingerprint": self.fingerprint(),
        }

    def describe(self) -> str:
        """One line for the terminal: how many images per class."""
        parts = [f"{n} {c}" for n, c in zip(self.class_names, self.class_counts())]
        text = f"{len(self.items)} labelled images ({', '.join(parts)})"
        if self.left_out:
            text += "; left out by the class map: " + ", ".join(f"{k} ({v})" for k, v in self.left_out)
        return text


def _key(name: str) -> str:
    return name.strip().casefold()


def load_class_map(path: str | os.PathLike[str]) -> dict[str, str | None]:
    """Read a class map JSON file (data label -> class name or ``null``)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DatasetError(f"The class map {p} does not exist.") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"The class map {p} is not valid JSON ({exc}).") from exc
    if not isinstance(data, dict) or not all(v is None or isinstance(v, str) for v in data.values()):
        raise DatasetError(
            f"The class map {p} must be a JSON object from data labels to class names (or null to leave "
            'a label out), e.g. {"TUM": "Adenocarcinoma", "ADI": null}.'
        )
    return {str(k): v for k, v in data.items()}


class _Resolver:
    """Turns data labels into class indices through the class map and case-insensitive names."""

    def __init__(self, class_names: Sequence[str] | None, class_map: ClassMap | None) -> None:
        self.class_map = {_key(k): v for k, v in (class_map or {}).items()}
        self.fixed = class_names is not None
        self.class_names: list[str] = list(class_names or [])
        if self.fixed:
            keys = [_key(n) for n in self.class_names]
            dupes = sorted({n for n, k in zip(self.class_names, keys) if keys.count(k) > 1})
            if dupes:
                raise DatasetError(f"The model's class names are not distinct when case is ignored: {', '.join(dupes)}.")
            if class_map:
                bad = sorted({v for v in class_map.values() if v is not None and _key(v) not in keys})
                if bad:
                    raise DatasetError(
                        f"The class map names {', '.join(repr(b) for b in bad)}, which are not classes of the model "
                        f"({', '.join(self.class_names)})."
                    )

    def target(self, data_label: str) -> str | None:
        """The class name ``data_label`` stands for; ``None`` if the map leaves it out."""
        if _key(data_label) in self.class_map:
            return self.class_map[_key(data_label)]
        if self.class_map and not self.fixed:
            raise KeyError(data_label)  # with a map and no fixed classes, every label must be mapped
        return data_label

    def index(self, class_name: str) -> int | None:
        keys = [_key(n) for n in self.class_names]
        k = _key(class_name)
        return keys.index(k) if k in keys else None


def _unknown_error(unknown: Sequence[str], what: str, class_names: Sequence[str], has_map: bool) -> DatasetError:
    shown = ", ".join(repr(u) for u in unknown[:12]) + (f" and {len(unknown) - 12} more" if len(unknown) > 12 else "")
    fix = ("add them to the class map" if has_map else
           "rename them, or give --class-map FILE.json mapping each one to a class")
    return DatasetError(
        f"{what} {shown} match{'es' if len(unknown) == 1 else ''} none of the model's classes "
        f"({', '.join(class_names)}): {fix} (null leaves one out)."
    )


def _finish(resolver: _Resolver, labelled: list[tuple[Path, str]], source: str, kind: str,
            left_out: Counter[str], notes: list[str], origin: dict[str, set[str]], root: Path) -> LabelledDataset:
    """Assign class indices: fixed classes keep their order, data-defined classes are sorted."""
    if not resolver.fixed:
        names: dict[str, str] = {}
        for _, cls in labelled:
            names.setdefault(_key(cls), cls)
        resolver.class_names = sorted(names.values(), key=lambda n: (_key(n), n))
    items: list[LabelledImage] = []
    for path, cls in labelled:
        idx = resolver.index(cls)
        assert idx is not None  # unknown classes were rejected before
        items.append(LabelledImage(path, idx))
    # Natural order for the data labels behind each class: "2" before "10", folders by name.
    sources = tuple(tuple(sorted(origin.get(_key(n), set()), key=lambda s: (len(s), s.lower())))
                    for n in resolver.class_names)
    return LabelledDataset(tuple(items), tuple(resolver.class_names), source, kind, sources,
                           tuple(sorted(left_out.items())), tuple(notes), str(root))


def _from_folders(root: Path, resolver: _Resolver, has_map: bool) -> LabelledDataset:
    subdirs = sorted((d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")), key=lambda d: d.name.lower())
    notes: list[str] = []
    loose = [f for f in root.iterdir() if f.is_file() and is_image_file(f)]
    if loose:
        notes.append(f"{len(loose)} image(s) directly in {root} were ignored: images must be in one folder per class.")
    if not subdirs:
        raise DatasetError(
            f"{root} has no class folders. Put the images in one sub-folder per class "
            "(e.g. DATA/Normal/, DATA/Adenoma/), or give a JSON label list."
        )
    labelled: list[tuple[Path, str]] = []
    left_out: Counter[str] = Counter()
    unknown: list[str] = []
    empty: list[str] = []
    origin: dict[str, set[str]] = {}
    for d in subdirs:
        files = sorted((f for f in d.rglob("*") if f.is_file() and is_image_file(f)), key=lambda f: str(f.relative_to(root)).lower())
        try:
            cls = resolver.target(d.name)
        except KeyError:
            unknown.append(d.name)
            continue
        if cls is None:
            left_out[d.name] += len(files)
            continue
        if resolver.fixed and resolver.index(cls) is None:
            unknown.append(d.name)
            continue
        if not files:
            empty.append(d.name)
            continue
        origin.setdefault(_key(cls), set()).add(d.name)
        labelled.extend((f, cls) for f in files)
    if unknown:
        what = "The class folder" if len(unknown) == 1 else "The class folders"
        raise _unknown_error(unknown, what, resolver.class_names or ["none: every folder must be in the class map"], has_map)
    if empty:
        raise DatasetError(
            f"The class folder(s) {', '.join(repr(e) for e in empty)} in {root} hold no images "
            f"(looked for {', '.join(IMAGE_SUFFIXES)}). Add images, remove the folder, or map it to null in a class map."
        )
    if not labelled:
        raise DatasetError(f"{root} holds no labelled images once the class map is applied.")
    return _finish(resolver, labelled, str(root), "folders", left_out, notes, origin, root)


def _from_json(list_file: Path, image_root: Path | None, resolver: _Resolver, has_map: bool) -> LabelledDataset:
    try:
        records = json.loads(list_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{list_file} is not a readable JSON label list ({exc}).") from exc
    if not isinstance(records, list) or not records:
        raise DatasetError(f'{list_file} must hold a non-empty JSON list of {{"label", "name"}} records.')
    root = image_root if image_root is not None else list_file.parent
    if not root.is_dir():
        raise DatasetError(f"The image root {root} is not a folder; give the folder the JSON names are relative to with --image-root.")
    labelled: list[tuple[Path, str]] = []
    left_out: Counter[str] = Counter()
    unknown: set[str] = set()
    missing: list[str] = []
    origin: dict[str, set[str]] = {}
    for i, rec in enumerate(records):
        if not isinstance(rec, dict) or "label" not in rec or "name" not in rec:
            raise DatasetError(f'{list_file}: record {i} is not a {{"label", "name"}} object: {str(rec)[:80]}')
        raw, name = rec["label"], rec["name"]
        if isinstance(raw, bool) or not isinstance(raw, (int, str)) or not isinstance(name, str):
            raise DatasetError(f"{list_file}: record {i} needs an integer or text label and a text name (got {str(rec)[:80]}).")
        data_label = str(raw)
        try:
            cls = resolver.target(data_label)
        except KeyError:
            unknown.add(data_label)
            continue
        if cls is None:
            left_out[data_label] += 1
            continue
        if isinstance(raw, int) and cls == data_label:
            # An unmapped integer is a class index in the Chaoyang coding (the model's id2label).
            if not resolver.fixed:
                raise DatasetError(
                    f"{list_file} labels classes by number; give --class-map FILE.json naming the class of each "
                    'number (e.g. {"0": "Normal"}), or train the model\'s own classes.'
                )
            if not 0 <= raw < len(resolver.class_names):
                unknown.add(data_label)
                continue
            cls = resolver.class_names[raw]
        elif resolver.fixed and resolver.index(cls) is None:
            unknown.add(data_label)
            continue
        path = root / name
        if not path.is_file():
            missing.append(name)
            continue
        origin.setdefault(_key(cls), set()).add(data_label)
        labelled.append((path, cls))
    if unknown:
        ordered = sorted(unknown, key=lambda u: (len(u), u))
        raise _unknown_error(ordered, "The labels", resolver.class_names or ["none: every label must be in the class map"], has_map)
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise DatasetError(
            f"{len(missing)} image(s) named in {list_file} are not under {root}: {shown}. "
            "Give the folder the names are relative to with --image-root."
        )
    if not labelled:
        raise DatasetError(f"{list_file} holds no labelled images once the class map is applied.")
    return _finish(resolver, labelled, str(list_file), "json", left_out, [], origin, root)


def load_labelled_dataset(
    data: str | os.PathLike[str],
    class_names: Sequence[str] | None = None,
    *,
    class_map: ClassMap | None = None,
    image_root: str | os.PathLike[str] | None = None,
) -> LabelledDataset:
    """Find labelled images in a class-folder tree or a JSON label list.

    Args:
        data: A folder with one sub-folder per class, or a ``.json`` label list.
        class_names: The classes labels must match (the model's), in index order. ``None``: the
            classes are the data's own (sorted), as when training a new head.
        class_map: Data label -> class name, or ``None`` to leave the label out.
        image_root: For a JSON list, the folder its names are relative to (default: the JSON
            file's folder).

    Raises:
        DatasetError: The data is missing, empty, or has labels that match no class.
    """
    p = Path(data)
    resolver = _Resolver(class_names, class_map)
    if p.is_dir():
        if image_root is not None:
            raise DatasetError("--image-root applies to a JSON label list; a folder of class folders needs none.")
        return _from_folders(p, resolver, bool(class_map))
    if p.is_file():
        if p.suffix.lower() != ".json":
            raise DatasetError(f"{p} is neither a folder of class folders nor a JSON label list (.json).")
        return _from_json(p, Path(image_root) if image_root is not None else None, resolver, bool(class_map))
    raise DatasetError(f"{p} does not exist; give a folder with one sub-folder per class, or a JSON label list.")
