// The page posts the question to /v1/ask with stream=true and reads the
// server-sent events as they arrive: "sources" first, then "token" pieces of
// the answer, then "done" with the timings. Any error is shown, never hidden.
// The answer is rendered as text nodes (never as HTML): `code` becomes <code>,
// and each citation 【n】 becomes a link to source n, whose title links to the
// page of the documentation it came from.
"use strict";

const CITATION_OR_CODE = /【(\d+)】|`([^`]+)`/g;

function renderAnswer(text) {
  answerBox.replaceChildren();
  let last = 0;
  for (const match of text.matchAll(CITATION_OR_CODE)) {
    answerBox.append(document.createTextNode(text.slice(last, match.index)));
    if (match[1] !== undefined) {
      const link = document.createElement("a");
      link.className = "citation";
      link.href = `#source-${match[1]}`;
      link.textContent = `[${match[1]}]`;
      link.title = `source ${match[1]}`;
      answerBox.append(link);
    } else {
      const code = document.createElement("code");
      code.textContent = match[2];
      answerBox.append(code);
    }
    last = match.index + match[0].length;
  }
  answerBox.append(document.createTextNode(text.slice(last)));
}

const form = document.getElementById("ask-form");
const statusLine = document.getElementById("status");
const errorBox = document.getElementById("error");
const answerBox = document.getElementById("answer");
const sourceList = document.getElementById("sources");
const askButton = document.getElementById("ask");
let answerText = "";

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = false;
  statusLine.textContent = "";
}

function showSources(sources) {
  sourceList.replaceChildren();
  sources.forEach((source, position) => {
    const item = document.createElement("li");
    item.id = `source-${position + 1}`;
    const title = document.createElement(source.url ? "a" : "strong");
    if (source.url) {
      title.href = source.url;
      title.target = "_blank";
      title.rel = "noopener";
      title.className = "doc-link";
    }
    title.textContent = source.title;
    const where = document.createElement("div");
    where.className = "path";
    where.textContent = `${source.path}${source.anchor ? "#" + source.anchor : ""} (score ${source.score.toFixed(3)})`;
    const text = document.createElement("div");
    text.className = "text";
    text.textContent = source.text;
    item.append(title, where, text);
    sourceList.append(item);
  });
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    return body.error || JSON.stringify(body);
  } catch {
    return `HTTP ${response.status} ${response.statusText}`;
  }
}

let retrieval = "hybrid";

function handleEvent(name, data) {
  if (name === "sources") {
    showSources(data.sources);
    retrieval = data.retrieval;
    statusLine.textContent = data.refused ? "No confident match in the documents." : "Generating...";
  } else if (name === "token") {
    answerText += data.text;
    renderAnswer(answerText);
  } else if (name === "done") {
    answerText = data.answer;
    renderAnswer(answerText);
    const note = retrieval === "bm25" ? " (keyword search only: the index is still building)" : "";
    statusLine.textContent = `Done in ${(data.timings.total_ms / 1000).toFixed(2)} s${note}`;
  } else if (name === "error") {
    showError(data.error);
  }
}

// Until the service is ready (a first start builds the index), say what it is doing.
async function watchReadiness() {
  try {
    const response = await fetch("/ready");
    const body = await response.json();
    if (body.ready) {
      if (statusLine.dataset.loading) statusLine.textContent = "Ready.";
      delete statusLine.dataset.loading;
      return;
    }
    statusLine.dataset.loading = "1";
    const done = body.progress ? ` (${body.progress.percent}%)` : "";
    statusLine.textContent = body.error
      ? `The service could not start: ${body.error}`
      : body.answering
        ? `The service is ${body.phase}${done}; answers use keyword search until then.`
        : `The service is ${body.phase}${done}; answers start when it is ready.`;
  } catch (err) {
    statusLine.textContent = `Could not reach the service: ${err.message}`;
  }
  setTimeout(watchReadiness, 2000);
}
watchReadiness();

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
  answerText = "";
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
