// An INVITE with Replaces (a PBX's attended transfer or pickup) heard from
// headless Chromium. A SIPp phone (A, uac-replaced.xml) calls the logged-in
// web phone, which answers; A plays a 1 kHz tone. A second SIPp (B,
// uac-replaces.xml) sends siphon an INVITE whose Replaces names A's dialog
// (as A logged it) and plays a 1.5 kHz tone from its ACK on. siphon must
// answer B, BYE A, and move the page's WebRTC leg onto B's dialog without
// renegotiating it. Then the page hangs up: B gets the BYE.
//
// Two figures, each held to 100 ms:
// - the audio gap, what the page hears: an AudioWorklet on the call's
//   remote stream (also played by the page's <audio>) cuts it into 10 ms
//   frames and, for each, computes the RMS and the amplitude at 1 kHz and
//   at 1.5 kHz (Goertzel). A frame is a tone when that frequency carries
//   most of its energy at no less than half (-6 dB) of that tone's steady
//   level. The gap is the longest run of frames that are neither tone from
//   0.5 s before B's INVITE to 1 s after B's tone is first heard: silence,
//   noise or a click between the old party and the new one, at the 10 ms
//   resolution of the frames (a frame holding the end of one tone and the
//   start of the other counts as neither). It is after Chromium's jitter
//   buffer, which hides a late packet by making audio up (concealment: for
//   a steady tone, more of the tone), so the made-up audio across the
//   switch is printed beside it (getStats concealedSamples);
// - the packet gap, what reaches the page: the PCMU packets are tapped as
//   they arrive, before the jitter buffer (encoded insertable streams, in a
//   worker; RTCRtpScriptTransform passed no frame in Chromium 156 here),
//   and decoded to tell A's tone from B's. The gap is the time from A's
//   last packet to B's first (20 ms in a steady stream). Their sequence
//   numbers and timestamps must follow on (+1, +160): siphon rewrites B's
//   stream to continue A's.
// Both include siphon's part (answering B, letting go of A's source and
// latching B's, the header rewrite) and SIPp's: B starts its pcap right
// after sending its ACK, A stops sending when siphon's BYE reaches it.
//
//   node replaces.mjs BASE_URL TOKEN SCENARIO_DIR LOG_DIR SIPP_A_ARGS_JSON SIPP_B_ARGS_JSON
import { spawn } from "node:child_process";
import { openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { check, runPage, sleep, waitState } from "./common.mjs";

const [base, token, scenarios, logDir, argsA, argsB] = process.argv.slice(2);
const F1 = 1000;
const F2 = 1500;
const FRAME_MS = 10;
const LIMIT_MS = 100;

// SIPps still running when this script ends (a failed check) are stopped.
const children = [];
process.on("exit", () => children.forEach((c) => c.exitCode === null && c.kill()));

// A SIPp in the background, its stderr in LOG_DIR/<name>.log; resolves
// `exited` with its status.
function sipp(name, args) {
  const err = openSync(join(logDir, `${name}.log`), "w");
  const child = spawn("sipp", args, { cwd: scenarios, stdio: ["ignore", "ignore", err] });
  child.exited = new Promise((r) => child.on("exit", (code) => r(code)));
  children.push(child);
  return child;
}

// SIPp's status within `ms`, or "still running".
const exitOf = (child, ms) => Promise.race([child.exited, sleep(ms).then(() => "still running")]);

// The Replaces value A wrote to its log once answered (Call-ID and tags).
async function replacesOf(log) {
  for (let i = 0; i < 50; i++) {
    let text = "";
    try {
      text = readFileSync(log, "utf8");
    } catch {
      // not written yet
    }
    const m = text.match(/replaces (\S+);to-tag=(\S+);from-tag=(\S+)/);
    if (m) return { callid: m[1], totag: m[2], fromtag: m[3] };
    await sleep(100);
  }
  throw new Error(`SIPp A logged no dialog in ${log}`);
}

// The meter: per 10 ms frame, its start (s, audio clock), RMS and the
// amplitudes at F1 and F2.
const METER = `
class ToneMeter extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const { freqs, frameMs } = options.processorOptions;
    this.n = Math.round((sampleRate * frameMs) / 1000);
    this.coeffs = freqs.map((f) => 2 * Math.cos((2 * Math.PI * f) / sampleRate));
    this.reset();
    this.batch = [];
  }
  reset() {
    this.s1 = this.coeffs.map(() => 0);
    this.s2 = this.coeffs.map(() => 0);
    this.energy = 0;
    this.count = 0;
  }
  process(inputs) {
    const x = inputs[0]?.[0];
    const len = x ? x.length : 128;
    for (let i = 0; i < len; i++) {
      const v = x ? x[i] : 0;
      this.energy += v * v;
      for (let k = 0; k < this.coeffs.length; k++) {
        const s = v + this.coeffs[k] * this.s1[k] - this.s2[k];
        this.s2[k] = this.s1[k];
        this.s1[k] = s;
      }
      if (++this.count === this.n) this.flush(currentFrame + i + 1);
    }
    return true;
  }
  flush(end) {
    const n = this.n;
    const amp = this.coeffs.map((c, k) => {
      const p = this.s1[k] ** 2 + this.s2[k] ** 2 - c * this.s1[k] * this.s2[k];
      return (2 * Math.sqrt(Math.max(p, 0))) / n;
    });
    this.batch.push({ t: (end - n) / sampleRate, rms: Math.sqrt(this.energy / n), amp });
    this.reset();
    if (this.batch.length >= 10) {
      this.port.postMessage(this.batch);
      this.batch = [];
    }
  }
}
registerProcessor("tone-meter", ToneMeter);
`;

// The packets themselves, as they reach the page (before its jitter
// buffer): a worker on the receiver's encoded stream notes, for each PCMU
// frame, its arrival (ms, the page's clock), sequence number, RTP timestamp
// and which tone it carries (its 160 u-law samples decoded, Goertzel at F1
// and F2; 0 for neither or silence).
const TAP = `
const [F1, F2] = [${F1}, ${F2}];
const linear = (u) => {
  u = ~u & 0xff;
  const s = (((u & 0x0f) << 3) + 0x84) << ((u >> 4) & 7);
  return u & 0x80 ? 0x84 - s : s - 0x84;
};
const amplitude = (x, f) => {
  const c = 2 * Math.cos((2 * Math.PI * f) / 8000);
  let s1 = 0, s2 = 0;
  for (const v of x) [s1, s2] = [v + c * s1 - s2, s1];
  return (2 * Math.sqrt(Math.max(s1 * s1 + s2 * s2 - c * s1 * s2, 0))) / x.length;
};
onmessage = (event) => {
  const { readable, writable } = event.data;
  let batch = [];
  const note = new TransformStream({
    transform(frame, out) {
      const m = frame.getMetadata();
      if (m.payloadType === 0) {
        const x = Array.from(new Uint8Array(frame.data), linear);
        const energy = x.reduce((e, v) => e + v * v, 0) / x.length;
        const tone = [F1, F2].findIndex((f) => amplitude(x, f) ** 2 / 2 >= 0.5 * energy) + 1;
        batch.push([performance.timeOrigin + performance.now(), m.sequenceNumber, m.rtpTimestamp, energy > 1e4 ? tone : 0]);
        if (batch.length >= 5) {
          postMessage(batch);
          batch = [];
        }
      }
      out.enqueue(frame);
    },
  });
  readable.pipeThrough(note).pipeTo(writable);
};
`;

// Tap the packets of every peer connection the page makes from now on: the
// transform goes on each receiver as its track arrives.
async function tapPackets(page) {
  await page.evaluate((code) => {
    const tap = new Worker(URL.createObjectURL(new Blob([code], { type: "text/javascript" })));
    window.packets = [];
    tap.onmessage = (e) => window.packets.push(...e.data);
    const Native = window.RTCPeerConnection;
    window.RTCPeerConnection = function (...args) {
      const pc = new Native({ ...args[0], encodedInsertableStreams: true });
      pc.addEventListener("track", (e) => {
        const { readable, writable } = e.receiver.createEncodedStreams();
        tap.postMessage({ readable, writable }, [readable, writable]);
      });
      return pc;
    };
    window.RTCPeerConnection.prototype = Native.prototype;
  }, TAP);
}

// Start the meter on the call's remote stream, and record every message
// siphon sends the call, every message the page sends, and every change of
// the peer connection's signaling state.
async function instrument(page) {
  return page.evaluate(async ({ code, freqs, frameMs }) => {
    const call = window.siphonCall;
    const audio = document.getElementById("remote");
    const ctx = new AudioContext();
    await ctx.resume();
    await ctx.audioWorklet.addModule(URL.createObjectURL(new Blob([code], { type: "text/javascript" })));
    const node = new AudioWorkletNode(ctx, "tone-meter", { processorOptions: { freqs, frameMs } });
    window.meterFrames = [];
    node.port.onmessage = (e) => window.meterFrames.push(...e.data);
    ctx.createMediaStreamSource(call.remoteStream).connect(node);
    node.connect(ctx.destination); // pulled by the graph; it outputs silence
    window.meterCtx = ctx;

    const seen = { received: [], sent: [], signaling: [] };
    window.replacesSeen = seen;
    const on = call._on.bind(call);
    call._on = (msg) => {
      seen.received.push(msg.type);
      on(msg);
    };
    const phone = call.phone;
    const send = phone._send.bind(phone);
    phone._send = (msg) => {
      seen.sent.push(msg.type);
      send(msg);
    };
    call.pc.addEventListener("signalingstatechange", () => seen.signaling.push(call.pc.signalingState));
    return {
      rate: ctx.sampleRate,
      ctx: ctx.state,
      playing: !audio.paused && audio.srcObject === call.remoteStream,
      remote: call.pc.currentRemoteDescription.sdp,
      local: call.pc.currentLocalDescription.sdp,
    };
  }, { code: METER, freqs: [F1, F2], frameMs: FRAME_MS });
}

// Concealment counters of the page's inbound audio (getStats), and its clock.
async function concealment(page) {
  return page.evaluate(async () => {
    const out = { at: 0, samples: 0, concealed: 0, events: 0, packets: 0 };
    (await window.siphonCall.pc.getStats()).forEach((s) => {
      if (s.type !== "inbound-rtp" || s.kind !== "audio") return;
      out.at = s.timestamp;
      out.samples = s.totalSamplesReceived ?? 0;
      out.concealed = s.concealedSamples ?? 0;
      out.events = s.concealmentEvents ?? 0;
      out.packets = s.packetsReceived ?? 0;
    });
    return out;
  });
}

// Milliseconds of audio Chromium made up between two concealment readings.
function concealedMs(a, b) {
  const samples = b.samples - a.samples;
  return samples > 0 ? ((b.concealed - a.concealed) * (b.at - a.at)) / samples : 0;
}

const frames = (page) => page.evaluate(() => window.meterFrames);
// Now on the audio clock (s) and the page's clock (ms).
const now = (page) => page.evaluate(() => ({ audio: window.meterCtx.currentTime, wall: performance.timeOrigin + performance.now() }));

// The packets around the switch at `wall` (the page's clock, ms): how far
// apart A's last and B's first arrived, how the sequence number and
// timestamp stepped between them, and the longest pause between arrivals
// from 0.5 s before the switch to 1 s after B's first packet.
function packetsAt(all, wall) {
  const first2 = all.findIndex((p) => p[0] >= wall && p[3] === 2);
  if (first2 < 0) return null;
  const last1 = all.map((p) => p[3]).lastIndexOf(1, first2);
  if (last1 < 0) return null;
  const [a, b] = [all[last1], all[first2]];
  let pause = 0;
  for (let i = 1; i < all.length; i++) {
    if (all[i][0] >= wall - 500 && all[i - 1][0] <= b[0] + 1000) pause = Math.max(pause, all[i][0] - all[i - 1][0]);
  }
  return {
    apart: b[0] - a[0],
    between: first2 - last1 - 1,
    seq: (b[1] - a[1] + 0x10000) % 0x10000,
    ts: (b[2] - a[2] + 0x100000000) % 0x100000000,
    pause,
    oldAfter: all.slice(first2).filter((p) => p[3] === 1).length,
    afterInvite: b[0] - wall,
  };
}

// Which tone a frame is: 1 (F1), 2 (F2) or 0 (neither). `ref` holds each
// tone's steady amplitude.
function toneOf(f, ref) {
  const share = (a) => (a * a) / 2 / Math.max(f.rms * f.rms, 1e-12);
  for (const k of [0, 1]) {
    if (share(f.amp[k]) >= 0.5 && f.amp[k] >= ref[k] / 2) return k + 1;
  }
  return 0;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : 0;
};

// Each tone's steady amplitude: the median over the frames where it carries
// most of the energy.
function reference(all) {
  return [0, 1].map((k) =>
    median(all.filter((f) => (f.amp[k] * f.amp[k]) / 2 >= 0.5 * f.rms * f.rms && f.rms > 0.01).map((f) => f.amp[k])),
  );
}

// The tones heard around the switch at `switchAt` (audio clock, s).
function analyse(all, switchAt) {
  const ref = reference(all);
  const tones = all.map((f) => toneOf(f, ref));
  // B's tone starts: the first frame of a run of five F2 frames after the switch.
  const first2 = tones.findIndex((t, i) => all[i].t >= switchAt && tones.slice(i, i + 5).every((x) => x === 2));
  // The 1.5 s before the switch (the meter's first frames may be silent).
  const before = tones.filter((t, i) => all[i].t >= switchAt - 1.5 && all[i].t < switchAt);
  const from = all.findIndex((f) => f.t >= switchAt - 0.5);
  const to = first2 < 0 ? tones.length : Math.min(tones.length, first2 + 1000 / FRAME_MS);
  let longest = 0;
  let run = 0;
  let quietest = Infinity;
  for (let i = from; i < to; i++) {
    run = tones[i] === 0 ? run + 1 : 0;
    longest = Math.max(longest, run);
    quietest = Math.min(quietest, all[i].rms);
  }
  const last1 = first2 < 0 ? -1 : tones.lastIndexOf(1, first2);
  return {
    ref,
    first2,
    heardF1: before.length ? before.filter((t) => t === 1).length / before.length : 0,
    afterF2: first2 < 0 ? 0 : tones.slice(first2, to).filter((t) => t === 2).length / (to - first2),
    oldAfter: first2 < 0 ? 0 : tones.slice(first2).filter((t) => t === 1).length,
    gapMs: longest * FRAME_MS,
    // The quietest frame around the switch, in dB against A's steady level.
    dip: 20 * Math.log10(quietest / (ref[0] / Math.SQRT2)),
    switchMs: first2 < 0 ? null : (first2 - last1 - 1) * FRAME_MS,
    f2After: first2 < 0 ? null : (all[first2].t - switchAt) * 1000,
    timeline: tones.slice(Math.max(0, first2 - 30), first2 + 10).join(""),
  };
}

await runPage(base, token, async (page) => {
  await tapPackets(page);
  const a = sipp("sipp-a", JSON.parse(argsA));
  await waitState(page, "incoming");
  await page.click("#answer");
  await waitState(page, "in-call");
  const setup = await instrument(page);
  check(setup.ctx === "running" && setup.playing,
    `WebAudio measures the remote stream at ${setup.rate} Hz, played by the page's <audio> (context ${setup.ctx})`);
  await sleep(500);
  const c0 = await concealment(page);
  await sleep(1500);
  const c1 = await concealment(page);

  const dialog = await replacesOf(join(logDir, "sipp-a-logs.log"));
  console.log(`replacing ${dialog.callid};to-tag=${dialog.totag};from-tag=${dialog.fromtag}`);
  const keys = Object.entries(dialog).flatMap(([k, v]) => ["-key", k, v]);
  const mark = await now(page);
  const switchAt = mark.audio;
  const b = sipp("sipp-b", [...keys, ...JSON.parse(argsB)]);

  check((await exitOf(a, 10000)) === 0, "SIPp A got siphon's BYE for the replaced dialog and exited 0");
  // B's tone heard for 1.2 s, or 10 s at most.
  for (let i = 0; i < 100; i++) {
    const all = await frames(page);
    const { first2 } = analyse(all, switchAt);
    if (first2 >= 0 && all.length - first2 >= 1200 / FRAME_MS) break;
    await sleep(100);
  }
  const c2 = await concealment(page);
  const heard = await frames(page);
  const arrived = await page.evaluate(() => window.packets);
  writeFileSync(join(logDir, "heard.json"), JSON.stringify({ mark, frames: heard, packets: arrived }));
  const r = analyse(heard, switchAt);
  const p = packetsAt(arrived, mark.wall);
  const seen = await page.evaluate(() => window.replacesSeen);
  const sdp = await page.evaluate(() => ({
    state: window.siphonCall.pc.signalingState,
    remote: window.siphonCall.pc.currentRemoteDescription.sdp,
    local: window.siphonCall.pc.currentLocalDescription.sdp,
  }));

  console.log(`tones around the switch (1: ${F1} Hz, 2: ${F2} Hz, 0: neither; 10 ms a digit): ${r.timeline}`);
  console.log(`steady amplitudes: ${F1} Hz ${r.ref[0].toFixed(3)}, ${F2} Hz ${r.ref[1].toFixed(3)}; ` +
    `B's tone first heard ${r.f2After?.toFixed(0)} ms after its INVITE was started; ` +
    `the quietest frame around the switch ${r.dip.toFixed(1)} dB against A's tone`);
  check(r.heardF1 >= 0.9, `before the switch the page heard A's ${F1} Hz tone (${(r.heardF1 * 100).toFixed(0)}% of frames in 1.5 s)`);
  check(r.first2 >= 0 && r.afterF2 >= 0.9,
    `after the switch the page hears B's ${F2} Hz tone (${(r.afterF2 * 100).toFixed(0)}% of frames in the second after)`);
  check(r.oldAfter === 0, `no frame of A's tone after B's began (${r.oldAfter})`);
  check(p !== null, `the page received A's packets, then B's (${arrived.length} PCMU packets seen)`);
  check(p.between === 0 && p.seq === 1 && p.ts === 160,
    `B's packets continue A's stream: sequence number +${p.seq}, timestamp +${p.ts} across the switch`);
  check(p.oldAfter === 0, `no packet of A's tone after B's first (${p.oldAfter})`);
  console.log(`B's first packet reached the page ${p.afterInvite.toFixed(0)} ms after B's INVITE was started; ` +
    `the longest pause between packets from 0.5 s before to 1 s after: ${p.pause.toFixed(1)} ms`);
  const conceal = concealedMs(c1, c2);
  const baseline = concealedMs(c0, c1);
  console.log(`Chromium concealed ${conceal.toFixed(0)} ms of audio across the switch ` +
    `(${c2.events - c1.events} concealment events), ${baseline.toFixed(0)} ms in the 1.5 s before it`);
  console.log(`replaces audio gap: ${r.gapMs} ms (limit ${LIMIT_MS} ms; heard: the longest run of 10 ms frames ` +
    `of neither tone around the switch; last ${F1} Hz frame to first ${F2} Hz frame ${r.switchMs} ms)`);
  console.log(`replaces packet gap: ${p.apart.toFixed(1)} ms (limit ${LIMIT_MS} ms; from A's last packet to ` +
    "B's first reaching the page; 20 ms in a steady stream)");
  check(r.gapMs <= LIMIT_MS, `the audio gap heard (${r.gapMs} ms) is within ${LIMIT_MS} ms`);
  check(p.apart <= LIMIT_MS, `the packet gap (${p.apart.toFixed(1)} ms) is within ${LIMIT_MS} ms`);

  check(seen.received.length === 0, `siphon sent the page nothing about the call during the switch (${seen.received.join(", ") || "nothing"})`);
  check(!seen.sent.some((t) => ["offer", "answer", "accept"].includes(t)), `the page sent no new offer or answer (${seen.sent.join(", ") || "nothing"})`);
  check(seen.signaling.length === 0 && sdp.state === "stable",
    `the peer connection stayed stable (${seen.signaling.join(" -> ") || "no signaling state change"})`);
  // The page's own description gains its ICE candidates as they are gathered.
  const session = (d) => d.split("\r\n").filter((l) => !/^a=(candidate|end-of-candidates)/.test(l)).join("\n");
  check(sdp.remote === setup.remote && session(sdp.local) === session(setup.local),
    "the WebRTC session descriptions are still those of the answer");

  await page.click("#hangup");
  await waitState(page, "ended");
  check((await exitOf(b, 10000)) === 0, "SIPp B got the page's hangup as BYE on the new dialog and exited 0");
}, ["--autoplay-policy=no-user-gesture-required"]);
