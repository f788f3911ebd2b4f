// The chat: ask, watch the answer stream in with its sources, rate it.
//
// Questions are answered one at a time: one asked while an answer streams
// waits its turn in the page (shown as waiting) and is sent when that answer
// ends, so the customer never meets "the chat model is busy" for typing fast.
// The conversation is kept in sessionStorage (store.ts) and shown again after
// a reload of the tab.
import type { Source } from "./gen/mend/bot/v1/bot_service_pb";
import { chat, lastTraceId } from "./api";
import { loadConfig, type PageConfig } from "./config";
import { el } from "./dom";
import { plainWords } from "./errors";
import { feedbackControls } from "./feedback";
import { newRequestId } from "./ids";
import { linkified } from "./links";
import { type Conversation, type StoredSource, type Turn, newTurn, persist, restore } from "./store";

const messages = document.getElementById("messages") as HTMLOListElement;
const form = document.getElementById("ask") as HTMLFormElement;
const question = document.getElementById("question") as HTMLTextAreaElement;
const status = document.getElementById("status") as HTMLParagraphElement;

const conversation: Conversation = restore();
// The operator's settings (config.json), asked for once at start.
const configReady: Promise<PageConfig> = loadConfig();

// Each turn's two bubbles: the customer's question and (once sent) the bot's answer.
const bubbles = new Map<Turn, { customer: HTMLLIElement; bot: HTMLLIElement | null }>();
// Questions waiting for the answer in progress to end, oldest first.
const waiting: Turn[] = [];
let answering = false;

