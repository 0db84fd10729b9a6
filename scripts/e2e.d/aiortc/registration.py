#!/usr/bin/env python3
"""Watch a configured user's upstream registration through siphon's
signaling: logging in registers it, a refresh follows, logging out
unregisters it; a user with a wrong password hears registration_failed.

    registration.py WS_URL GOOD_USER BAD_USER"""
import asyncio
import sys
import time

from peer import Client


async def main(url, good, bad):
    alice = await Client.connect(url, user=good)
    first = await alice.expect("registered")
    t0 = time.monotonic()
    print(f"{good}: registered, {first['expires']} s granted")
    assert first["expires"] == 10, first
    again = await alice.expect("registered", timeout=15)
    print(f"{good}: refreshed after {time.monotonic() - t0:.1f} s ({again['expires']} s granted)")

    mallory = await Client.connect(url, user=bad)
    failed = await mallory.expect("registration_failed")
    print(f"{bad}: registration_failed {failed['code']} {failed['reason']}, retry in {failed['retry_in']} s")
    assert failed["code"] == 403, failed
    await mallory.ws.close()
    await alice.ws.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:4])))
