//! Lines rendered ahead, kept on disk: every fixed line of the gateway and the playbook is
//! synthesized once (`frontline models prerender`, or the first start) and read back at each
//! later start, so no caller waits for a line that was known before the call, and a restart
//! does not spend minutes of a 2-core machine re-rendering Mandarin with Kokoro.
//!
//! One file per line, named by a hash of everything that changes its audio: the gateway's own
//! post-processing, the voice (name, speed or rate), a fingerprint of the model files, the
//! language and the text. A changed
//! voice or model therefore never replays old audio; stale files are simply never read.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::Lang;

/// The start of every file: the format, then the sample count (u32 LE), then 16 kHz mono
/// i16 LE samples. A truncated or foreign file fails the check and is rendered again.
const MAGIC: &[u8; 8] = b"FLPCM16K";
/// Longest line read back (60 s at 16 kHz): a bigger count is a damaged file.
const MAX_SAMPLES: usize = 60 * 16_000;
/// What the gateway itself does to a voice's audio (Kokoro's silent ends trimmed since 2):
/// part of every file's name, so a change here renders the lines again.
const POST_PROCESSING: &str = "2";
/// How much of each end of a model file its fingerprint reads.
const FINGERPRINT_SPAN: u64 = 1 << 20;

/// What a line's audio depends on besides its text.
#[derive(Debug, Clone, Copy)]
pub struct Rendering<'a> {
    /// The voice's cache identity ("piper:en_US-joe-medium", "kokoro:jm_kumo@1").
    pub voice: &'a str,
    /// [`fingerprint`] of the voice's model files.
    pub model: &'a str,
    pub lang: Lang,
}

#[derive(Debug, Clone)]
pub struct DiskCache {
    dir: PathBuf,
}

impl DiskCache {
    pub fn new(dir: impl Into<PathBuf>) -> DiskCache {
        DiskCache { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, r: Rendering<'_>, text: &str) -> PathBuf {
        let mut h = Sha256::new();
        for part in [POST_PROCESSING, r.voice, r.model, r.lang.as_str(), text.trim()] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        let digest = h.finalize();
        let name: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{name}.pcm"))
    }

    /// The line's audio, if it was rendered before with this voice and model.
    pub fn load(&self, r: Rendering<'_>, text: &str) -> Option<Vec<i16>> {
        let bytes = std::fs::read(self.path(r, text)).ok()?;
        let body = bytes.strip_prefix(MAGIC.as_slice())?;
        let (count, samples) = body.split_at_checked(4)?;
        let count = u32::from_le_bytes(count.try_into().ok()?) as usize;
        if count == 0 || count > MAX_SAMPLES || samples.len() != count * 2 {
            return None;
        }
        Some(samples.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect())
    }

    /// Keeps the line's audio. Written to a temporary name and renamed, so a reader (another
    /// gateway starting on the same models) never sees half a file.
    pub fn store(&self, r: Rendering<'_>, text: &str, pcm: &[i16]) -> io::Result<()> {
        if pcm.is_empty() || pcm.len() > MAX_SAMPLES {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir)?;
        let path = self.path(r, text);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut bytes = Vec::with_capacity(MAGIC.len() + 4 + pcm.len() * 2);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(pcm.len() as u32).to_le_bytes());
        for s in pcm {
            bytes.extend_from_slice(&s.to_le_bytes());
        }
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&bytes)?;
        drop(file);
        std::fs::rename(&tmp, &path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }
}

/// A short hash of model files: their lengths and the first and last MiB of each. A voice
/// model replaced by another (or by a different version) changes it; reading whole 90 MB
/// models at every start would not be worth the certainty. Unreadable files hash as absent.
pub fn fingerprint(paths: &[&Path]) -> String {
    let mut h = Sha256::new();
    for path in paths {
        h.update(path.file_name().map(|n| n.as_encoded_bytes()).unwrap_or_default());
        if let Ok(mut file) = std::fs::File::open(path) {
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            h.update(len.to_le_bytes());
            let mut buf = Vec::new();
            let _ = Read::by_ref(&mut file).take(FINGERPRINT_SPAN).read_to_end(&mut buf);
            // The last MiB, or whatever the first read left of a file under 2 MiB.
            let tail = len.saturating_sub(FINGERPRINT_SPAN).max(FINGERPRINT_SPAN);
            if len > FINGERPRINT_SPAN && file.seek(SeekFrom::Start(tail)).is_ok() {
                let _ = file.take(FINGERPRINT_SPAN).read_to_end(&mut buf);
            }
            h.update(&buf);
        }
        h.update([0u8]);
    }
    h.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendering(model: &str) -> Rendering<'_> {
        Rendering { voice: "piper:en_US-joe-medium", model, lang: Lang::En }
    }

    #[test]
    fn a_line_comes_back_only_for_the_same_voice_model_and_text() {
        let dir = std::env::temp_dir().join(format!("frontline-disk-cache-{}", std::process::id()));
        let cache = DiskCache::new(&dir);
        let pcm: Vec<i16> = (0..1600).map(|i| (i * 7 % 300) as i16 - 150).collect();
        assert_eq!(cache.load(rendering("m1"), "Please hold."), None);
        cache.store(rendering("m1"), "Please hold.", &pcm).unwrap();
        assert_eq!(cache.load(rendering("m1"), " Please hold. ").as_deref(), Some(pcm.as_slice()), "trimmed like the memory cache");
        assert_eq!(cache.load(rendering("m2"), "Please hold."), None, "another model");
        assert_eq!(cache.load(Rendering { lang: Lang::Zh, ..rendering("m1") }, "Please hold."), None);
        assert_eq!(cache.load(rendering("m1"), "Please wait."), None);
        // A damaged file is not audio: it is rendered again.
        let path = cache.path(rendering("m1"), "Please hold.");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert_eq!(cache.load(rendering("m1"), "Please hold."), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_changed_model_file_changes_the_fingerprint() {
        let dir = std::env::temp_dir().join(format!("frontline-fingerprint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let model = dir.join("voice.onnx");
        std::fs::write(&model, vec![1u8; 3 << 20]).unwrap();
        let before = fingerprint(&[&model]);
        assert_eq!(before, fingerprint(&[&model]));
        let mut bytes = vec![1u8; 3 << 20];
        *bytes.last_mut().unwrap() = 2;
        std::fs::write(&model, bytes).unwrap();
        assert_ne!(before, fingerprint(&[&model]), "the last MiB is read");
        // A file between 1 and 2 MiB is read whole.
        std::fs::write(&model, vec![1u8; 3 << 19]).unwrap();
        let short = fingerprint(&[&model]);
        let mut bytes = vec![1u8; 3 << 19];
        *bytes.last_mut().unwrap() = 2;
        std::fs::write(&model, bytes).unwrap();
        assert_ne!(short, fingerprint(&[&model]), "the bytes past the first MiB are read");
        assert_ne!(before, fingerprint(&[&dir.join("missing.onnx")]));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
