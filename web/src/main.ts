// The chat: ask, watch the answer stream in with its sources, rate it.
import type { Source } from "./gen/mend/bot/v1/bot_service_pb";
import { chat, lastTraceId } from "./api";
import { el } from "./dom";
import { plainWords } from "./errors";
import { feedbackControls } from "./feedback";
import { newRequestId } from "./ids";

const messages = document.getElementById("messages") as HTMLOListElement;
const form = document.getElementById("ask") as HTMLFormElement;
const question = document.getElementById("question") as HTMLTextAreaElement;
const status = document.getElementById("status") as HTMLParagraphElement;

let conversationId = "";

function sourceList(sources: Source[]): HTMLElement {
  return el("section", { class: "sources", "aria-label": "Sources" },
    el("h2", {}, "Sources"),
    el("ul", {}, ...sources.map((s) =>
      el("li", { "data-entry-id": s.entryId }, el("strong", {}, s.title), s.snippet ? ` \u2014 ${snippet(s.snippet)}` : ""))));
}

function snippet(text: string): string {
  return text.length > 160 ? `${text.slice(0, 157)}\u2026` : text;
}

function scrollToEnd(): void {
  messages.lastElementChild?.scrollIntoView({ block: "end" });
}

// One question, answered as a stream. `requestId` makes a retry idempotent:
// the bot replays a stored answer instead of answering (and logging) twice.
async function ask(query: string, requestId: string, bubble: HTMLLIElement): Promise<void> {
  bubble.replaceChildren();
  const answer = el("div", { class: "answer" });
  bubble.append(answer);
  bubble.dataset.state = "streaming";
  bubble.setAttribute("aria-busy", "true");
  let text = "";
  try {
    for await (const response of chat.chatStream({ query, conversationId, requestId })) {
      const event = response.event;
      if (event.case === "start") {
        conversationId = event.value.conversationId;
        bubble.dataset.interactionId = event.value.interactionId;
        bubble.dataset.traceId = lastTraceId;
        if (event.value.sources.length > 0) bubble.append(sourceList(event.value.sources));
      } else if (event.case === "delta") {
        text += event.value.text;
        answer.textContent = text;
        bubble.dataset.chunks = String(Number(bubble.dataset.chunks ?? 0) + 1);
        scrollToEnd();
      } else if (event.case === "end") {
        bubble.dataset.grounded = String(event.value.grounded);
        bubble.dataset.state = "done";
        bubble.append(feedbackControls(bubble.dataset.interactionId ?? ""));
      }
    }
    if (bubble.dataset.state !== "done") throw new Error("the answer stopped before its end");
  } catch (error) {
    // A stream that fails midway is discarded (the contract says so): show
    // the failure in plain words and offer the same request again.
    bubble.dataset.state = "failed";
    bubble.querySelector(".sources")?.remove();
    answer.textContent = plainWords(error);
    const retry = el("button", { type: "button", class: "retry" }, "Try again");
    retry.addEventListener("click", () => void ask(query, requestId, bubble));
    bubble.append(retry);
    retry.focus();
  } finally {
    bubble.setAttribute("aria-busy", "false");
    scrollToEnd();
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const query = question.value.trim();
  if (!query) {
    status.textContent = "Please type a question first.";
    return;
  }
  status.textContent = "";
  question.value = "";
  messages.append(el("li", { class: "message customer" }, query));
  const bubble = el("li", { class: "message bot" });
  messages.append(bubble);
  scrollToEnd();
  await ask(query, newRequestId(), bubble);
});

// Enter sends; Shift+Enter starts a new line.
question.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    form.requestSubmit();
  }
});

question.focus();
