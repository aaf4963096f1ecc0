"""A user's own network as the image encoder: ``--encoder torch:package.module:fn``.

``fn()`` (imported by name, called with no arguments) returns a torch module, or any
callable, that maps a float batch ``(n, channels, size, size)`` to ``(n, d)`` features
(a (n, d, 1, 1) output is flattened). Nothing is downloaded: ``fn`` loads its weights
from wherever the user keeps them, e.g.::

    # mynets.py
    import torch, torchvision
    def resnet18_features():
        net = torchvision.models.resnet18()
        net.load_state_dict(torch.load("/models/resnet18.pth"))   # local weights
        net.fc = torch.nn.Identity()
        return net

    longtail embed --encoder torch:mynets:resnet18_features --encoder-param size=224

Images are read like the pixels encoder's (EXIF orientation applied, resized to
``size``×``size``, ``mode`` RGB by default), scaled to [0, 1] and normalised with
``mean``/``std`` per channel (ImageNet's by default; ``normalize=false`` keeps [0, 1]).
Batched under ``torch.no_grad()``, on the GPU when one is present (``device``), one
vector chunk at a time, so `embed` stays resumable.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np

from longtail.encoders.pixels import MEDIA, PixelsEncoder
from longtail.errors import InputError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_callable(spec: str) -> Any:
    """``"package.module:fn"`` -> the object ``fn`` of that module; InputError naming
    what is wrong otherwise."""
    module_name, sep, attr = str(spec).partition(":")
    if not sep or not module_name or not attr:
        raise InputError(f"torch encoder {spec!r}: expected package.module:function, e.g. "
                         "mynets:resnet18_features")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(f"torch encoder {spec!r}: cannot import {module_name!r} ({exc})") \
            from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise InputError(f"torch encoder {spec!r}: {module_name!r} has no callable {attr!r}")
    return fn


class TorchImageEncoder(PixelsEncoder):
    """Images → the features of the network ``fn`` builds (see the module doc)."""

    name: ClassVar[str] = "torch"

    def __init__(self, fn: str | None = None, media_root: str | None = None, size: int = 224,
                 mode: str | None = "RGB", normalize: bool = True, batch: int = 64,
                 device: str | None = None, dim: int | None = None) -> None:
        if not fn:
            raise InputError("the torch encoder needs fn: --encoder torch:package.module:fn")
        super().__init__(media_root=media_root, size=size, components=1, mode=mode or "RGB")
        self.fn = fn
        self.normalize = bool(normalize)
        self.batch = int(batch)
        self.device = device
        self._dim = dim
        self._net: Any = None

    def _torch(self) -> Any:
        try:
            import torch
        except ImportError:  # pragma: no cover - the extra is installed by `make test`
            raise InputError("the torch encoder needs torch: pip install 'longtail[torch]'") \
                from None
        return torch

    def _network(self) -> Any:
        if self._net is None:
            torch = self._torch()
            self._phase(f"loading {self.fn}")
            net = load_callable(self.fn)()
            if not callable(net):
                raise InputError(f"torch encoder {self.fn!r}: fn() returned "
                                 f"{type(net).__name__}, not a module or callable")
            dev = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            if hasattr(net, "to"):
                net = net.to(dev)
            if hasattr(net, "eval"):
                net.eval()
            self._net, self._dev = net, dev
        return self._net

    def _features(self, pixels: np.ndarray) -> np.ndarray:
        torch = self._torch()
        net = self._network()
        ch = 1 if self.mode == "L" else 3
        x = pixels.reshape(len(pixels), self.size, self.size, ch).transpose(0, 3, 1, 2)
        if self.normalize and ch == 3:
            mean = np.asarray(IMAGENET_MEAN, np.float32)[None, :, None, None]
            std = np.asarray(IMAGENET_STD, np.float32)[None, :, None, None]
            x = (x - mean) / std
        out = []
        with torch.no_grad():
            for start in range(0, len(x), self.batch):
                t = torch.from_numpy(np.ascontiguousarray(x[start:start + self.batch]))
                y = net(t.to(self._dev))
                out.append(y.reshape(len(t), -1).float().cpu().numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.dim),
                                                                          np.float32)

    def fit(self, batches: Iterable[dict]) -> None:
        """Learn nothing: run the network on one image to know the dimension."""
        if self._dim is not None:
            return
        first = next((m.get(MEDIA) for b in batches for m in b["metadata"]), None)
        if first is None:
            raise InputError("the torch encoder found no image to run on")
        self._dim = int(self._features(self._pixels([first])).shape[1])

    @property
    def dim(self) -> int:
        if self._dim is None:
            raise InputError("torch encoder: the dimension is known after fit")
        return self._dim

    def project(self, pixels: np.ndarray) -> np.ndarray:
        return self._features(np.asarray(pixels, dtype=np.float32))

    def encode(self, batch: dict) -> np.ndarray:
        return self._features(self._pixels([m.get(MEDIA) for m in batch["metadata"]]))

    def config(self) -> dict[str, Any]:
        return {"fn": self.fn, "media_root": self.media_root, "size": self.size,
                "mode": self.mode, "normalize": self.normalize, "batch": self.batch,
                "device": self.device, "dim": self._dim}

    def describe(self) -> dict[str, Any]:
        return {"dim": self._dim, "fn": self.fn, "size": self.size, "mode": self.mode}
