"""The media capability's public API, for the portal and other capabilities.

The work is done in rooms of its own: ``uploads`` (tus 1.0), ``storage`` (where the files live;
every blocking file operation off the event loop), ``videos`` (the records), ``playback`` (signed
grants, master playlist, steering) and ``transcripts``. This module only names what callers
outside ``lmsd.media`` may use; inside the package, modules import the rooms directly.
"""

from __future__ import annotations

from lmsd.media.playback import now, playback
from lmsd.media.transcripts import publish_transcript, request_transcription, transcript
from lmsd.media.videos import course_videos, get_video, video_in_course

__all__ = [
    "course_videos",
    "get_video",
    "now",
    "playback",
    "publish_transcript",
    "request_transcription",
    "transcript",
    "video_in_course",
]
