#!/usr/bin/env python3
"""Two calls on one socket, then an attended transfer of the first to the
far end of the second: expect transfer_progress for each of the far end's
NOTIFYs, the first call's end as hangup 200 "Transferred", and the second
call still up until this script hangs it up.

    attended_transfer.py WS_URL FIRST_TO SECOND_TO

Exits non-zero when the transfer did not go so."""
import asyncio
import sys

from peer import Client, Tone, pitch, record


async def main(url, first_to, second_to):
    client = await Client.connect(url)
    first = await client.call(first_to, Tone(1000.0), call_id="a1")
    samples, rate = await record(first, 1.0)
    freq, _ = pitch(samples, rate)
    first_pc = client.pc
    client.fresh_peer()
    await client.call(second_to, Tone(1000.0), call_id="a2")
    await client.send(type="transfer", call_id="a1", replaces="a2")
    codes, end = [], None
    while end is None:
        msg = await client.ws_message()
        if msg.get("call_id") != "a1":
            continue
        if msg["type"] == "transfer_progress":
            codes.append(msg["code"])
        elif msg["type"] in ("hangup", "transfer_failed", "error"):
            end = msg
    await client.send(type="hangup", call_id="a2")
    second_end = None
    while second_end is None:
        msg = await client.ws_message()
        if msg.get("call_id") == "a2" and msg["type"] == "hangup":
            second_end = msg
    await first_pc.close()
    await client.close()
    print(f"tone back at {freq:.0f} Hz; transfer_progress {codes}; then {end}; second call {second_end}")
    ok = abs(freq - 1000) <= 25 and codes == [100, 200]
    ok = ok and end["type"] == "hangup" and end["code"] == 200 and end["reason"] == "Transferred"
    ok = ok and second_end["code"] == 200
    if not ok:
        print("FAIL: expected the tone, transfer_progress 100 and 200, hangup 200 Transferred "
              "for the first call, and the second call up until its own hangup", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:4])))
