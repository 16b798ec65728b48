//! Tags of audio files: what an uploaded file says about itself, and test audio.
//!
//! [`read_tags`] reads the title, artist, album, track number, duration and media type of an
//! audio file on disk with [`lofty`], bounded so that a hostile file cannot make it allocate
//! without limit, run a custom resolver or panic the caller:
//!
//! - the file type is detected from the content only (its magic number, or an MPEG/AAC frame
//!   sync within the first [`ParseOptions::DEFAULT_MAX_JUNK_BYTES`] bytes), never from the
//!   name, which is the uploader's claim: lofty's fallback to the extension would hand random
//!   bytes named `*.mpc` to its Musepack SV4–6 reader (a format without a magic number), which
//!   "reads" some of them as years of audio;
//! - lofty runs with [`ParsingMode::BestAttempt`] (a malformed text field becomes empty instead
//!   of failing the whole file), cover art is not decoded, and each tag item or chunk it reads
//!   is limited to [`ALLOCATION_LIMIT`] bytes (lofty's `GlobalOptions::allocation_limit`,
//!   checked before every allocation it makes for file data);
//! - a file whose tags are unreadable (too large, corrupt) but whose audio is readable gives
//!   its properties with empty tags; a file whose audio is unreadable is an `Err`;
//! - a RIFF (WAV) or FORM (AIFF) file shorter than its header declares is truncated, an `Err`
//!   (lofty alone would report the declared duration);
//! - every string is cleaned by removing control characters, trimming surrounding white space
//!   and cutting it to [`MAX_TAG_BYTES`] bytes at a char boundary.
//!
//! [`write_test_wav`] writes a small tagged WAV file for tests and demos.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("tone.wav");
//! dispotify::tags::write_test_wav(&path, 1.0, 8000, 440.0, "Tone", "Floe", "Tests", 1)?;
//! let tags = dispotify::tags::read_tags(&path)?;
//! assert_eq!((tags.title.as_str(), tags.track, tags.mime.as_str()), ("Tone", 1, "audio/wav"));
//! # Ok(()) }
//! ```

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use lofty::config::{GlobalOptions, ParseOptions, ParsingMode, WriteOptions, apply_global_options};
use lofty::error::{ErrorKind, LoftyError};
use lofty::file::{FileType, TaggedFile};
use lofty::prelude::*;
use lofty::probe::Probe;
use lofty::tag::{Tag, TagType};

/// The largest tag string kept, in bytes of UTF-8 (longer ones are cut at a char boundary).
pub const MAX_TAG_BYTES: usize = 512;

/// The most lofty may allocate for any single tag item or chunk while reading a file (16 MiB,
/// lofty's own default, stated here so it cannot change under us: an ID3v2 tag is read in one
/// piece, cover art included, so a much lower limit would refuse ordinary MP3s).
pub const ALLOCATION_LIMIT: usize = 16 * 1024 * 1024;

/// The media type used when the file type is unknown.
pub const UNKNOWN_MIME: &str = "application/octet-stream";

/// What an audio file's tags and properties say about it; empty strings and 0 when they say
/// nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags {
    /// The title, at most [`MAX_TAG_BYTES`] bytes, without control characters.
    pub title: String,
    /// The artist, bounded like `title`.
    pub artist: String,
    /// The album, bounded like `title`.
    pub album: String,
    /// The track number on the album; 0 when unknown (or not representable as an `i32`).
    pub track: i32,
    /// The duration of the audio, in milliseconds.
    pub duration_ms: i64,
    /// The media type of the detected format (see [`mime_for`]).
    pub mime: String,
}

