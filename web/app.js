// The web phone page: wires siphon.js to the controls of index.html.
// For tests and debugging it keeps `window.siphonPhone`, `window.siphonCall`
// and `window.siphonStates` (every call state shown in #state, in order).

import { Siphon } from "/siphon.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;

let phone = null;
let call = null;
let mic = null;
let audio = null;
let placing = false;
let connecting = false;
let holding = false;
window.siphonStates = [];

// What #state shows for each siphon.js call state: short words a person
// (and a test) can read.
const LABELS = {
  new: "connecting",
  calling: "connecting",
  early: "early-media",
  accepting: "answering",
  answered: "in-call",
};

// Plain words for how a call ended: the SIP code stays in front of them.
const ENDINGS = {
  0: "connection lost",
  403: "refused",
  404: "number not found",
  480: "not available",
  486: "busy",
  487: "cancelled",
  488: "no common audio codec",
  600: "busy",
  603: "declined",
  604: "number not found",
};

function ending(code, reason) {
  if (code === 200) return reason === "Local hangup" ? "you hung up" : reason === "Remote hangup" ? "the far end hung up" : "call ended";
  if (code === 408) return /session timer|media/i.test(reason) ? "the far end stopped responding" : "no answer";
  if (code === 503) return /shutting down/i.test(reason) ? "siphon is restarting" : "service unavailable";
  return ENDINGS[code] ?? (reason || "call failed");
}

// Plain words for the codes of a refused call or request (siphon's `error`
// codes, and siphon.js's own): a person reads these, not "no_route".
const REFUSALS = {
  no_route: "no route to that number",
  limit_reached: "too many calls right now",
  bad_sdp: "the call's audio setup was refused",
  sip_refused: "the far end refused",
  bad_message: "the request was refused",
  unauthorized: "not signed in: the token was refused",
  forbidden: "not allowed",
  draining: "siphon is restarting: try again shortly",
  internal: "siphon failed",
  closed: "connection lost",
  webrtc: "the browser could not set up audio",
  insecure: "this page is not secure: open it over https://",
  pending: "another change is still under way",
  not_answered: "the call is not answered",
  hangup: "the call ended",
};

function refusal(code) {
  return REFUSALS[code] ?? (code ? code.replaceAll("_", " ") : "something went wrong");
}

function label(c) {
  if (c.state === "ended") return `ended ${c.ended.code} ${ending(c.ended.code, c.ended.reason)}`;
  if (c.state === "answered" && (c.localHold || c.remoteHold)) {
    return `on-hold ${c.localHold && c.remoteHold ? "(both)" : c.localHold ? "(you)" : "(far end)"}`;
  }
  return LABELS[c.state] ?? c.state;
}

function show(state, peer = "") {
  $("state").textContent = state;
  $("peer").textContent = peer;
  window.siphonStates.push(state);
}

function message(text) {
  $("message").textContent = text ?? "";
}

function controls() {
  const active = call && call.state !== "ended";
  const incoming = active && call.state === "incoming";
  $("call").disabled = !phone || active || placing;
  $("answer").hidden = !incoming;
  $("reject").hidden = !incoming;
  $("hangup").disabled = !active || incoming;
  $("mute").disabled = !active || incoming;
  $("mute").textContent = call?.muted ? "Unmute" : "Mute";
  // Hold needs an answered call and no hold or resume still under way.
  $("hold").disabled = !active || call.state !== "answered" || holding;
  $("hold").textContent = call?.localHold ? "Resume" : "Hold";
  $("transfer").disabled = !active || call.state !== "answered";
  $("connect").disabled = Boolean(phone) || connecting;
  $("disconnect").disabled = !phone;
  // Idle, the pad dials; in a call it sends RFC 4733 from the browser, which
  // needs telephone-event in siphon's answer.
  const keys = !active || (call.state === "answered" && call.canInsertDtmf);
  for (const b of document.querySelectorAll("#pad button")) b.disabled = !keys;
}

