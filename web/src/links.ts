// Answer text as DOM nodes: http(s) addresses and e-mail addresses become
// links, everything else stays text. Built with DOM APIs only (text nodes and
// <a> elements), never innerHTML, so markup in an answer is shown, not run.
import { el } from "./dom";

// An http(s) or www. address, or an e-mail address. Trailing punctuation is
// trimmed off afterwards (see `trimmed`).
const LINK = /\b(?:https?:\/\/|www\.)[^\s<>"'`]+|[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g;

// "see https://x.example/a." or "(https://x.example/a)": the final dot or an
// unbalanced closing bracket belongs to the sentence, not to the address.
function trimmed(candidate: string): string {
  let text = candidate;
  for (;;) {
    const last = text.slice(-1);
    if (/[.,;:!?'"*]/.test(last)) text = text.slice(0, -1);
    else if (last === ")" && count(text, "(") < count(text, ")")) text = text.slice(0, -1);
    else if (last === "]" && count(text, "[") < count(text, "]")) text = text.slice(0, -1);
    else return text;
  }
}

function count(text: string, character: string): number {
  return text.split(character).length - 1;
}

function anchor(text: string): HTMLAnchorElement | null {
  if (text.includes("@") && !/^(?:https?:\/\/|www\.)/i.test(text)) {
    return el("a", { href: `mailto:${text}`, class: "link" }, text);
  }
  try {
    const url = new URL(/^www\./i.test(text) ? `https://${text}` : text);
    if (url.protocol !== "https:" && url.protocol !== "http:") return null;
    // A new tab that cannot reach back into this page, and learns nothing of it.
    return el("a", { href: url.href, target: "_blank", rel: "noopener noreferrer", class: "link" }, text);
  } catch {
    return null;
  }
}

export function linkified(text: string): (Node | string)[] {
  const nodes: (Node | string)[] = [];
  let at = 0;
  for (const match of text.matchAll(LINK)) {
    const start = match.index ?? 0;
    const link = trimmed(match[0]);
    const a = link ? anchor(link) : null;
    if (!a) continue;
    if (start > at) nodes.push(text.slice(at, start));
    nodes.push(a);
    at = start + link.length;
  }
  if (at < text.length) nodes.push(text.slice(at));
  return nodes;
}
