//! Dead letters in the format of `lmsd/events/consumers.py` `dead_letter` (what `lmsd events
//! dlq` lists and replays): `<prefix>.<consumer>.<original subject>` with the reason, the
//! original subject and stream sequence and the number of deliveries in headers.

use async_nats::HeaderMap;

/// Dead-letter subject and headers for a message of `consumer`.
pub fn dead_letter(
    prefix: &str,
    consumer: &str,
    subject: &str,
    stream_sequence: u64,
    deliveries: i64,
    reason: &str,
) -> (String, HeaderMap) {
    let mut headers = HeaderMap::new();
    headers.insert(
        "Nats-Msg-Id",
        format!("{consumer}:{stream_sequence}").as_str(),
    );
    headers.insert("Lmsd-Dlq-Consumer", consumer);
    headers.insert("Lmsd-Dlq-Reason", one_line(reason, 500).as_str());
    headers.insert("Lmsd-Dlq-Subject", subject);
    headers.insert("Lmsd-Dlq-Stream-Seq", stream_sequence.to_string().as_str());
    headers.insert("Lmsd-Dlq-Deliveries", deliveries.to_string().as_str());
    (format!("{prefix}.{consumer}.{subject}"), headers)
}

/// `text` without line breaks, at most `max` bytes.
pub fn one_line(text: &str, max: usize) -> String {
    let mut line: String = text.replace(['\r', '\n'], " ");
    if line.len() > max {
        let mut end = max;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letter_headers() {
        let (subject, headers) = dead_letter(
            "lmsd-dlq",
            "transcode",
            "lmsd.c.video.v.video_uploaded",
            7,
            4,
            "line 1\nline 2",
        );
        assert_eq!(subject, "lmsd-dlq.transcode.lmsd.c.video.v.video_uploaded");
        assert_eq!(
            headers.get("Lmsd-Dlq-Reason").unwrap().as_str(),
            "line 1 line 2"
        );
        assert_eq!(headers.get("Nats-Msg-Id").unwrap().as_str(), "transcode:7");
        assert_eq!(headers.get("Lmsd-Dlq-Deliveries").unwrap().as_str(), "4");
        assert_eq!(one_line(&"é".repeat(300), 501).len(), 500);
    }
}
