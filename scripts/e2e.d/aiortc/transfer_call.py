#!/usr/bin/env python3
"""Call `to` through siphon with a tone, check the tone comes back, then
transfer the call blind to TARGET: expect transfer_progress for each of the
far end's NOTIFYs and the call's end as hangup 200 "Transferred".

    transfer_call.py WS_URL TO TARGET

Prints what it saw; exits non-zero when the transfer did not go so."""
import asyncio
import sys

from peer import Client, Tone, pitch, record


async def main(url, to, target):
    client = await Client.connect(url)
    remote = await client.call(to, Tone(1000.0))
    samples, rate = await record(remote, 2.0)
    freq, _ = pitch(samples, rate)
    await client.send(type="transfer", call_id="a1", to=target)
    codes = []
    while True:
        msg = await client.ws_message()
        if msg["type"] == "transfer_progress":
            codes.append(msg["code"])
        elif msg["type"] in ("hangup", "transfer_failed", "error"):
            break
    await client.close()
    print(f"tone back at {freq:.0f} Hz; transfer_progress {codes}; then {msg}")
    ok = abs(freq - 1000) <= 25 and codes == [100, 200]
    ok = ok and msg["type"] == "hangup" and msg["code"] == 200 and msg["reason"] == "Transferred"
    if not ok:
        print("FAIL: expected the tone, transfer_progress 100 and 200, then hangup 200 Transferred",
              file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:4])))
