// What both page drivers share: Debian's Chromium launched headless by
// puppeteer-core (never a downloaded browser), the two widths the page is
// checked at, and a wait for the next two rendered frames.
import puppeteer from "puppeteer-core";

export const launch = () => puppeteer.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
export const PHONE = { width: 390, height: 844, isMobile: true, hasTouch: true };
export const LAPTOP = { width: 1366, height: 768, deviceScaleFactor: 1, mobile: false };
export const frames = (page) => page.evaluate(() => new Promise((resolve) =>
  requestAnimationFrame(() => requestAnimationFrame(resolve))));