async function connect({ resume = false } = {}) {
  const token = $("token").value.trim();
  const user = $("user").value.trim();
  if (phone || connecting) return;
  message(Siphon.secure ? "" : insecureAdvice());
  $("conn").textContent = "connecting";
  connecting = true;
  controls();
  try {
    phone = await Siphon.connect(wsUrl, token ? { token } : user ? { user } : {}, { resume });
  } catch (e) {
    $("conn").textContent = "disconnected";
    message(`cannot connect: ${refusal(e.code)} (${e.message})`);
    return;
  } finally {
    connecting = false;
    controls();
  }
  window.siphonPhone = phone;
  $("conn").textContent = `connected${phone.user ? ` as ${phone.user}` : ""}`;
  phone.addEventListener("incoming", (e) => incoming(e.detail));
  phone.addEventListener("registered", (e) => ($("registration").textContent = `registered (${e.detail.expires} s)`));
  phone.addEventListener("registration_failed", (e) => {
    const d = e.detail;
    $("registration").textContent = `failed ${d.code} ${d.reason}, retry in ${d.retry_in} s`;
  });
  phone.addEventListener("unregistered", () => ($("registration").textContent = "unregistered"));
  phone.addEventListener("error", (e) => message(`${refusal(e.detail.code)} (${e.detail.message})`));
  phone.addEventListener("close", (e) => {
    const lost = phone.calls.filter((c) => c.state === "reconnecting");
    $("conn").textContent = "disconnected";
    phone = null;
    controls();
    // siphon drains (1012) or exits (1001), or the connection broke (1006,
    // e.g. siphon's host went away), or it dropped with a call up: connect
    // again (a balancer picks a serving instance) and take the calls back.
    if (RECONNECT_ON.includes(e.detail.code) || lost.length) reconnect(lost, 1);
  });
  controls();
}

// Close codes after which the page reconnects by itself: going away,
// abnormal closure, internal error, service restart, try again later.
const RECONNECT_ON = [1001, 1006, 1011, 1012, 1013];

// Connect again after `attempt` - 1 failures, backing off to 5 s between
// tries, then resume `lost`; gives up after 10 tries.
async function reconnect(lost, attempt) {
  message(lost.length ? "connection lost: reconnecting to take the call back" : "siphon is restarting: reconnecting");
  await new Promise((r) => setTimeout(r, Math.min(500 * attempt, 5000)));
  if (phone) return;
  await connect({ resume: lost.length > 0 });
  if (!phone) {
    if (attempt < 10) reconnect(lost, attempt + 1);
    else message("cannot reconnect: press Connect to try again");
    return;
  }
  message("");
  for (const c of lost) phone.resume(c);
}

// Hang up what is in progress, then close the socket; Connect opens a new
// one. Closed first, an answered call would wait for a `resume` instead.
async function disconnect() {
  if (!phone) return;
  const c = call;
  if (c && c.state !== "ended") {
    const ended = new Promise((r) => {
      c.addEventListener("hangup", r, { once: true });
      setTimeout(r, 2000);
    });
    if (c.state === "incoming") c.reject(486);
    else c.hangup();
    await ended;
  }
  phone?.close();
}

// A new call starts with a clean status: no message and no counters of the last one.
function fresh() {
  message("");
  $("sent").textContent = "0";
  $("received").textContent = "0";
  $("quality").textContent = "—";
}

/** One direction of a `quality` event, in words. */
function figures(q) {
  const rtt = q.rtt_ms == null ? "" : `, RTT ${q.rtt_ms} ms`;
  return `MOS ${q.mos.toFixed(2)} (loss ${(q.loss * 100).toFixed(1)} %, jitter ${q.jitter_ms} ms${rtt})`;
}

async function microphone() {
  // Rejects with code "insecure" on an http:// page from a remote address.
  if (!mic) mic = await Siphon.microphone({ audio: true, video: false });
  meter(mic, "mic-level");
  return mic;
}

