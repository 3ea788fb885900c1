"""A preallocated KV cache with one slot per running reply: joining and leaving copy nothing of the other rows.

Each layer holds ``keys``/``values`` of shape ``[slots, kv_heads, capacity, head_dim]``. A slot's tokens are
right-aligned from column 0 (``lengths[slot]`` of them); a decode step writes every row's new key at its own length
and attends over the first ``width = max(lengths) + 1`` columns, a view of the buffers, with a 2-D padding mask. So a
reply joining writes only its own prompt into a free slot, one leaving frees its slot, and no step re-pads or
concatenates (transformers' ``DynamicCache`` concatenates the whole batch's keys per layer per step, and a
left-padded batch needs re-padding on every join). ``StaticCache`` does not fit: its rows share one write position.
The buffers grow (one copy) only when a joiner needs more slots or columns than allocated, by doubling.
"""

from __future__ import annotations

import torch
from transformers import Cache
from transformers.cache_utils import DynamicLayer


def _round_up(n: int) -> int:
    return 1 << max(3, (n - 1).bit_length())


class SlotLayer(DynamicLayer):
    """One layer's slot buffers; ``update`` (a decode step, one new token per row) writes in place."""

    def __init__(self, owner: SlotCache, keys: torch.Tensor, values: torch.Tensor) -> None:
        super().__init__()
        self.owner, self.keys, self.values = owner, keys, values
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        o = self.owner
        n = key_states.shape[0]
        self.keys[o.rows[:n], :, o.write_at] = key_states[:, :, -1]
        self.values[o.rows[:n], :, o.write_at] = value_states[:, :, -1]
        return self.keys[:n, :, :o.width], self.values[:n, :, :o.width]

    def get_seq_length(self) -> int:
        return self.owner.width - 1

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.owner.width - 1 + query_length, 0

    def get_max_length(self) -> int:
        return self.keys.shape[2]


class SlotCache(Cache):
    """The batch's KV cache: slot buffers per layer, each slot's length, and the next step's write positions."""

    def __init__(self, like: Cache, slots: int, capacity: int) -> None:
        layers = []
        for layer in like.layers:
            shape = (_round_up(slots), layer.keys.shape[1], _round_up(capacity), layer.keys.shape[3])
            layers.append(SlotLayer(self, layer.keys.new_zeros(shape), layer.values.new_zeros(shape)))
        super().__init__(layers=layers)
        device = like.layers[0].keys.device
        self.lengths = torch.zeros(layers[0].keys.shape[0], dtype=torch.long, device=device)
        self.rows = torch.arange(layers[0].keys.shape[0], device=device)
        self.write_at = self.lengths[:0]
        self.width = 1
        self.grows = 0  # how often the buffers were reallocated (a copy); 0 while joiners fit

    @property
    def slots(self) -> int:
        return self.layers[0].keys.shape[0]

    @property
    def capacity(self) -> int:
        return self.layers[0].keys.shape[2]

    def reserve(self, slots: int, capacity: int) -> None:
        """Make room for ``slots`` slots of ``capacity`` columns: reallocate (one copy) only if they do not fit."""
        if slots <= self.slots and capacity <= self.capacity:
            return
        slots, capacity = max(self.slots, _round_up(slots)), max(self.capacity, _round_up(capacity))
        for layer in self.layers:
            for name in ("keys", "values"):
                old = getattr(layer, name)
                new = old.new_zeros((slots, old.shape[1], capacity, old.shape[3]))
                new[:old.shape[0], :, :old.shape[2]] = old
                setattr(layer, name, new)
        self.lengths = torch.cat([self.lengths, self.lengths.new_zeros(slots - self.lengths.shape[0])])
        self.rows = torch.arange(slots, device=self.rows.device)
        self.grows += 1

    def put(self, slot: int, prefilled: Cache, row: int, length: int) -> None:
        """Copy row ``row``'s last ``length`` prefilled columns (its prompt, left-padded there) into ``slot``."""
        for layer, new in zip(self.layers, prefilled.layers, strict=True):
            layer.keys[slot, :, :length] = new.keys[row, :, -length:]
            layer.values[slot, :, :length] = new.values[row, :, -length:]
        self.lengths[slot] = length

    def step_inputs(self, n: int, alive: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Prepare a decode step over slots ``[0, n)``: the 2-D attention mask and the position ids of the new
        tokens (each row's length). Free slots (``alive`` False) attend to column 0 only and keep length 0."""
        width = int(self.lengths[:n].max()) + 1
        if width > self.capacity:  # a reply longer than its joiner reserved (no max_new_tokens): grow once
            self.reserve(self.slots, width)
        lengths = self.lengths[:n]
        self.write_at = lengths.clone()
        self.width = width
        mask = torch.arange(self.width, device=lengths.device)[None, :] <= lengths[:, None]
        self.lengths[:n] += alive.to(lengths.dtype)
        return mask.long(), self.write_at[:, None]

    def free(self, slot: int) -> None:
        self.lengths[slot] = 0
