// siphon.js: a browser client for siphon's signaling protocol (docs/signaling.md).
// One ES module, no dependencies. docs/siphon-js.md documents it.
//
//   import { Siphon } from "/siphon.js";
//   const phone = await Siphon.connect("ws://127.0.0.1:8080/ws", { token });
//   const call = await phone.call("1000", { stream });
//   call.on("state", (state) => console.log(state));
//   phone.on("incoming", (incoming) => incoming.accept({ stream }));

const PC_CONFIG = { iceServers: [], bundlePolicy: "max-bundle", rtcpMuxPolicy: "require" };
// The `error` codes siphon answers a mid-call `offer` with.
const OFFER_ERRORS = ["bad_sdp", "sip_refused", "bad_message", "unknown_call"];

// Browsers give the microphone (navigator.mediaDevices) only to a secure
// context: a page served over https://, or from localhost / 127.0.0.1.
const INSECURE =
  "the microphone needs a secure page: this one is not (http:// on a remote address), " +
  "so the browser gives it none; open it over https:// (or from localhost)";

function event(type, detail) {
  return new CustomEvent(type, { detail });
}

/** An EventTarget whose `on(type, fn)` hands `fn` the event's detail. */
class Emitter extends EventTarget {
  /** Listen to `type`; `fn(detail)`. Returns a function that stops listening. */
  on(type, fn) {
    const listener = (e) => fn(e.detail);
    this.addEventListener(type, listener);
    return () => this.removeEventListener(type, listener);
  }
}

/** One signaling connection (a WebSocket to /ws). */
export class Siphon extends Emitter {
  /**
   * Connect and wait for `welcome`. `auth` is `{ token }` (a JWT, when the
   * server requires tokens) or `{ user }` (loopback servers without tokens).
   * `resume: true` when the socket comes to `resume` calls of a lost one.
   */
  static connect(url, auth = {}, { resume = false } = {}) {
    const phone = new Siphon();
    return phone.#open(url, auth, resume);
  }

  /** Whether this page may use the microphone: a secure context that has `navigator.mediaDevices`. */
  static get secure() {
    return Boolean(globalThis.isSecureContext && globalThis.navigator?.mediaDevices?.getUserMedia);
  }

  /**
   * The microphone (getUserMedia with `constraints`). Rejects with a
   * `SiphonError` `insecure` on a page that is not a secure context, where
   * the browser has no `navigator.mediaDevices` at all.
   */
  static async microphone(constraints = { audio: true, video: false }) {
    if (!Siphon.secure) throw new SiphonError("insecure", INSECURE);
    return navigator.mediaDevices.getUserMedia(constraints);
  }

  #ws = null;
  #calls = new Map();
  #welcome = null;
  #seq = 0;
  /** The user the server knows this socket as (`welcome.user` or `auth.user`). */
  user = null;

  #open(url, auth, resume) {
    const query = new URLSearchParams();
    if (auth.token) query.set("token", auth.token);
    // A draining siphon still takes a socket that comes to resume a call.
    if (resume) query.set("resume", "1");
    const target = query.size ? `${url}?${query}` : url;
    const ws = new WebSocket(target);
    this.#ws = ws;
    return new Promise((resolve, reject) => {
      let settled = false;
      // Sent before `welcome`: a server that requires tokens reads the first
      // message as the credentials and refuses at once instead of after 10 s.
      ws.onopen = () => auth.user && !auth.token && this.#send({ type: "hello", user: auth.user });
      ws.onmessage = (m) => {
        let msg;
        try {
          msg = JSON.parse(m.data);
        } catch {
          return;
        }
        if (!settled && msg.type === "welcome") {
          settled = true;
          this.user = msg.user ?? auth.user ?? null;
          resolve(this);
        } else if (!settled && msg.type === "error") {
          settled = true;
          reject(new SiphonError(msg.code, msg.message));
        }
        this.#dispatch(msg);
      };
      ws.onclose = (e) => {
        if (!settled) reject(new SiphonError("closed", `socket closed (${e.code})`));
        for (const call of this.#calls.values()) call._lost();
        this.dispatchEvent(event("close", { code: e.code, reason: e.reason }));
      };
      ws.onerror = () => {};
    });
  }