/// Reads what the file's tags and properties say.
///
/// A file lofty cannot read (not audio, unknown format, truncated) is an error with a clear
/// message, never a panic. See the [module documentation](self) for the bounds applied.
///
/// # Errors
///
/// The file cannot be opened or read, its format is unknown, its audio properties cannot be
/// parsed, or it is shorter than its header declares.
pub fn read_tags(path: &Path) -> Result<Tags, String> {
    let shown = path.display();
    let file = File::open(path).map_err(|e| format!("cannot open {shown}: {e}"))?;
    let file_len = file
        .metadata()
        .map_err(|e| format!("cannot read {shown}: {e}"))?
        .len();
    if file_len == 0 {
        return Err(format!("{shown} is empty, not an audio file"));
    }
    let mut reader = BufReader::new(file);
    check_container_size(&mut reader, file_len).map_err(|e| format!("{shown}: {e}"))?;

    // A parse that fails because of the tags (oversized, corrupt) is retried without them, so
    // that a playable file is not refused for its metadata.
    let tagged = match parse(&mut reader, true) {
        Ok(tagged) => tagged,
        Err(error) => match parse(&mut reader, false) {
            Ok(tagged) => {
                tracing::warn!(
                    file = %shown,
                    %error,
                    "unreadable tags, using the audio properties only"
                );
                tagged
            }
            Err(_) => return Err(format!("{shown} is not a readable audio file: {error}")),
        },
    };

    let properties = tagged.properties();
    if properties.sample_rate().unwrap_or(0) == 0 && properties.duration().is_zero() {
        return Err(format!(
            "{shown} is not a readable audio file: no audio stream found ({:?})",
            tagged.file_type()
        ));
    }

    // The format's primary tag first, then the others (ID3v1, APE, RIFF INFO...) for the
    // fields it lacks.
    let primary = tagged.primary_tag_type();
    let mut tags: Vec<&Tag> = tagged.tags().iter().collect();
    tags.sort_by_key(|tag| tag.tag_type() != primary);
    let text = |get: fn(&Tag) -> Option<Cow<'_, str>>| {
        tags.iter()
            .filter_map(|tag| get(tag))
            .map(|value| clean(&value))
            .find(|value| !value.is_empty())
            .unwrap_or_default()
    };

    Ok(Tags {
        title: text(|tag| tag.title()),
        artist: text(|tag| tag.artist()),
        album: text(|tag| tag.album()),
        track: tags
            .iter()
            .find_map(|tag| tag.track())
            .and_then(|track| i32::try_from(track).ok())
            .unwrap_or(0),
        duration_ms: i64::try_from(properties.duration().as_millis()).unwrap_or(i64::MAX),
        mime: mime_for(tagged.file_type()).to_owned(),
    })
}

/// The media type of a file type: `audio/mpeg`, `audio/flac`, `audio/wav`, `audio/ogg` (Vorbis,
/// Opus and Speex), `audio/mp4`, `audio/aac`, `audio/aiff`, `audio/x-ape`, `audio/x-musepack`,
/// `audio/x-wavpack`; [`UNKNOWN_MIME`] for anything else.
///
/// WAV is `audio/wav` (what browsers send and accept; `audio/x-wav` is the older alias).
#[must_use]
pub fn mime_for(file_type: FileType) -> &'static str {
    match file_type {
        FileType::Aac => "audio/aac",
        FileType::Aiff => "audio/aiff",
        FileType::Ape => "audio/x-ape",
        FileType::Flac => "audio/flac",
        FileType::Mpeg => "audio/mpeg",
        FileType::Mp4 => "audio/mp4",
        FileType::Mpc => "audio/x-musepack",
        FileType::Opus | FileType::Vorbis | FileType::Speex => "audio/ogg",
        FileType::Wav => "audio/wav",
        FileType::WavPack => "audio/x-wavpack",
        _ => UNKNOWN_MIME,
    }
}

/// One lofty parse of the file from its start, with the bounds of the module documentation,
/// a panic in lofty turned into an error.
fn parse(reader: &mut BufReader<File>, read_tags: bool) -> Result<TaggedFile, String> {
    // Lofty's global options are per thread: set ours on whichever thread reads.
    apply_global_options(
        GlobalOptions::new()
            .use_custom_resolvers(false)
            .allocation_limit(ALLOCATION_LIMIT)
            .preserve_format_specific_items(false),
    );
    let options = ParseOptions::new()
        .parsing_mode(ParsingMode::BestAttempt)
        .read_properties(true)
        .read_tags(read_tags)
        .read_cover_art(false)
        .max_junk_bytes(ParseOptions::DEFAULT_MAX_JUNK_BYTES);
    let run = || -> Result<TaggedFile, LoftyError> {
        reader.rewind()?;
        Probe::new(reader)
            .options(options)
            .guess_file_type()?
            .read()
    };
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(Ok(tagged)) => Ok(tagged),
        Ok(Err(error)) => Err(describe(&error)),
        Err(_) => Err("the parser failed on malformed data".to_owned()),
    }
}

