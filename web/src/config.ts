// The page's operator settings, read from `config.json` beside the page (the
// build writes defaults; the local static server fills them from
// MEND_HANDOFF_URL / MEND_HANDOFF_LABEL; any server may serve its own). The
// API endpoint needs no setting: it is the page's own origin (see api.ts).

export interface PageConfig {
  // Where a customer reaches a person when the bot does not know: an
  // https:, http:, mailto: or tel: link. Empty: no handoff action is offered
  // (the answer's own text still says how).
  handoffUrl: string;
  // The words on that action.
  handoffLabel: string;
}

const DEFAULTS: PageConfig = { handoffUrl: "", handoffLabel: "Contact our team" };
const SAFE_SCHEMES = new Set(["https:", "http:", "mailto:", "tel:"]);

// A link the page may offer: absolute, and never javascript: or data:.
export function safeLink(raw: unknown): string {
  if (typeof raw !== "string" || !raw.trim()) return "";
  try {
    const url = new URL(raw.trim());
    return SAFE_SCHEMES.has(url.protocol) ? url.href : "";
  } catch {
    return "";
  }
}

export async function loadConfig(): Promise<PageConfig> {
  try {
    const response = await fetch("config.json", { cache: "no-cache" });
    if (!response.ok) throw new Error(`config.json: HTTP ${response.status}`);
    const raw = (await response.json()) as Record<string, unknown>;
    const handoffUrl = safeLink(raw.handoffUrl);
    if (raw.handoffUrl && !handoffUrl) console.warn("mend: config.json handoffUrl is not a safe link", raw.handoffUrl);
    const label = typeof raw.handoffLabel === "string" && raw.handoffLabel.trim() ? raw.handoffLabel.trim() : "";
    return { handoffUrl, handoffLabel: label || DEFAULTS.handoffLabel };
  } catch (error) {
    console.warn("mend: no page settings, using the defaults", error);
    return DEFAULTS;
  }
}
