// What the Chromium e2e scripts share: the launch flags, checks, getStats,
// the page's #state, siphon's /metrics, and a run of steps in one page.
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

const require = createRequire(import.meta.url);
const { chromium } = require("../node/node_modules/playwright-core");

// Without --allow-loopback-in-peer-connection Chromium offers no candidate
// on 127.0.0.1; the fake device plays a beeping tone, so the microphone has
// energy. The fresh --user-data-dir is launchPersistentContext's profile.
// INSECURE_HOST reaches 127.0.0.1 under a name that is not localhost, so a
// page from it is not a secure context (127.0.0.0/8 itself always is).
export const INSECURE_HOST = "insecure.test";
const FLAGS = [
  "--headless=new", "--no-sandbox", "--disable-gpu", "--allow-loopback-in-peer-connection",
  "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--no-first-run", `--host-resolver-rules=MAP ${INSECURE_HOST} 127.0.0.1`,
];

export function check(ok, what) {
  if (!ok) throw new Error(what);
  console.log(`ok: ${what}`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Audio packets sent and received by the page's call, and what it heard.
export async function stats(page) {
  return page.evaluate(async () => {
    const out = { sent: 0, received: 0, energy: 0, level: 0 };
    const report = await window.siphonCall.pc.getStats();
    report.forEach((s) => {
      if (s.kind !== "audio") return;
      if (s.type === "outbound-rtp") out.sent += s.packetsSent ?? 0;
      if (s.type === "inbound-rtp") {
        out.received += s.packetsReceived ?? 0;
        out.energy += s.totalAudioEnergy ?? 0;
        out.level = Math.max(out.level, s.audioLevel ?? 0);
      }
    });
    return out;
  });
}

export const state = (page) => page.textContent("#state");

// `want` matches the whole #state, or its first word ("ended" for "ended 200 …").
export async function waitState(page, want, timeout = 15000) {
  try {
    await page.waitForFunction((w) => {
      const s = document.getElementById("state").textContent;
      return s === w || s.split(" ")[0] === w;
    }, want, { timeout });
  } catch {
    throw new Error(`page state stayed "${await state(page)}" (waiting for "${want}"); ` +
      `message: "${await page.textContent("#message")}"`);
  }
}

// One series from siphon's /metrics at `base`; null when siphon has none.
export async function metric(base, name) {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(" ")[1]) : null;
}

// Open the web phone at `base` with `token` in a fresh headless Chromium,
// wait until it is connected, run `steps(page)`, and exit 0 or 1.
// `flags` adds Chromium flags (e.g. --ignore-certificate-errors for a
// self-signed certificate).
export async function runPage(base, token, steps, flags = []) {
  await runPageAt(`${base}/?token=${encodeURIComponent(token)}`, steps, flags);
}

// runPage for a page `url` of its own (e.g. `?user=` on a server without tokens).
export async function runPageAt(url, steps, flags = []) {
  const profile = mkdtempSync(join(tmpdir(), "siphon-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium", headless: true, args: [...FLAGS, ...flags],
  });
  let failed = false;
  try {
    const page = await context.newPage();
    page.on("console", (m) => m.type() === "error" && console.log(`page error: ${m.text()}`));
    page.on("pageerror", (e) => console.log(`page exception: ${e.message}`));
    await page.goto(url);
    await page.waitForFunction(() => document.getElementById("conn").textContent.startsWith("connected"), null, { timeout: 10000 });
    check(true, `the page connected (${await page.textContent("#conn")})`);
    await steps(page);
  } catch (e) {
    failed = true;
    console.error(`FAIL: ${e.message}`);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
  process.exit(failed ? 1 : 0);
}