/// A lofty error as a sentence.
fn describe(error: &LoftyError) -> String {
    match error.kind() {
        ErrorKind::UnknownFormat => "unknown or unsupported format".to_owned(),
        ErrorKind::TooMuchData => {
            format!("an item is larger than the allocation limit ({ALLOCATION_LIMIT} bytes)")
        }
        ErrorKind::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the file ends in the middle of its data (truncated)".to_owned()
        }
        _ => error.to_string(),
    }
}

/// Refuses a RIFF or FORM file (WAV, AIFF) shorter than its header declares. A declared size
/// of 0 or `u32::MAX` (written by encoders that stream and cannot seek back) is not checked.
fn check_container_size(reader: &mut impl Read, file_len: u64) -> Result<(), String> {
    let mut header = [0u8; 12];
    let mut read = 0;
    while read < header.len() {
        match reader.read(&mut header[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("cannot read: {e}")),
        }
    }
    let size_bytes: [u8; 4] = [header[4], header[5], header[6], header[7]];
    let declared = match &header[..4] {
        _ if read < 8 => return Ok(()),
        b"RIFF" => u32::from_le_bytes(size_bytes),
        b"FORM" => u32::from_be_bytes(size_bytes),
        _ => return Ok(()),
    };
    if declared == 0 || declared == u32::MAX {
        return Ok(());
    }
    let needed = u64::from(declared) + 8;
    if needed > file_len {
        return Err(format!(
            "truncated: its header declares {needed} bytes, the file has {file_len}"
        ));
    }
    Ok(())
}

/// A tag string without control characters, trimmed, at most [`MAX_TAG_BYTES`] bytes.
fn clean(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(MAX_TAG_BYTES));
    for c in value.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > MAX_TAG_BYTES {
            break;
        }
        out.push(c);
    }
    let trimmed = out.trim();
    if trimmed.len() == out.len() {
        out
    } else {
        trimmed.to_owned()
    }
}

