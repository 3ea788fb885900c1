"""Where each token of a padded DPO call goes in packed rows, and how per-token outputs come back.

A padded DPO call holds ``2·B`` right-padded rows: [prompt + chosen] for pairs 0…B-1, then [prompt + rejected] for the
same pairs. ``pair_layout`` lays them end to end in packed rows with no padding inside a row, in one of two ways:

- ``share_prompt=False``: each row is a sequence of its own (restarting ``position_ids``, no attention mask:
  transformers separates them in every layer, ``tokens/packed_attention``).
- ``share_prompt=True``: a pair is one unit [prompt, chosen, last prompt token again, rejected] with a 4-D mask: the
  chosen reply sees the prompt, the rejected reply sees the prompt without its last token, the copy of that token
  and itself, never the chosen reply; positions continue from the prompt in both replies. Every token then has the
  context (and position) it has in its padded row, so the prompt is computed once per pair instead of twice.

Each position is scored with the label its token has in the padded call (``shift_labels``), and ``unpack`` gathers
the packed results into the padded ``(2·B, length - 1)`` layout, 0 where the padded call has no label (as TRL's fused
LM head gives).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

IGNORE = -100


@dataclass
class PairLayout:
    """Packed rows for a padded call, and the map back."""

    input_ids: torch.Tensor  # (packed rows, width)
    position_ids: torch.Tensor  # (packed rows, width); padding 0
    shift_labels: torch.Tensor  # label scored at each packed position (-100: none)
    source: torch.Tensor  # (rows, length - 1): flat packed index holding each padded position's result
    scored: torch.Tensor  # (rows, length - 1): padded positions with a label
    keep: torch.Tensor | None = None  # (packed rows, width, width) who attends to whom; None: from position_ids


def _shared_prompt(input_ids: torch.Tensor, labels: torch.Tensor, lengths: list[int], i: int, j: int) -> int:
    """Length of the prompt rows ``i`` and ``j`` share (their unlabelled, equal start), 0 when sharing is not exact."""
    labelled = (labels[i] != IGNORE).nonzero()
    p = int(labelled[0]) if len(labelled) else 0
    other = (labels[j] != IGNORE).nonzero()
    if p < 1 or not len(other) or int(other[0]) != p or p >= min(lengths[i], lengths[j]):
        return 0
    return p if torch.equal(input_ids[i, :p], input_ids[j, :p]) else 0


def pair_layout(input_ids: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor, *, share_prompt: bool,
                capacity: int | None = None) -> PairLayout:
    """Lay out a padded call (rows of ``lengths`` real tokens, labels -100 outside completions) in packed rows of at
    most ``capacity`` tokens (default: 256 or twice the padded width; wider rows cost attention, narrower ones
    padding), units placed largest first into the fullest row that holds them."""
    rows, width = input_ids.shape
    sizes = lengths.tolist()
    half = rows // 2
    # a unit: list of (padded row, column, segment) tokens; segment 0 prompt, 1 chosen, 2 rejected
    units: list[list[tuple[int, int, int]]] = []
    if share_prompt and rows % 2 == 0:
        for i in range(half):
            j = i + half
            p = _shared_prompt(input_ids, labels, sizes, i, j)
            if not p:
                units += [[(i, c, 1) for c in range(sizes[i])], [(j, c, 2) for c in range(sizes[j])]]
                continue
            units.append([(i, c, 0) for c in range(p)] + [(i, c, 1) for c in range(p, sizes[i])]
                         + [(j, p - 1, 2)] + [(j, c, 2) for c in range(p, sizes[j])])
    else:
        units = [[(r, c, 1 + (r >= half)) for c in range(sizes[r])] for r in range(rows)]
    capacity = max(capacity or max(256, 2 * width), max(len(u) for u in units))
    bins: list[list[int]] = []  # unit indices per packed row, best fit decreasing
    room: list[int] = []
    for u in sorted(range(len(units)), key=lambda u: -len(units[u])):
        fits = [b for b in range(len(bins)) if room[b] >= len(units[u])]
        if fits:
            b = min(fits, key=lambda b: room[b])
            bins[b].append(u)
            room[b] -= len(units[u])
        else:
            bins.append([u])
            room.append(capacity - len(units[u]))
    packed_width = max(capacity - r for r in room)
    next_labels = torch.cat([labels[:, 1:], labels.new_full((rows, 1), IGNORE)], dim=1).tolist()
    ids = input_ids.tolist()
    out_ids = [[0] * packed_width for _ in bins]
    out_pos = [[0] * packed_width for _ in bins]
    out_lab = [[IGNORE] * packed_width for _ in bins]
    group = [[-1 - k for k in range(packed_width)] for _ in bins]  # padding: a group of its own
    segment = [[3] * packed_width for _ in bins]
    source = [[0] * width for _ in range(rows)]
    last_prompt = [[False] * packed_width for _ in bins]
    for b, members in enumerate(bins):
        k = 0
        for u in members:
            unit = units[u]
            for t, (r, c, seg) in enumerate(unit):
                out_ids[b][k], out_pos[b][k], out_lab[b][k] = ids[r][c], c, next_labels[r][c]
                group[b][k], segment[b][k] = u, seg
                last_prompt[b][k] = seg == 0 and (t + 1 == len(unit) or unit[t + 1][2] != 0)
                flat = b * packed_width + k
                source[r][c] = flat
                if seg == 0:  # the rejected row's prompt: the same packed token (its label is -100 there)
                    source[r + half][c] = flat
                k += 1
    device = input_ids.device

    def as_long(values: list) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.long, device=device)

    layout = PairLayout(input_ids=as_long(out_ids), position_ids=as_long(out_pos), shift_labels=as_long(out_lab),
                        source=as_long(source)[:, : width - 1], scored=labels[:, 1:] != IGNORE)
    if share_prompt:
        layout.keep = attention_keep(as_long(group), as_long(segment), torch.tensor(last_prompt, device=device))
    return layout


def attention_keep(group: torch.Tensor, segment: torch.Tensor, last_prompt: torch.Tensor) -> torch.Tensor:
    """(rows, width, width) bool: query q attends key k when they belong to the same unit, k is not after q, and k is
    the prompt (the rejected reply skips the prompt's last token: it has its own copy) or in q's own reply."""
    width = group.size(1)
    same = group[:, :, None] == group[:, None, :]
    causal = torch.ones(width, width, dtype=torch.bool, device=group.device).tril()
    q_seg, k_seg = segment[:, :, None], segment[:, None, :]
    prompt_key = (k_seg == 0) & ~((q_seg == 2) & last_prompt[:, None, :])
    return same & causal & (prompt_key | ((k_seg == q_seg) & (k_seg > 0)))


def unpack(value: torch.Tensor | None, layout: PairLayout) -> torch.Tensor | None:
    """A per-token output of the packed rows in the padded ``(rows, length - 1)`` layout (0 where no label)."""
    if value is None:
        return None
    return value.flatten()[layout.source].masked_fill(~layout.scored, 0)
