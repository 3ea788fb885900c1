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

  async function sendMessage(text) {
    bubble("me", text);
    const row = bubble("bot", "");
    row.classList.add("typing");
    const textNode = row.querySelector(".text");
    send.disabled = true;
    try {
      const response = await fetch("/page/api/chat/stream", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ session_id: sessionId, message: text,
                               speech_level: document.getElementById("speech-level").value || null }),
      });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        throw new Error((body.error && body.error.message) || `HTTP ${response.status}`);
      }
      let reply = "";
      await readEvents(response, (event) => {
        if (event.type === "delta") {
          row.classList.remove("typing");
          reply += event.text;
          textNode.textContent = reply;
          log.scrollTop = log.scrollHeight;
        } else if (event.type === "done") {
          row.classList.remove("typing");
          textNode.textContent = event.reply;
          row.querySelector(".skill").textContent = SKILL_NAMES[event.skill] || event.skill || "";
          row.dataset.done = "1";
        } else if (event.type === "error") {
          throw new Error(event.message);
        }
      });
    } catch (err) {
      row.classList.remove("typing");
      row.classList.add("error");
      textNode.textContent = "죄송해요, 답을 만들지 못했어요. (" + err.message + ")";
      row.dataset.done = "1";
    } finally {
      send.disabled = false;
      input.focus();
    }
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
