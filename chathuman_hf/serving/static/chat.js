// The chat page: every message is inserted with textContent (never parsed as HTML), so text stays text.
(() => {
  "use strict";
  const log = document.getElementById("log");
  const form = document.getElementById("composer");
  const input = document.getElementById("input");
  const send = document.getElementById("send");
  const counter = document.getElementById("counter");
  const template = document.getElementById("bubble-template");
  const maxChars = Number(document.body.dataset.maxChars || 1000);
  const feedbackKept = document.body.dataset.feedback === "on";

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }
  let sessionId = sessionStorage.getItem("chathuman-session") || newId();
  sessionStorage.setItem("chathuman-session", sessionId);

  // Korean time (KST), like the time skill's answers, whatever the browser's own time zone is.
  function clock() {
    return new Date().toLocaleTimeString("ko-KR", { hour: "numeric", minute: "2-digit", timeZone: "Asia/Seoul" })
      + " KST";
  }

  function bubble(who, text, skill) {
    const row = template.content.firstElementChild.cloneNode(true);
    row.classList.add(who);
    row.querySelector(".text").textContent = text;
    row.querySelector(".skill").textContent = skill || "";
    const time = row.querySelector("time");
    time.textContent = clock();
    time.dateTime = new Date().toISOString();
    time.title = "한국 시간 (KST)";
    log.appendChild(row);
    log.scrollTop = log.scrollHeight;
    return row;
  }

  const SKILL_NAMES = { time: "시각", lotto: "로또", keyboard: "영타 변환", profanity: "필터", reset: "초기화",
                        weather: "날씨", stock: "주가", help: "도움말" };

  async function readEvents(response, onEvent) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        for (const line of block.split("\n")) {
          if (line.startsWith("data: ")) onEvent(JSON.parse(line.slice(6)));
        }
      }
    }
  }

  async function postJson(url, body) {
    const response = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" },
                                        body: JSON.stringify({ session_id: sessionId, ...body }) });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error((data.error && data.error.message) || `HTTP ${response.status}`);
    return data;
  }

  // Streams a reply into row's bubble (server-sent events: delta pieces, then done); returns the done event.
  async function streamInto(row, url, body) {
    const textNode = row.querySelector(".text");
    row.classList.add("typing");
    const response = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" },
                                        body: JSON.stringify({ session_id: sessionId, ...body }) });
    if (!response.ok) {
      const data = await response.json().catch(() => ({}));
      throw new Error((data.error && data.error.message) || `HTTP ${response.status}`);
    }
    let reply = "", done = null;
    await readEvents(response, (event) => {
      if (event.type === "delta") {
        if (!reply) textNode.textContent = "";
        row.classList.remove("typing");
        reply += event.text;
        textNode.textContent = reply;
        log.scrollTop = log.scrollHeight;
      } else if (event.type === "done") {
        row.classList.remove("typing");
        textNode.textContent = event.reply;
        done = event;
      } else if (event.type === "error") {
        throw new Error(event.message);
      }
    });
    if (!done) throw new Error("the reply ended early");
    return done;
  }

  async function sendMessage(text) {
    bubble("me", text);
    log.querySelectorAll(".actions .retry, .actions .siblings").forEach((el) => el.remove());  // 다시: newest only
    const row = bubble("bot", "");
    const textNode = row.querySelector(".text");
    send.disabled = true;
    try {
      const done = await streamInto(row, "/page/api/chat/stream", {
        message: text, speech_level: document.getElementById("speech-level").value || null });
      row.querySelector(".skill").textContent = SKILL_NAMES[done.skill] || done.skill || "";
      if (done.index !== null && done.index !== undefined) addActions(row, done.index, done.reply);
    } catch (err) {
      row.classList.remove("typing");
      row.classList.add("error");
      textNode.textContent = "죄송해요, 답을 만들지 못했어요. (" + err.message + ")";
    } finally {
      row.dataset.done = "1";
      send.disabled = false;
      input.focus();
    }
  }

  // 👍/👎 (when ratings are kept), 다시 with ‹ 1/2 ›, and 고치기 under a reply of the model.
  function addActions(row, index, text) {
    const actions = document.getElementById("actions-template").content.firstElementChild.cloneNode(true);
    const state = { index, replies: [text], shown: 0, ratings: {} };
    const status = actions.querySelector(".status");
    const say = (message) => { status.textContent = message; };
    if (!feedbackKept) actions.querySelectorAll(".rate").forEach((b) => b.remove());
    row.dataset.index = String(index);
    row.appendChild(actions);

    function show(sibling, reply) {
      state.shown = sibling;
      state.replies[sibling] = reply;
      row.querySelector(".text").textContent = reply;
      const siblings = actions.querySelector(".siblings");
      if (siblings) {
        siblings.hidden = state.replies.length < 2;
        siblings.querySelector(".pos").textContent = `${sibling + 1}/${state.replies.length}`;
        siblings.querySelector(".prev").disabled = sibling === 0;
        siblings.querySelector(".next").disabled = sibling === state.replies.length - 1;
      }
      actions.querySelectorAll(".rate").forEach((b) => {
        b.setAttribute("aria-pressed", String(state.ratings[sibling] === (b.classList.contains("up") ? 1 : -1)));
      });
    }

    async function busy(work) {
      const buttons = [...actions.querySelectorAll("button")];
      buttons.forEach((b) => { b.disabled = true; });
      try { await work(); } catch (err) { say("안 됐어요: " + err.message); } finally {
        buttons.forEach((b) => { if (b.isConnected) b.disabled = false; });
        show(state.shown, state.replies[state.shown]);
      }
    }

    actions.querySelectorAll(".rate").forEach((button) => button.addEventListener("click", () => busy(async () => {
      const rating = button.classList.contains("up") ? 1 : -1;
      await postJson("/page/api/rate", { index, rating, sibling: state.shown });
      state.ratings[state.shown] = rating;
      say(rating === 1 && state.replies.length > 1 ? "이 답을 골랐어요" : "평가를 기록했어요");
    })));
    actions.querySelectorAll(".nav").forEach((button) => button.addEventListener("click", () => busy(async () => {
      const sibling = state.shown + (button.classList.contains("next") ? 1 : -1);
      const data = await postJson("/page/api/select", { index, sibling });
      show(data.sibling, data.reply);
      say("");
    })));
    actions.querySelector(".retry").addEventListener("click", () => busy(async () => {
      send.disabled = true;
      try {
        const done = await streamInto(row, "/page/api/regenerate/stream", { index });
        state.replies.length = done.siblings;
        show(done.sibling, done.reply);
        say("");
      } catch (err) {
        row.querySelector(".text").textContent = state.replies[state.shown];
        row.classList.remove("typing");
        throw err;
      } finally {
        send.disabled = false;
      }
    }));
    actions.querySelector(".edit").addEventListener("click", () => {
      if (row.querySelector(".edit-box")) return;
      const box = document.getElementById("edit-template").content.firstElementChild.cloneNode(true);
      const area = box.querySelector("textarea");
      area.value = row.querySelector(".text").textContent;
      box.querySelector(".cancel").addEventListener("click", () => box.remove());
      area.addEventListener("keydown", (e) => {  // as in the composer: Enter saves, Shift+Enter a new line, Esc cancels
        if (e.key === "Escape") box.remove();
        if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); box.requestSubmit(); }
      });
      box.addEventListener("submit", (e) => {
        e.preventDefault();
        busy(async () => {
          const data = await postJson("/page/api/edit", { index, text: area.value });
          row.querySelector(".text").textContent = data.reply;
          row.classList.add("edited");
          row.querySelector(".skill").textContent = "고친 답";
          actions.querySelectorAll(".rate, .retry, .siblings").forEach((el) => el.remove());
          state.replies[state.shown] = data.reply;
          box.remove();
          say(data.events ? "고친 답을 기록했어요" : "고쳤어요");
        });
      });
      row.insertBefore(box, actions);
      area.focus();
    });
    show(0, text);
  }

  function submit() {
    const text = input.value.trim();
    if (!text || send.disabled) return;
    if (text.length > maxChars) return;
    input.value = "";
    updateCounter();
    sendMessage(text);
  }

  function updateCounter() {
    counter.textContent = `${input.value.length}/${maxChars}`;
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 140) + "px";
  }

  form.addEventListener("submit", (e) => { e.preventDefault(); submit(); });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
  });
  input.addEventListener("input", updateCounter);
  document.querySelectorAll(".example").forEach((button) => {
    button.addEventListener("click", () => {
      input.value = button.textContent;  // chips hold example messages only (descriptions are separate notes)
      submit();
    });
  });
  document.getElementById("reset").addEventListener("click", async () => {
    await fetch("/page/api/reset", { method: "POST", headers: { "Content-Type": "application/json" },
                                body: JSON.stringify({ session_id: sessionId }) }).catch(() => null);
    sessionId = newId();
    sessionStorage.setItem("chathuman-session", sessionId);
    log.querySelectorAll(".row").forEach((row) => row.remove());
    bubble("bot", "새 대화를 시작했어요. 무슨 이야기를 해 볼까요?", "초기화");
  });
  input.focus();
})();
