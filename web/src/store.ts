// The conversation kept in sessionStorage, so it survives a reload of the page
// in the same tab (and is gone with the tab): the turns with their sources,
// the conversation id the bot continues with its token (the conversation's
// secret, sent with every turn and every vote: without it the bot and the
// gateway refuse to continue or rate the conversation), and each answer's
// interaction id and vote, so rating still works and a given vote stays shown.

export type TurnState = "queued" | "streaming" | "done" | "failed" | "interrupted";

export interface StoredSource {
  entryId: string;
  title: string;
  snippet: string;
}

export interface Turn {
  // The chat request's idempotency key: a retry sends it again.
  requestId: string;
  query: string;
  state: TurnState;
  // What a person saw before the reload: "queued" (not sent yet) or "streaming".
  interruptedWhile?: "queued" | "streaming";
  answer: string;
  sources: StoredSource[];
  interactionId: string;
  grounded: boolean;
  // The bot answered from the conversation's topic and says it may not be what was asked
  // (absent in conversations kept by an older page).
  unsure?: boolean;
  rating: "" | "like" | "dislike";
  reasonSent: boolean;
  // A failure in plain words.
  error: string;
}

export interface Conversation {
  conversationId: string;
  // The bot's `conversation_token` for `conversationId` ("" before the first answer).
  conversationToken: string;
  turns: Turn[];
}

const KEY = "mend.chat.v1";
// Enough for any real conversation; the oldest turns go first when it is full.
const MAX_TURNS = 100;

export function newTurn(query: string, requestId: string): Turn {
  return { requestId, query, state: "queued", answer: "", sources: [], interactionId: "", grounded: false,
           unsure: false, rating: "", reasonSent: false, error: "" };
}

// The conversation as it was before a reload. An answer that was still
// streaming (or a question still waiting its turn) cannot continue: it is
// marked interrupted, to be retried with its own request id.
export function restore(): Conversation {
  let saved: unknown;
  try {
    saved = JSON.parse(sessionStorage.getItem(KEY) ?? "null");
  } catch {
    saved = null;
  }
  if (!isConversation(saved)) return { conversationId: "", conversationToken: "", turns: [] };
  // Kept by a page from before tokens: its conversation cannot be continued, so the next question starts one.
  if (typeof saved.conversationToken !== "string" || !saved.conversationToken) {
    saved.conversationId = "";
    saved.conversationToken = "";
  }
  for (const turn of saved.turns) {
    if (turn.state === "queued" || turn.state === "streaming") {
      turn.interruptedWhile = turn.state;
      turn.state = "interrupted";
    }
  }
  return saved;
}

export function persist(conversation: Conversation): void {
  const kept = { ...conversation, turns: conversation.turns.slice(-MAX_TURNS) };
  while (true) {
    try {
      sessionStorage.setItem(KEY, JSON.stringify(kept));
      return;
    } catch (error) {
      // Storage full or unavailable (private mode, a quota): keep fewer turns, or give up quietly.
      if (kept.turns.length <= 1) {
        console.warn("mend: the conversation could not be kept for a reload", error);
        return;
      }
      kept.turns = kept.turns.slice(Math.ceil(kept.turns.length / 2));
    }
  }
}

function isConversation(value: unknown): value is Conversation {
  if (typeof value !== "object" || value === null) return false;
  const c = value as Partial<Conversation>;
  return typeof c.conversationId === "string" && Array.isArray(c.turns) && c.turns.every(isTurn);
}

function isTurn(value: unknown): value is Turn {
  if (typeof value !== "object" || value === null) return false;
  const t = value as Partial<Turn>;
  return typeof t.requestId === "string" && typeof t.query === "string" && typeof t.answer === "string" &&
    ["queued", "streaming", "done", "failed", "interrupted"].includes(t.state ?? "") &&
    Array.isArray(t.sources) && t.sources.every(isSource) && typeof t.interactionId === "string" && typeof t.grounded === "boolean" &&
    ["undefined", "boolean"].includes(typeof t.unsure) &&
    ["", "like", "dislike"].includes(t.rating ?? "-") && typeof t.reasonSent === "boolean" &&
    typeof t.error === "string";
}

function isSource(value: unknown): value is StoredSource {
  if (typeof value !== "object" || value === null) return false;
  const s = value as Partial<StoredSource>;
  return typeof s.entryId === "string" && typeof s.title === "string" && typeof s.snippet === "string";
}