  /**
   * Place a call to `to` (a number, user, or sip: URI where allowed).
   * Resolves to the `Call` once siphon sent the INVITE (`trying`); rejects
   * with a `SiphonError` when siphon refuses the call (`no_route`,
   * `limit_reached`, …) or it ends before that (e.g. 488, 503).
   */
  async call(to, { stream = null, callId = null } = {}) {
    const id = callId ?? `c${Date.now().toString(36)}${(this.#seq++).toString(36)}`;
    const call = new Call(this, id, "outbound", { to });
    this.#calls.set(id, call);
    const placed = call._placed();
    try {
      await call._offer(stream, to);
    } catch (e) {
      call._fail(new SiphonError("webrtc", e.message));
    }
    return placed;
  }

  /** REGISTER an extension with the user's own credentials (where the server allows it). */
  register({ password, extension, username, expires } = {}) {
    this.#send({ type: "register", password, extension, username, expires });
  }

  /** Remove the registration `register` made. */
  unregister() {
    this.#send({ type: "unregister" });
  }

  /** Take back an answered call after a reconnect (same user). */
  resume(call) {
    this.#calls.set(call.id, call);
    call._rebind(this);
    this.#send({ type: "resume", call_id: call.id });
  }

  /** Close the socket (answered calls of a known user wait for a `resume`). */
  close() {
    this.#ws?.close();
  }

  /** Calls in progress on this connection. */
  get calls() {
    return [...this.#calls.values()];
  }

  _send(msg) {
    this.#send(msg);
  }

  _forget(id) {
    this.#calls.delete(id);
  }

  #send(msg) {
    const clean = Object.fromEntries(Object.entries(msg).filter(([, v]) => v !== undefined && v !== null));
    if (this.#ws?.readyState === WebSocket.OPEN) this.#ws.send(JSON.stringify(clean));
  }

  #dispatch(msg) {
    if (msg.type === "incoming") {
      const call = new Call(this, msg.call_id, "inbound", { from: msg.from, to: msg.to, offer: msg.sdp });
      this.#calls.set(msg.call_id, call);
      this.dispatchEvent(event("incoming", call));
      return;
    }
    const call = msg.call_id ? this.#calls.get(msg.call_id) : null;
    if (call) {
      call._on(msg);
      return;
    }
    if (["registered", "registration_failed", "unregistered", "welcome"].includes(msg.type)) {
      this.dispatchEvent(event(msg.type, msg));
    } else if (msg.type === "error") {
      this.dispatchEvent(event("error", new SiphonError(msg.code, msg.message)));
    }
  }
}

/**
 * An error the server sent (`error` message: `code` is its code), a call
 * that ended before it was placed (`code` "hangup", `status` the SIP code),
 * a lost socket (`code` "closed"), or a page that cannot have the
 * microphone (`code` "insecure", from `Siphon.microphone()`).
 */
export class SiphonError extends Error {
  constructor(code, message, status = null) {
    super(`${code}: ${message}`);
    this.code = code;
    this.status = status;
  }
}

/**
 * One call. `state` goes: outbound calling -> trying -> ringing -> (early) -> answered
 * -> ended; inbound incoming -> accepting -> answered -> ended. Events: `state`,
 * `trying`, `ringing`, `forwarded` {from, to}, `progress`, `answered`, `hangup` {code, reason},
 * `transfer_progress` {code}, `transfer_failed` {code, reason}, `transferred` {to} (the far
 * end transferred the call: it goes on with `to`),
 * `dtmf` {digit, duration}, `quality` {toBrowser, toSip} (each: packets, lost, loss,
 * jitter_ms, rtt_ms, r, mos), `track` (the remote MediaStream), `hold` {held, by}
 * (by "local": hold() or resume() was answered; "remote": the far end's), `error`.
 */
export class Call extends Emitter {
  constructor(phone, id, direction, info) {
    super();
    this.phone = phone;
    this.id = id;
    this.direction = direction;
    this.from = info.from ?? null;
    this.to = info.to ?? null;
    this.state = direction === "inbound" ? "incoming" : "new";
    this.pc = null;
    this.remoteStream = null;
    this.muted = false;
    /** `{ code, reason }` once the call is over. */
    this.ended = null;
    /** Whether this browser put the call on hold (`hold()`), and whether the far end did. */
    this.localHold = false;
    this.remoteHold = false;
    this._offerSdp = info.offer ?? null;
    /** The browser's own mid-call offer waiting for siphon's answer (one at a time). */
    this._reoffer = null;
    this._pending = null;
    this._queue = Promise.resolve();
  }

