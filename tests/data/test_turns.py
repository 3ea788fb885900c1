"""Turn rules: role assignment, merging, trailing user, pair requirement, role swap, max turns."""

from __future__ import annotations

from chathuman_hf.data.turns import (
    TurnOptions,
    assign_roles,
    build_messages,
    merge_consecutive,
    normalize_turns,
    role_swapped,
    split_max_turns,
)


def u(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def a(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def test_first_speaker_is_user_and_roles_alternate() -> None:
    assert assign_roles(["P01", "P02", "P02", "P01", "P03"], [""] * 5) == [
        "user",
        "assistant",
        "assistant",
        "user",
        "assistant",
    ]


def test_given_roles_are_kept() -> None:
    assert assign_roles(["x", "y"], ["assistant", "user"]) == ["assistant", "user"]


def test_first_speaker_role_option() -> None:
    assert assign_roles(["P01", "P02"], ["", ""], "assistant") == ["assistant", "user"]


def test_merge_consecutive_with_space() -> None:
    assert merge_consecutive(
        ["user", "assistant", "assistant", "user"], ["점심 먹었어?", "아직", "김밥 먹을까 해", "굿"]
    ) == [
        u("점심 먹었어?"),
        a("아직 김밥 먹을까 해"),
        u("굿"),
    ]


def test_trailing_user_turn_dropped() -> None:
    messages, drops = build_messages(["A", "B", "A"], ["", "", ""], ["요즘 뭐 봐?", "드라마", "뭔데"], TurnOptions())
    assert messages == [u("요즘 뭐 봐?"), a("드라마")]
    assert drops == ["trailing_user_turn"]


def test_trailing_user_kept_when_switched_off() -> None:
    messages, drops = build_messages(["A", "B", "A"], [""] * 3, ["1", "2", "3"], TurnOptions(drop_trailing_user=False))
    assert messages == [u("1"), a("2"), u("3")]
    assert drops == []


def test_no_pair_dropped() -> None:
    assert normalize_turns([u("혼잣말")]) == ([], ["trailing_user_turn", "no_user_assistant_pair"])
    assert normalize_turns([a("먼저 말함")]) == ([], ["leading_assistant_turn", "no_user_assistant_pair"])


def test_system_leading_kept_misplaced_dropped() -> None:
    messages = [{"role": "system", "content": "친절하게"}, u("안녕"), {"role": "system", "content": "x"}, a("반가워")]
    assert normalize_turns(messages) == (
        [{"role": "system", "content": "친절하게"}, u("안녕"), a("반가워")],
        ["misplaced_system_message"],
    )


def test_role_swap() -> None:
    dialogue = [u("u1"), a("a1"), u("u2"), a("a2")]
    assert role_swapped(dialogue) == [u("a1"), a("u2")]
    assert role_swapped([u("u1"), a("a1")]) == []
    assert role_swapped([{"role": "system", "content": "s"}, *dialogue]) == [u("a1"), a("u2")]


def test_split_max_turns() -> None:
    dialogue = [{"role": "system", "content": "s"}, u("1"), a("2"), u("3"), a("4"), u("5"), a("6")]
    assert split_max_turns(dialogue, 4) == [
        [{"role": "system", "content": "s"}, u("1"), a("2"), u("3"), a("4")],
        [{"role": "system", "content": "s"}, u("5"), a("6")],
    ]
    assert split_max_turns(dialogue, 3) == [dialogue[:3], [dialogue[0], *dialogue[3:5]], [dialogue[0], *dialogue[5:]]]
    assert split_max_turns(dialogue, None) == [dialogue]
