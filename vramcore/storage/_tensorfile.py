"""What every checkpoint read from its header answers the same way: data bytes and bits per weight."""

from __future__ import annotations

from vramcore.model.spec import PARTS

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms at start-up)
if TYPE_CHECKING:
    from typing import Any


class TensorFile:
    """Mixin of the file readers' results; the class gives ``tensors`` and ``param_count``."""

    tensors: tuple[Any, ...]

    @property
    def param_count(self) -> int:  # pragma: no cover - every reader overrides it
        """Parameters the file holds."""
        raise NotImplementedError

    def data_bytes(self) -> int:
        """Return the exact bytes of all tensor data (``nbytes`` of every tensor)."""
        return sum(t.nbytes for t in self.tensors)

    def bytes_by(self, key: str, keys: tuple[str, ...] = ()) -> dict[str, int]:
        """Return the exact bytes of the tensors grouped by their attribute `key`; `keys` listed first (0 if none)."""
        out = dict.fromkeys(keys, 0)
        for t in self.tensors:
            name = getattr(t, key)
            out[name] = out.get(name, 0) + t.nbytes
        return out

    @property
    def bytes_by_part(self) -> dict[str, int]:
        """Exact bytes by :data:`vramcore.PARTS` entry."""
        return self.bytes_by("part", PARTS)

    @property
    def bits_per_weight(self) -> float:
        """``data bytes * 8 / param_count`` (0.0 for a file without parameters), as ``llama-quantize`` reports it."""
        n = self.param_count
        return self.data_bytes() * 8 / n if n else 0.0
