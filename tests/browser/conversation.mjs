// Drives a whole conversation on the chat page in Debian's headless Chromium
// (puppeteer-core; no browser download), the way a person on a phone would.
// Prints one JSON object with what it observed; the pytest side asserts.
//
//   node tests/browser/conversation.mjs queue  URL Q1 Q2 Q3   questions typed while an answer streams
//   node tests/browser/conversation.mjs reload URL Q1 Q2      the conversation across reloads of the tab
//   node tests/browser/conversation.mjs links  URL Q          links, markup and the handoff action in an answer
//
// To see the page while a question waits its turn, the first ChatStream request
// is held back in the browser (request interception) until the page shows the
// next question as waiting, then let through to the real bot; nothing is faked.
// With CHAT_PAGE_SHOTS=DIR it saves the views at phone (390x844) and laptop
// (1366x768) width there as PNGs named MODE-STEP-WIDTH.png.
import { LAPTOP, PHONE, frames, launch } from "./chromium.mjs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";

const [mode, url, ...questions] = process.argv.slice(2);
const browser = await launch();
const result = { consoleErrors: [] };
const shots = process.env.CHAT_PAGE_SHOTS ?? "";
const CHAT_STREAM = "/mend.bot.v1.ChatService/ChatStream";
const ANSWER_WAIT_MS = 180_000;


// What a person sees of the conversation: every bubble in page order, as rendered.
function conversationView() {
  const visible = (e) => Boolean(e) && e.checkVisibility();
  const box = (e) => {
    const r = e.getBoundingClientRect();
    return { left: r.left, right: r.right, width: r.width, height: r.height };
  };
  return {
    bubbles: Array.from(document.querySelectorAll("#messages > li"), (li) => {
      const handoff = li.querySelector("a.handoff");
      const answer = li.querySelector(".answer");
      return {
        who: li.classList.contains("customer") ? "customer" : "bot",
        state: li.dataset.state ?? "",
        text: li.classList.contains("customer") ? li.querySelector(".text")?.textContent ?? "" : "",
        queuedNote: visible(li.querySelector(".queued-note")) ? li.querySelector(".queued-note").textContent : "",
        answer: answer?.textContent ?? "",
        interactionId: li.dataset.interactionId ?? "",
        grounded: li.dataset.grounded ?? "",
        unsure: li.dataset.unsure ?? "",
        sources: Array.from(li.querySelectorAll(".sources li"), (s) => s.textContent),
        links: answer ? Array.from(answer.querySelectorAll("a"), (a) => ({
          href: a.getAttribute("href"), target: a.getAttribute("target"), rel: a.getAttribute("rel"),
          text: a.textContent, visible: a.checkVisibility() })) : [],
        elementsInAnswer: answer ? Array.from(answer.querySelectorAll("*"), (e) => e.tagName.toLowerCase()) : [],
        handoff: handoff ? { href: handoff.getAttribute("href"), text: handoff.textContent,
                             target: handoff.getAttribute("target"), rel: handoff.getAttribute("rel"),
                             visible: visible(handoff), box: box(handoff), bubble: box(li) } : null,
        rating: li.querySelector(".feedback")?.dataset.rating ?? "",
        likePressed: li.querySelector("button.like")?.getAttribute("aria-pressed") ?? "",
        feedbackStatus: li.querySelector(".feedback-status")?.textContent ?? "",
        retry: visible(li.querySelector("button.retry")),
      };
    }),
    status: document.getElementById("status")?.textContent ?? "",
    images: document.querySelectorAll("img").length,
    planted: document.body.dataset.xss ?? "",
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  };
}

// The conversation's view at phone width (the test's viewport) and laptop width,
// with screenshots when asked. The laptop metrics go through CDP directly:
// page.setViewport would reload the page to leave mobile emulation.
async function atBothWidths(page, step) {
  const views = {};
  await frames(page);
  views.phone = await page.evaluate(conversationView);
  if (shots) {
    await page.screenshot({ path: join(shots, `${mode}-${step}-phone.png`) });
    await page.screenshot({ path: join(shots, `${mode}-${step}-phone-whole.png`), fullPage: true });
  }
  const cdp = await page.createCDPSession();
  await cdp.send("Emulation.setDeviceMetricsOverride", LAPTOP);
  await cdp.send("Emulation.setTouchEmulationEnabled", { enabled: false });
  await frames(page);
  await page.evaluate(() => document.querySelector("#messages")?.lastElementChild?.scrollIntoView({ block: "end" }));
  await frames(page);
  views.laptop = await page.evaluate(conversationView);
  if (shots) {
    const { data } = await cdp.send("Page.captureScreenshot", { format: "png" });
    await writeFile(join(shots, `${mode}-${step}-laptop.png`), Buffer.from(data, "base64"));
  }
  await cdp.detach();
  await page.setViewport(PHONE);
  await frames(page);
  return views;
}

