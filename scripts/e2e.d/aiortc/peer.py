"""An aiortc peer that speaks siphon's signaling protocol: places or answers
calls, sends a sine tone, records what comes back and finds its pitch.

aiortc is an independent WebRTC stack (Python, aioice + pyOpenSSL/cryptography)
that shares nothing with siphon."""
import asyncio
import fractions
import json
import os
import ssl
import time

import aioice.ice
import numpy as np
import websockets
from aiortc import (MediaStreamTrack, RTCConfiguration, RTCPeerConnection,
                    RTCSessionDescription)
from av import AudioFrame

# aioice skips loopback addresses unless told otherwise.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]

TIMEOUT = 15


class Tone(MediaStreamTrack):
    """A sine tone in 20 ms frames, paced in real time."""

    kind = "audio"

    def __init__(self, hz=1000.0, rate=48000, level=0.3):
        super().__init__()
        self.hz, self.rate, self.level = hz, rate, level
        self.samples = rate // 50
        self.sent = 0
        self.start = None

    async def recv(self):
        if self.start is None:
            self.start = time.monotonic()
        due = self.start + self.sent / self.rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        t = (np.arange(self.samples) + self.sent) / self.rate
        pcm = (self.level * 32767 * np.sin(2 * np.pi * self.hz * t)).astype(np.int16)
        frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.rate
        frame.pts = self.sent
        frame.time_base = fractions.Fraction(1, self.rate)
        self.sent += self.samples
        return frame


async def record(track, seconds):
    """Mono float samples of `seconds` of `track`, and their rate."""
    chunks, rate = [], None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            frame = await asyncio.wait_for(track.recv(), timeout=2)
        except Exception:  # a timeout, or the track ended with its call
            break
        pcm = frame.to_ndarray().astype(np.float64)
        channels = len(frame.layout.channels)
        pcm = pcm.reshape(-1, channels).mean(axis=1) if channels > 1 else pcm.reshape(-1)
        chunks.append(pcm / 32768.0)
        rate = frame.sample_rate
    return (np.concatenate(chunks) if chunks else np.zeros(0)), rate


def pitch(samples, rate):
    """(peak frequency in Hz, share of the signal's energy within 50 Hz of
    the peak) of the last 4 s of a signal."""
    n = min(len(samples), 4 * (rate or 0))
    if rate is None or n < rate // 4:
        return 0.0, 0.0
    power = np.abs(np.fft.rfft(samples[-n:] * np.hanning(n))) ** 2
    freqs = np.fft.rfftfreq(n, 1 / rate)
    power[freqs < 50] = 0
    peak = float(freqs[int(np.argmax(power))])
    near = power[np.abs(freqs - peak) <= 50].sum()
    return peak, float(near / (power.sum() + 1e-12))


class Client:
    """One signaling connection and its peer connection."""

    def __init__(self, ws):
        self.ws = ws
        self.fresh_peer()

    def fresh_peer(self):
        """A new peer connection for the next call on this socket."""
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        remote = asyncio.get_event_loop().create_future()
        self.remote = remote
        self.pc.on("track", lambda t: remote.done() or remote.set_result(t))

    @classmethod
    async def connect(cls, url, user=None, token=None, headers=None):
        # The Origin of siphon's own page, as a browser on the web phone sends
        # it: siphon refuses an upgrade without one unless tokens are on.
        scheme, rest = url.split("://", 1)
        origin = ("https" if scheme == "wss" else "http") + "://" + rest.split("/", 1)[0]
        # wss:// to a test CA's certificate (E2E_CA), e.g. a TLS balancer's.
        ca = os.environ.get("E2E_CA")
        tls = ssl.create_default_context(cafile=ca) if scheme == "wss" and ca else None
        ws = await websockets.connect(f"{url}?token={token}" if token else url, origin=origin,
                                      additional_headers=headers, ssl=tls)
        welcome = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        assert welcome["type"] == "welcome", welcome
        if user:
            await ws.send(json.dumps({"type": "hello", "user": user}))
        return cls(ws)

    async def send(self, **msg):
        await self.ws.send(json.dumps(msg))

    async def ws_message(self, timeout=TIMEOUT):
        """The next message, whatever its type."""
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def expect(self, kind, timeout=TIMEOUT):
        """The next message of type `kind`; an unexpected hangup or error fails."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {kind} within {timeout} s")
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), left))
            if msg["type"] == kind:
                return msg
            if msg["type"] in ("hangup", "error"):
                raise AssertionError(f"waiting for {kind}, got {msg}")

    async def call(self, to, track, call_id="a1"):
        self.pc.addTrack(track)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self.send(type="call", call_id=call_id, to=to, sdp=self.pc.localDescription.sdp)
        answered = await self.expect("answered")
        await self.pc.setRemoteDescription(RTCSessionDescription(answered["sdp"], "answer"))
        return await asyncio.wait_for(self.remote, TIMEOUT)

    async def answer(self, track, timeout=TIMEOUT):
        """Wait for `incoming` and accept it sending `track`; the call id."""
        incoming = await self.expect("incoming", timeout)
        await self.pc.setRemoteDescription(RTCSessionDescription(incoming["sdp"], "offer"))
        self.pc.addTrack(track)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await self.send(type="accept", call_id=incoming["call_id"], sdp=self.pc.localDescription.sdp)
        return incoming["call_id"]

    async def close(self):
        await self.pc.close()
        await self.ws.close()
