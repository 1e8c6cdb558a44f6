// Drives Debian's headless chromium as an agent on the gateway's agent console, for
// tests/webrtc.rs: sign in, answer the first handed-over call with SPEECH.wav as the
// microphone, stay on it until the call ends (or TIMEOUT_MS), and keep what the agent heard.
//
//   [CONSOLE_TOKEN=...] node agent.mjs URL AGENT SPEECH.wav OUT_DIR TIMEOUT_MS
//
// With CONSOLE_TOKEN set, the page first signs in to the console with it, through its form.
// Progress goes to stderr ("signed in", "ringing", "answered", "ended"); OUT_DIR/heard.wav gets
// the caller's audio as the page received it, OUT_DIR/desk.png the page a second into the call; stdout gets one JSON object: the desk's states
// with their times, the call id, and page errors.
import { createRequire } from "node:module";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromiumArgs, chromiumExecutable, microphoneArgs } from "../console/chromium.mjs";

const require = createRequire(new URL("../console/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const [url, agent, speech, outDir, timeoutArg] = process.argv.slice(2);
if (!url || !agent || !speech || !outDir) {
  console.error("usage: node agent.mjs URL AGENT SPEECH.wav OUT_DIR TIMEOUT_MS");
  process.exit(2);
}
const timeout = Number(timeoutArg || 60000);

const browser = await chromium.launch({ executablePath: chromiumExecutable, headless: true, args: [...chromiumArgs, ...microphoneArgs(speech)] });
let exitCode = 0;
const errors = [];
const states = [];
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  await page.exposeFunction("deskState", (state, at) => states.push({ state, at }));
  await page.goto(`${url}/console?raw=1`);
  // Every state change, as the page shows it, with the page's clock.
  await page.evaluate(() => {
    let last = null;
    setInterval(() => {
      const s = window.frontlineDesk.state;
      if (s !== last) { last = s; window.deskState(s, performance.now()); }
    }, 20);
  });
  if (process.env.CONSOLE_TOKEN) {
    // The gateway asks for a console token: sign in the way an agent does, through the form.
    await page.waitForSelector("#signin-token", { state: "visible", timeout: 10000 });
    await page.fill("#signin-token", process.env.CONSOLE_TOKEN);
    await page.click("#signin-form button[type=submit]");
    await page.waitForSelector("#console", { state: "visible", timeout: 10000 });
  }
  await page.evaluate((name) => window.frontlineDesk.signIn(name), agent);
  await page.waitForFunction(() => window.frontlineDesk.state === "waiting" || window.frontlineDesk.error, null, { timeout: 15000 });
  const refused = await page.evaluate(() => window.frontlineDesk.error);
  if (refused) throw new Error(`sign-in refused: ${refused}`);
  console.error("signed in");

  await page.waitForFunction(() => window.frontlineDesk.state === "ringing", null, { timeout });
  const callId = await page.evaluate(() => window.frontlineDesk.ringing);
  console.error("ringing");
  // A person takes a moment to pick up; the caller hears hold audio meanwhile.
  await page.waitForTimeout(800);
  await page.click("#desk-answer");
  await page.waitForFunction(() => window.frontlineDesk.state === "on_call" || window.frontlineDesk.error, null, { timeout: 15000 });
  const failed = await page.evaluate(() => window.frontlineDesk.error);
  if (failed) throw new Error(`answer failed: ${failed}`);
  console.error("answered");
  await page.waitForTimeout(1000);
  await page.screenshot({ path: join(outDir, "desk.png"), fullPage: true });

  // The caller hangs up in the end; the desk goes back to waiting.
  await page.waitForFunction(() => window.frontlineDesk.state !== "on_call", null, { timeout }).catch(() => {});
  console.error("ended");
  const status = await page.evaluate(() => document.getElementById("desk-status").textContent);
  const wav = await page.evaluate(() => window.frontlineDesk.recordingWavBase64());
  writeFileSync(join(outDir, "heard.wav"), Buffer.from(wav, "base64"));
  process.stdout.write(JSON.stringify({ call_id: callId, states, status, errors }) + "\n");
} catch (e) {
  console.error(`agent page failed: ${e.stack || e}\npage errors: ${errors.join("\n")}`);
  exitCode = 1;
} finally {
  await browser.close().catch(() => {});
}
process.exit(exitCode);
