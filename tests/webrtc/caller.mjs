// Drives Debian's headless chromium on the gateway's caller page for tests/webrtc.rs.
//
//   node caller.mjs URL SPEECH.wav OUT_DIR MODE TIMEOUT_MS
//
// SPEECH.wav is the fake microphone. MODE:
//   reply    call, wait for the caller's words and the bot's reply to be captioned and
//            played, press 5 on the keypad, hang up (DELETE); write what the page heard to
//            OUT_DIR/heard.wav
//   stay     call and stay on the line for TIMEOUT_MS (a handoff runs meanwhile), hang up
//   vanish   call, then freeze the whole browser (SIGSTOP to its process group) so it stops
//            answering ICE, as a crashed tab or a lost network would; kill it after TIMEOUT_MS
// Progress goes to stderr ("connected", "frozen"); stdout gets one JSON object: the call id,
// captions, the loudness timelines (performance.now() ms) and page errors.
import { createRequire } from "node:module";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromiumArgs, chromiumExecutable, microphoneArgs } from "../console/chromium.mjs";

// playwright-core is installed once, for the console test, in tests/console/node_modules.
const require = createRequire(new URL("../console/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const [url, speech, outDir, mode, timeoutArg] = process.argv.slice(2);
if (!url || !speech || !outDir || !mode) {
  console.error("usage: node caller.mjs URL SPEECH.wav OUT_DIR reply|stay|vanish TIMEOUT_MS");
  process.exit(2);
}
const timeout = Number(timeoutArg || 60000);

const server = await chromium.launchServer({
  executablePath: chromiumExecutable,
  headless: true,
  args: [...chromiumArgs, ...microphoneArgs(speech)],
});
const chromiumPid = server.process().pid;
const browser = await chromium.connect(server.wsEndpoint());
let exitCode = 0;
const errors = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  await page.goto(`${url}/?raw=1`);
  await page.evaluate(() => window.frontlineCaller.start());
  await page.waitForFunction(() => window.frontlineCaller.state === "live" || window.frontlineCaller.error, null, { timeout: 20000 });
  const failed = await page.evaluate(() => window.frontlineCaller.error);
  if (failed) throw new Error(failed);
  console.error("connected");

  if (mode === "vanish") {
    await sleep(1500);
    process.kill(-chromiumPid, "SIGSTOP");
    console.error("frozen");
    await sleep(timeout);
    process.kill(-chromiumPid, "SIGKILL");
    process.stdout.write(JSON.stringify({ frozen: true }) + "\n");
    process.exit(0);
  }

  if (mode === "reply") {
    // The reply: a bot caption after the caller's first caption, then its audio played out.
    await page.waitForFunction(() => {
      const c = window.frontlineCaller.captions;
      const i = c.findIndex((l) => l.speaker === "caller");
      return i >= 0 && c.slice(i + 1).some((l) => l.speaker === "bot");
    }, null, { timeout });
    await page.waitForFunction(() => {
      const c = window.frontlineCaller.captions;
      const reply = c.find((l, i) => l.speaker === "bot" && c.slice(0, i).some((x) => x.speaker === "caller"));
      const bot = window.frontlineCaller.botAudible;
      const last = bot.length ? bot[bot.length - 1] : 0;
      return last > reply.at && performance.now() - last > 1500;
    }, null, { timeout: 30000 });
    await page.evaluate(() => window.frontlineCaller.sendDigits("5"));
    await sleep(1500);
  } else {
    await sleep(timeout);
  }

  const result = await page.evaluate(() => ({
    call_id: window.frontlineCaller.callId,
    state: window.frontlineCaller.state,
    captions: window.frontlineCaller.captions,
    mic_audible: window.frontlineCaller.micAudible,
    bot_audible: window.frontlineCaller.botAudible,
  }));
  const wav = await page.evaluate(() => window.frontlineCaller.recordingWavBase64());
  writeFileSync(join(outDir, "heard.wav"), Buffer.from(wav, "base64"));
  await page.evaluate(() => window.frontlineCaller.hangUp());
  await sleep(500);
  result.errors = errors;
  process.stdout.write(JSON.stringify(result) + "\n");
} catch (e) {
  console.error(`caller page failed: ${e.stack || e}\npage errors: ${errors.join("\n")}`);
  exitCode = 1;
} finally {
  await browser.close().catch(() => {});
  await server.close().catch(() => {});
}
process.exit(exitCode);