// Chat requests as the browser sends them, in order, with the state of every
// answer on the page at that moment; `holdNext()` keeps the next one back.
function watchChatRequests(page) {
  const watch = { sent: [], held: null, holdNext: false };
  page.on("request", async (request) => {
    if (!request.url().includes(CHAT_STREAM)) {
      await request.continue();
      return;
    }
    const body = request.postData() ?? "";
    const answers = await page.evaluate(() =>
      Array.from(document.querySelectorAll("li.message.bot"), (li) => li.dataset.state ?? "")).catch(() => []);
    watch.sent.push({ query: questions.find((q) => body.includes(q)) ?? "", answersOnPage: answers,
                      requestIds: body.match(/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}/g) ?? [] });
    if (watch.holdNext) {
      watch.holdNext = false;
      watch.held = request;
    } else {
      await request.continue();
    }
  });
  return watch;
}

async function release(watch) {
  const request = watch.held;
  watch.held = null;
  if (request) await request.continue().catch(() => {}); // a reload may have cancelled it
}

async function answered(page, count) {
  await page.waitForFunction((n) => {
    const states = Array.from(document.querySelectorAll("li.message.bot"), (li) => li.dataset.state);
    return states.length >= n && states.every((s) => s === "done" || s === "failed");
  }, { timeout: ANSWER_WAIT_MS, polling: 50 }, count);
}

async function ask(page, text) {
  await page.focus("#question");
  await page.keyboard.type(text);
  await page.keyboard.press("Enter");
}

async function open(page) {
  page.on("pageerror", (error) => result.consoleErrors.push(String(error)));
  await page.setViewport(PHONE);
  await page.setRequestInterception(true);
  const watch = watchChatRequests(page);
  await page.goto(url, { waitUntil: "networkidle0" });
  result.focusedOnLoad = await page.evaluate(() => document.activeElement?.id);
  return watch;
}

const stored = (page) => page.evaluate(() => JSON.parse(sessionStorage.getItem("mend.chat.v1") ?? "null"));

try {
  if (shots) await mkdir(shots, { recursive: true });
  const page = await browser.newPage();
  const watch = await open(page);

  if (mode === "queue") {
    // The first answer is held back while two more questions are typed.
    watch.holdNext = true;
    await ask(page, questions[0]);
    await page.waitForFunction(() => document.querySelector("li.message.bot")?.dataset.state === "streaming");
    for (const q of questions.slice(1)) await ask(page, q);
    result.queuedSeen = await page.waitForFunction((n) =>
      document.querySelectorAll("li.message.customer[data-state=queued] .queued-note").length === n,
    { timeout: 10_000 }, questions.length - 1).then(() => true, () => false);
    result.whileWaiting = await atBothWidths(page, "1-waiting");
    await release(watch);
    await answered(page, questions.length);
    result.answered = await atBothWidths(page, "2-answered");
    result.sent = watch.sent;
  } else if (mode === "reload") {
    await ask(page, questions[0]);
    await answered(page, 1);
    result.before = await page.evaluate(conversationView);
    // The second answer is still on its way when the tab is reloaded.
    watch.holdNext = true;
    await ask(page, questions[1]);
    await page.waitForFunction(() => document.querySelectorAll("li.message.bot")[1]?.dataset.state === "streaming");
    while (!watch.held) await new Promise((resolve) => setTimeout(resolve, 20));
    await page.reload({ waitUntil: "networkidle0" });
    await release(watch);
    result.focusedAfterReload = await page.evaluate(() => document.activeElement?.id);
    result.reloaded = (await atBothWidths(page, "1-reloaded")).phone;
    // A vote after the reload, on the answer from before it.
    await page.focus("li.message.bot:nth-of-type(2) button.like");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => document.querySelector("li.message.bot .feedback-status")?.textContent.startsWith("Thanks"),
      { timeout: 30_000 });
    // The interrupted answer, asked again by keyboard (the same request id).
    await page.focus("li.message.bot:nth-of-type(4) button.retry");
    await page.keyboard.press("Enter");
    await answered(page, 2);
    result.retried = await page.evaluate(conversationView);
    result.stored = await stored(page);
    await page.reload({ waitUntil: "networkidle0" });
    result.reloadedAgain = await page.evaluate(conversationView);
    result.sent = watch.sent;
  } else if (mode === "links") {
    await ask(page, questions[0]);
    await answered(page, 1);
    await page.waitForSelector("li.message.bot a.handoff", { visible: true, timeout: 10_000 }).catch(() => {});
    result.answered = await atBothWidths(page, "1-answered");
    // By keyboard: back from the question box, the handoff action comes right after the rating buttons.
    await page.focus("#question");
    const path = [];
    for (let i = 0; i < 8; i += 1) {
      await page.keyboard.down("Shift");
      await page.keyboard.press("Tab");
      await page.keyboard.up("Shift");
      const focused = await page.evaluate(() => {
        const e = document.activeElement;
        return e?.classList.contains("handoff") ? "handoff" : e?.className || e?.tagName.toLowerCase() || "";
      });
      path.push(focused);
      if (focused === "handoff") break;
    }
    result.shiftTabPath = path;
    result.handoffFocusedSeen = await page.evaluate(() => {
      const e = document.activeElement;
      const r = e.getBoundingClientRect();
      const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
      return e.classList.contains("handoff") && (top === e || e.contains(top));
    });
    result.sent = watch.sent;
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
} catch (error) {
  result.error = String(error?.stack ?? error);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
