"""Media URL signing: the shared test vector (also checked in rust/gateway/src/media.rs)."""

from __future__ import annotations

import pytest

from lmsd.media.signing import sign_media_path, signed_media_url

# The same constants appear in the Rust test `media::tests::shared_test_vector_verifies`.
VECTOR_KEY = "lmsd-test-media-key-0123456789"
VECTOR_PATH = "/media/course-1/lesson 2/index.m3u8"
VECTOR_EXP = 2000000000
VECTOR_SIG = "8uDxAhbjbs5y4eLEeUHhu2RBlHytatgWMpR93Peuc8c"


def test_shared_vector() -> None:
    assert sign_media_path(VECTOR_KEY, VECTOR_PATH, VECTOR_EXP) == f"exp={VECTOR_EXP}&sig={VECTOR_SIG}"
    assert sign_media_path(VECTOR_KEY.encode(), VECTOR_PATH, VECTOR_EXP).endswith(VECTOR_SIG)


def test_scope_and_url() -> None:
    query = sign_media_path(VECTOR_KEY, "/media/course-1/lesson 2/", VECTOR_EXP)
    assert query.startswith(f"exp={VECTOR_EXP}&scope=%2Fmedia%2Fcourse-1%2Flesson%202%2F&sig=")
    url = signed_media_url(VECTOR_KEY, "/media/course-1/lesson 2/", VECTOR_EXP, "index.m3u8")
    assert url.startswith("/media/course-1/lesson%202/index.m3u8?exp=")
    assert signed_media_url(VECTOR_KEY, VECTOR_PATH, VECTOR_EXP) == (
        f"/media/course-1/lesson%202/index.m3u8?exp={VECTOR_EXP}&sig={VECTOR_SIG}"
    )
    # Different expiry or path, different signature.
    assert sign_media_path(VECTOR_KEY, VECTOR_PATH, VECTOR_EXP + 1) != f"exp={VECTOR_EXP + 1}&sig={VECTOR_SIG}"


@pytest.mark.parametrize("bad", ["/other/x.ts", "/media/", "media/x.ts", "/media/../secrets", "/media/a/./b"])
def test_refuses_bad_paths(bad: str) -> None:
    with pytest.raises(ValueError):
        sign_media_path(VECTOR_KEY, bad, VECTOR_EXP)
