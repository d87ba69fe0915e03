// The page posts the question to /v1/ask with stream=true and reads the
// server-sent events as they arrive: "sources" first, then "token" pieces of
// the answer, then "done" with the timings. Any error is shown, never hidden.
"use strict";

const form = document.getElementById("ask-form");
const statusLine = document.getElementById("status");
const errorBox = document.getElementById("error");
const answerBox = document.getElementById("answer");
const sourceList = document.getElementById("sources");
const askButton = document.getElementById("ask");

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = false;
  statusLine.textContent = "";
}

function showSources(sources) {
  sourceList.replaceChildren();
  for (const source of sources) {
    const item = document.createElement("li");
    const title = document.createElement("strong");
    title.textContent = source.title;
    const where = document.createElement("div");
    where.className = "path";
    where.textContent = `${source.path}${source.anchor ? "#" + source.anchor : ""} (score ${source.score.toFixed(3)})`;
    const text = document.createElement("div");
    text.className = "text";
    text.textContent = source.text;
    item.append(title, where, text);
    sourceList.append(item);
  }
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    return body.error || JSON.stringify(body);
  } catch {
    return `HTTP ${response.status} ${response.statusText}`;
  }
}

function handleEvent(name, data) {
  if (name === "sources") {
    showSources(data.sources);
    statusLine.textContent = data.refused ? "No confident match in the documents." : "Generating...";
  } else if (name === "token") {
    answerBox.textContent += data.text;
  } else if (name === "done") {
    answerBox.textContent = data.answer;
    statusLine.textContent = `Done in ${(data.timings.total_ms / 1000).toFixed(2)} s`;
  }
}

async function readEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      let data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      handleEvent(name, JSON.parse(data));
    }
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  errorBox.hidden = true;
  answerBox.textContent = "";
  sourceList.replaceChildren();
  statusLine.textContent = "Searching...";
  askButton.disabled = true;
  const body = {
    question: document.getElementById("question").value,
    k: Number(document.getElementById("k").value),
    mode: document.getElementById("mode").value,
    stream: true,
  };
  try {
    const response = await fetch("/v1/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!response.ok) {
      showError(`Error ${response.status}: ${await errorMessage(response)}`);
      return;
    }
    await readEvents(response);
  } catch (err) {
    showError(`Could not reach the service: ${err.message}`);
  } finally {
    askButton.disabled = false;
  }
});
