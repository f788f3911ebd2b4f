// Like / dislike under an answer. A dislike is stored at once (so it counts
// even if the reason is never sent); the optional reason then replaces it,
// which is safe because a second vote on an interaction replaces the first.
// A vote given before a reload of the page is shown again (`given`), and each
// stored vote is reported (`onRated`) so the page can keep it. Each vote
// carries the conversation's token (`token`), without which the gateway
// refuses it.
import { FeedbackReason, Rating } from "./gen/mend/interactions/v1/interactions_service_pb";
import { interactions, lastTraceId } from "./api";
import { el } from "./dom";
import { plainWords } from "./errors";

const REASONS: [FeedbackReason, string][] = [
  [FeedbackReason.UNSPECIFIED, "Choose a reason (optional)"],
  [FeedbackReason.INCORRECT, "It was wrong"],
  [FeedbackReason.INCOMPLETE, "It left something out"],
  [FeedbackReason.NOT_RELEVANT, "It didn't answer my question"],
  [FeedbackReason.UNCLEAR, "It was hard to understand"],
  [FeedbackReason.OUTDATED, "It was out of date"],
  [FeedbackReason.OTHER, "Something else"],
];

export interface Vote {
  rating: "" | "like" | "dislike";
  reasonSent: boolean;
}

export function feedbackControls(interactionId: string, token: () => string,
                                 given: Vote = { rating: "", reasonSent: false },
                                 onRated: (vote: Vote) => void = () => {}): HTMLElement {
  const like = el("button", { type: "button", class: "like", "aria-pressed": "false" }, "Helpful");
  const dislike = el("button", { type: "button", class: "dislike", "aria-pressed": "false" }, "Not helpful");
  const status = el("p", { class: "feedback-status", role: "status", "aria-live": "polite" });
  const reason = el("select", { name: "reason" },
    ...REASONS.map(([value, label]) => el("option", { value: String(value) }, label)));
  const comment = el("textarea", { name: "comment", rows: "2", maxlength: "2000" });
  const form = el("form", { class: "reason", hidden: "" },
    el("label", {}, "What was wrong? ", reason),
    el("label", {}, "Anything else we should know? (optional) ", comment),
    el("button", { type: "submit" }, "Send feedback"));
  const group = el("div", { class: "feedback", role: "group", "aria-label": "Rate this answer" },
    like, dislike, status, form);

  async function rate(rating: Rating, thanks: string, details: Partial<{ reason: FeedbackReason; comment: string }> = {}) {
    status.classList.remove("error");
    status.textContent = "Saving\u2026";
    try {
      await interactions.submitFeedback({ interactionId, rating, conversationToken: token(), ...details });
      group.dataset.traceId = lastTraceId;
      status.textContent = thanks;
      show(rating === Rating.LIKE ? "like" : "dislike");
      onRated({ rating: rating === Rating.LIKE ? "like" : "dislike", reasonSent: details.reason !== undefined });
      return true;
    } catch (error) {
      status.classList.add("error");
      status.textContent = plainWords(error);
      return false;
    }
  }

  function show(vote: "like" | "dislike") {
    group.dataset.rating = vote;
    like.setAttribute("aria-pressed", String(vote === "like"));
    dislike.setAttribute("aria-pressed", String(vote === "dislike"));
  }
  if (given.rating) {
    show(given.rating);
    if (given.reasonSent) group.dataset.reasonSent = "true";
    status.textContent = given.rating === "like" ? "You found this helpful." : "You told us this wasn't helpful.";
  }

  like.addEventListener("click", async () => {
    form.hidden = true;
    await rate(Rating.LIKE, "Thanks for letting us know.");
  });
  dislike.addEventListener("click", async () => {
    if (await rate(Rating.DISLIKE, "Sorry about that. Tell us what was wrong, if you like.")) {
      form.hidden = false;
      reason.focus();
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const sent = await rate(Rating.DISLIKE, "Thanks, we'll use this to improve the answer.", {
      reason: Number(reason.value) as FeedbackReason,
      comment: comment.value.trim(),
    });
    if (sent) {
      form.hidden = true;
      group.dataset.reasonSent = "true";
    }
  });
  return group;
}
