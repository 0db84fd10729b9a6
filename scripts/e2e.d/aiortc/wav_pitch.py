#!/usr/bin/env python3
"""The peak frequency of a WAV file (16-bit PCM), checked against HZ.

    wav_pitch.py FILE HZ LABEL

Prints the figures; exits non-zero when the peak is elsewhere."""
import sys
import wave

import numpy as np

from peer import pitch


def main(path, hz, label):
    with wave.open(path) as w:
        rate, channels = w.getframerate(), w.getnchannels()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64)
    if channels > 1:
        pcm = pcm.reshape(-1, channels).mean(axis=1)
    freq, ratio = pitch(pcm / 32768.0, rate)
    print(f"{label}: {len(pcm) / rate:.1f} s at {rate} Hz, peak {freq:.0f} Hz "
          f"holding {ratio:.1%} of the energy")
    ok = abs(freq - hz) <= 25 and ratio > 0.8
    if not ok:
        print(f"FAIL: {label}: expected a {hz:.0f} Hz peak", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], float(sys.argv[2]), sys.argv[3]))
