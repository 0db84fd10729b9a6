#!/usr/bin/env python3
"""Call `to` through siphon with a 1 kHz tone and check it comes back; the
far end then transfers the call (its REFER): expect `transferred` naming
TARGET and no hangup, switch the tone to 700 Hz and check that comes back
too, from the transfer target, over the same peer connection.

    transferred_call.py WS_URL TO TARGET

Prints what it saw; exits non-zero when the transfer did not go so."""
import asyncio
import sys

from peer import Client, Tone, pitch, record


async def main(url, to, target):
    client = await Client.connect(url)
    tone = Tone(1000.0)
    remote = await client.call(to, tone)
    samples, rate = await record(remote, 2.0)
    before, _ = pitch(samples, rate)
    msg = await client.ws_message(timeout=20)
    while msg["type"] not in ("transferred", "hangup", "error"):
        msg = await client.ws_message(timeout=20)
    told = msg
    tone.hz = 700.0
    # The track's queue still holds what came before: judge the newest 1.5 s.
    samples, rate = await record(remote, 3.0)
    after, share = pitch(samples[-int(1.5 * (rate or 0)):], rate)
    await client.send(type="hangup", call_id="a1")
    await client.close()
    print(f"tone back at {before:.0f} Hz; then {told}; then tone back at {after:.0f} Hz ({share:.0%})")
    ok = abs(before - 1000) <= 25 and abs(after - 700) <= 25
    ok = ok and told["type"] == "transferred" and told.get("to") == target
    if not ok:
        print(f"FAIL: expected 1000 Hz back, transferred to {target}, then 700 Hz back",
              file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:4])))
