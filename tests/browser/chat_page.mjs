// Drives the chat page in Debian's headless Chromium (puppeteer-core; no
// browser download) the way a person on a phone would, using the keyboard.
// Prints one JSON object with what it observed; the pytest side asserts.
//
//   node tests/browser/chat_page.mjs converse URL QUESTION COMMENT
//   node tests/browser/chat_page.mjs ask URL QUESTION       (no rating)
//   node tests/browser/chat_page.mjs fail URL QUESTION
import puppeteer from "puppeteer-core";

const [mode, url, question, comment] = process.argv.slice(2);
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const result = { consoleErrors: [] };
try {
  const page = await browser.newPage();
  page.on("pageerror", (error) => result.consoleErrors.push(String(error)));
  await page.setViewport({ width: 390, height: 844, isMobile: true, hasTouch: true });
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
  result.partialTexts = seen.size;
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
    // Reach "Not helpful" with Tab alone, as a keyboard user would.
    let tabs = 0;
    while (tabs < 30 && !(await page.evaluate(() => document.activeElement?.classList.contains("dislike")))) {
      await page.keyboard.press("Tab");
      tabs += 1;
    }
    result.tabsToDislike = tabs;
    await page.keyboard.press("Enter");
    await page.waitForSelector(`${bubble} form.reason:not([hidden])`, { timeout: 30_000 });
    result.dislikeStatus = await page.$eval(`${bubble} .feedback-status`, (p) => p.textContent);
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
    result.feedbackTraceId = await page.$eval(`${bubble} .feedback`, (g) => g.dataset.traceId ?? "");
  }
} catch (error) {
  result.error = String(error);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
