#!/usr/bin/env python3
"""A browser user that answers the next call with a 1 kHz tone and reports
what it heard when the caller hangs up.

    answer.py WS_URL USER

Prints "ready" once logged in; exits 0 after a `hangup` 200."""
import asyncio
import sys

from peer import Client, Tone, record


async def main(url, user):
    client = await Client.connect(url, user=user)
    # A round trip proves the hello was handled before the caller starts.
    await client.send(type="hangup", call_id="sync")
    await client.expect("error")
    print("ready", flush=True)
    await client.answer(Tone(1000.0), timeout=60)
    remote = await asyncio.wait_for(client.remote, 15)
    listening = asyncio.ensure_future(record(remote, 30))
    hangup = await client.expect("hangup", timeout=60)
    listening.cancel()
    await client.close()
    print(f"{user}: call ended {hangup['code']} {hangup['reason']}", flush=True)
    return 0 if hangup["code"] == 200 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2])))
