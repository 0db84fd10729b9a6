#!/usr/bin/env python3
"""Browsers for the cluster step (80-cluster): siphons behind Kamailio and
HAProxy.

    cluster.py answer URL USER           answer the next call with a 1 kHz tone,
                                         hear it back (the phone echoes), hangup 200
    cluster.py fork URL_A URL_B USER     USER on two instances: both ring, A's
                                         session accepts, B's stops ringing
    cluster.py mover URL_A URL_LB USER [lost]
                                         USER's idle session on A is asked to move
                                         (close 1012) while A drains, or with `lost`
                                         loses its connection (A killed); it
                                         reconnects through the balancer and
                                         answers the next call
    cluster.py resume URL_LB             a call through the balancer; the socket
                                         drops; a new one (the balancer's cookie)
                                         resumes it and the audio goes on

Each prints "ready" once its sessions are logged in, and exits non-zero on
any failure."""
import asyncio
import sys

import websockets

from peer import Client, Tone, pitch, record


def check_tone(who, samples, rate, hz=1000.0):
    freq, ratio = pitch(samples, rate)
    heard = len(samples) / (rate or 1)
    print(f"{who}: heard {heard:.1f} s, peak {freq:.0f} Hz holding {ratio:.1%}", flush=True)
    if not (abs(freq - hz) <= 25 and ratio > 0.8):
        raise AssertionError(f"{who}: expected a {hz:.0f} Hz tone")


async def logged_in(url, user, headers=None):
    client = await Client.connect(url, user=user, headers=headers)
    # A round trip proves the hello was handled before the caller starts.
    await client.send(type="hangup", call_id="sync")
    await client.expect("error")
    return client


async def answer_and_hear(client, who):
    await client.answer(Tone(1000.0), timeout=60)
    remote = await asyncio.wait_for(client.remote, 15)
    print(f"{who}: answered", flush=True)
    samples, rate = await record(remote, 2)
    check_tone(who, samples, rate)
    hangup = await client.expect("hangup", timeout=60)
    if hangup["code"] != 200:
        raise AssertionError(f"{who}: call ended {hangup}")
    print(f"{who}: call ended {hangup['code']}", flush=True)


async def answer(url, user):
    client = await logged_in(url, user)
    print("ready", flush=True)
    await answer_and_hear(client, user)
    await client.close()


async def fork(url_a, url_b, user):
    a = await logged_in(url_a, user)
    b = await logged_in(url_b, user)
    print("ready", flush=True)
    ring_b = await b.expect("incoming", timeout=60)
    print(f"{user}@B: ringing", flush=True)
    await answer_and_hear(a, f"{user}@A")
    # B's branch was cancelled when A answered: its ringing stopped.
    stopped = await b.expect("hangup", timeout=5)
    if stopped["call_id"] != ring_b["call_id"]:
        raise AssertionError(f"{user}@B: {stopped}")
    print(f"{user}@B: stopped ringing ({stopped['code']} {stopped['reason']})", flush=True)
    await a.close()
    await b.close()


async def mover(url_a, url_lb, user, how="moved"):
    a = await logged_in(url_a, user)
    print("ready", flush=True)
    try:
        while True:
            await asyncio.wait_for(a.ws.recv(), 120)
    except websockets.ConnectionClosed as closed:
        code = closed.rcvd.code if closed.rcvd else None
        if how == "lost" and code is None:
            print(f"{user}: connection lost", flush=True)
        elif how == "moved" and code == 1012:
            print(f"{user}: asked to move ({closed.rcvd.reason})", flush=True)
        else:
            raise AssertionError(f"{user}: closed with {code}, expected {how}")
    await a.pc.close()
    back = await logged_in(url_lb, user)
    print("back", flush=True)
    await answer_and_hear(back, f"{user} (moved)")
    await back.close()


async def resume(url_lb):
    first = await Client.connect(url_lb, user="carol")
    cookie = first.ws.response.headers.get("Set-Cookie", "").split(";", 1)[0]
    if not cookie:
        raise AssertionError("the balancer set no cookie")
    print(f"ready (cookie {cookie})", flush=True)
    remote = await first.call("echo", Tone(1000.0), call_id="r1")
    samples, rate = await record(remote, 1.5)
    check_tone("carol before the drop", samples, rate)
    # The socket drops; the peer connection (and the media) stays.
    await first.ws.close()
    second = await Client.connect(url_lb, user="carol", headers={"Cookie": cookie})
    await second.send(type="resume", call_id="r1")
    resumed = await second.expect("resumed")
    print(f"carol: {resumed}", flush=True)
    samples, rate = await record(remote, 1.5)
    check_tone("carol after the resume", samples, rate)
    await second.send(type="hangup", call_id="r1")
    hangup = await second.expect("hangup")
    if hangup["code"] != 200:
        raise AssertionError(f"carol: {hangup}")
    await first.pc.close()
    await second.close()


def main(argv):
    what, args = argv[0], argv[1:]
    run = {"answer": answer, "fork": fork, "mover": mover, "resume": resume}[what]
    try:
        asyncio.run(run(*args))
    except Exception as e:  # noqa: BLE001 - any failure fails the step
        print(f"FAIL: {what}: {e!r}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
