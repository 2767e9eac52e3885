"""Typed errors of the engine layer.

The HTTP layer maps each of these to one business code; nothing here knows about HTTP.
"""


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""


class AudioDecodeError(EngineError):
    """The bytes are not audio that libsndfile can read (business code 40002)."""


class InsufficientSpeechError(EngineError):
    """Less speech than the configured minimum after silence removal (business code 40003)."""

    def __init__(self, speech_seconds: float, minimum_seconds: float):
        self.speech_seconds = speech_seconds
        self.minimum_seconds = minimum_seconds
        super().__init__(
            f"audio has {speech_seconds:.2f} s of speech after silence removal; "
            f"at least {minimum_seconds:.2f} s is required"
        )


class EngineUnavailableError(EngineError):
    """An engine cannot be loaded or did not answer in time (business code 50300)."""


class ModelNotFoundError(EngineUnavailableError):
    """A model directory is missing or corrupt; the message says what to download and where."""


class UnknownEngineError(EngineError):
    """No engine of that name exists."""
