//! The container facts of a delivered video: what its `moov` box says, and whether the file
//! holds the samples the `moov` promises.
//!
//! **Why a scan before the parser.** The boxes are parsed by Mozilla's `mp4parse` (the parser
//! Firefox ships, fuzzed for years); genroute writes no MP4 parser. But `mp4parse::read_mp4`
//! reads every top-level box, and skipping a 10 MB `mdat` means reading it. So this module only
//! walks the top-level box headers (8 or 16 bytes each, then a seek past the box), finds `ftyp`
//! and `moov`, and hands just those bytes to `mp4parse`. A 10 MB file costs a few reads.
//!
//! **Why truncation is checked against the sample table.** A file cut short by a dropped
//! download still parses when its `moov` comes first (`-movflags +faststart`, what most
//! services deliver): the index is intact, the media is not. The video track's sample table
//! (chunk offsets, samples per chunk, sample sizes) says where its last sample ends; if that
//! byte is past the end of the file, the file is truncated. When the `moov` comes last, a cut
//! file has a box (the `mdat`, or the `moov` itself) that runs past the end of the file.

use std::io::{Read, Seek, SeekFrom};

use super::{BadOutput, Facts};

/// The largest `moov` read into memory. A `moov` of an eight-second clip is a few KB; one of
/// an hour at 60 fps is a few MB. Past this, the file is refused rather than buffered.
const MAX_MOOV_BYTES: u64 = 64 << 20;

/// Top-level box types that may open an ISO-BMFF file. Requiring one of them at byte 0 tells
/// random bytes from a video before anything is parsed.
const FIRST_BOXES: &[&[u8; 4]] = &[
    b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid", b"pdin", b"styp", b"pnot",
];

/// A top-level box: its type and byte range.
#[derive(Debug, Clone, Copy)]
struct TopBox {
    kind: [u8; 4],
    start: u64,
    end: u64,
}

fn name(kind: &[u8; 4]) -> String {
    String::from_utf8_lossy(kind).into_owned()
}

/// Inspects a video held in memory.
pub fn inspect_bytes(data: &[u8]) -> Result<Facts, BadOutput> {
    inspect(&mut std::io::Cursor::new(data), data.len() as u64)
}

/// Inspects a video from a reader of `size` bytes: reads the box headers and the `moov`, seeks
/// past everything else.
pub fn inspect<R: Read + Seek>(r: &mut R, size: u64) -> Result<Facts, BadOutput> {
    let not_video = |detail: String| BadOutput::NotAVideo { detail };
    if size == 0 {
        return Err(not_video("the file is empty".into()));
    }
    let (boxes, cut) = scan(r, size)?;
    let moov = boxes.iter().find(|b| &b.kind == b"moov");
    let Some(moov) = moov else {
        if let Some(c) = cut {
            return Err(BadOutput::Truncated {
                what: format!("box `{}`", name(&c.kind)),
                ends_at: c.end,
                size,
            });
        }
        return Err(not_video(
            "the file has no `moov` box (the index of its tracks)".into(),
        ));
    };
    let ftyp = boxes.iter().find(|b| &b.kind == b"ftyp");
    let mut head = Vec::new();
    let mut brand = None;
    if let Some(f) = ftyp {
        let bytes = read_range(r, f.start, f.end)?;
        brand = bytes.get(8..12).map(|b| [b[0], b[1], b[2], b[3]]);
        head.extend_from_slice(&bytes);
    }
    if moov.end - moov.start > MAX_MOOV_BYTES {
        return Err(not_video(format!(
            "its `moov` box is {} bytes, more than the {MAX_MOOV_BYTES} read",
            moov.end - moov.start
        )));
    }
    head.extend_from_slice(&read_range(r, moov.start, moov.end)?);
    let ctx = mp4parse::read_mp4(&mut std::io::Cursor::new(&head))
        .map_err(|e| not_video(format!("its `moov` box does not parse ({e})")))?;
    let container = match brand.as_ref() {
        Some(b"qt  ") => "mov",
        Some(b"M4V ") | Some(b"M4VH") | Some(b"M4VP") => "m4v",
        Some(_) => "mp4",
        None => "mov",
    };
    let track = ctx
        .tracks
        .iter()
        .find(|t| t.track_type == mp4parse::TrackType::Video)
        .ok_or_else(|| BadOutput::NoVideoTrack {
            tracks: ctx.tracks.len(),
        })?;
    let entry = track.stsd.as_ref().and_then(|d| {
        d.descriptions.iter().find_map(|e| match e {
            mp4parse::SampleEntry::Video(v) => Some(v),
            _ => None,
        })
    });
    let (codec, width, height) = match entry {
        Some(v) => (codec_name(v.codec_type), v.width.into(), v.height.into()),
        None => ("unknown", 0, 0),
    };
    let frames: u64 = match (&track.stts, &track.stsz) {
        (Some(stts), _) if !stts.samples.is_empty() => {
            stts.samples.iter().map(|s| u64::from(s.sample_count)).sum()
        }
        (_, Some(stsz)) => stsz.sample_sizes.len() as u64,
        _ => 0,
    };
    let duration_s = match (track.duration, track.timescale) {
        (Some(d), Some(ts)) if ts.0 > 0 && d.0 > 0 => d.0 as f64 / ts.0 as f64,
        // A fragmented MP4 keeps its samples in `moof` boxes, outside the `moov`: its
        // duration is the `mvex` one (its frames are not counted here).
        _ => match (
            ctx.mvex.as_ref().and_then(|m| m.fragment_duration),
            ctx.timescale,
        ) {
            (Some(d), Some(ts)) if ts.0 > 0 => d.0 as f64 / ts.0 as f64,
            _ => 0.0,
        },
    };
    let fps = if duration_s > 0.0 {
        frames as f64 / duration_s
    } else {
        0.0
    };
    if let Some(end) = track_end(track) {
        if end > size {
            return Err(BadOutput::Truncated {
                what: "the video track".into(),
                ends_at: end,
                size,
            });
        }
    }
    if let Some(c) = cut {
        return Err(BadOutput::Truncated {
            what: format!("box `{}`", name(&c.kind)),
            ends_at: c.end,
            size,
        });
    }
    Ok(Facts {
        container: container.into(),
        duration_s,
        frames,
        fps,
        width,
        height,
        codec: codec.into(),
        bytes: size,
    })
}