/// Writes a WAV file for tests and demos: PCM 16-bit mono at `sample_rate`, a sine tone of
/// `frequency` Hz lasting `seconds` (half of full scale), tagged with `title`, `artist`,
/// `album` and `track` in an ID3v2.4 `ID3 ` chunk (UTF-8 text, written by lofty, after the
/// `data` chunk).
///
/// Any browser's `<audio>` element plays it. The bytes depend only on the arguments (the
/// tone is computed with basic floating-point arithmetic, which is exact IEEE 754 on every
/// platform, not with the platform's `sin`), so the file's SHA-256 is stable; different tags
/// or a different frequency give different bytes.
///
/// # Errors
///
/// The file cannot be written, or the arguments make no WAV file (a sample rate of 0, or more
/// than 4 GiB of samples).
#[allow(clippy::too_many_arguments)]
pub fn write_test_wav(
    path: &Path,
    seconds: f32,
    sample_rate: u32,
    frequency: f32,
    title: &str,
    artist: &str,
    album: &str,
    track: u32,
) -> std::io::Result<()> {
    let invalid = |message: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, message);
    if sample_rate == 0 {
        return Err(invalid("a WAV file needs a sample rate above 0".to_owned()));
    }
    let samples = (f64::from(seconds.max(0.0)) * f64::from(sample_rate)).round();
    let data_len = samples * 2.0;
    // RIFF sizes are u32; leave room for the header and the tag.
    if !data_len.is_finite() || data_len > f64::from(u32::MAX - 1024 * 1024) {
        return Err(invalid(format!(
            "{seconds} s at {sample_rate} Hz is too long for a WAV file"
        )));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let samples = samples as u32;
    let data_len = samples * 2;

    let mut wav = Vec::with_capacity(44 + data_len as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVE");
    wav.extend_from_slice(b"fmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&sample_rate.to_le_bytes());
    wav.extend_from_slice(&(sample_rate * 2).to_le_bytes()); // bytes per second
    wav.extend_from_slice(&2u16.to_le_bytes()); // block align
    wav.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    let step = f64::from(frequency) / f64::from(sample_rate);
    for n in 0..samples {
        // The phase in turns, reduced to [0, 1) before it grows large.
        let turns = (f64::from(n) * step).rem_euclid(1.0);
        #[allow(clippy::cast_possible_truncation)]
        let sample = (portable_sin_turns(turns) * 16384.0).round() as i16;
        wav.extend_from_slice(&sample.to_le_bytes());
    }

    let mut tag = Tag::new(TagType::Id3v2);
    tag.set_title(title.to_owned());
    tag.set_artist(artist.to_owned());
    tag.set_album(album.to_owned());
    tag.set_track(track);
    let mut file = Cursor::new(wav);
    tag.save_to(&mut file, WriteOptions::new().preferred_padding(0))
        .map_err(|e| std::io::Error::other(format!("cannot tag the WAV file: {e}")))?;
    std::fs::write(path, file.into_inner())
}

/// `sin(2π·turns)` for `turns` in [0, 1), from +, -, × and ÷ only (each correctly rounded by
/// IEEE 754, so the result is the same on every platform), accurate to about 1e-9.
fn portable_sin_turns(turns: f64) -> f64 {
    // Fold onto [-1/4, 1/4] turn, where sin is odd and the series converges fast.
    let (sign, t) = if turns < 0.5 {
        (1.0, turns)
    } else {
        (-1.0, turns - 0.5)
    };
    let t = if t > 0.25 { 0.5 - t } else { t };
    let x = t * (2.0 * std::f64::consts::PI);
    let x2 = x * x;
    // Taylor series to x^15: the next term is below 3e-10 for |x| ≤ π/2.
    let mut term = x;
    let mut sum = x;
    for k in 1..8u32 {
        let k = f64::from(k);
        term = -term * x2 / ((2.0 * k) * (2.0 * k + 1.0));
        sum += term;
    }
    sign * sum
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic byte generator (SplitMix64), so that "random" files are the same on
    /// every run.
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut state = seed;
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        out.truncate(len);
        out
    }

    #[test]
    fn reads_back_the_tags_of_a_test_wav() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("song.wav");
        write_test_wav(&path, 2.5, 22050, 440.0, "Canción", "Beyoncé", "Álbum ñ", 7).unwrap();
        let tags = read_tags(&path).unwrap();
        assert_eq!(tags.title, "Canción");
        assert_eq!(tags.artist, "Beyoncé");
        assert_eq!(tags.album, "Álbum ñ");
        assert_eq!(tags.track, 7);
        assert!(
            (tags.duration_ms - 2500).abs() <= 50,
            "duration {} ms",
            tags.duration_ms
        );
        assert_eq!(tags.mime, "audio/wav");
    }

    #[test]
    fn detects_the_type_from_the_content_not_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upload.mp3");
        write_test_wav(&path, 0.5, 8000, 440.0, "T", "A", "B", 1).unwrap();
        assert_eq!(read_tags(&path).unwrap().mime, "audio/wav");
        let bare = dir.path().join("0123abcd");
        std::fs::rename(&path, &bare).unwrap();
        let tags = read_tags(&bare).unwrap();
        assert_eq!(
            (tags.mime.as_str(), tags.title.as_str()),
            ("audio/wav", "T")
        );
    }

    #[test]
    fn the_test_wav_is_plain_pcm() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("song.wav");
        write_test_wav(&path, 1.0, 8000, 1000.0, "T", "A", "B", 1).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..4], b"RIFF");
        assert_eq!(
            u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize,
            bytes.len() - 8
        );
        assert_eq!(&bytes[8..16], b"WAVEfmt ");
        assert_eq!(u16::from_le_bytes([bytes[20], bytes[21]]), 1, "PCM");
        assert_eq!(&bytes[36..40], b"data");
        assert_eq!(u32::from_le_bytes(bytes[40..44].try_into().unwrap()), 16000);
        // 1 kHz at 8 kHz: the samples repeat every 8, starting 0, a quarter-turn is the peak.
        let sample = |n: usize| i16::from_le_bytes([bytes[44 + 2 * n], bytes[45 + 2 * n]]);
        assert_eq!(
            (sample(0), sample(2), sample(4), sample(6)),
            (0, 16384, 0, -16384)
        );
        assert_eq!(sample(1), 11585); // 16384 · sin(π/4), rounded
        assert_eq!(sample(9), sample(1));
    }

    #[test]
    fn unreadable_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();

        let empty = dir.path().join("empty.wav");
        std::fs::write(&empty, b"").unwrap();
        let error = read_tags(&empty).unwrap_err();
        assert!(error.contains("empty"), "{error}");

        let missing = dir.path().join("missing.wav");
        let error = read_tags(&missing).unwrap_err();
        assert!(error.contains("cannot open"), "{error}");

        for seed in 0..64 {
            for name in [
                "noise.bin",
                "noise.mp3",
                "noise.wav",
                "noise.flac",
                "noise.mpc",
                "noise",
            ] {
                let path = dir.path().join(name);
                std::fs::write(&path, noise(seed, 64 * 1024)).unwrap();
                let result = read_tags(&path);
                assert!(result.is_err(), "seed {seed}, {name}: {result:?}");
            }
        }

        // Read as Musepack SV4–6 (35 million seconds of audio) if the name were believed.
        let mpc = dir.path().join("noise.mpc");
        std::fs::write(&mpc, noise(11, 4096)).unwrap();
        let error = read_tags(&mpc).unwrap_err();
        assert!(error.contains("unknown or unsupported format"), "{error}");

        let song = dir.path().join("song.wav");
        write_test_wav(&song, 1.0, 8000, 440.0, "T", "A", "B", 1).unwrap();
        let bytes = std::fs::read(&song).unwrap();
        for cut in [4, 12, 30, 44, 8044, bytes.len() - 1] {
            let truncated = dir.path().join("truncated.wav");
            std::fs::write(&truncated, &bytes[..cut]).unwrap();
            let result = read_tags(&truncated);
            assert!(result.is_err(), "cut at {cut}: {result:?}");
        }
    }

    #[test]
    fn strings_are_bounded_and_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.wav");
        let title = "é".repeat(5_000); // 10,000 bytes
        write_test_wav(
            &path,
            0.2,
            8000,
            440.0,
            &title,
            "A\u{7}r\u{1b}[31mt",
            " B ",
            1,
        )
        .unwrap();
        let tags = read_tags(&path).unwrap();
        assert_eq!(tags.title.len(), MAX_TAG_BYTES);
        assert_eq!(tags.title, "é".repeat(256));
        assert_eq!(tags.artist, "Ar[31mt");
        assert_eq!(tags.album, "B");

        let path = dir.path().join("odd.wav");
        let title = format!("x{}", "é".repeat(5_000)); // the cut falls inside a char
        write_test_wav(&path, 0.2, 8000, 440.0, &title, "A", "B", 1).unwrap();
        let tags = read_tags(&path).unwrap();
        assert_eq!(tags.title.len(), MAX_TAG_BYTES - 1);
        assert!(tags.title.starts_with("xé"));
    }

    #[test]
    fn clean_removes_controls_and_cuts_at_a_char_boundary() {
        assert_eq!(clean("a\0b\r\nc\u{85}d\u{7f}"), "abcd");
        assert_eq!(clean("  padded\0\0\0"), "padded");
        assert_eq!(clean(&"a".repeat(600)).len(), 512);
        assert_eq!(clean(&format!("a{}", "€".repeat(200))).len(), 1 + 3 * 170);
    }

    #[test]
    fn test_wavs_are_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, frequency: f32, title: &str| {
            let path = dir.path().join(name);
            write_test_wav(&path, 1.0, 8000, frequency, title, "Artist", "Album", 3).unwrap();
            std::fs::read(path).unwrap()
        };
        let a = write("a.wav", 440.0, "Title");
        assert_eq!(a, write("b.wav", 440.0, "Title"));
        assert_ne!(a, write("c.wav", 441.0, "Title"));
        assert_ne!(a, write("d.wav", 440.0, "Title 2"));
    }

    #[test]
    fn mime_types() {
        assert_eq!(mime_for(FileType::Mpeg), "audio/mpeg");
        assert_eq!(mime_for(FileType::Flac), "audio/flac");
        assert_eq!(mime_for(FileType::Opus), "audio/ogg");
        assert_eq!(mime_for(FileType::Mp4), "audio/mp4");
        assert_eq!(mime_for(FileType::Custom("x")), UNKNOWN_MIME);
    }
}
