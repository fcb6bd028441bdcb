//! `/media/*`: HLS playlists and segments, authorised by signed URLs and served
//! from disk (with range requests) or redirected to a CDN.
//!
//! A signed URL carries `exp` (Unix seconds), `sig` and optionally `scope`:
//! `sig = base64url(HMAC-SHA256(key, "{exp}\n{signed}"))`, where `signed` is the
//! decoded request path, or `scope` — a `/media/…/` prefix of it — when present.
//! Checking costs one HMAC and no database call. `lmsd.media.signing` makes them.
//!
//! Players resolve a playlist's segment URIs relative to the playlist and drop
//! its query string, so a scoped playlist is served with the same `exp`/`scope`/
//! `sig` appended to each relative URI it lists.

use std::{
    path::PathBuf,
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{
    body::Body,
    extract::Request,
    http::{header, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::percent_decode_str;
use sha2::Sha256;
use tower::ServiceExt;
use tower_http::services::ServeDir;

use crate::{config::Config, error::AppError, routes::decode_path};

/// Largest playlist rewritten in memory.
const MAX_PLAYLIST_BYTES: u64 = 1024 * 1024;

/// Media settings and the file server.
#[derive(Debug, Clone)]
pub struct Media {
    key: Option<Vec<u8>>,
    dir: Option<PathBuf>,
    files: Option<ServeDir>,
    cdn: Option<String>,
}

/// The signature parameters of a request.
#[derive(Debug, Default)]
struct Signed<'a> {
    exp: Option<&'a str>,
    sig: Option<&'a str>,
    scope: Option<&'a str>,
}

impl Media {
    /// Media settings from `config`; reads the key file.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let key = match &config.media_key_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|err| {
                    anyhow::anyhow!("cannot read the media key file {}: {err}", path.display())
                })?;
                let key = text.trim().as_bytes().to_vec();
                anyhow::ensure!(
                    key.len() >= 16,
                    "the media key in {} is too short",
                    path.display()
                );
                Some(key)
            }
            None => None,
        };
        let files = config
            .media_dir
            .as_ref()
            .map(|dir| ServeDir::new(dir).append_index_html_on_directories(false));
        Ok(Self {
            key,
            dir: config.media_dir.clone(),
            files,
            cdn: config
                .media_cdn_url
                .as_ref()
                .map(|u| u.trim_end_matches('/').to_owned()),
        })
    }

    /// Answers a `/media/*` request.
    pub async fn serve(&self, request: Request) -> Result<Response, AppError> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return Err(AppError::MethodNotAllowed);
        }
        let raw_path = request.uri().path().to_owned();
        let path = decode_path(&raw_path)?.into_owned();
        let rest = path.strip_prefix("/media/").unwrap_or_default();
        if rest.is_empty() || rest.ends_with('/') || rest.contains("//") {
            return Err(AppError::NotFound);
        }
        let query = request.uri().query().unwrap_or_default().to_owned();
        let signed = signed_params(&query);
        let scope = self.verify(&path, &signed, unix_now())?;

        let raw_rest = raw_path.strip_prefix("/media/").unwrap_or_default();
        let propagated = propagated_query(&signed);
        if let Some(cdn) = &self.cdn {
            let location = format!("{cdn}/{raw_rest}?{propagated}");
            let location = HeaderValue::from_str(&location).map_err(|_| AppError::NotFound)?;
            return Ok((StatusCode::FOUND, [(header::LOCATION, location)]).into_response());
        }
        let (Some(files), Some(dir)) = (&self.files, &self.dir) else {
            return Err(AppError::NotFound);
        };
        // A scoped playlist is always rewritten and sent whole: a Range header (ffmpeg sends
        // `Range: bytes=0-` on every request) would otherwise get the raw file, whose relative
        // URIs carry no signature (RFC 9110 lets a server ignore Range).
        if scope.is_some() && rest.ends_with(".m3u8") {
            return playlist(
                &dir.join(rest),
                &propagated,
                request.method() == Method::HEAD,
            )
            .await;
        }

        let (mut parts, _) = request.into_parts();
        parts.uri = format!("/{raw_rest}")
            .parse()
            .map_err(|_| AppError::NotFound)?;
        let response = match files
            .clone()
            .oneshot(Request::from_parts(parts, Body::empty()))
            .await
        {
            Ok(response) => response,
            Err(never) => match never {},
        };
        if response.status() == StatusCode::NOT_FOUND {
            return Err(AppError::NotFound);
        }
        let mut response = response.map(Body::new);
        decorate(response.headers_mut(), rest);
        Ok(response)
    }

    /// Checks expiry and signature; returns the scope when the URL is scoped.
    fn verify<'a>(
        &self,
        path: &str,
        signed: &Signed<'a>,
        now: u64,
    ) -> Result<Option<String>, AppError> {
        let invalid = AppError::Forbidden("invalid media signature");
        let key = self
            .key
            .as_deref()
            .ok_or(AppError::Forbidden("invalid media signature"))?;
        let (Some(exp_text), Some(sig)) = (signed.exp, signed.sig) else {
            return Err(AppError::Forbidden("media URL is not signed"));
        };
        let exp: u64 = exp_text
            .parse()
            .map_err(|_| AppError::Forbidden("invalid media signature"))?;
        let scope = match signed.scope {
            Some(raw) => {
                let scope = percent_decode_str(raw)
                    .decode_utf8()
                    .map_err(|_| AppError::Forbidden("invalid media signature"))?;
                if !(scope.starts_with("/media/")
                    && scope.ends_with('/')
                    && path.starts_with(scope.as_ref()))
                {
                    return Err(invalid);
                }
                Some(scope.into_owned())
            }
            None => None,
        };
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| AppError::Forbidden("invalid media signature"))?;
        let mut mac = Hmac::<Sha256>::new_from_slice(key)
            .map_err(|_| AppError::Forbidden("invalid media signature"))?;
        mac.update(format!("{exp_text}\n{}", scope.as_deref().unwrap_or(path)).as_bytes());
        // Constant-time comparison, and expiry only after the signature: an attacker
        // learns nothing about which part was wrong.
        mac.verify_slice(&sig).map_err(|_| invalid)?;
        if exp < now {
            return Err(AppError::Forbidden("media URL has expired"));
        }
        Ok(scope)
    }
}