function sourceList(sources: StoredSource[]): HTMLElement {
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

// The way to a person, as an action: offered under an answer the bot does not
// know, once the page's settings say where (none configured: the row stays hidden).
function handoffAction(): HTMLElement {
  const row = el("p", { class: "handoff-row", hidden: "" });
  void configReady.then((config) => {
    if (!config.handoffUrl) return;
    const web = /^https?:/i.test(config.handoffUrl);
    row.append(el("a", { class: "handoff", href: config.handoffUrl,
                         ...(web ? { target: "_blank", rel: "noopener noreferrer" } : {}) }, config.handoffLabel));
    row.hidden = false;
  });
  return row;
}

// The customer's bubble: the question, and while it waits its turn, a note saying so.
function renderCustomer(turn: Turn): HTMLLIElement {
  const bubble = el("li", { class: "message customer" }, el("span", { class: "text" }, turn.query));
  if (turn.state === "queued") {
    bubble.dataset.state = "queued";
    bubble.append(el("span", { class: "queued-note" }, "Waiting \u2014 sent when the answer above is finished"));
  }
  return bubble;
}

// The bot's bubble for a turn that was sent, as its state says.
function renderBot(turn: Turn, bubble: HTMLLIElement): void {
  bubble.replaceChildren();
  bubble.dataset.state = turn.state;
  bubble.dataset.interactionId = turn.interactionId;
  bubble.setAttribute("aria-busy", String(turn.state === "streaming"));
  const answer = el("div", { class: "answer" });
  bubble.append(answer);
  if (turn.state === "failed" || turn.state === "interrupted") {
    answer.textContent = turn.error;
    const retry = el("button", { type: "button", class: "retry" }, "Try again");
    retry.addEventListener("click", () => enqueue(turn));
    bubble.append(retry);
    return;
  }
  answer.replaceChildren(...linkified(turn.answer));
  if (turn.sources.length > 0) bubble.append(sourceList(turn.sources));
  if (turn.state === "done") {
    bubble.dataset.grounded = String(turn.grounded);
    bubble.dataset.unsure = String(Boolean(turn.unsure));
    // A person is offered wherever the bot does not know, or is not sure it understood.
    if (!turn.grounded || turn.unsure || turn.sources.length === 0) bubble.append(handoffAction());
    bubble.append(feedbackControls(turn.interactionId, () => conversation.conversationToken,
                                   { rating: turn.rating, reasonSent: turn.reasonSent }, (vote) => {
      turn.rating = vote.rating;
      turn.reasonSent = vote.reasonSent;
      persist(conversation);
    }));
  }
}

function show(turn: Turn): void {
  const customer = renderCustomer(turn);
  messages.append(customer);
  const shown = { customer, bot: null as HTMLLIElement | null };
  bubbles.set(turn, shown);
  if (turn.state !== "queued") {
    shown.bot = el("li", { class: "message bot" });
    customer.after(shown.bot);
    renderBot(turn, shown.bot);
  }
}

// A question (new, or one to try again) waits its turn; the answer in progress, if any, ends first.
function enqueue(turn: Turn): void {
  turn.state = "queued";
  const shown = bubbles.get(turn);
  if (shown) {
    shown.bot?.remove();
    shown.bot = null;
    const customer = renderCustomer(turn);
    shown.customer.replaceWith(customer);
    shown.customer = customer;
  } else {
    show(turn);
  }
  waiting.push(turn);
  persist(conversation);
  if (answering) status.textContent = "Your question will be sent when the current answer is finished.";
  void answerInTurn();
}

async function answerInTurn(): Promise<void> {
  if (answering) return;
  answering = true;
  try {
    for (let turn = waiting.shift(); turn; turn = waiting.shift()) await ask(turn);
  } finally {
    answering = false;
  }
}

// One question, answered as a stream. Its `requestId` makes a retry idempotent:
// the bot replays a stored answer instead of answering (and logging) twice.
async function ask(turn: Turn): Promise<void> {
  const shown = bubbles.get(turn);
  if (!shown) return;
  const customer = renderCustomer({ ...turn, state: "streaming" });
  shown.customer.replaceWith(customer);
  shown.customer = customer;
  const bubble = el("li", { class: "message bot" });
  customer.after(bubble);
  shown.bot = bubble;
  Object.assign(turn, { state: "streaming", answer: "", sources: [], interactionId: "", grounded: false, unsure: false,
                        rating: "", reasonSent: false, error: "", interruptedWhile: undefined });
  renderBot(turn, bubble);
  if (waiting.length === 0) status.textContent = "";
  persist(conversation);
  scrollToEnd();
  const answer = bubble.querySelector(".answer") as HTMLElement;
  try {
    let ended = false;
    for await (const response of chat.chatStream({ query: turn.query, conversationId: conversation.conversationId,
                                                   conversationToken: conversation.conversationToken,
                                                   requestId: turn.requestId })) {
      const event = response.event;
      if (event.case === "start") {
        conversation.conversationId = event.value.conversationId;
        conversation.conversationToken = event.value.conversationToken;
        turn.interactionId = event.value.interactionId;
        turn.sources = event.value.sources.map((s: Source) => ({ entryId: s.entryId, title: s.title, snippet: s.snippet }));
        bubble.dataset.interactionId = turn.interactionId;
        bubble.dataset.traceId = lastTraceId;
        if (turn.sources.length > 0) bubble.append(sourceList(turn.sources));
      } else if (event.case === "delta") {
        turn.answer += event.value.text;
        answer.replaceChildren(...linkified(turn.answer));
        bubble.dataset.chunks = String(Number(bubble.dataset.chunks ?? 0) + 1);
        scrollToEnd();
      } else if (event.case === "end") {
        turn.grounded = event.value.grounded;
        turn.unsure = event.value.unsure;
        turn.state = "done";
        ended = true;
      }
      persist(conversation);
    }
    if (!ended) throw new Error("the answer stopped before its end");
    renderBot(turn, bubble);
  } catch (error) {
    // A stream that fails midway is discarded (the contract says so): show
    // the failure in plain words and offer the same request again.
    Object.assign(turn, { state: "failed", answer: "", sources: [], error: plainWords(error) });
    renderBot(turn, bubble);
    (bubble.querySelector("button.retry") as HTMLButtonElement | null)?.focus();
  } finally {
    bubble.setAttribute("aria-busy", "false");
    persist(conversation);
    scrollToEnd();
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const query = question.value.trim();
  if (!query) {
    status.textContent = "Please type a question first.";
    return;
  }
  status.textContent = "";
  question.value = "";
  const turn = newTurn(query, newRequestId());
  conversation.turns.push(turn);
  enqueue(turn);
  scrollToEnd();
});

// Enter sends; Shift+Enter starts a new line.
question.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    form.requestSubmit();
  }
});

// Words for a turn the reload cut short (restore() marked it interrupted).
function interruptedWords(turn: Turn): string {
  return turn.interruptedWhile === "queued"
    ? "This question wasn't sent before the page was reloaded."
    : "The page was reloaded before this answer was finished.";
}

// The conversation as it was before a reload, if any.
for (const turn of conversation.turns) {
  if (turn.state === "interrupted" && !turn.error) turn.error = interruptedWords(turn);
  show(turn);
}
persist(conversation);
scrollToEnd();
question.focus();