/// Walks the top-level box headers. Returns the boxes wholly inside the file and the first
/// box that runs past its end, if any (where the scan stops).
fn scan<R: Read + Seek>(r: &mut R, size: u64) -> Result<(Vec<TopBox>, Option<TopBox>), BadOutput> {
    let not_video = |detail: String| BadOutput::NotAVideo { detail };
    let mut boxes = Vec::new();
    let mut pos = 0u64;
    while pos < size {
        let mut header = [0u8; 16];
        let avail = (size - pos).min(16) as usize;
        if avail < 8 {
            // A box header cut in half: the file ends inside it.
            let cut = TopBox {
                kind: *b"????",
                start: pos,
                end: pos + 8,
            };
            return Ok((boxes, Some(cut)));
        }
        seek(r, pos)?;
        r.read_exact(&mut header[..avail])
            .map_err(|e| not_video(format!("cannot read it: {e}")))?;
        let kind = [header[4], header[5], header[6], header[7]];
        let printable = kind.iter().all(|b| (0x20..=0x7e).contains(b));
        if pos == 0 && !FIRST_BOXES.contains(&&kind) {
            return Err(not_video(format!(
                "it does not start with an ISO-BMFF box (its first bytes are {})",
                hex(&header[..8])
            )));
        }
        if !printable {
            return Err(not_video(format!(
                "the bytes at offset {pos} are not a box header"
            )));
        }
        let small = u64::from(u32::from_be_bytes([
            header[0], header[1], header[2], header[3],
        ]));
        let (len, header_len) = match small {
            0 => (size - pos, 8),
            1 if avail >= 16 => (
                u64::from_be_bytes([
                    header[8], header[9], header[10], header[11], header[12], header[13],
                    header[14], header[15],
                ]),
                16,
            ),
            1 => {
                let cut = TopBox {
                    kind,
                    start: pos,
                    end: pos + 16,
                };
                return Ok((boxes, Some(cut)));
            }
            n => (n, 8),
        };
        if len < header_len {
            return Err(not_video(format!(
                "box `{}` at offset {pos} declares an impossible size of {len} bytes",
                name(&kind)
            )));
        }
        let b = TopBox {
            kind,
            start: pos,
            end: pos.saturating_add(len),
        };
        if b.end > size {
            return Ok((boxes, Some(b)));
        }
        boxes.push(b);
        pos = b.end;
    }
    Ok((boxes, None))
}