fn signed_params(query: &str) -> Signed<'_> {
    let mut signed = Signed::default();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("exp", v)) => signed.exp = Some(v),
            Some(("sig", v)) => signed.sig = Some(v),
            Some(("scope", v)) => signed.scope = Some(v),
            _ => {}
        }
    }
    signed
}

/// The signing parameters, re-encoded for a redirect or a playlist's URIs.
fn propagated_query(signed: &Signed<'_>) -> String {
    let mut parts = vec![format!("exp={}", signed.exp.unwrap_or_default())];
    if let Some(scope) = signed.scope {
        parts.push(format!("scope={scope}"));
    }
    parts.push(format!("sig={}", signed.sig.unwrap_or_default()));
    parts.join("&")
}

/// Content types HLS players insist on, and caching: playlists and subtitles may be rewritten
/// (a new transcript) so they are cached briefly; segments, init sections and images of a
/// transcoded video never change under their URL, so browsers and CDNs keep them.
fn decorate(headers: &mut axum::http::HeaderMap, path: &str) {
    let ext = path
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase());
    let content_type = match ext.as_deref() {
        Some("m3u8") => Some("application/vnd.apple.mpegurl"),
        Some("ts") => Some("video/mp2t"),
        Some("m4s") => Some("video/iso.segment"),
        Some("mp4") => Some("video/mp4"),
        Some("m4a") => Some("audio/mp4"),
        Some("aac") => Some("audio/aac"),
        Some("vtt") => Some("text/vtt; charset=utf-8"),
        Some("key") => Some("application/octet-stream"),
        _ => None,
    };
    if let Some(content_type) = content_type {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    let cache = match ext.as_deref() {
        Some("m3u8" | "vtt") | None => "private, max-age=60",
        Some(_) => "public, max-age=31536000, immutable",
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// Serves a playlist with the signature appended to its relative URIs.
async fn playlist(file: &std::path::Path, query: &str, head: bool) -> Result<Response, AppError> {
    let meta = tokio::fs::metadata(file)
        .await
        .map_err(|_| AppError::NotFound)?;
    if !meta.is_file() || meta.len() > MAX_PLAYLIST_BYTES {
        return Err(AppError::NotFound);
    }
    let text = tokio::fs::read_to_string(file)
        .await
        .map_err(|_| AppError::NotFound)?;
    let body = propagate(&text, query);
    let mut response = Response::new(if head {
        Body::empty()
    } else {
        Body::from(body.clone())
    });
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, body.len().into());
    decorate(response.headers_mut(), "index.m3u8");
    Ok(response)
}

/// Appends `query` to every relative URI of an M3U8 playlist (URI lines and `URI="…"` attributes).
fn propagate(playlist: &str, query: &str) -> String {
    let with_query = |uri: &str| {
        if uri.is_empty() || uri.contains("://") || uri.starts_with('/') {
            uri.to_owned()
        } else {
            let sep = if uri.contains('?') { '&' } else { '?' };
            format!("{uri}{sep}{query}")
        }
    };
    let mut out = String::with_capacity(playlist.len() * 2);
    for line in playlist.lines() {
        if line.starts_with('#') {
            let mut rest = line;
            while let Some(start) = rest.find("URI=\"") {
                let (before, after) = rest.split_at(start + 5);
                out.push_str(before);
                let end = after.find('"').unwrap_or(after.len());
                out.push_str(&with_query(&after[..end]));
                rest = &after[end..];
            }
            out.push_str(rest);
        } else {
            out.push_str(&with_query(line.trim()));
        }
        out.push('\n');
    }
    out
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shared with tests/media/test_media_signing.py: both sides must agree on it.
    pub const VECTOR_KEY: &str = "lmsd-test-media-key-0123456789";
    pub const VECTOR_PATH: &str = "/media/course-1/lesson 2/index.m3u8";
    pub const VECTOR_EXP: &str = "2000000000";
    pub const VECTOR_SIG: &str = "8uDxAhbjbs5y4eLEeUHhu2RBlHytatgWMpR93Peuc8c";

    fn media() -> Media {
        Media {
            key: Some(VECTOR_KEY.as_bytes().to_vec()),
            dir: None,
            files: None,
            cdn: None,
        }
    }

    #[test]
    fn shared_test_vector_verifies() {
        let signed = Signed {
            exp: Some(VECTOR_EXP),
            sig: Some(VECTOR_SIG),
            scope: None,
        };
        assert_eq!(
            media().verify(VECTOR_PATH, &signed, 1_900_000_000).unwrap(),
            None
        );
        // Expired, other path, tampered expiry.
        assert!(media().verify(VECTOR_PATH, &signed, 2_000_000_001).is_err());
        assert!(media()
            .verify("/media/course-1/other.m3u8", &signed, 0)
            .is_err());
        let tampered = Signed {
            exp: Some("2000000001"),
            ..signed
        };
        assert!(media().verify(VECTOR_PATH, &tampered, 0).is_err());
    }

    #[test]
    fn scope_must_contain_the_path() {
        let mut mac = Hmac::<Sha256>::new_from_slice(VECTOR_KEY.as_bytes()).unwrap();
        mac.update(b"99\n/media/c/");
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        let signed = Signed {
            exp: Some("99"),
            sig: Some(&sig),
            scope: Some("/media/c/"),
        };
        assert_eq!(
            media()
                .verify("/media/c/seg1.ts", &signed, 1)
                .unwrap()
                .as_deref(),
            Some("/media/c/")
        );
        assert!(media().verify("/media/d/seg1.ts", &signed, 1).is_err());
        let unsigned = Media {
            key: None,
            ..media()
        };
        assert!(unsigned.verify("/media/c/seg1.ts", &signed, 1).is_err());
    }

    #[test]
    fn playlist_uris_get_the_signature() {
        let text = "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:4,\nseg0.ts\nhttps://cdn/x.ts\n/abs.ts\nq.ts?a=1\n";
        let out = propagate(text, "exp=1&sig=s");
        assert_eq!(
            out,
            "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4?exp=1&sig=s\"\n#EXTINF:4,\nseg0.ts?exp=1&sig=s\nhttps://cdn/x.ts\n/abs.ts\nq.ts?a=1&exp=1&sig=s\n"
        );
    }
}
