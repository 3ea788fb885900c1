"""Terminal chat with a saved chat model: streaming replies, skills, 초기화, quit/exit/Ctrl-D; /good, /bad, /retry
and /edit on the last reply (kept with --feedback_log PATH).

    python recipes/chat.py --model runs/quickstart/final --feedback_log feedback.jsonl
    printf '안녕\n지금 몇 시야\n' | python recipes/chat.py --model runs/quickstart/final   # one reply per line
"""

from __future__ import annotations

import sys

from transformers import HfArgumentParser
from transformers.utils import logging as hf_logging

from chathuman_hf.chat import ChatSession
from chathuman_hf.chat.options import ChatModelArguments, TerminalArguments
from chathuman_hf.chat.terminal_commands import HELP, run_command
from chathuman_hf.core.cli import SHORT_USAGE, run_cli
from chathuman_hf.data.feedback_log import FeedbackLog
from chathuman_hf.skills import SkillsConfig, build_router

QUIT = {"quit", "exit", "q", "종료", "그만"}
WELCOME = "이랑이와 대화를 시작해요. ‘뭐 할 수 있어?’로 기능을, ‘초기화’로 새 대화를, quit 또는 Ctrl-D로 끝내요."


def main(argv: list[str] | None = None) -> int:
    parser = HfArgumentParser((ChatModelArguments, TerminalArguments, SkillsConfig), usage=SHORT_USAGE)
    args, terminal, skills = parser.parse_args_into_dataclasses(args=argv)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    session = ChatSession.from_pretrained(args.model, preset=args.preset, device=args.device, skills=skills,
                                          use_skills=not args.no_skills, max_turns=args.max_turns,
                                          chat_template=args.chat_template, speech_level=args.speech_level,
                                          **args.preset_overrides())
    if terminal.feedback_log:
        session.turns.log = FeedbackLog(terminal.feedback_log, model=session.engine.name, source="terminal",
                                        revision=getattr(session.engine, "revision", None))
    if args.no_skills:  # the model answers everything; only 초기화 (a new conversation) stays in the terminal
        others = [skill.name for skill in build_router().skills if skill.name != "reset"]
        session.router = build_router(SkillsConfig(disabled=others))
    interactive = sys.stdin.isatty()
    notes = sys.stdout if interactive else sys.stderr  # piped: stdout holds only the replies
    print(WELCOME, HELP, sep="\n", file=notes, flush=True)
    while True:
        try:
            line = input("나> " if interactive else "")
        except EOFError:
            break
        except KeyboardInterrupt:
            print()
            break
        text = line.strip()
        if not text:
            continue
        if text.lower() in QUIT:
            break
        try:
            if run_command(session, text, write=lambda piece: print(piece, end="", flush=True),
                           note=lambda line: print(line, file=notes, flush=True),
                           prompt="이랑> " if interactive else ""):
                continue
            if interactive:
                print("이랑> ", end="", flush=True)
            for piece in session.stream(text):
                print(piece, end="", flush=True)
        except KeyboardInterrupt:
            print(" (중단)", flush=True)
            continue
        print(flush=True)
    if interactive:
        print("안녕, 또 이야기해요!")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