function bind(c) {
  call = c;
  window.siphonCall = c;
  c.addEventListener("state", (e) => {
    show(label(c), c.direction === "inbound" ? c.from : c.to);
    if (e.detail !== "incoming") ring(false);
    controls();
  });
  c.addEventListener("hangup", (e) => {
    const { code, reason } = e.detail;
    message(`${ending(code, reason)} (${code}${reason ? ` ${reason}` : ""})`);
    ring(false);
    controls();
  });
  c.addEventListener("track", (e) => {
    $("remote").srcObject = e.detail;
    meter(e.detail, "remote-level");
  });
  c.addEventListener("hold", (e) => {
    // Every re-offer of siphon's says held or not: show changes only.
    if (label(c) !== $("state").textContent) show(label(c), c.direction === "inbound" ? c.from : c.to);
    if (e.detail.by === "remote") message(e.detail.held ? "the far end put the call on hold" : "the far end resumed the call");
    controls();
  });
  c.addEventListener("dtmf", (e) => message(`key ${e.detail.digit} from the far end`));
  c.addEventListener("transfer_progress", (e) => message(`transfer: the target says ${e.detail.code}`));
  c.addEventListener("transfer_failed", (e) => message(`transfer failed: ${e.detail.code} ${e.detail.reason}`));
  c.addEventListener("transferred", (e) => {
    show(label(c), e.detail.to);
    message(`the far end transferred the call to ${e.detail.to}`);
  });
  c.addEventListener("quality", (e) => {
    $("quality").textContent = `to you ${figures(e.detail.toBrowser)} · to them ${figures(e.detail.toSip)}`;
  });
  c.addEventListener("forwarded", (e) => message(`call forwarded${e.detail.to ? ` to ${e.detail.to}` : ""}`));
  c.addEventListener("error", (e) => message(`${refusal(e.detail.code)} (${e.detail.message})`));
  controls();
}

async function place() {
  const to = $("to").value.trim();
  if (!to || !phone || placing) return;
  fresh();
  placing = true;
  show("connecting", to);
  controls();
  try {
    const stream = await microphone();
    // Resolves at `trying`; later states arrive as events on the call.
    const c = await phone.call(to, { stream });
    bind(c);
    show(label(c), to);
  } catch (e) {
    // A refusal (`no_route`, …), a hangup before `trying` (status 488, …),
    // or no microphone (`insecure`): words in #state, the details below.
    const words = e.status ? `${e.status} ${ending(e.status, e.message)}` : `— ${refusal(e.code)}`;
    show(`ended ${words}`, to);
    message(`cannot call: ${e.code === "insecure" ? insecureAdvice() : e.message}`);
  } finally {
    placing = false;
    controls();
  }
}

function incoming(c) {
  if (call && call.state !== "ended") {
    c.reject(486);
    return;
  }
  fresh();
  bind(c);
  show("incoming", c.from);
  ring(true);
}

async function answer() {
  try {
    await call.accept({ stream: await microphone() });
  } catch (e) {
    message(`cannot answer: ${e.code === "insecure" ? insecureAdvice() : e.message}`);
  }
}

// Hold or resume: the button is off until siphon answered (or refused).
async function hold() {
  if (!call || call.state !== "answered" || holding) return;
  const c = call;
  holding = true;
  controls();
  try {
    await (c.localHold ? c.resume() : c.hold());
    message(c.localHold ? "on hold" : "resumed");
  } catch (e) {
    message(`cannot ${c.localHold ? "resume" : "hold"}: ${refusal(e.code)} (${e.message})`);
  } finally {
    holding = false;
    controls();
  }
}

function key(k) {
  if (call && call.state === "answered") call.sendDtmf(k, { via: "rtp" });
  else $("to").value += k;
  tone(k);
}

// Audio: one AudioContext for meters, ring and key clicks.
function ctx() {
  audio ??= new AudioContext();
  if (audio.state === "suspended") audio.resume();
  return audio;
}

const meters = new Map();
function meter(stream, id) {
  if (meters.get(id)?.stream === stream) return;
  const analyser = ctx().createAnalyser();
  analyser.fftSize = 512;
  ctx().createMediaStreamSource(stream).connect(analyser);
  meters.set(id, { stream, analyser, data: new Float32Array(analyser.fftSize) });
}

