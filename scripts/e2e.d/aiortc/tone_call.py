#!/usr/bin/env python3
"""Call `to` through siphon, send a 1 kHz tone for SECONDS, record what comes
back (an echoing SIP peer returns it) and check its spectrum peaks at 1 kHz.

    tone_call.py WS_URL TO [SECONDS] [LABEL]

Prints the figures; exits non-zero when the tone is not there."""
import asyncio
import sys

from peer import Client, Tone, pitch, record


async def main(url, to, seconds, label):
    client = await Client.connect(url)
    remote = await client.call(to, Tone(1000.0))
    samples, rate = await record(remote, seconds)
    freq, ratio = pitch(samples, rate)
    await client.send(type="hangup", call_id="a1")
    hangup = await client.expect("hangup")
    await client.close()
    print(f"{label}: {len(samples) / (rate or 1):.1f} s back at {rate} Hz, "
          f"peak {freq:.0f} Hz holding {ratio:.1%} of the energy; hangup {hangup['code']}")
    back = len(samples) / (rate or 1)
    ok = abs(freq - 1000) <= 25 and ratio > 0.8 and hangup["code"] == 200
    # Nothing lost: all but the first packets' worth of the window came back.
    ok = ok and back >= seconds - 0.3
    if not ok:
        print(f"FAIL: {label}: expected a 1 kHz peak well above the rest", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    args = sys.argv[1:]
    seconds = float(args[2]) if len(args) > 2 else 4.0
    label = args[3] if len(args) > 3 else args[1]
    sys.exit(asyncio.run(main(args[0], args[1], seconds, label)))