  /** Answer an incoming call with `stream` (from getUserMedia). */
  async accept({ stream = null } = {}) {
    if (this.direction !== "inbound" || this.state !== "incoming") throw new Error("not an incoming call");
    this.#setState("accepting");
    const pc = this.#peer(stream);
    try {
      await pc.setRemoteDescription({ type: "offer", sdp: this._offerSdp });
      await pc.setLocalDescription(await pc.createAnswer());
    } catch (e) {
      // The browser cannot take siphon's offer: stop ringing here, say why.
      if (this.state !== "ended") this.reject(486);
      throw new SiphonError("webrtc", e.message);
    }
    this.phone._send({ type: "accept", call_id: this.id, sdp: pc.localDescription.sdp });
    this.#setState("answered");
  }

  /** Refuse an incoming call: 486 (busy here) or 603 (decline everywhere). */
  reject(code = 486) {
    this.phone._send({ type: "reject", call_id: this.id, code });
    this.#end(code, code === 603 ? "Decline" : "Busy Here");
  }

  /** End the call (CANCEL before the answer, BYE after). */
  hangup() {
    this.phone._send({ type: "hangup", call_id: this.id });
  }

  /**
   * Transfer the answered call: blind to `to` (a number, a user), or, given
   * another answered Call of this phone as `replaces`, attended to its far
   * end. Progress comes as `transfer_progress` {code} events; success ends
   * the call (`hangup` 200 "Transferred"), failure is `transfer_failed`
   * {code, reason} and the call goes on.
   */
  transfer(to, { replaces } = {}) {
    const msg = { type: "transfer", call_id: this.id };
    if (replaces) msg.replaces = replaces.id;
    else msg.to = to;
    this.phone._send(msg);
  }

  /** Stop or resume sending microphone audio. */
  mute(on = true) {
    this.muted = on;
    for (const s of this.pc?.getSenders() ?? []) if (s.track) s.track.enabled = !on;
  }