function drawMeters() {
  for (const [id, m] of meters) {
    m.analyser.getFloatTimeDomainData(m.data);
    let sum = 0;
    for (const v of m.data) sum += v * v;
    $(id).value = Math.min(1, Math.sqrt(sum / m.data.length) * 4);
  }
  requestAnimationFrame(drawMeters);
}

let ringer = null;
function ring(on) {
  document.body.classList.toggle("ringing", on);
  if (!on) {
    clearInterval(ringer?.timer);
    ringer?.gain.disconnect();
    ringer = null;
    return;
  }
  if (ringer) return;
  // The North American ring: 440 + 480 Hz, 2 s on, 4 s off.
  const gain = ctx().createGain();
  gain.gain.value = 0;
  gain.connect(ctx().destination);
  for (const f of [440, 480]) {
    const osc = ctx().createOscillator();
    osc.frequency.value = f;
    osc.connect(gain);
    osc.start();
  }
  const burst = () => {
    const t = ctx().currentTime;
    gain.gain.setValueAtTime(0.15, t);
    gain.gain.setValueAtTime(0, t + 2);
  };
  burst();
  ringer = { gain, timer: setInterval(burst, 6000) };
}

function tone(k) {
  const rows = { 1: 697, 2: 697, 3: 697, 4: 770, 5: 770, 6: 770, 7: 852, 8: 852, 9: 852, "*": 941, 0: 941, "#": 941 };
  const cols = { 1: 1209, 4: 1209, 7: 1209, "*": 1209, 2: 1336, 5: 1336, 8: 1336, 0: 1336, 3: 1477, 6: 1477, 9: 1477, "#": 1477 };
  const gain = ctx().createGain();
  gain.gain.value = 0.05;
  gain.connect(ctx().destination);
  for (const f of [rows[k], cols[k]]) {
    const osc = ctx().createOscillator();
    osc.frequency.value = f;
    osc.connect(gain);
    osc.start();
    osc.stop(ctx().currentTime + 0.12);
  }
}

async function stats() {
  if (call?.pc && call.state !== "ended") {
    let sent = 0;
    let received = 0;
    (await call.pc.getStats()).forEach((s) => {
      if (s.type === "outbound-rtp" && s.kind === "audio") sent += s.packetsSent ?? 0;
      if (s.type === "inbound-rtp" && s.kind === "audio") received += s.packetsReceived ?? 0;
    });
    $("sent").textContent = sent;
    $("received").textContent = received;
  }
  // canInsertDTMF has no change event: it turns true once the transport is up.
  controls();
}

// What a person on an http:// page of a remote host needs to know, with the
// address to try.
function insecureAdvice() {
  const https = `https://${location.host}${location.pathname}`;
  return `this page is not secure (${location.protocol}//${location.host}), so the browser gives it no microphone. ` +
    `Open ${https} instead, or the page from localhost.`;
}

// A form, so that Enter in the token or user field connects.
$("login").onsubmit = (e) => {
  e.preventDefault();
  connect();
};
$("disconnect").onclick = disconnect;
$("call").onclick = place;
$("answer").onclick = answer;
$("reject").onclick = () => call?.reject(486);
$("hangup").onclick = () => call?.hangup();
$("hold").onclick = hold;
$("transfer").onclick = () => {
  const to = $("to").value.trim();
  if (!call || call.state !== "answered") return;
  if (!to) return message("type the number to transfer to, then press Transfer");
  call.transfer(to);
  message(`transferring to ${to}`);
};
$("mute").onclick = () => {
  call?.mute(!call.muted);
  controls();
};
for (const b of document.querySelectorAll("#pad button")) b.onclick = () => key(b.dataset.key);
$("to").addEventListener("keydown", (e) => e.key === "Enter" && place());
setInterval(stats, 1000);
requestAnimationFrame(drawMeters);
show("idle");
controls();
if (!Siphon.secure) message(insecureAdvice());

if (params.get("token")) $("token").value = params.get("token");
if (params.get("user")) $("user").value = params.get("user");
if (params.get("token") || params.get("user")) connect();
