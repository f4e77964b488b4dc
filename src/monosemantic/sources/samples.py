"""ImageNet-1k class names, and neutral photos that ship with scikit-image and scikit-learn (plus a grey image).

The class names are the first WordNet lemma of each ImageNet-1k synset, in the standard class order (index 0 is
"tench"); the two names that repeat get a qualifier: "crane (bird)" / "crane (machine)", "maillot (tank suit)".
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import numpy as np

from monosemantic.errors import UserError

# Photos of scikit-image 0.2x that load without a download (some others need the optional `pooch`).
SKIMAGE_PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "coins", "horse", "rocket", "brick", "grass",
                  "gravel", "moon", "page", "text", "clock", "colorwheel", "logo", "immunohistochemistry",
                  "hubble_deep_field", "retina")


@cache
def imagenet_class_names() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names, by class index."""
    text = resources.files("monosemantic.sources").joinpath("imagenet_classes.txt").read_text(encoding="utf-8")
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(names) != 1000:
        raise UserError(f"the bundled ImageNet class list holds {len(names)} names, not 1000; reinstall monosemantic")
    return names


def _rgb(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img)
    if a.dtype != np.uint8:
        a = (np.clip(a, 0, 1) * 255).round().astype(np.uint8) if a.max() <= 1.0 else a.astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    return np.ascontiguousarray(a[:, :, :3])


def neutral_images(size: int = 224) -> dict[str, np.ndarray]:
    """Name -> RGB uint8 photo: scikit-image's sample photos that load offline, scikit-learn's two sample photos
    (``china``, ``flower``) and a mid-grey ``grey`` image of ``size`` pixels. A photo that cannot load here is
    left out, so the set is whatever this installation has."""
    out: dict[str, np.ndarray] = {}
    try:
        import skimage.data as data

        for name in SKIMAGE_PHOTOS:
            try:
                out[name] = _rgb(getattr(data, name)())
            except (AttributeError, ModuleNotFoundError, OSError, ValueError):
                continue
    except ImportError:
        pass
    try:
        from sklearn.datasets import load_sample_images

        sk = load_sample_images()
        for fname, img in zip(sk.filenames, sk.images, strict=True):
            out[fname.rsplit("/", 1)[-1].split(".")[0]] = _rgb(img)
    except (ImportError, OSError):
        pass
    out["grey"] = np.full((size, size, 3), 128, dtype=np.uint8)
    return out
