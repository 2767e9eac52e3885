"""Local material for measuring the spoofing countermeasure (issue 16): bona fide pieces of
real speech, robotic synthesis from espeak-ng, and simulated loudspeaker replays.

* **bona fide**: each speaker's recordings cut into consecutive pieces of 3-4 s (silences
  kept, as a device records them);
* **espeak**: sentences written here, spoken by espeak-ng in English and Mandarin with its
  voice variants, speeds and pitches (a robotic, formant-synthesis voice: the easy attack);
* **replay**: a bona fide piece as a small loudspeaker in a room would play it back to the
  microphone: band-limited (high-pass 150-250 Hz, low-pass 6-7.8 kHz), softly clipped,
  convolved with a synthetic room impulse response (a direct path, then exponentially
  decaying noise with RT60 0.2-0.7 s) and a little microphone noise.

Speakers fall in two parts, ``fit`` (a threshold is chosen on them) and ``report`` (the
numbers are quoted on them), by a hash of their label (`material_part`; its salt puts one of
the three Mandarin speakers of ../shared in ``report``). espeak-ng's voice variants are split
the same way by their names, the sentences alternately. Every random choice comes from one
seed.
"""

# The Mandarin sentences keep their full-width punctuation (espeak-ng pauses on it).
# ruff: noqa: RUF001

from __future__ import annotations

import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile
from scipy import signal
from tqdm import tqdm

from engine.audio import SAMPLE_RATE, decode_audio
from engine.evaluation import audio_files, speaker_label

SpoofPart = Literal["fit", "report"]
SPOOF_PARTS: tuple[SpoofPart, ...] = ("fit", "report")

LIBRISPEECH = "librispeech-train-clean-100"
PIECE_SECONDS = (3.0, 4.0)
#: Pieces kept per recording: LibriSpeech has one per speaker, the zh speakers a few long ones.
MAX_PIECES_PER_FILE = 3

#: espeak-ng voice variants (`-v LANG+VARIANT`): male, female and the Klatt synthesiser's.
ESPEAK_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8",
    "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "croak", "adam", "linda", "max", "steph",
)  # fmt: skip
ESPEAK_LANGUAGES = {"en": ("en-us", "en-gb"), "cmn": ("cmn",)}
ENGLISH_SENTENCES = (
    "Please turn on the lights in the living room and close the curtains.",
    "What is the weather going to be like tomorrow morning?",
    "Set an alarm for seven thirty and remind me to call the bank.",
    "Play some quiet music in the kitchen while I make dinner.",
    "I would like to transfer two hundred dollars to my savings account.",
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Can you read me the latest news about the football match?",
    "My voice is my password, please verify me and open the door.",
    "Order another box of coffee filters and a bottle of milk.",
    "How long will it take to drive to the airport in this traffic?",
    "Lower the temperature of the bedroom to nineteen degrees tonight.",
    "Tell my sister that I will be late for the family dinner on Sunday.",
    "She sells sea shells by the sea shore every summer afternoon.",
    "Unlock the front door and switch off the alarm system now.",
    "Add tomatoes, onions and fresh basil to the shopping list.",
    "Remind me about the dentist appointment next Thursday at noon.",
)
CHINESE_SENTENCES = (
    "请把客厅的灯打开，然后把窗帘拉上。",
    "明天早上的天气怎么样，会不会下雨？",
    "帮我定一个七点半的闹钟，提醒我给银行打电话。",
    "我在做晚饭的时候，请在厨房播放一些轻音乐。",
    "我想把两百块钱转到我的储蓄账户里。",
    "请读一下今天关于足球比赛的最新新闻。",
    "我的声音就是我的密码，请验证我的身份并且开门。",
    "再帮我订一盒咖啡滤纸和一瓶牛奶。",
    "现在这个交通状况，开车去机场要多长时间？",
    "今天晚上把卧室的温度调到十九度。",
    "告诉我妹妹，星期天的家庭聚餐我会晚一点到。",
    "把西红柿、洋葱和新鲜的罗勒加到购物清单里。",
)


def material_part(label: str) -> SpoofPart:
    """The part of a speaker (or an espeak-ng variant): stable across runs and machines."""
    return SPOOF_PARTS[zlib.crc32(f"spoof:{label}".encode()) % len(SPOOF_PARTS)]


# --- bona fide -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    """A named 16 kHz mono float32 waveform."""

    name: str
    waveform: np.ndarray


def speakers_in(folders: Sequence[Path]) -> dict[str, list[Path]]:
    """Each speaker's recordings under ``folders`` (labels as `engine.evaluation` reads them)."""
    speakers: dict[str, list[Path]] = {}
    for folder in folders:
        for path in audio_files(folder):
            speakers.setdefault(speaker_label(path, folder), []).append(path)
    return dict(sorted(speakers.items()))


def choose_speakers(
    speakers: dict[str, list[Path]], *, count: int | None, rng: np.random.Generator
) -> dict[str, list[Path]]:
    """``count`` speakers drawn by ``rng`` (all of them when None or more than there are)."""
    labels = sorted(speakers)
    if count is not None and count < len(labels):
        labels = sorted(rng.choice(labels, size=count, replace=False).tolist())
    return {label: speakers[label] for label in labels}


