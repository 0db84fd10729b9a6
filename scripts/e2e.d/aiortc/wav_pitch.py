#!/usr/bin/env python3
"""Check that a 16-bit WAV file (e.g. what a SIP phone recorded) peaks at HZ.

    wav_pitch.py FILE HZ LABEL

Prints the figures; exits non-zero when the tone is not there."""
import sys
import wave

import numpy as np

from peer import pitch


def main(path, hz, label):
    with wave.open(path, "rb") as w:
        rate, channels = w.getframerate(), w.getnchannels()
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    samples = frames.reshape(-1, channels)[:, 0].astype(np.float64)
    # Only the part where something was heard counts (ringing is silence).
    loud = np.flatnonzero(np.abs(samples) > 300)
    heard = samples[loud[0]:] if loud.size else samples[:0]
    freq, ratio = pitch(heard, rate) if heard.size else (0.0, 0.0)
    print(f"{label}: {heard.size / rate:.1f} s of sound, peak {freq:.0f} Hz "
          f"holding {ratio:.1%} of the energy")
    ok = abs(freq - hz) <= 25 and ratio > 0.8 and heard.size / rate >= 1.0
    if not ok:
        print(f"FAIL: {label}: expected a {hz:.0f} Hz peak", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], float(sys.argv[2]), sys.argv[3]))
