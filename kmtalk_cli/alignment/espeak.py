"""espeak-ng through ctypes: phonemes for any word, and speech with exact phoneme timings.

The synthetic corpus and the aligner tests need audio whose phoneme boundaries are known; the
lexicon also prefers espeak-ng's rules for words CMUdict lacks when it is installed. The library
comes from the ``espeakng-loader`` wheel (GPL-3.0, so only in the optional ``synth`` extra),
which bundles libespeak-ng and its data; nothing is fetched or installed system-wide, and
nothing here loads it until a phoneme or a sample is asked for. libespeak-ng keeps global
state, so every call holds one lock.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass

import numpy as np

from ..errors import KmtalkError

#: Sample rate of espeak-ng's own voices (MBROLA voices are not used through this path).
ESPEAK_RATE = 22_050

# Constants from espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_SSML = 0x10
_POS_CHARACTER = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_PHONEME = 7
_PARAM_RATE = 1
_PARAM_PITCH = 3
# espeak_TextToPhonemes phonememode: bits 8-23 hold a separator character put between phonemes.
_PHONEMES_SEPARATOR_SHIFT = 8


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """``espeak_EVENT``: one marker in the synthesised stream."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(frozen=True)
class PhonemeEvent:
    """One phoneme espeak-ng spoke: its mnemonic and where it starts in the output (seconds).

    ``word`` is where the word it belongs to starts in the text (espeak-ng's 1-based character
    position), so phonemes of one word share it: a linking r ("chair is") carries the word it
    ends, unlike the r that starts the next word ("chair rail").
    """

    name: str
    start: float
    word: int = 0


@dataclass(frozen=True)
class Synthesis:
    """Speech plus espeak-ng's phoneme start times, the ground truth for aligner tests."""

    samples: np.ndarray  # (N,) float32 at ``sample_rate``
    sample_rate: int
    phonemes: tuple[PhonemeEvent, ...]
    text: str
    voice: str

    @property
    def duration(self) -> float:
        """Length in seconds, from the sample count."""
        return self.samples.shape[0] / self.sample_rate


#: What to tell a user whose install lacks the optional ``synth`` extra.
ESPEAK_MISSING = (
    "espeak-ng is not installed; `kmtalk synth` needs it to synthesise speech, so install the "
    'optional extra with `pip install "kmtalk[synth]"` (GPL-3.0).'
)


class EspeakError(KmtalkError):
    """libespeak-ng could not be loaded or refused a request."""


class _Engine:
    """The process-wide libespeak-ng handle, initialised lazily on first use."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._lib: ctypes.CDLL | None = None
        self._voice: str | None = None
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[str, int, int]] = []
        self._callback = _CALLBACK(self._on_synth)  # kept alive as long as the engine

    def _on_synth(self, wav: ctypes.POINTER(ctypes.c_short), n: int, events: ctypes.POINTER(_Event)) -> int:
        """Collect audio and phoneme events; espeak-ng calls this during ``espeak_Synth``."""
        if wav and n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == _EVENT_PHONEME:
                name = bytes(ev.id.string).split(b"\0", 1)[0].decode("ascii", "replace")
                self._events.append((name, int(ev.sample), int(ev.text_position)))
            i += 1
        return 0

    def lib(self) -> ctypes.CDLL:
        """Load and initialise libespeak-ng once; fail with an actionable message."""
        if self._lib is not None:
            return self._lib
        try:
            import espeakng_loader
        except ImportError:
            raise EspeakError(ESPEAK_MISSING) from None
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        data = espeakng_loader.get_data_path().encode()
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data, _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise EspeakError(f"libespeak-ng failed to initialise (data at {data.decode()}).")
        lib.espeak_SetSynthCallback(self._callback)
        self._lib = lib
        return lib

    def set_voice(self, voice: str) -> None:
        """Select a voice such as ``en-us`` or ``en-us+f3`` (cached: switching costs ~ms)."""
        if voice == self._voice:
            return
        if self.lib().espeak_SetVoiceByName(voice.encode()) != 0:
            raise EspeakError(f"espeak-ng has no voice named {voice!r}.")
        self._voice = voice


_ENGINE = _Engine()


def text_to_phonemes(text: str, voice: str = "en-us") -> list[list[str]]:
    """espeak-ng mnemonics for ``text``, one list per word (stress marks kept, e.g. ``'aI``).

    espeak-ng returns one clause per call and advances the text pointer, so the loop runs
    until it has consumed everything.
    """
    with _ENGINE.lock:
        lib = _ENGINE.lib()
        _ENGINE.set_voice(voice)
        buf = ctypes.create_string_buffer(text.encode("utf-8"))
        ptr = ctypes.c_void_p(ctypes.addressof(buf))
        mode = ord("_") << _PHONEMES_SEPARATOR_SHIFT
        words: list[list[str]] = []
        while ptr.value:
            out = lib.espeak_TextToPhonemes(ctypes.byref(ptr), _CHARS_UTF8, mode)
            if not out:
                break
            for word in out.decode("utf-8", "replace").split():
                phones = [p for p in word.split("_") if p]
                if phones:
                    words.append(phones)
        return words


def synthesize(
    text: str, voice: str = "en-us", *, rate: int | None = None, pitch: int | None = None, ssml: bool = False
) -> Synthesis:
    """Speak ``text`` and return the audio with each phoneme's start (seconds, 22.05 kHz clock).

    Event times come from espeak-ng's own sample counter, so they are exact for its output;
    acoustically they run ~13 ms ahead of the boundaries an aligner sees (see machine notes).
    With ``ssml`` the text is SSML (``<speak>``, ``<prosody>``, ``<emphasis>``, ``<break>``);
    the events then count the samples the markup changed, so they stay exact.
    """
    with _ENGINE.lock:
        lib = _ENGINE.lib()
        _ENGINE.set_voice(voice)
        if rate is not None:
            lib.espeak_SetParameter(_PARAM_RATE, int(rate), 0)
        if pitch is not None:
            lib.espeak_SetParameter(_PARAM_PITCH, int(pitch), 0)
        _ENGINE._chunks = []
        _ENGINE._events = []
        data = text.encode("utf-8") + b"\0"
        flags = _CHARS_UTF8 | (_SSML if ssml else 0)
        err = lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, flags, None, None)
        lib.espeak_Synchronize()
        chunks, events = _ENGINE._chunks, _ENGINE._events
        _ENGINE._chunks, _ENGINE._events = [], []
        # Leave the engine at default speed/pitch for the next caller.
        if rate is not None:
            lib.espeak_SetParameter(_PARAM_RATE, 175, 0)
        if pitch is not None:
            lib.espeak_SetParameter(_PARAM_PITCH, 50, 0)
    if err != 0:
        raise EspeakError(f"espeak-ng could not synthesise {text!r} (error {err}).")
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    samples = (pcm.astype(np.float32) / 32768.0).astype(np.float32)
    phonemes = tuple(PhonemeEvent(name, pos / ESPEAK_RATE, word) for name, pos, word in events)
    return Synthesis(samples, ESPEAK_RATE, phonemes, text, voice)
