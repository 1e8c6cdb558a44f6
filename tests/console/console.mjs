// Drives Debian's headless chromium on the agent console for tests/console.rs.
//
//   node console.mjs URL SCREENSHOT.png [TIMEOUT_MS]
//
// Prints "console loaded" on stderr once the page is live (its event stream open), waits for a
// handed-over call to appear with its packet, waits a little for the agent to be bridged, takes
// a screenshot and prints on stdout, as one JSON object, what the page shows.
import { chromium } from "playwright-core";
import { chromiumArgs, chromiumExecutable } from "./chromium.mjs";

const [url, screenshot, timeoutArg] = process.argv.slice(2);
if (!url || !screenshot) {
  console.error("usage: node console.mjs URL SCREENSHOT.png [TIMEOUT_MS]");
  process.exit(2);
}
const timeout = Number(timeoutArg || 90000);

const browser = await chromium.launch({ executablePath: chromiumExecutable, headless: true, args: chromiumArgs });
let exitCode = 0;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const consoleErrors = [];
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });

  await page.goto(url);
  await page.waitForSelector('#connection[data-state="live"]', { timeout: 15000 });
  console.error("console loaded");

  // A handed-over call shows up by itself (SSE): nobody reloads the page.
  await page.waitForFunction(() => document.getElementById("packet-code")?.textContent.trim() !== "", null, { timeout });
  const stageWhenShown = await page.evaluate(() => document.getElementById("call-stage").dataset.stage);
  // Give the bridge and the transcript a moment, as an agent would see them.
  await page.waitForFunction(() => document.getElementById("call-stage")?.dataset.stage === "bridged", null, { timeout: 20000 }).catch(() => {});
  await page.waitForTimeout(1500);
  await page.screenshot({ path: screenshot, fullPage: true });

  const shown = await page.evaluate(() => {
    const text = (id) => document.getElementById(id)?.textContent.trim() ?? null;
    return {
      calls: [...document.querySelectorAll("#calls li")].map((li) => ({ call_id: li.dataset.callId, stage: li.dataset.stage, text: li.textContent.trim() })),
      title: text("call-title"),
      stage: document.getElementById("call-stage")?.dataset.stage ?? null,
      meta: text("call-meta"),
      code: text("packet-code"),
      reason: text("packet-reason"),
      priority: text("packet-priority"),
      intent: text("packet-intent"),
      sentiment: text("packet-sentiment"),
      summary: text("packet-summary"),
      evidence: [...document.querySelectorAll("#packet-evidence li")].map((li) => li.textContent.trim()),
      transcript: [...document.querySelectorAll("#transcript li")].map((li) => ({ speaker: li.dataset.speaker, text: li.textContent.trim() })),
      suggestions: [...document.querySelectorAll("#suggestions li")].map((li) => li.textContent.trim()),
      suggest_status: text("suggest-status"),
    };
  });
  process.stdout.write(JSON.stringify({ ...shown, stage_when_shown: stageWhenShown, errors: consoleErrors }) + "\n");
} catch (e) {
  console.error(`console test driver: ${e.stack || e}`);
  exitCode = 1;
} finally {
  await browser.close();
}
process.exit(exitCode);
