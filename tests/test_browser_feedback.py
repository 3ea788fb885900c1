"""👍/👎, 다시 with ‹ 1/2 ›, and 고치기 clicked in the real headless Chromium page: the feedback log gets the lines."""

from __future__ import annotations

import json

import pytest

from chathuman_hf.serving import create_app
from chathuman_hf.serving.runner import serve_in_thread
from chathuman_hf.skills import SkillsConfig
from tests.test_browser import CHROMIUM, browser  # noqa: F401 (the browser fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent: install Debian's chromium to run the "
                                                     "browser tests (.ci/run does)"),
]


def serve(model_dir, feedback_log=None):
    app = create_app(model_dir, preset="greedy", preset_overrides={"max_new_tokens": 6},
                     skills=SkillsConfig(disabled=["weather", "stock"]), feedback_log=feedback_log)
    return serve_in_thread(app)


def log_lines(path, count, page):
    """The log's lines once there are ``count`` (the page's request may still be on its way)."""
    for _ in range(100):
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        if len(lines) >= count:
            return [json.loads(line) for line in lines]
        page.wait_for_timeout(100)
    raise AssertionError(f"{path} has {len(lines)} lines, expected {count}")


def say(page, text, nth):
    page.fill("#input", text)
    page.press("#input", "Enter")
    page.wait_for_selector(f".row.bot[data-done='1'] >> nth={nth}", timeout=30_000)
    return page.locator(".row.bot").nth(nth)


def test_buttons_write_the_feedback_log(browser, tiny_model_dir, tmp_path):  # noqa: F811
    path = tmp_path / "feedback.jsonl"
    with serve(tiny_model_dir, path) as url:
        page = browser.new_page(viewport={"width": 900, "height": 900}, locale="ko-KR")
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url + "/")
        assert "평가는 학습 데이터로 저장돼요" in page.locator("#feedback-note").text_content()

        first = say(page, "안녕", 0)
        a = first.locator(".text").text_content()
        first.get_by_role("button", name="별로예요").click()
        expect_pressed(first, "별로예요")
        [down] = log_lines(path, 1, page)
        assert (down["event"], down["rating"], down["reply"], down["source"]) == ("rating", -1, a, "page")
        assert down["messages"] == [{"role": "user", "content": "안녕"}]

        first.get_by_role("button", name="다시 답하기").click()
        page.wait_for_function("document.querySelector('.row.bot .pos').textContent === '2/2'")
        b = first.locator(".text").text_content()
        assert b != a and first.get_by_role("button", name="별로예요").get_attribute("aria-pressed") == "false"
        first.get_by_role("button", name="이전 답").click()
        page.wait_for_function("document.querySelector('.row.bot .pos').textContent === '1/2'")
        assert first.locator(".text").text_content() == a
        assert first.get_by_role("button", name="별로예요").get_attribute("aria-pressed") == "true"

        second = say(page, "뭐 해?", 1)  # going on from version 1 keeps it over version 2
        [_, pair] = log_lines(path, 2, page)
        assert (pair["event"], pair["how"], pair["chosen"], pair["rejected"]) == ("pair", "retry", a, b)
        assert first.get_by_role("button", name="다시 답하기").count() == 0  # 다시 is on the newest reply only
        c1 = second.locator(".text").text_content()
        second.get_by_role("button", name="다시 답하기").click()
        page.wait_for_function("document.querySelectorAll('.row.bot')[1].querySelector('.pos').textContent === '2/2'")
        c2 = second.locator(".text").text_content()
        second.get_by_role("button", name="좋아요").click()
        expect_pressed(second, "좋아요")
        [_, _, up, kept] = log_lines(path, 4, page)
        assert (up["rating"], up["reply"]) == (1, c2)
        assert up["messages"] == [{"role": "user", "content": "안녕"}, {"role": "assistant", "content": a},
                                  {"role": "user", "content": "뭐 해?"}]
        assert (kept["how"], kept["chosen"], kept["rejected"]) == ("retry", c2, c1)
        assert second.locator(".status").text_content() == "이 답을 골랐어요"

        second.get_by_role("button", name="답 고치기").click()
        second.get_by_role("textbox", name="고친 답").press("Escape")  # Esc closes the box, nothing is written
        assert second.locator(".edit-box").count() == 0
        second.get_by_role("button", name="답 고치기").click()
        second.get_by_role("textbox", name="고친 답").fill("그냥 쉬고 있어. 너는?")
        second.get_by_role("button", name="고친 답 저장").click()
        page.wait_for_selector(".row.bot.edited")
        assert second.locator(".text").text_content() == "그냥 쉬고 있어. 너는?"
        [*_, edit] = log_lines(path, 5, page)
        assert (edit["how"], edit["chosen"], edit["rejected"]) == ("edit", "그냥 쉬고 있어. 너는?", c2)

        third = say(page, "내 번호 010-2345-6789로 연락해", 2)  # the edited reply is what the model saw
        third.get_by_role("button", name="좋아요").click()
        [*_, last] = log_lines(path, 6, page)
        assert last["messages"][3] == {"role": "assistant", "content": "그냥 쉬고 있어. 너는?"}
        assert "010-2345-6789" not in path.read_text(encoding="utf-8")
        assert errors == []
        page.close()


def expect_pressed(row, name):
    row.page.wait_for_function("([row, name]) => row.querySelector(`[aria-label='${name}']`)"
                               ".getAttribute('aria-pressed') === 'true'", arg=[row.element_handle(), name])


def test_the_page_says_ratings_are_not_kept(browser, tiny_model_dir):  # noqa: F811
    with serve(tiny_model_dir) as url:
        page = browser.new_page(locale="ko-KR")
        page.goto(url + "/")
        assert "평가는 저장되지 않아요" in page.locator("#feedback-note").text_content()
        row = say(page, "안녕", 0)
        assert row.get_by_role("button", name="좋아요").count() == 0
        row.get_by_role("button", name="다시 답하기").click()  # 다시 works without the log
        page.wait_for_function("document.querySelector('.row.bot .pos').textContent === '2/2'")
        assert page.locator(".row.bot").count() == 1
        skill = say(page, "지금 몇 시야", 1)
        assert skill.locator(".actions").count() == 0  # a skill's answer is not the model's: nothing to rate
        page.close()
