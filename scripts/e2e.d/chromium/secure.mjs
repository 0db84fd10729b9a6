// The web phone served over HTTPS (by siphon itself, or by a reverse proxy
// in front of it) in headless Chromium with a self-signed certificate: the
// page is a secure context, signals over wss://, calls the echo extension,
// and getStats shows audio both ways with energy.
//
//   node secure.mjs BASE_URL TOKEN
import { check, runPage, sleep, state, stats, waitState } from "./common.mjs";

const [base, token] = process.argv.slice(2);

await runPage(base, token, async (page) => {
  const secure = await page.evaluate(() => [window.isSecureContext, location.protocol]);
  check(secure[0] && secure[1] === "https:", `the page is a secure context (${secure[1]})`);
  await page.fill("#to", "echo");
  await page.click("#call");
  await waitState(page, "in-call");
  await sleep(1000);
  const a = await stats(page);
  await sleep(3000);
  const b = await stats(page);
  console.log(`secure call: sent ${a.sent}->${b.sent}, received ${a.received}->${b.received}, ` +
    `energy ${a.energy.toFixed(4)}->${b.energy.toFixed(4)}`);
  check(b.sent - a.sent >= 100, "audio flows from the page to the echo");
  check(b.received - a.received >= 100, "the echo flows back to the page");
  check(b.energy > a.energy || b.level > 0, "the returned audio has energy");
  await page.click("#hangup");
  await waitState(page, "ended");
  const ended = await state(page);
  check(ended.includes("200"), `the page hung up (#state "${ended}")`);
}, ["--ignore-certificate-errors"]);
