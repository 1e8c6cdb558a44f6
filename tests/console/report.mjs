// Drives Debian's headless chromium on the console's report page for tests/records.rs.
//
//   node report.mjs URL [SCREENSHOT.png]
//
// Waits for the report to load and prints on stdout, as one JSON object, what the page shows:
// its status line, the tables' rows, the plots (loaded as images), and any page errors.
import { chromium } from "playwright-core";
import { chromiumArgs, chromiumExecutable } from "./chromium.mjs";

const [url, screenshot] = process.argv.slice(2);
if (!url) {
  console.error("usage: node report.mjs URL");
  process.exit(2);
}
const browser = await chromium.launch({ executablePath: chromiumExecutable, headless: true, args: chromiumArgs });
let exitCode = 0;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById("report-status")?.dataset.state !== "loading", null, { timeout: 20000 });
  await page.waitForFunction(() => [...document.querySelectorAll("#report-plots img")].every((i) => i.complete), null, { timeout: 10000 });
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  const shown = await page.evaluate(() => ({
    state: document.getElementById("report-status").dataset.state,
    status: document.getElementById("report-status").textContent.trim(),
    containment: [...document.querySelectorAll("#report strong")].map((s) => s.textContent.trim()),
    rows: [...document.querySelectorAll("#report tr")].map((tr) => [...tr.children].map((c) => c.textContent.trim())),
    plots: [...document.querySelectorAll("#report-plots img")].map((i) => ({ name: i.dataset.plot, width: i.naturalWidth })),
    missed: [...document.querySelectorAll("#missed > li")].map((li) => li.textContent.trim()),
  }));
  process.stdout.write(JSON.stringify({ ...shown, errors }) + "\n");
} catch (e) {
  console.error(`report test driver: ${e.stack || e}`);
  exitCode = 1;
} finally {
  await browser.close();
}
process.exit(exitCode);
