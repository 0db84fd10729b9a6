// Hold and resume through the web phone in headless Chromium (Playwright on
// the system Chromium), both ways:
// (a) the page calls a SIPp UAS that echoes (uas-hold.xml), clicks Hold:
//     siphon re-INVITEs SIPp sendonly and sends the page nothing while it
//     does not receive; Resume brings the echo back; the page hangs up.
// (b) a SIPp UAC (uac-hold.xml) calls the logged-in page, which answers;
//     SIPp's sendonly re-INVITE shows on the page and stops the page's
//     audio; its sendrecv re-INVITE starts it again; SIPp hangs up.
// getStats packet counts before, during and after each hold are printed.
//
//   node hold.mjs BASE_URL TOKEN SCENARIO_DIR SIPP_UAC_ARGS_JSON
import { spawn } from "node:child_process";
import { check, metric as siphonMetric, runPage, sleep, state, stats, waitState } from "./common.mjs";

const [base, token, scenarios, uacArgs] = process.argv.slice(2);
// A series siphon has not created yet counts as 0 here.
const metric = async (name) => (await siphonMetric(base, name)) ?? 0;

// Packets in a 2.5 s window: 50 a second flow, and nothing at all while a
// side does not receive (the window starts 0.5 s after the change).
const WINDOW_MS = 2500;
const FLOWING = 100;

// Packets sent and received by the page, and relayed by siphon, over one
// window `after` ms from now.
// siphon's own counts: RTP it relayed to the browser and to the SIP side.
const relayed = async () => ({
  toPage: await metric('siphon_media_packets_total{flow="sip_to_webrtc",kind="rtp"}'),
  toSip: await metric('siphon_media_packets_total{flow="webrtc_to_sip",kind="rtp"}'),
});

async function measure(page, after = 500) {
  await sleep(after);
  const a = { ...(await stats(page)), ...(await relayed()) };
  await sleep(WINDOW_MS);
  const b = { ...(await stats(page)), ...(await relayed()) };
  const d = (k) => b[k] - a[k];
  return {
    sent: d("sent"),
    received: d("received"),
    toPage: d("toPage"),
    toSip: d("toSip"),
    text: (k) => `${a[k]}->${b[k]} (+${d(k)})`,
  };
}

const invitesOut = () => metric('siphon_sip_messages_total{direction="out",kind="INVITE"}');

// (a) The page holds: it keeps sending, siphon stops sending to it.
async function browserHold(page) {
  check(await page.isDisabled("#hold"), "the Hold button is disabled without a call");
  await page.fill("#to", "1000");
  await page.click("#call");
  await waitState(page, "in-call");
  const before = await measure(page, 1000);
  check(before.sent >= FLOWING && before.received >= FLOWING && before.toPage >= FLOWING,
    `page holds: before, the page sent ${before.text("sent")} and got the echo ${before.text("received")} ` +
    `(siphon relayed ${before.text("toPage")}) in 2.5 s`);
  check(!(await page.isDisabled("#hold")) && (await page.textContent("#hold")) === "Hold",
    "the Hold button is enabled in the call");

  // Click Hold, and in the same task try three more offers: while the hold
  // waits for siphon's answer each must be refused, not sent.
  const busy = await page.evaluate(() => {
    const c = window.siphonCall;
    document.getElementById("hold").click();
    const tries = [c.resume(), c.hold(), c.restartIce()];
    return Promise.all(tries.map((p) => p.then(() => "resolved", (e) => e.code)));
  });
  check(busy.every((c) => c === "pending"),
    `resume(), hold() and restartIce() while the hold is under way are refused (${busy.join(", ")})`);
  await waitState(page, "on-hold");
  const shown = await state(page);
  check(shown === "on-hold (you)", `the page shows it holds the call (#state "${shown}")`);
  check((await page.textContent("#hold")) === "Resume", "the Hold button turned into Resume");
  const sdp = await page.evaluate(() => window.siphonCall.pc.currentRemoteDescription.sdp);
  check(/a=recvonly/.test(sdp), "siphon answered the page's sendonly offer with a=recvonly");
  const invites = await invitesOut();
  check(invites === 2, `siphon re-INVITEd the SIPp phone (INVITEs sent: ${invites}; SIPp checks it said a=sendonly)`);

  // Chromium counts what reaches a sendonly transceiver (it only stops
  // playing it), so both counts matter: siphon's and the page's.
  const held = await measure(page);
  check(held.toPage === 0 && held.received === 0,
    `page holds: siphon sends the page nothing: relayed ${held.text("toPage")}, the page received ${held.text("received")} in 2.5 s`);
  check(held.sent >= FLOWING, `page holds: the page still sends: sent ${held.text("sent")} in 2.5 s`);

  await page.click("#hold");
  await waitState(page, "in-call");
  check((await page.textContent("#hold")) === "Hold", "Resume turned back into Hold");
  const after = await measure(page);
  check(after.received >= FLOWING, `page resumes: the echo is back: received ${after.text("received")} in 2.5 s`);
  check(after.sent >= FLOWING, `page resumes: sent ${after.text("sent")} in 2.5 s`);
  const invites2 = await invitesOut();
  check(invites2 === 3, `siphon re-INVITEd the SIPp phone to resume (INVITEs sent: ${invites2})`);
  const reoffers = await metric('siphon_sip_reoffers_total{outcome="hold"}');
  check(reoffers === 0, "no SIP re-offer was counted: the page's holds are siphon's own re-INVITEs");

  await page.click("#hangup");
  await waitState(page, "ended");
  const ended = await state(page);
  check(ended.startsWith("ended 200"), `the page hung up (#state "${ended}")`);
  check(await page.isDisabled("#hold"), "the Hold button is disabled once the call ended");
  const states = await page.evaluate(() => window.siphonStates);
  const seq = states.slice(states.lastIndexOf("connecting"));
  console.log(`page holds: states ${seq.join(" -> ")}`);
  const i = seq.indexOf("on-hold (you)");
  check(i > 0 && seq[i - 1] === "in-call" && seq[i + 1] === "in-call",
    "the page went in-call -> on-hold (you) -> in-call");
}