def cut_pieces(
    waveform: np.ndarray, *, rng: np.random.Generator, limit: int = MAX_PIECES_PER_FILE
) -> list[np.ndarray]:
    """Consecutive pieces of 3-4 s (each length drawn by ``rng``); a shorter tail is dropped."""
    pieces, start = [], 0
    while len(pieces) < limit:
        length = int(rng.uniform(*PIECE_SECONDS) * SAMPLE_RATE)
        if start + length > len(waveform):
            break
        pieces.append(waveform[start : start + length])
        start += length
    return pieces


def bonafide_pieces(
    speakers: dict[str, list[Path]], *, rng: np.random.Generator
) -> Iterator[Piece]:
    """The pieces of every recording, named after it (its name keeps the speaker's label)."""
    for files in speakers.values():
        for path in files:
            waveform = decode_audio(path.read_bytes())
            for i, piece in enumerate(cut_pieces(waveform, rng=rng)):
                yield Piece(f"{path.stem}_{i}", piece)


# --- espeak-ng -------------------------------------------------------------------------------


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


@dataclass(frozen=True)
class EspeakUtterance:
    language: str  # a voice of ESPEAK_LANGUAGES ("en-us", "cmn")
    variant: str
    text: str
    speed: int  # words per minute
    pitch: int  # 0-99

    @property
    def name(self) -> str:
        # The "speaker" of a synthetic utterance is its voice: the part follows it.
        sentence = zlib.crc32(self.text.encode("utf-8")) % 10_000
        return f"espeak-{self.variant}_{self.language}_{sentence:04d}_s{self.speed}_p{self.pitch}"


def espeak_plan(
    *, count: int, part: SpoofPart | None, rng: np.random.Generator
) -> list[EspeakUtterance]:
    """``count`` utterances of voices and sentences of ``part`` (None: both parts), English and
    Mandarin alternately, speed 120-200 words per minute, pitch 20-80."""
    variants = [v for v in ESPEAK_VARIANTS if part is None or material_part(v) == part]
    texts = {
        "en": _of_part(ENGLISH_SENTENCES, part),
        "cmn": _of_part(CHINESE_SENTENCES, part),
    }
    plan = []
    for i in range(count):
        family = ("en", "cmn")[i % 2]
        plan.append(
            EspeakUtterance(
                language=str(rng.choice(ESPEAK_LANGUAGES[family])),
                variant=str(rng.choice(variants)),
                text=str(rng.choice(texts[family])),
                speed=int(rng.integers(120, 201)),
                pitch=int(rng.integers(20, 81)),
            )
        )
    return plan


def _of_part(sentences: Sequence[str], part: SpoofPart | None) -> list[str]:
    if part is None:
        return list(sentences)
    return list(sentences[SPOOF_PARTS.index(part) :: len(SPOOF_PARTS)])


def espeak_synthesize(utterance: EspeakUtterance) -> np.ndarray:
    """The utterance spoken by espeak-ng, 16 kHz mono float32 (espeak-ng writes 22,050 Hz)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "out.wav"
        subprocess.run(
            [
                "espeak-ng",
                "-v",
                f"{utterance.language}+{utterance.variant}",
                "-s",
                str(utterance.speed),
                "-p",
                str(utterance.pitch),
                "-w",
                str(path),
                utterance.text,
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return decode_audio(path.read_bytes())


# --- replay ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayParameters:
    highpass_hz: float
    lowpass_hz: float
    #: tanh drive of the loudspeaker's soft clipping (1: nearly linear, 3: audibly driven).
    drive: float
    rt60_seconds: float
    #: Direct path over the reverberant tail, in dB.
    direct_to_reverberant_db: float
    #: Output over microphone noise, in dB.
    snr_db: float
    peak: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> ReplayParameters:
        return cls(
            highpass_hz=rng.uniform(150.0, 250.0),
            lowpass_hz=rng.uniform(6000.0, 7800.0),
            drive=rng.uniform(1.0, 3.0),
            rt60_seconds=rng.uniform(0.2, 0.7),
            direct_to_reverberant_db=rng.uniform(0.0, 10.0),
            snr_db=rng.uniform(30.0, 45.0),
            peak=rng.uniform(0.3, 0.9),
        )


def room_impulse_response(
    *, rt60_seconds: float, direct_to_reverberant_db: float, rng: np.random.Generator
) -> np.ndarray:
    """A direct path (a unit impulse) and, 1-5 ms after it, Gaussian noise decaying by 60 dB
    in ``rt60_seconds`` whose energy is ``direct_to_reverberant_db`` below the direct path's."""
    length = int(rt60_seconds * SAMPLE_RATE)
    delay = int(rng.uniform(0.001, 0.005) * SAMPLE_RATE)
    t = np.arange(length - delay) / SAMPLE_RATE
    tail = rng.standard_normal(len(t)) * np.exp(-3.0 * np.log(10.0) * t / rt60_seconds)
    tail *= np.sqrt(10.0 ** (-direct_to_reverberant_db / 10.0) / np.sum(tail**2))
    rir = np.zeros(length)
    rir[0] = 1.0
    rir[delay:] += tail
    return rir