/// Where the last byte of the track's samples lies: the furthest end of any chunk, from the
/// chunk offsets (`stco`/`co64`), the samples per chunk (`stsc`) and the sample sizes
/// (`stsz`). `None` when the track has no sample table.
fn track_end(track: &mp4parse::Track) -> Option<u64> {
    let offsets = &track.stco.as_ref()?.offsets;
    let stsc = &track.stsc.as_ref()?.samples;
    let stsz = track.stsz.as_ref()?;
    let size_of = |i: usize| -> u64 {
        if stsz.sample_size != 0 {
            u64::from(stsz.sample_size)
        } else {
            stsz.sample_sizes
                .get(i)
                .copied()
                .map(u64::from)
                .unwrap_or(0)
        }
    };
    let total = if stsz.sample_size != 0 {
        usize::MAX
    } else {
        stsz.sample_sizes.len()
    };
    let mut sample = 0usize;
    let mut entry = 0usize;
    let mut end = 0u64;
    for (c, &offset) in offsets.iter().enumerate() {
        let chunk = c as u64 + 1;
        while entry + 1 < stsc.len() && u64::from(stsc[entry + 1].first_chunk) <= chunk {
            entry += 1;
        }
        let per_chunk = stsc.get(entry).map(|e| e.samples_per_chunk).unwrap_or(0) as usize;
        let mut chunk_end = offset;
        for _ in 0..per_chunk {
            if sample >= total {
                break;
            }
            chunk_end = chunk_end.saturating_add(size_of(sample));
            sample += 1;
        }
        end = end.max(chunk_end);
    }
    Some(end)
}

fn codec_name(c: mp4parse::CodecType) -> &'static str {
    use mp4parse::CodecType as C;
    match c {
        C::H264 => "h264",
        C::MP4V => "mpeg4",
        C::AV1 => "av1",
        C::VP9 => "vp9",
        C::VP8 => "vp8",
        C::H263 => "h263",
        C::EncryptedVideo => "encrypted",
        _ => "unknown",
    }
}

fn seek<R: Seek>(r: &mut R, pos: u64) -> Result<(), BadOutput> {
    r.seek(SeekFrom::Start(pos))
        .map(|_| ())
        .map_err(|e| BadOutput::NotAVideo {
            detail: format!("cannot seek in it: {e}"),
        })
}

fn read_range<R: Read + Seek>(r: &mut R, start: u64, end: u64) -> Result<Vec<u8>, BadOutput> {
    seek(r, start)?;
    let mut buf = vec![0u8; (end - start) as usize];
    r.read_exact(&mut buf).map_err(|e| BadOutput::NotAVideo {
        detail: format!("cannot read it: {e}"),
    })?;
    Ok(buf)
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A box: size, type, payload.
    fn bx(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut v = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn random_bytes_are_not_a_video() {
        let junk: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let e = inspect_bytes(&junk).unwrap_err();
        assert!(matches!(e, BadOutput::NotAVideo { .. }), "{e}");
        assert!(e.to_string().starts_with("not a video: "), "{e}");
    }

    #[test]
    fn empty_and_boxes_without_moov() {
        assert!(matches!(
            inspect_bytes(&[]).unwrap_err(),
            BadOutput::NotAVideo { .. }
        ));
        let mut f = bx(b"ftyp", b"isom\0\0\0\0isom");
        f.extend(bx(b"free", &[0; 10]));
        let e = inspect_bytes(&f).unwrap_err();
        assert!(e.to_string().contains("no `moov` box"), "{e}");
    }

    #[test]
    fn a_box_that_runs_past_the_end_is_truncation() {
        let mut f = bx(b"ftyp", b"isom\0\0\0\0isom");
        let mut mdat = bx(b"mdat", &[7; 100]);
        mdat.truncate(50);
        f.extend(mdat);
        let e = inspect_bytes(&f).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "truncated: box `mdat` ends at byte {} of a file of {} bytes",
                20 + 108,
                f.len()
            )
        );
    }

    #[test]
    fn an_impossible_box_size_is_not_a_video() {
        let mut f = bx(b"ftyp", b"isom\0\0\0\0isom");
        f.extend([0, 0, 0, 3]);
        f.extend(b"mdat");
        let e = inspect_bytes(&f).unwrap_err();
        assert!(e.to_string().contains("impossible size"), "{e}");
    }
}
