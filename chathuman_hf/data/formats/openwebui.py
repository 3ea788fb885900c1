"""Open WebUI's feedback export (Admin → Evaluations → Feedbacks → Export, ``GET /api/v1/evaluations/feedbacks/all
/export``) → pairs and ratings.

The export is a JSON array of Open WebUI's ``FeedbackModel`` (``backend/open_webui/models/feedbacks.py``):
``{id, user_id, version, type: "rating", data: {rating: 1|-1 (int or string), model_id, sibling_model_ids, reason,
comment, tags, details}, meta: {arena, chat_id, message_id, message_index, base_models}, snapshot: {chat: <the chat
as GET /api/v1/chats/{id} returns it>}, created_at, updated_at}``. The chat keeps its messages as a tree,
``chat.history.messages[id] = {id, parentId, childrenIds, role, content, model, ...}``.

- The context of a rated reply is its path from the root of the tree (with the chat's system prompt first).
- A 👍 and a 👎 on sibling replies (the same parent in the same chat: a regenerated reply, an arena answer) become
  one DPO pair; every other rating is a KTO rating.
- Left out and counted: a rating whose message is not in its snapshot (``missing_message``), a message rated in
  two records (``duplicate_feedback``: the last updated counts) and, with ``--feedback_model``, ratings of other
  models' replies (``other_model``; ``arena_other_models`` for arena votes between other models only).
"""

from __future__ import annotations

from typing import Any

from .preference import BadRecord, Messages, message, text_of
from .rated import Counted, Entry, Rated, Read, pair_opposites, rating_value, wanted_model


def is_openwebui_feedback(obj: Any) -> bool:
    """A record of Open WebUI's feedback export (a ``rating`` with ``data`` and ``meta`` objects)."""
    return isinstance(obj, dict) and obj.get("type") == "rating" and isinstance(obj.get("data"), dict) \
        and isinstance(obj.get("meta"), dict)  # fmt: skip


def _chat(snapshot: Any) -> dict[str, Any]:
    """The chat body holding ``history``: ``snapshot.chat.chat`` (the chat as Open WebUI's API returns it), or
    ``snapshot.chat`` when a tool stored the body alone."""
    chat = snapshot.get("chat") if isinstance(snapshot, dict) else None
    if isinstance(chat, dict) and isinstance(chat.get("chat"), dict):
        chat = chat["chat"]
    if not isinstance(chat, dict) or not isinstance((chat.get("history") or {}).get("messages"), dict):
        raise Counted("missing_message", "no snapshot.chat.history.messages: the rated message cannot be found")
    return chat


def _path(messages: dict[str, Any], message_id: str) -> list[dict[str, Any]]:
    """The messages from the root of the tree down to ``message_id``."""
    path, seen, current = [], set(), message_id
    while current is not None:
        node = messages.get(current)
        if not isinstance(node, dict) or current in seen:
            raise Counted("missing_message", f"message {current!r} is not in the snapshot's history")
        seen.add(current)
        path.append(node)
        current = node.get("parentId")
    return path[::-1]


def _rated(index: int, where: str, obj: dict[str, Any], options: dict[str, Any]) -> tuple[Rated, tuple[Any, Any]]:
    data, meta = obj["data"], obj["meta"]
    label = rating_value(data.get("rating"), "data.rating")
    chat_id, message_id = meta.get("chat_id"), meta.get("message_id")
    if not isinstance(chat_id, str) or not isinstance(message_id, str):
        raise BadRecord("malformed_record", "meta.chat_id and meta.message_id must be strings")
    model, siblings = data.get("model_id"), data.get("sibling_model_ids") or []
    if not wanted_model(model, options):
        if meta.get("arena") and not any(wanted_model(m, options) for m in siblings):
            raise Counted("arena_other_models", f"an arena vote between {[model, *siblings]}, none of them in "
                          "--feedback_model")  # fmt: skip
        raise Counted("other_model", f"model_id {model!r} is not one of --feedback_model")
    chat = _chat(obj.get("snapshot"))
    path = _path(chat["history"]["messages"], message_id)
    if path[-1].get("role") != "assistant":
        raise BadRecord("not_one_reply", f"message {message_id!r} is a {path[-1].get('role')!r} message, not a reply")
    system = (chat.get("params") or {}).get("system") or chat.get("system")
    prompt: Messages = [{"role": "system", "content": system}] if isinstance(system, str) and system.strip() else []
    prompt += [message(node, f"history.messages[{node.get('id')!r}]") for node in path[:-1]]
    reply = text_of(path[-1].get("content"), f"history.messages[{message_id!r}].content")
    group = f"{chat_id}\n{path[-1].get('parentId')}"
    return Rated(index, where, group, prompt, reply, label), (chat_id, message_id)


def read_openwebui_export(entries: list[Entry], options: dict[str, Any], source: str) -> list[Read]:
    """Every record of an Open WebUI feedback export as a :class:`Read` (``source`` is unused: nothing is fatal)."""
    out: list[Read] = []
    found: list[tuple[Rated, tuple[Any, Any], Any]] = []
    for index, where, obj in entries:
        try:
            if not is_openwebui_feedback(obj):
                raise BadRecord("malformed_record", 'expected an Open WebUI feedback: {"type": "rating", "data": {…}, '
                                '"meta": {…}, "snapshot": {"chat": …}}')  # fmt: skip
            rated, key = _rated(index, where, obj, options)
            updated = obj.get("updated_at")
            found.append((rated, key, updated if isinstance(updated, (int, float)) else 0))
        except BadRecord as err:
            out.append(Read(index, where, 1, err))
    latest: dict[tuple[Any, Any], tuple[Any, Rated]] = {}
    for rated, key, updated in found:  # the last updated record of a message counts (the first of equals)
        if key not in latest or updated > latest[key][0]:
            latest[key] = (updated, rated)
    current = []
    for rated, key, _ in found:
        winner = latest[key][1]
        if winner is rated:
            current.append(rated)
        else:
            out.append(Read(rated.index, rated.where, 1, Counted("duplicate_feedback", f"{winner.where} rates the "
                                                                 "same message and was updated later")))  # fmt: skip
    return out + pair_opposites(current)
