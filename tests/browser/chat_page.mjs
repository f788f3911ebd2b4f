// Drives the chat page in Debian's headless Chromium (puppeteer-core; no
// browser download) the way a person on a phone would, using the keyboard.
// Prints one JSON object with what it observed; the pytest side asserts.
//
//   node tests/browser/chat_page.mjs converse URL QUESTION COMMENT
//   node tests/browser/chat_page.mjs ask URL QUESTION       (no rating)
//   node tests/browser/chat_page.mjs fail URL QUESTION
//
// In "converse" it also records how Chromium renders the dislike form (closed,
// opened by "Not helpful", after sending) at phone and laptop width; with
// CHAT_PAGE_SHOTS=DIR it saves those views there as PNGs (names start with
// CHAT_PAGE_SHOTS_PREFIX, default the question in lower-case-with-dashes).
import { LAPTOP, PHONE, frames, launch } from "./chromium.mjs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";

const [mode, url, question, comment] = process.argv.slice(2);
const browser = await launch();
const result = { consoleErrors: [] };
const shots = process.env.CHAT_PAGE_SHOTS ?? "";
const shotPrefix = process.env.CHAT_PAGE_SHOTS_PREFIX ??
  (question ?? "chat").toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 40);

// What a person sees of the dislike form under `groupSelector`, as Chromium lays
// it out: whether each part is rendered at all (checkVisibility: false under
// display:none, in a hidden ancestor, or with no box), its computed display,
// and the boxes needed to judge its layout. `hiddenShown` lists any element on
// the page that has the `hidden` attribute but is rendered anyway.
function formView(groupSelector) {
  const box = (e) => {
    const r = e.getBoundingClientRect();
    return { top: r.top, bottom: r.bottom, left: r.left, right: r.right, width: r.width, height: r.height };
  };
  const group = document.querySelector(groupSelector);
  const form = group.querySelector("form.reason");
  const parts = { select: form.querySelector("select"), comment: form.querySelector("textarea"),
                  send: form.querySelector("button[type=submit]") };
  const status = group.querySelector(".feedback-status");
  return {
    formVisible: form.checkVisibility(),
    partsVisible: Object.fromEntries(Object.entries(parts).map(([name, e]) => [name, e.checkVisibility()])),
    display: getComputedStyle(form).display,
    form: box(form),
    parts: Object.fromEntries(Object.entries(parts).map(([name, e]) => [name, box(e)])),
    dislike: box(group.querySelector("button.dislike")),
    group: box(group),
    statusVisible: status.checkVisibility(),
    status: status.textContent,
    focused: document.activeElement?.getAttribute("name") ?? document.activeElement?.className ?? "",
    // Is the focused control on screen and not under something else (the sticky question box)?
    focusedSeen: (() => {
      const active = document.activeElement;
      if (!active || active === document.body) return false;
      const r = active.getBoundingClientRect();
      const x = r.left + r.width / 2, y = r.top + r.height / 2;
      if (y < 0 || y > innerHeight || x < 0 || x > innerWidth) return false;
      const top = document.elementFromPoint(x, y);
      return top === active || active.contains(top);
    })(),
    scrollY: window.scrollY,
    innerHeight: window.innerHeight,
    hiddenShown: Array.from(document.querySelectorAll("[hidden]"))
      .filter((e) => e.checkVisibility()).map((e) => e.outerHTML.slice(0, 80)),
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  };
}


