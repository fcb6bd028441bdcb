//! RFC 6381 codec strings read from a rendition's `init.mp4`, so `CODECS` in the master
//! playlist names exactly what was written (a copied source keeps its own profile and level):
//! `avc1.PPCCLL` from the avcC box, `mp4a.40.N` from the esds box.

/// Boxes that only contain boxes, on the way from the file to the sample description.
const CONTAINERS: [&[u8; 4]; 5] = [b"moov", b"trak", b"mdia", b"minf", b"stbl"];

/// The codec string of every track in an init segment, in track order.
pub fn codecs(init: &[u8]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    walk(init, &mut out)?;
    if out.is_empty() {
        return Err("no avc1/mp4a sample entry found".to_owned());
    }
    Ok(out)
}

/// A box: its four-character type and its body.
type Mp4Box<'a> = ([u8; 4], &'a [u8]);

/// Splits `data` into boxes.
fn boxes(mut data: &[u8]) -> Result<Vec<Mp4Box<'_>>, String> {
    let mut out = Vec::new();
    while data.len() >= 8 {
        let size = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
        let kind = [data[4], data[5], data[6], data[7]];
        let (header, size) = match size {
            0 => (8, data.len()),
            1 if data.len() >= 16 => {
                let mut large = [0u8; 8];
                large.copy_from_slice(&data[8..16]);
                (
                    16,
                    usize::try_from(u64::from_be_bytes(large)).map_err(|e| e.to_string())?,
                )
            }
            _ => (8, size),
        };
        if size < header || size > data.len() {
            return Err(format!("truncated {} box", String::from_utf8_lossy(&kind)));
        }
        out.push((kind, &data[header..size]));
        data = &data[size..];
    }
    Ok(out)
}

fn walk(data: &[u8], out: &mut Vec<String>) -> Result<(), String> {
    for (kind, body) in boxes(data)? {
        if CONTAINERS.contains(&&kind) {
            walk(body, out)?;
        } else if &kind == b"stsd" && body.len() >= 8 {
            // full box header (4) and entry count (4), then the sample entries
            for (entry, entry_body) in boxes(&body[8..])? {
                match &entry {
                    // visual sample entry: 78 bytes before its child boxes
                    b"avc1" | b"avc3" if entry_body.len() > 78 => {
                        for (child, child_body) in boxes(&entry_body[78..])? {
                            if &child == b"avcC" && child_body.len() >= 4 {
                                out.push(format!(
                                    "{}.{:02x}{:02x}{:02x}",
                                    String::from_utf8_lossy(&entry),
                                    child_body[1],
                                    child_body[2],
                                    child_body[3]
                                ));
                            }
                        }
                    }
                    // audio sample entry: 28 bytes before its child boxes
                    b"mp4a" if entry_body.len() > 28 => {
                        for (child, child_body) in boxes(&entry_body[28..])? {
                            if &child == b"esds" {
                                out.push(esds_codec(child_body)?);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// `mp4a.<object type>.<audio object type>` from an esds box body.
fn esds_codec(body: &[u8]) -> Result<String, String> {
    let mut reader = Descriptors(body.get(4..).unwrap_or_default()); // full box header
    let es = reader.find(0x03).ok_or("esds without ES_Descriptor")?;
    if es.len() < 3 {
        return Err("short ES_Descriptor".to_owned());
    }
    let flags = es[2];
    let mut skip = 3;
    if flags & 0x80 != 0 {
        skip += 2; // dependsOn_ES_ID
    }
    if flags & 0x40 != 0 {
        skip += 1 + usize::from(*es.get(skip).unwrap_or(&0)); // URL
    }
    if flags & 0x20 != 0 {
        skip += 2; // OCR_ES_Id
    }
    let config = Descriptors(es.get(skip..).unwrap_or_default())
        .find(0x04)
        .ok_or("esds without DecoderConfigDescriptor")?;
    let object_type = *config.first().ok_or("empty DecoderConfigDescriptor")?;
    let specific = Descriptors(config.get(13..).unwrap_or_default()).find(0x05);
    match specific.and_then(|asc| asc.first()) {
        Some(&first) if object_type == 0x40 => {
            let mut aot = first >> 3;
            if aot == 31 {
                let second = specific.and_then(|asc| asc.get(1)).copied().unwrap_or(0);
                aot = 32 + (((first & 0x07) << 3) | (second >> 5));
            }
            Ok(format!("mp4a.40.{aot}"))
        }
        _ => Ok(format!("mp4a.{object_type:02x}")),
    }
}

/// MPEG-4 descriptors: a tag byte, a length of up to four 7-bit groups, the body.
struct Descriptors<'a>(&'a [u8]);

impl<'a> Descriptors<'a> {
    fn find(&mut self, wanted: u8) -> Option<&'a [u8]> {
        while let Some((&tag, mut rest)) = self.0.split_first() {
            let mut len = 0usize;
            for _ in 0..4 {
                let (&byte, tail) = rest.split_first()?;
                rest = tail;
                len = (len << 7) | usize::from(byte & 0x7f);
                if byte & 0x80 == 0 {
                    break;
                }
            }
            let body = rest.get(..len)?;
            self.0 = &rest[len..];
            if tag == wanted {
                return Some(body);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    fn init(entry: Vec<u8>) -> Vec<u8> {
        let mut stsd = vec![0, 0, 0, 0, 0, 0, 0, 1];
        stsd.extend(entry);
        let mut tree = mp4_box(b"stsd", &stsd);
        for kind in [b"stbl", b"minf", b"mdia", b"trak", b"moov"] {
            tree = mp4_box(kind, &tree);
        }
        let mut file = mp4_box(b"ftyp", b"isom\0\0\x02\0");
        file.extend(tree);
        file
    }

    #[test]
    fn avc_profile_and_level() {
        let mut avc1 = vec![0u8; 78];
        avc1.extend(mp4_box(b"avcC", &[1, 0x64, 0x00, 0x1f, 0xff]));
        assert_eq!(
            codecs(&init(mp4_box(b"avc1", &avc1))).unwrap(),
            ["avc1.64001f"]
        );
        let mut main = vec![0u8; 78];
        main.extend(mp4_box(b"avcC", &[1, 0x4d, 0x40, 0x1e, 0xff]));
        assert_eq!(
            codecs(&init(mp4_box(b"avc1", &main))).unwrap(),
            ["avc1.4d401e"]
        );
    }

    #[test]
    fn aac_object_type() {
        // ES_Descriptor(ES_ID 1, no flags) > DecoderConfig(0x40, audio) > ASC 0x11 0x90 (AAC-LC)
        let asc = [0x05, 0x02, 0x11, 0x90];
        let mut config = vec![0x40, 0x15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        config.extend(asc);
        let mut es = vec![0, 1, 0, 0x04, 0x80, 0x80, 0x80, config.len() as u8];
        es.extend(config);
        let mut esds = vec![0, 0, 0, 0, 0x03, es.len() as u8];
        esds.extend(es);
        let mut mp4a = vec![0u8; 28];
        mp4a.extend(mp4_box(b"esds", &esds));
        assert_eq!(
            codecs(&init(mp4_box(b"mp4a", &mp4a))).unwrap(),
            ["mp4a.40.2"]
        );
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(codecs(b"").is_err());
        assert!(codecs(&mp4_box(b"moov", &[0, 0, 0, 99, b'x'])).is_err());
    }
}