// (b) The SIP phone holds: it keeps sending, the page stops sending to it.
async function sipHold(page) {
  const sipp = spawn("sipp", JSON.parse(uacArgs), { cwd: scenarios, stdio: ["ignore", "ignore", "inherit"] });
  const exited = new Promise((r) => sipp.on("exit", (code) => r(code)));
  await waitState(page, "incoming");
  await page.click("#answer");
  await waitState(page, "in-call");
  // SIPp holds 4 s after its ACK: this window ends before that.
  const before = await measure(page, 1000);
  check(before.sent >= FLOWING && before.received >= FLOWING && before.toSip >= FLOWING,
    `SIP holds: before, the page sent ${before.text("sent")} (siphon relayed ${before.text("toSip")}) ` +
    `and got the tone ${before.text("received")} in 2.5 s`);

  await waitState(page, "on-hold", 10000);
  const shown = await state(page);
  check(shown === "on-hold (far end)", `the page shows the far end holds the call (#state "${shown}")`);
  const held = await measure(page);
  check(held.sent === 0 && held.toSip === 0,
    `SIP holds: the page sends nothing: sent ${held.text("sent")}, siphon relayed to SIP ${held.text("toSip")} in 2.5 s`);
  check(held.received >= FLOWING, `SIP holds: the held phone's tone still arrives: received ${held.text("received")} in 2.5 s`);
  const holds = await metric('siphon_sip_reoffers_total{outcome="hold"}');
  check(holds === 1, `siphon counted SIPp's hold (siphon_sip_reoffers_total{outcome="hold"} ${holds})`);

  await waitState(page, "in-call", 10000);
  const after = await measure(page);
  check(after.sent >= FLOWING, `SIP resumes: the page sends again: sent ${after.text("sent")} in 2.5 s`);
  check(after.received >= FLOWING, `SIP resumes: received ${after.text("received")} in 2.5 s`);
  const resumes = await metric('siphon_sip_reoffers_total{outcome="resume"}');
  check(resumes === 1, `siphon counted SIPp's resume (siphon_sip_reoffers_total{outcome="resume"} ${resumes})`);

  await waitState(page, "ended", 15000);
  const states = await page.evaluate(() => window.siphonStates);
  const seq = states.slice(states.lastIndexOf("incoming"));
  console.log(`SIP holds: states ${seq.join(" -> ")}`);
  const main = seq.map((x) => x.split(" (")[0].split(" ")[0]).filter((x) => x !== "answering");
  check(JSON.stringify(main) === JSON.stringify(["incoming", "in-call", "on-hold", "in-call", "ended"]),
    "the page went incoming -> in-call -> on-hold (far end) -> in-call -> ended");
  const code = await exited;
  check(code === 0, `SIPp's holding phone saw every answer it expected and its BYE answered (exit ${code})`);
}

const started = Date.now();
await runPage(base, token, async (page) => {
  await browserHold(page);
  await sipHold(page);
  console.log(`figure: both holds took ${((Date.now() - started) / 1000).toFixed(1)} s in Chromium`);
});
