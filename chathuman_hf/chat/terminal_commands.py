"""The terminal chat's commands on the last reply: ``/good`` and ``/bad`` (👍/👎, a comment may follow), ``/retry``
(다시: a new reply next to it) and ``/edit TEXT`` (the reply you wanted instead). Ratings go to the session's feedback
log (``chat.py --feedback_log PATH``); 다시 and edits work without one."""

from __future__ import annotations

import re
from collections.abc import Callable

from chathuman_hf.chat.reply_turns import FeedbackOff
from chathuman_hf.chat.session import ChatSession

COMMAND = re.compile(r"/([A-Za-z]+)(?:\s+(.*))?", re.DOTALL)
COMMANDS = ("good", "bad", "retry", "edit")
HELP = "/good, /bad [이유]: 마지막 답 평가 · /retry: 다시 답하기 · /edit 바라던 답: 마지막 답 고치기"
NOT_KEPT = "평가는 저장되지 않아요: chat.py를 --feedback_log PATH로 시작하면 저장돼요."


def run_command(session: ChatSession, line: str, *, write: Callable[[str], None], note: Callable[[str], None],
                prompt: str = "") -> bool:
    """Run ``line`` when it is a command (``False``: it is a message for the model). ``write`` shows a reply's
    pieces (``prompt`` first, ``"\\n"`` last), ``note`` one line for the person."""
    match = COMMAND.fullmatch(line.strip())
    if match is None:
        return False
    name, rest = match.group(1).lower(), (match.group(2) or "").strip()
    if name not in COMMANDS:
        note(f"모르는 명령이에요: /{name} ({HELP})")
        return True
    if session.last_reply is not None and session.last_reply.index is None:
        note("마지막 답은 모델이 아니라 기능(시각, 로또, 초기화 …)의 답이에요: 모델의 답에 써 주세요.")
        return True
    turn = session.turns.latest()
    if turn is None:
        note("아직 모델의 답이 없어요: 먼저 말을 걸어 주세요.")
        return True
    try:
        if name == "retry":
            pieces = session.stream_regenerate(turn.index)
            first = next(pieces, "")  # a refusal comes before the prompt is shown
            write(prompt + first)
            for piece in pieces:
                write(piece)
            write("\n")
        elif name == "edit":
            if not rest:
                note("/edit 뒤에 바라던 답을 써 주세요 (예: /edit 나도 반가워!).")
            elif session.turns.edit(turn.index, rest):
                note("고친 답을 기록했어요. 대화는 고친 답에서 이어져요.")
            else:
                note("고쳤어요. 대화는 고친 답에서 이어져요.")
        else:
            written = session.turns.rate(turn.index, 1 if name == "good" else -1, comment=rest or None)
            kept = f" (다시 만든 답 {written - 1}개보다 이 답이 낫다고)" if written > 1 else ""
            note(("👍" if name == "good" else "👎") + f" 기록했어요{kept}.")
    except FeedbackOff:
        note(NOT_KEPT)
    except (LookupError, ValueError) as exc:
        note(str(exc))
    return True
