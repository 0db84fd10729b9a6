#!/usr/bin/env python3
"""COUNT browser users (PREFIX1..PREFIXn) on one event loop that answer every
call with a tone and check that what they hear peaks at 1 kHz. Runs until
killed (SIGTERM), then prints per-user figures and a total.

    load_bots.py WS_URL COUNT PREFIX"""
import asyncio
import signal
import sys

from peer import Client, Tone, pitch, record


class Bot:
    def __init__(self, url, user):
        self.url, self.user = url, user
        self.answered = self.tone_ok = self.bad = 0

    async def run(self, ready):
        client = await Client.connect(self.url, user=self.user)
        await client.send(type="hangup", call_id="sync")
        await client.expect("error")
        ready.set()
        while True:
            await client.answer(Tone(1000.0), timeout=3600)
            self.answered += 1
            remote = await asyncio.wait_for(client.remote, 15)
            listening = asyncio.ensure_future(record(remote, 30))
            hangup = await client.expect("hangup", timeout=60)
            await client.pc.close()
            samples, rate = await listening
            freq, share = pitch(samples, rate)
            good = hangup["code"] == 200 and abs(freq - 1000) <= 25 and share > 0.8
            self.tone_ok += good
            self.bad += not good
            client.fresh_peer()


async def main(url, count, prefix):
    bots = [Bot(url, f"{prefix}{i + 1}") for i in range(count)]
    events = [asyncio.Event() for _ in bots]
    tasks = [asyncio.ensure_future(b.run(e)) for b, e in zip(bots, events)]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 30)
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_event_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    for t in tasks:
        t.cancel()
    answered = sum(b.answered for b in bots)
    ok = sum(b.tone_ok for b in bots)
    bad = sum(b.bad for b in bots)
    print(f"bots: {answered} calls answered, {ok} heard the 1 kHz tone, {bad} did not", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
