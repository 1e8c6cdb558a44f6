//! Reading WAV files into the internal format (16 kHz mono i16), via hound.

use crate::media::resample::resample_all;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("{path}: {message}")]
    Read { path: PathBuf, message: String },
}

/// Reads any PCM WAV (8/16/24/32-bit integer or 32-bit float, any rate, any channel count),
/// mixes it down to mono and resamples it to 16 kHz.
pub fn read_16k_mono(path: &Path) -> Result<Vec<i16>, WavError> {
    let err = |message: String| WavError::Read { path: path.to_owned(), message };
    let mut reader = hound::WavReader::open(path).map_err(|e| err(e.to_string()))?;
    let spec = reader.spec();
    let channels = spec.channels.max(1) as usize;
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().collect::<Result<_, _>>().map_err(|e| err(e.to_string()))?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()
                .map_err(|e| err(e.to_string()))?
        }
    };
    let mono: Vec<i16> = interleaved
        .chunks(channels)
        .map(|frame| {
            let avg = frame.iter().sum::<f32>() / frame.len() as f32;
            (avg * 32767.0).clamp(-32768.0, 32767.0) as i16
        })
        .collect();
    Ok(if spec.sample_rate == 16000 { mono } else { resample_all(&mono, spec.sample_rate, 16000) })
}

/// Writes 16 kHz mono 16-bit PCM.
pub fn write_16k_mono(path: &Path, pcm: &[i16]) -> Result<(), WavError> {
    let err = |e: hound::Error| WavError::Read { path: path.to_owned(), message: e.to_string() };
    let spec = hound::WavSpec { channels: 1, sample_rate: 16000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).map_err(err)?;
    for &s in pcm {
        w.write_sample(s).map_err(err)?;
    }
    w.finalize().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_8k_stereo_file_becomes_16k_mono_of_the_same_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.wav");
        let spec = hound::WavSpec { channels: 2, sample_rate: 8000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for i in 0..8000 {
            let v = ((i as f32 * 0.1).sin() * 10000.0) as i16;
            w.write_sample(v).unwrap();
            w.write_sample(v).unwrap();
        }
        w.finalize().unwrap();
        let pcm = read_16k_mono(&path).unwrap();
        assert!((pcm.len() as i64 - 16000).abs() < 100, "{}", pcm.len());
        assert!(pcm.iter().map(|s| s.unsigned_abs()).max().unwrap() > 8000);
    }

    #[test]
    fn a_missing_file_names_the_path() {
        let e = read_16k_mono(Path::new("/nonexistent/x.wav")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/x.wav"));
    }
}
