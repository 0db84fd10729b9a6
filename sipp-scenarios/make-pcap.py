#!/usr/bin/env python3
"""Writes the pcaps the scenarios play: 8 s (pcmu-1khz.pcap) and 20 s
(pcmu-1khz-20s.pcap, for calls that outlast 8 s: a second play_pcap_audio
would replay the same SSRC and sequence numbers, which a receiver takes for
old packets) of a 1 kHz tone, and 4 s of a 1.5 kHz one (pcmu-1500hz-4s.pcap,
another phone: its own SSRC, sequence numbers and timestamps), as G.711
u-law (PCMU) RTP, 20 ms a packet, in Ethernet/IPv4/UDP frames that SIPp's
play_pcap_audio replays. No dependencies; run it to regenerate:

    python3 sipp-scenarios/make-pcap.py
"""
import math
import os
import struct

RATE = 8000
FRAME = 160  # 20 ms at 8 kHz
# name: (seconds, tone in Hz, SSRC, first sequence number, first timestamp)
PCAPS = {
    "pcmu-1khz.pcap": (8, 1000, 0x1D0A7E57, 0, 0),
    "pcmu-1khz-20s.pcap": (20, 1000, 0x1D0A7E57, 0, 0),
    "pcmu-1500hz-4s.pcap": (4, 1500, 0x15000B0B, 31000, 2_000_000_000),
}
AMPLITUDE = 0.3  # about -10 dBFS


def ulaw(sample):
    """G.711 u-law encoding of a 16-bit linear sample."""
    bias, clip = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    sample = min(abs(sample), clip) + bias
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not sample & mask:
        exponent -= 1
        mask >>= 1
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF


def frame(payload, src_port=6000, dst_port=6002):
    udp = struct.pack("!HHHH", src_port, dst_port, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
    return eth + ip + udp


def write(name, seconds, tone_hz, ssrc, seq0, ts0):
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pcap", name)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for n in range(seconds * RATE // FRAME):
            samples = (int(AMPLITUDE * 32767 * math.sin(2 * math.pi * tone_hz * (n * FRAME + i) / RATE))
                       for i in range(FRAME))
            audio = bytes(ulaw(s) for s in samples)
            rtp = struct.pack("!BBHII", 0x80, 0x80 if n == 0 else 0, (seq0 + n) & 0xFFFF,
                              (ts0 + n * FRAME) & 0xFFFFFFFF, ssrc) + audio
            data = frame(rtp)
            usec = n * 20000
            f.write(struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(data), len(data)))
            f.write(data)
    print(out)


def main():
    for name, spec in PCAPS.items():
        write(name, *spec)


if __name__ == "__main__":
    main()
