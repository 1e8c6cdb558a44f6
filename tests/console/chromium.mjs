// How every browser test launches Debian's chromium: headless, and without the background
// networking flags chromium keeps trying to reach Google's hosts, which this closed network
// refuses. Tests add their own flags after these.
export const chromiumExecutable = process.env.CHROMIUM || "/usr/bin/chromium";

export const chromiumArgs = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

// A WebRTC page on loopback whose microphone is `speech` (a WAV chromium plays from the moment
// getUserMedia is called, and loops), allowed to play audio without a click.
export function microphoneArgs(speech) {
  return ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", `--use-file-for-fake-audio-capture=${speech}`,
    "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required"];
}
