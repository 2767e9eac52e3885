"""Stream an audio file to WS /v1/voiceprint/stream and print who the server hears.

    python -m voiceprint.stream_client recording.wav --device kitchen --agent butler \\
        --url ws://127.0.0.1:8000 --token "$TOKEN"

A reference client for integrators (protocol: docs/STREAMING.md): the file is decoded to
16 kHz mono, sent as 16-bit PCM binary frames at the pace of real time (``--speed``), with
the token in the handshake's ``Authorization: Bearer`` header; then ``{"type": "stop"}``,
and the client waits for ``end`` and the close. A reader thread prints the server's events
as they come, so that sending in real time never waits on printing.

Exit status: 0 the stream ended normally (``end``, close 1000); 2 a bad command line;
3 the file could not be read or decoded; 4 the server could not be reached or refused the
handshake; 5 the server closed the stream with an error (its code and reason on stderr);
6 the stream ended otherwise (no ``end``, no close after the stop).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import warnings
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import numpy as np
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import ClientConnection, connect

with warnings.catch_warnings():  # webrtcvad's import of pkg_resources: noise on stderr
    warnings.simplefilter("ignore", UserWarning)
    from engine import AudioDecodeError, EngineSettings, decode_audio


PATH = "/v1/voiceprint/stream"
RATE = 16_000
#: The server's default VOICEPRINT_STREAM_MAX_SECONDS: more would be refused anyway.
MAX_SECONDS = 600.0
#: Seconds to wait for `ready`, and for `end` and the close after the stop.
READY_TIMEOUT = 30.0
END_TIMEOUT = 120.0

EXIT_OK, EXIT_USAGE, EXIT_AUDIO, EXIT_CONNECT, EXIT_CLOSED, EXIT_INCOMPLETE = 0, 2, 3, 4, 5, 6


def pcm_frames(samples: np.ndarray, frame_ms: int) -> list[bytes]:
    """16 kHz float32 -> 16-bit little-endian PCM frames of `frame_ms` (the last one padded
    with silence: the server refuses a frame shorter than 20 ms)."""
    size = RATE * frame_ms // 1000
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")
    pcm = np.pad(pcm, (0, -len(pcm) % size))
    return [pcm[start : start + size].tobytes() for start in range(0, len(pcm), size)]


def stream_url(base: str, *, device: str, agent: str | None) -> str:
    """`base` (ws://host:port, with or without the path) with the stream's path and query."""
    parts = urlsplit(base)
    path = parts.path if parts.path not in ("", "/") else PATH
    query = {"device_id": device, "sample_rate": RATE, **({"agent_id": agent} if agent else {})}
    return f"{parts.scheme}://{parts.netloc}{path}?{urlencode(query)}"


def event_line(event: dict) -> str:
    """One event as a readable line: audio time, type, then what matters for that type."""
    kind = event.get("type", "?")
    head = f"{event.get('at', 0.0):7.2f}s  {kind:<14}"
    if kind in ("partial", "final"):
        speaker = event.get("voice_name") or event.get("voice_id") or "-"
        score = event.get("score")
        line = (f"{head} #{event.get('utterance')}  {speaker:<16} {event.get('decision', '-'):<9}"
                f" score {score if score is None else f'{score:.3f}'}")  # fmt: skip
        if event.get("interrupt") is not None:
            line += f"  interrupt {str(event['interrupt']).lower()}"
        if kind == "partial":
            line += f"  ({event.get('compute_ms')} ms)"
        return line
    if kind == "speaker_change":
        names = [(event.get(side) or {}).get("voice_name") for side in ("from", "to")]
        return f"{head} #{event.get('utterance')}  {names[0]} -> {names[1]}"
    if kind in ("speech_start", "speech_end"):
        extra = ""
        if kind == "speech_end":
            extra = f"  speech {event.get('speech_seconds')} s" + (
                "" if event.get("identified") else f"  ({event.get('reason')})"
            )
        return f"{head} #{event.get('utterance')}{extra}"
    if kind == "ready":
        return f"{head} stream {event.get('stream_id')}  device {event.get('device_id')}"
    if kind == "error":
        return f"{head} {event.get('code')} {event.get('msg')}"
    if kind == "end":
        return f"{head} {event.get('utterances')} utterances"
    return f"{head} {json.dumps(event, ensure_ascii=False)}"


class Reader(threading.Thread):
    """Prints every event until the connection closes; remembers whether `end` came."""

    def __init__(self, connection: ClientConnection, *, raw: bool) -> None:
        super().__init__(daemon=True)
        self.connection, self.raw = connection, raw
        self.ended = False

    def run(self) -> None:
        try:
            for message in self.connection:
                self.show(message)
        except ConnectionClosed:
            pass  # the close is read from the connection afterwards

    def show(self, message: str | bytes) -> dict:
        event = json.loads(message)
        self.ended = self.ended or event.get("type") == "end"
        print(message if self.raw else event_line(event), flush=True)
        return event


def send_audio(connection: ClientConnection, frames: list[bytes], *, frame_ms: int,
               speed: float) -> None:  # fmt: skip
    """Frame i leaves at i x frame_ms / speed after the first (speed 0: at once); then stop."""
    started, interval = time.monotonic(), frame_ms / 1000 / speed if speed > 0 else 0.0
    for index, frame in enumerate(frames):
        delay = started + index * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        connection.send(frame)
    connection.send(json.dumps({"type": "stop"}))


def stream(args: argparse.Namespace, frames: list[bytes]) -> int:
    url = stream_url(args.url, device=args.device, agent=args.agent)
    try:
        connection = connect(url, additional_headers={"Authorization": f"Bearer {args.token}"},
                             open_timeout=READY_TIMEOUT, max_size=2**20)  # fmt: skip
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        print(f"cannot stream to {url}: {exc}", file=sys.stderr)
        return EXIT_CONNECT
    with connection:
        reader = Reader(connection, raw=args.json)
        try:  # the first event is `ready`, or an `error` before the close
            first = reader.show(connection.recv(timeout=READY_TIMEOUT))
            reader.start()
            if first.get("type") == "ready":
                send_audio(connection, frames, frame_ms=args.frame_ms, speed=args.speed)
        except (ConnectionClosed, TimeoutError):
            pass  # the server ended the stream: the close says why
        if reader.ident is not None:
            reader.join(END_TIMEOUT)
        code, reason = connection.close_code, connection.close_reason
    if code == 1000 and reader.ended:
        return EXIT_OK
    if code is not None and code != 1000:
        print(f"stream closed: {code} {reason}", file=sys.stderr)
        return EXIT_CLOSED
    print(f"stream ended without 'end' (close {code})", file=sys.stderr)
    return EXIT_INCOMPLETE


def parser() -> argparse.ArgumentParser:
    command = argparse.ArgumentParser(
        prog="python -m voiceprint.stream_client",
        description=__doc__.split("\n")[0],
        epilog=__doc__.split("\n\n")[-1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("file", type=Path, help="any audio file (WAV, FLAC, OGG, ...)")
    command.add_argument("--device", required=True, help="the device whose voices are searched")
    command.add_argument("--agent", help="agent id: adds the interrupt decision")
    command.add_argument("--url", default="ws://127.0.0.1:8000", help="%(default)s")
    command.add_argument("--token", default=os.environ.get("VOICEPRINT_TOKEN"),
                         help="API token (default: $VOICEPRINT_TOKEN)")  # fmt: skip
    command.add_argument("--frame-ms", type=int, default=100, help="20-200, %(default)s")
    command.add_argument("--speed", type=float, default=1.0,
                         help="1 = real time, 0 = as fast as possible (%(default)s)")  # fmt: skip
    command.add_argument("--json", action="store_true", help="print the raw JSON events")
    return command


def main(argv: list[str] | None = None) -> int:
    command = parser()
    args = command.parse_args(argv)
    if not args.token:
        command.error("no token: --token or VOICEPRINT_TOKEN")
    if not 20 <= args.frame_ms <= 200 or args.speed < 0:
        command.error("--frame-ms must be 20-200 and --speed >= 0")
    try:
        samples = read_audio(args.file)
    except (OSError, AudioDecodeError) as exc:
        print(f"cannot read {args.file}: {exc}", file=sys.stderr)
        return EXIT_AUDIO
    return stream(args, pcm_frames(samples, args.frame_ms))


def read_audio(path: Path) -> np.ndarray:
    """The file as 16 kHz mono float32, up to the server's longest stream."""
    settings = EngineSettings(max_decoded_seconds=MAX_SECONDS,
                              max_source_samples=int(MAX_SECONDS * 48_000 * 8))  # fmt: skip
    return decode_audio(path.read_bytes(), settings)


if __name__ == "__main__":
    sys.exit(main())