// The form's view at phone width (the test's own viewport) and at laptop width,
// plus screenshots of both when asked (the screen as it is then, not the whole page). The laptop metrics go through CDP
// directly: page.setViewport would reload the page to leave mobile emulation.
async function viewAtBothWidths(page, groupSelector, step) {
  const views = {};
  await frames(page);
  views.phone = await page.evaluate(formView, groupSelector);
  if (shots) await page.screenshot({ path: join(shots, `${shotPrefix}-${step}-phone.png`) });
  const cdp = await page.createCDPSession();
  await cdp.send("Emulation.setDeviceMetricsOverride", LAPTOP);
  await cdp.send("Emulation.setTouchEmulationEnabled", { enabled: false });
  await frames(page);
  views.laptop = await page.evaluate(formView, groupSelector);
  if (shots) {
    // Through the same session: page.screenshot would put puppeteer's phone metrics back first.
    const { data } = await cdp.send("Page.captureScreenshot", { format: "png" });
    await writeFile(join(shots, `${shotPrefix}-${step}-laptop.png`), Buffer.from(data, "base64"));
  }
  await cdp.detach();
  await page.setViewport(PHONE);
  await frames(page);
  return views;
}
try {
  const page = await browser.newPage();
  page.on("pageerror", (error) => result.consoleErrors.push(String(error)));
  await page.setViewport(PHONE);
  // Every text an answer shows while it streams, as the page renders it: polling
  // alone misses the steps of an answer whose pieces arrive within milliseconds.
  await page.evaluateOnNewDocument(() => {
    window.__partialTexts = new Set();
    new MutationObserver(() => {
      for (const li of document.querySelectorAll("li.message.bot[data-state=streaming]")) {
        const text = li.querySelector(".answer")?.textContent ?? "";
        if (text) window.__partialTexts.add(text);
      }
    }).observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
  });
  await page.goto(url, { waitUntil: "networkidle0" });
  result.focusedOnLoad = await page.evaluate(() => document.activeElement?.id);

  await page.keyboard.type(question);
  await page.keyboard.press("Enter");

  // Watch the answer grow: every distinct text seen while it is streaming.
  const bubble = "li.message.bot:last-of-type";
  const seen = new Set();
  const deadline = Date.now() + 240_000;
  let state = "";
  while (Date.now() < deadline) {
    const snapshot = await page.$eval(bubble, (li) => ({
      state: li.dataset.state ?? "", text: li.querySelector(".answer")?.textContent ?? "" }))
      .catch(() => ({ state: "", text: "" }));
    state = snapshot.state;
    if (state === "streaming" && snapshot.text) seen.add(snapshot.text);
    if (state === "done" || state === "failed") break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  result.state = state;
  result.partialTexts = Math.max(seen.size, await page.evaluate(() => window.__partialTexts.size));
  Object.assign(result, await page.$eval(bubble, (li) => ({
    answer: li.querySelector(".answer")?.textContent ?? "",
    interactionId: li.dataset.interactionId ?? "",
    traceId: li.dataset.traceId ?? "",
    grounded: li.dataset.grounded ?? "",
    chunks: Number(li.dataset.chunks ?? 0),
    sources: Array.from(li.querySelectorAll(".sources li"), (s) => s.textContent),
    sourceIds: Array.from(li.querySelectorAll(".sources li"), (s) => s.dataset.entryId),
    hasRetry: Boolean(li.querySelector("button.retry")),
  })));
  result.overflowsPhone = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);

  if (mode === "converse" && state === "done") {
    if (shots) await mkdir(shots, { recursive: true });
    const group = `${bubble} .feedback`;
    result.formViews = {};
    // Before anyone rates: the reason form must not be on screen at all.
    result.formViews.closed = await viewAtBothWidths(page, group, "1-closed");
    // Reach "Not helpful" with Tab alone, as a keyboard user would.
    let tabs = 0;
    while (tabs < 30 && !(await page.evaluate(() => document.activeElement?.classList.contains("dislike")))) {
      await page.keyboard.press("Tab");
      tabs += 1;
    }
    result.tabsToDislike = tabs;
    await page.keyboard.press("Enter");
    // Opened means rendered (puppeteer's `visible`: a box and not visibility:hidden).
    await page.waitForSelector(`${bubble} form.reason`, { visible: true, timeout: 30_000 });
    await page.waitForFunction((selector) => document.querySelector(selector)?.dataset.rating === "dislike",
      { timeout: 30_000 }, group);
    result.dislikeStatus = await page.$eval(`${bubble} .feedback-status`, (p) => p.textContent);
    result.formViews.open = await viewAtBothWidths(page, group, "2-open");
    // The reason select has focus: pick "It was wrong" by keyboard, then the comment, then send.
    await page.keyboard.press("ArrowDown");
    await page.keyboard.press("Tab");
    await page.keyboard.type(comment ?? "");
    await page.keyboard.press("Tab");
    await page.keyboard.press("Enter");
    await page.waitForFunction(
      (selector) => document.querySelector(selector)?.dataset.reasonSent === "true",
      { timeout: 30_000 }, `${bubble} .feedback`);
    result.feedbackStatus = await page.$eval(`${bubble} .feedback-status`, (p) => p.textContent);
    await frames(page);
    result.formViews.sent = { phone: await page.evaluate(formView, group) };
    if (shots) await page.screenshot({ path: join(shots, `${shotPrefix}-3-sent-phone.png`) });
    result.feedbackTraceId = await page.$eval(`${bubble} .feedback`, (g) => g.dataset.traceId ?? "");
  }
} catch (error) {
  result.error = String(error);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
