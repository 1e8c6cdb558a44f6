// How every browser test launches Debian's chromium: headless, and without the background
// networking flags chromium keeps trying to reach Google's hosts, which this closed network
// refuses. Tests add their own flags (fake microphone, loopback ICE) after these.
export const chromiumExecutable = process.env.CHROMIUM || "/usr/bin/chromium";

export const chromiumArgs = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