def simulate_replay(
    waveform: np.ndarray, parameters: ReplayParameters, *, rng: np.random.Generator
) -> np.ndarray:
    """``waveform`` played by a small loudspeaker in a room and recorded again (module doc)."""
    x = np.asarray(waveform, dtype=np.float64)
    band = signal.butter(
        4,
        [parameters.highpass_hz, parameters.lowpass_hz],
        btype="bandpass",
        fs=SAMPLE_RATE,
        output="sos",
    )
    x = signal.sosfilt(band, x)
    x = x / (np.max(np.abs(x)) + 1e-9)
    x = np.tanh(parameters.drive * x) / np.tanh(parameters.drive)
    rir = room_impulse_response(
        rt60_seconds=parameters.rt60_seconds,
        direct_to_reverberant_db=parameters.direct_to_reverberant_db,
        rng=rng,
    )
    x = signal.fftconvolve(x, rir)[: len(x)]
    noise = rng.standard_normal(len(x))
    noise *= np.sqrt(np.mean(x**2) / 10.0 ** (parameters.snr_db / 10.0))
    x = x + noise
    return (x * parameters.peak / (np.max(np.abs(x)) + 1e-9)).astype(np.float32)


# --- writing ---------------------------------------------------------------------------------


def write_wav(path: Path, waveform: np.ndarray) -> None:
    """16 kHz mono 16-bit PCM."""
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, np.clip(waveform, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16")


@dataclass
class MaterialSummary:
    speakers: int = 0
    bonafide: int = 0
    espeak: int = 0
    replay: int = 0
    #: Why espeak-ng speech is missing, if it is.
    espeak_skipped: str = ""


def make_material(
    out: Path,
    *,
    speakers: dict[str, list[Path]],
    part: SpoofPart | None = None,
    seed: int = 0,
    espeak: bool = True,
    progress: bool = True,
) -> MaterialSummary:
    """Write ``out/bonafide/*.wav``, ``out/spoof/replay/*.wav`` (one replay of each bona fide
    piece) and ``out/spoof/espeak/*.wav`` (as many utterances as bona fide pieces) for the
    ``speakers`` of ``part`` (None: all). Same seed, same files."""
    out = Path(out)
    chosen = {k: v for k, v in speakers.items() if part is None or material_part(k) == part}
    summary = MaterialSummary(speakers=len(chosen))
    rng = np.random.default_rng(seed)
    files = sum(len(v) for v in chosen.values())
    bar = tqdm(total=files, unit="file", desc="bona fide + replay", disable=not progress)
    last = None
    for piece in bonafide_pieces(chosen, rng=rng):
        write_wav(out / "bonafide" / f"{piece.name}.wav", piece.waveform)
        # Each replay's own generator: a piece sounds the same whatever else is made.
        replay_rng = np.random.default_rng([seed, zlib.crc32(piece.name.encode("utf-8"))])
        replayed = simulate_replay(
            piece.waveform, ReplayParameters.draw(replay_rng), rng=replay_rng
        )
        write_wav(out / "spoof" / "replay" / f"{piece.name}.wav", replayed)
        summary.bonafide += 1
        summary.replay += 1
        source = piece.name.rsplit("_", 1)[0]
        if source != last:
            bar.update(1)
            last = source
    bar.close()
    if not espeak:
        summary.espeak_skipped = "not asked for"
    elif not espeak_available():
        summary.espeak_skipped = "espeak-ng is not installed (apt-get install espeak-ng)"
    else:
        plan = espeak_plan(count=summary.bonafide, part=part, rng=rng)
        for i, utterance in enumerate(
            tqdm(plan, unit="utt", desc="espeak-ng", disable=not progress)
        ):
            write_wav(
                out / "spoof" / "espeak" / f"{utterance.name}_{i:04d}.wav",
                espeak_synthesize(utterance),
            )
            summary.espeak += 1
    return summary


def shared_speakers(
    audio: Path, *, librispeech: int | None = None, seed: int = 0
) -> dict[str, list[Path]]:
    """The speakers of the shared speech (``../shared/audio``): every Mandarin speaker of
    ``zh/`` and ``librispeech`` LibriSpeech speakers drawn by ``seed`` (None: all 251)."""
    audio = Path(audio)
    found = [f for f in (audio / "zh", audio / LIBRISPEECH) if f.is_dir()]
    if not found:
        raise FileNotFoundError(f"no shared speech under {audio} (zh/, {LIBRISPEECH}/)")
    rng = np.random.default_rng(seed)
    chosen: dict[str, list[Path]] = {}
    for folder in found:
        speakers = speakers_in([folder])
        limit = librispeech if folder.name == LIBRISPEECH else None
        chosen.update(choose_speakers(speakers, count=limit, rng=rng))
    return chosen
