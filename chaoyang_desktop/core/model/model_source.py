"""Where a model comes from: a local folder, or a hub repository through the Hugging Face cache.

The weights are never bundled (their licence forbids it): they are downloaded on the user's
machine into the standard Hugging Face cache, or opened from a folder the user chose.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaoyang_desktop.core.model.checkpoint import find_weights, sha256_file
from chaoyang_desktop.core.errors import CancelledError, ChaoyangError, ModelNotFoundError
from chaoyang_desktop.core.model.profile import DEFAULT_MODEL_ID, ModelProfile, profile_from_config, read_model_config

log = logging.getLogger(__name__)

_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# Only what the engine reads: a repository may hold other formats we would download for nothing.
HUB_FILES: list[str] = ["config.json", "preprocessor_config.json", "pytorch_model.bin", "model.safetensors"]

LICENCE_NOTE = (
    "The Chaoyang ViT weights are licensed for non-commercial use only and may not be "
    "redistributed without the author's consent. Chaoyang Desktop downloads them to this "
    "computer's Hugging Face cache for your own use; it does not ship them."
)

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class ModelLocation:
    model_id: str
    source: str  # "hub" or "local"
    model_dir: Path


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment at call time (tests move it)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "huggingface")
    return Path(home) / "hub"


def looks_like_repo_id(spec: str) -> bool:
    return bool(_REPO_ID_RE.match(spec)) and not Path(spec).exists()


def _how_to_get(repo_id: str) -> str:
    return (
        f"Download it once with `chaoyang-desktop models download {repo_id}` while online, "
        "or give a local copy with `--model DIR` (a folder with config.json and pytorch_model.bin "
        "or model.safetensors)."
    )


def resolve_model(spec: str | None = None, *, allow_download: bool = False, progress: ProgressFn | None = None,
                  cancel: threading.Event | None = None) -> ModelLocation:
    """Find the folder of a model given as a local path or a hub repository id.

    Args:
        spec: Folder, or ``owner/name`` repository id; ``None`` means the default model.
        allow_download: When the repository is not cached, fetch it (with ``progress``).
        progress: ``progress(bytes_done, bytes_total)`` during a download.
        cancel: Set to stop a download.
    """
    spec = spec or DEFAULT_MODEL_ID
    path = Path(spec).expanduser()
    if path.exists():
        if path.is_file():
            path = path.parent
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"{path} is not a model folder: it has no config.json. Choose the folder that holds config.json and the weights.")
        return ModelLocation(model_id=str(path.resolve()), source="local", model_dir=path.resolve())
    if not looks_like_repo_id(spec):
        raise ModelNotFoundError(f"Model {spec!r} is neither an existing folder nor a hub repository id like {DEFAULT_MODEL_ID}.")
    cached = cached_model_dir(spec)
    if cached is not None:
        return ModelLocation(model_id=spec, source="hub", model_dir=cached)
    if not allow_download:
        raise ModelNotFoundError(f"Model {spec} is not downloaded yet. {_how_to_get(spec)}")
    return ModelLocation(model_id=spec, source="hub", model_dir=download_model(spec, progress=progress, cancel=cancel))


def cached_model_dir(repo_id: str) -> Path | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = Path(str(snapshot_download(repo_id, allow_patterns=HUB_FILES, local_files_only=True, cache_dir=hf_cache_dir())))
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None
    if not (folder / "config.json").is_file():
        return None
    try:
        find_weights(folder)
    except ChaoyangError:
        return None
    return folder


def download_model(repo_id: str = DEFAULT_MODEL_ID, *, progress: ProgressFn | None = None,
                   cancel: threading.Event | None = None) -> Path:
    """Download a repository's model files into the Hugging Face cache and return the folder."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError
    from tqdm.auto import tqdm

    class _Reporter(tqdm):  # type: ignore[misc]
        """Forwards byte counts to ``progress`` and stops the download when ``cancel`` is set."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("disable", progress is not None)
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            if cancel is not None and cancel.is_set():
                raise CancelledError("Download cancelled.")
            out: bool | None = super().update(n)
            if progress is not None and self.unit == "B":
                progress(int(self.n), int(self.total or 0))
            return out

    try:
        folder = snapshot_download(
            repo_id,
            allow_patterns=HUB_FILES,
            cache_dir=hf_cache_dir(),
            tqdm_class=_Reporter,
            max_workers=1,
        )
    except CancelledError:
        raise
    except RepositoryNotFoundError as exc:
        raise ModelNotFoundError(f"The hub has no repository {repo_id} (or it is private). Check the name.") from exc
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
        log.info("Download of %s failed: %s: %s", repo_id, type(exc).__name__, exc)  # the class, for the log only
        raise ModelNotFoundError(
            f"Cannot download {repo_id}: the Hugging Face hub cannot be reached. "
            f"Check the internet connection and try `chaoyang-desktop models download {repo_id}` again, "
            "or give a local copy with `--model DIR`."
        ) from exc
    if cancel is not None and cancel.is_set():
        raise CancelledError("Download cancelled.")
    return Path(str(folder))


def load_profile(location: ModelLocation) -> ModelProfile:
    """Read a model folder's config and hash its weights into a :class:`ModelProfile`."""
    config = read_model_config(location.model_dir)
    weights = find_weights(location.model_dir)
    return profile_from_config(config, location.model_dir, model_id=location.model_id, source=location.source,
                               weights_file=str(weights), weights_sha256=sha256_file(weights))
