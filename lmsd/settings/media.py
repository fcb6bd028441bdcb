"""The video platform's settings (docs/video.md)."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_LADDER = r"^\d{3,4}p:\d{2,6}(,\d{3,4}p:\d{2,6})*$"


class Pathway(BaseModel):
    """A delivery pathway for HLS: the origin (the gateway's /media) or a CDN in front of it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,32}$", description="PATHWAY-ID in the master playlist.")
    base_url: str = Field(
        pattern=r"^https?://[^\s?#]+/$",
        description="URL that /media/ maps to on this pathway, ending in /, e.g. https://cdn-a.example.edu/media/.",
    )
    signing: Literal["lmsd-hmac", "none"] = Field(
        "lmsd-hmac", description="How URLs are signed: lmsd-hmac (exp/scope/sig, docs/video.md) or none."
    )
    key_file: str = Field("", description="File (0600) with this pathway's HMAC key; empty: the origin's media key.")
    regions: list[str] = Field(default_factory=list, description="Client regions this pathway serves first.")
    health_url: str = Field("", description="Probed every few seconds; a failing pathway is steered to last.")


class MediaSettings(BaseModel):
    """The video platform (docs/video.md)."""

    ffmpeg: str = Field("", description="ffmpeg binary; empty: `ffmpeg` on PATH, else the imageio-ffmpeg one.")
    ffprobe: str = Field("", description="ffprobe binary; empty: `ffprobe` on PATH (Debian's ffmpeg package).")
    max_upload_mb: int = Field(8192, ge=1, description="Largest video upload.")
    allowed_types: list[str] = Field(
        default_factory=lambda: [
            "video/mp4", "video/quicktime", "video/webm", "video/x-matroska", "video/x-msvideo", "video/mpeg",
        ],
        description="MIME types an upload may declare (its tus `filetype`).",
    )
    upload_expiry_h: float = Field(24.0, gt=0, description="Unfinished uploads are removed after this long.")
    ladder: str = Field(
        "240p:400,360p:800,480p:1400,720p:2800,1080p:5000", pattern=_LADDER,
        description="Renditions as name:video kbps; only those at or below the source are made.",
    )
    audio_kbps: int = Field(128, ge=32, le=512)
    segment_seconds: int = Field(4, ge=1, le=20)
    transcoders: int = Field(1, ge=0, le=32, description="Transcoder processes on this host (0: none).")
    transcode_attempts: int = Field(4, ge=1, le=20, description="Attempts before a job is dead-lettered.")
    transcode_backoff_s: list[int] = Field(default_factory=lambda: [10, 30, 90], min_length=1)
    transcription_model: str = Field(
        "pocketsphinx", pattern=r"^(pocketsphinx|whisper:.+|off)$",
        description="pocketsphinx (English, bundled), whisper:/path/to/ggml-model.bin, or off.",
    )
    url_ttl_s: int = Field(6 * 3600, ge=60, le=7 * 86400, description="Lifetime of signed playback URLs.")
    pathways: list[Pathway] = Field(
        default_factory=list, description="CDN pathways besides the origin (HLS content steering)."
    )
    origin_regions: list[str] = Field(default_factory=list, description="Client regions the origin serves first.")
    region_networks: dict[str, list[str]] = Field(
        default_factory=dict, description="Client region by network: {region: [CIDR, ...]}."
    )
    steering_ttl_s: int = Field(300, ge=10, le=86400)

    @field_validator("pathways")
    @classmethod
    def _unique_pathways(cls, value: list[Pathway]) -> list[Pathway]:
        ids = [p.id for p in value]
        if "origin" in ids or len(set(ids)) != len(ids):
            raise ValueError("pathway ids must be unique and not 'origin'")
        return value

    @field_validator("region_networks")
    @classmethod
    def _networks(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for region, cidrs in value.items():
            for cidr in cidrs:
                try:
                    ipaddress.ip_network(cidr, strict=False)
                except ValueError:
                    raise ValueError(f"region {region!r}: {cidr!r} is not a network such as 10.0.0.0/8") from None
        return value

    def rungs(self) -> list[tuple[str, int, int]]:
        """The ladder as (name, height, video kbps), smallest first."""
        rungs = []
        for item in self.ladder.split(","):
            name, kbps = item.split(":")
            rungs.append((name, int(name[:-1]), int(kbps)))
        return sorted(rungs, key=lambda r: r[1])
