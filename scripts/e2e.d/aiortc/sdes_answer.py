#!/usr/bin/env python3
"""A browser user that answers the next call with a 1 kHz tone, checks that
what it hears peaks at HZ, and waits for the caller to hang up.

    sdes_answer.py WS_URL USER HZ

Prints "ready" once logged in; exits 0 when the tone was heard and the
call ended with hangup 200."""
import asyncio
import sys

from peer import Client, Tone, pitch, record


async def main(url, user, hz):
    client = await Client.connect(url, user=user)
    # A round trip proves the hello was handled before the caller starts.
    await client.send(type="hangup", call_id="sync")
    await client.expect("error")
    print("ready", flush=True)
    await client.answer(Tone(1000.0), timeout=60)
    remote = await asyncio.wait_for(client.remote, 15)
    samples, rate = await record(remote, 4)
    freq, ratio = pitch(samples, rate)
    hangup = await client.expect("hangup", timeout=60)
    await client.close()
    print(f"{user}: heard {len(samples) / (rate or 1):.1f} s, peak {freq:.0f} Hz holding "
          f"{ratio:.1%} of the energy; call ended {hangup['code']}", flush=True)
    ok = abs(freq - hz) <= 25 and ratio > 0.8 and hangup["code"] == 200
    if not ok:
        print(f"FAIL: {user} expected a {hz:.0f} Hz peak", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]))))