  /** Whether the browser can send RFC 4733 itself (the answer has telephone-event). */
  get canInsertDtmf() {
    return Boolean(this.#dtmfSender()?.canInsertDTMF);
  }

  /**
   * Send key presses (0-9 * # A-D) on the answered call, `duration` ms each.
   * `via`: "rtp" (RTCDTMFSender.insertDTMF, in the media), "signaling" (a
   * `dtmf` message: siphon sends RFC 4733 or SIP INFO, whichever the far end
   * negotiated), or "auto" (rtp when the browser can, else signaling).
   */
  sendDtmf(digits, { duration = 160, via = "auto" } = {}) {
    const sender = this.#dtmfSender();
    if (via === "rtp" || (via === "auto" && sender?.canInsertDTMF)) {
      if (!sender?.canInsertDTMF) throw new Error("this call cannot send RFC 4733 from the browser");
      // insertDTMF replaces what is still queued: append, or quick presses get lost.
      sender.insertDTMF(sender.toneBuffer + digits, duration, 70);
    } else {
      this.phone._send({ type: "dtmf", call_id: this.id, digits, duration });
    }
  }

  /**
   * Restart ICE (a network change): a new offer, answered by siphon.
   * Resolves once siphon's answer is applied; a restart already under way
   * is the same promise.
   */
  restartIce() {
    if (this._reoffer?.kind === "ice_restart") return this._reoffer.promise;
    return this.#reoffer("ice_restart", () => {
      this.pc.restartIce();
      return null;
    });
  }

  /**
   * Put the answered call on hold: the browser stops receiving (its audio
   * goes sendonly, or inactive without a microphone) and siphon re-INVITEs
   * the SIP side. Resolves once siphon's answer is applied (the SIP side
   * agreed); rejects with a `SiphonError` when siphon or the SIP side
   * refuses (`bad_sdp`; `sip_refused` for a SIP failure other than 488), while another offer of this call is still waiting
   * for its answer (`pending`), or when the call is not answered.
   */
  hold() {
    return this.#direction(true);
  }

  /** Take the call off hold (sendrecv again); settles like `hold()`. */
  resume() {
    return this.#direction(false);
  }

  #direction(held) {
    if (this.state !== "answered") {
      return Promise.reject(new SiphonError("not_answered", `${held ? "hold" : "resume"}: the call is ${this.state}`));
    }
    const prepare = () => {
      const t = this.pc.getTransceivers().find((x) => x.receiver.track.kind === "audio" && !x.stopped);
      if (!t) throw new Error("no audio transceiver");
      const before = t.direction;
      const send = Boolean(t.sender.track);
      t.direction = held ? (send ? "sendonly" : "inactive") : send ? "sendrecv" : "recvonly";
      return () => (t.direction = before);
    };
    const applied = () => {
      this.localHold = held;
      this.dispatchEvent(event("hold", { held, by: "local" }));
    };
    return this.#reoffer(held ? "hold" : "resume", prepare, applied);
  }

  /**
   * Send a mid-call offer of the browser's own: `prepare()` changes the peer
   * connection before the offer (and returns how to undo it, or null);
   * `applied()` runs once siphon's answer is applied, before the promise
   * resolves. Offers are made in the call's message queue, so they never
   * interleave with the handling of siphon's own offers.
   */
  #reoffer(kind, prepare, applied = () => {}) {
    if (!this.pc || this.state === "ended") {
      return Promise.reject(new SiphonError("not_answered", `${kind}: the call has no session`));
    }
    if (this._reoffer) {
      const busy = `${kind}: the ${this._reoffer.kind} offer still waits for siphon's answer`;
      return Promise.reject(new SiphonError("pending", busy));
    }
    const pending = { kind, applied, undo: null, sent: false };
    pending.promise = new Promise((resolve, reject) => Object.assign(pending, { resolve, reject }));
    this._reoffer = pending;
    this._queue = this._queue.then(async () => {
      if (this._reoffer !== pending) return; // the call ended meanwhile
      try {
        if (this.pc.signalingState !== "stable") throw new Error(`signaling state is ${this.pc.signalingState}`);
        pending.undo = prepare();
        await this.pc.setLocalDescription(await this.pc.createOffer());
      } catch (e) {
        await this.#rollback(pending);
        pending.reject(new SiphonError("webrtc", `${kind}: ${e.message}`));
        return;
      }
      this.phone._send({ type: "offer", call_id: this.id, sdp: this.pc.localDescription.sdp });
      pending.sent = true;
    });
    return pending.promise;
  }

  /** Back to the session before `pending`'s offer. */
  async #rollback(pending) {
    if (this._reoffer === pending) this._reoffer = null;
    try {
      if (this.pc.signalingState === "have-local-offer") await this.pc.setLocalDescription({ type: "rollback" });
    } catch {
      // A closed peer connection: nothing to go back to.
    }
    pending.undo?.();
  }

  async _offer(stream, to) {
    const pc = this.#peer(stream);
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    this.#setState("calling");
    this.phone._send({ type: "call", call_id: this.id, to, sdp: pc.localDescription.sdp });
  }

  _placed() {
    return new Promise((resolve, reject) => (this._pending = { resolve, reject }));
  }

  /** The call could not be placed: reject `phone.call()` and end it. */
  _fail(error, reason = error.message) {
    this._pending?.reject(error);
    this._pending = null;
    this.#end(error.status ?? 0, reason);
  }

  _on(msg) {
    // One message at a time: `answered` must see what `progress` applied.
    this._queue = this._queue.then(() =>
      this.#handle(msg).catch((e) => {
        // A browser refusing siphon's SDP must not pass unnoticed.
        this.dispatchEvent(event("error", new SiphonError("webrtc", `${msg.type}: ${e.message}`)));
      }),
    );
  }

  async #handle(msg) {
    switch (msg.type) {
      case "trying":
        this.#setState("trying");
        this._pending?.resolve(this);
        this._pending = null;
        this.dispatchEvent(event("trying", {}));
        break;
      case "ringing":
        this.#setState("ringing");
        this.dispatchEvent(event("ringing", {}));
        break;
      case "forwarded":
        this.dispatchEvent(event("forwarded", { from: msg.from, to: msg.to }));
        break;
      case "quality":
        this.dispatchEvent(event("quality", { toBrowser: msg.to_browser, toSip: msg.to_sip }));
        break;
      case "progress":
        await this.#remote(msg.sdp);
        this.#setState("early");
        this.dispatchEvent(event("progress", { sdp: msg.sdp }));
        break;
      case "answered":
        // After early media the 183's answer stands; siphon renegotiates if needed.
        if (this.pc.signalingState === "have-local-offer") await this.#remote(msg.sdp);
        this.#setState("answered");
        this.dispatchEvent(event("answered", { sdp: msg.sdp }));
        break;
      case "answer": {
        // siphon's answer to the browser's own offer (ICE restart, hold, resume).
        const pending = this._reoffer?.sent ? this._reoffer : null;
        try {
          await this.#remote(msg.sdp);
        } catch (e) {
          if (!pending) throw e;
          await this.#rollback(pending);
          pending.reject(new SiphonError("webrtc", `${pending.kind}: siphon's answer: ${e.message}`));
          break;
        }
        if (pending) {
          this._reoffer = null;
          pending.applied();
          pending.resolve();
        }
        break;
      }
      case "offer": {
        // The far end held or resumed the call: answer siphon's re-offer.
        // A hold of this browser's stays: the transceiver keeps its direction.
        await this.pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
        await this.pc.setLocalDescription(await this.pc.createAnswer());
        this.phone._send({ type: "answer", call_id: this.id, sdp: this.pc.localDescription.sdp });
        const held = /a=(sendonly|inactive)/.test(msg.sdp);
        this.remoteHold = held;
        this.dispatchEvent(event("hold", { held, by: "remote" }));
        break;
      }
      case "ice_disconnected":
        this.restartIce().catch((e) => this.dispatchEvent(event("error", e)));
        break;
      case "resumed":
        this.#setState(this.state === "reconnecting" ? "answered" : this.state);
        break;
      case "dtmf":
        this.dispatchEvent(event("dtmf", { digit: msg.digit, duration: msg.duration }));
        break;
      case "transfer_progress":
        this.dispatchEvent(event("transfer_progress", { code: msg.code }));
        break;
      case "transfer_failed":
        this.dispatchEvent(event("transfer_failed", { code: msg.code, reason: msg.reason }));
        break;
      case "transferred":
        this.dispatchEvent(event("transferred", { to: msg.to }));
        break;
      case "hangup":
        if (this._pending) this._fail(new SiphonError("hangup", `${msg.code} ${msg.reason}`, msg.code), msg.reason);
        else this.#end(msg.code, msg.reason);
        break;
      case "error":
        // An error before `trying` means the `call` itself was refused; one
        // about an offer while the browser's own waits refuses that offer
        // (the session goes on as it was before it).
        if (this._pending) this._fail(new SiphonError(msg.code, msg.message));
        else if (this._reoffer?.sent && OFFER_ERRORS.includes(msg.code)) {
          const pending = this._reoffer;
          await this.#rollback(pending);
          pending.reject(new SiphonError(msg.code, msg.message));
        } else this.dispatchEvent(event("error", new SiphonError(msg.code, msg.message)));
        break;
    }
  }

  _lost() {
    if (this._pending) this._fail(new SiphonError("closed", "the socket closed"));
    else if (this.state === "answered") this.#setState("reconnecting");
    else this.#end(0, "Connection lost");
  }

  _rebind(phone) {
    this.phone = phone;
  }

  #peer(stream) {
    const pc = new RTCPeerConnection(PC_CONFIG);
    this.pc = pc;
    if (stream) for (const track of stream.getAudioTracks()) pc.addTrack(track, stream);
    else pc.addTransceiver("audio", { direction: "recvonly" });
    pc.ontrack = (e) => {
      this.remoteStream = e.streams[0] ?? new MediaStream([e.track]);
      this.dispatchEvent(event("track", this.remoteStream));
    };
    return pc;
  }

  #dtmfSender() {
    return this.pc?.getSenders().find((s) => s.dtmf)?.dtmf ?? null;
  }

  async #remote(sdp) {
    await this.pc.setRemoteDescription({ type: "answer", sdp });
  }

  #setState(state) {
    if (this.state === state || this.state === "ended") return;
    this.state = state;
    this.dispatchEvent(event("state", state));
  }

  #end(code, reason) {
    if (this.state === "ended") return;
    this.ended = { code, reason };
    const offer = this._reoffer;
    this._reoffer = null;
    offer?.reject(new SiphonError("hangup", `${offer.kind}: the call ended (${code} ${reason})`, code));
    this.pc?.close();
    this.phone._forget(this.id);
    this.#setState("ended");
    this.dispatchEvent(event("hangup", { code, reason }));
  }
}
