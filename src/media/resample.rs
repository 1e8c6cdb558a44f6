//! Fixed-ratio streaming resampling of mono 16-bit PCM (8k/16k/22.05k/48k and friends).
//!
//! Built on rubato's synchronous FFT resampler: for a fixed ratio it is both the cheapest and
//! the cleanest option (a long windowed-sinc anti-aliasing filter applied in the frequency
//! domain), which matters because downsampled telephone audio goes straight into whisper.
//!
//! The FFT block is one 20 ms frame of input (rounded up to the smallest block the ratio
//! allows), so the added latency is about 10 ms and a caller feeding 20 ms frames gets 20 ms
//! frames back. The resampler's startup delay is trimmed, so output sample 0 lines up with input
//! sample 0, and [`Resampler::flush`] returns exactly `ceil(input_len * to / from)` samples in
//! total: streaming and whole-clip resampling produce the same audio.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler as _, WindowFunction};

/// Highest sample rate accepted; anything above is a configuration mistake, not audio.
const MAX_RATE_HZ: u32 = 768_000;
/// Nominal block length. 20 ms matches the gateway's frame size, so a frame in produces a frame
/// out with no extra buffering.
const BLOCK_MS: u64 = 20;

/// Why a resampler could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ResampleError {
    #[error("unsupported sample rate {0} Hz (must be 1..={MAX_RATE_HZ})")]
    InvalidRate(u32),
    #[error("cannot build a {from_hz} Hz -> {to_hz} Hz resampler: {reason}")]
    Construction {
        from_hz: u32,
        to_hz: u32,
        reason: String,
    },
}

/// A streaming mono i16 resampler with a fixed ratio.
///
/// State is kept across [`process`](Resampler::process) calls, so audio can be fed in any
/// chunk sizes (20 ms frames, single samples, whole clips) without clicks at the seams.
/// After warm-up the per-frame path does not allocate (beyond growing the caller's `out`).
pub struct Resampler {
    from_hz: u32,
    to_hz: u32,
    /// `None` when both rates are equal: samples are passed through untouched.
    stream: Option<Stream>,
}

struct Stream {
    fft: Fft<f32>,
    /// One input block; `filled` samples of it are valid.
    pending: Vec<f32>,
    filled: usize,
    /// Output of one block (sized by rubato's maximum).
    out_buf: Vec<f32>,
    /// Startup delay of the filter, in output samples; dropped from the start of each stream.
    delay: usize,
    to_trim: usize,
    /// Input samples accepted and output samples emitted since the stream (re)started; used to
    /// emit exactly the right number of samples on flush.
    consumed: u64,
    emitted: u64,
}

impl Resampler {
    /// Build a resampler from `from_hz` to `to_hz`.
    pub fn new(from_hz: u32, to_hz: u32) -> Result<Self, ResampleError> {
        for rate in [from_hz, to_hz] {
            if rate == 0 || rate > MAX_RATE_HZ {
                return Err(ResampleError::InvalidRate(rate));
            }
        }
        if from_hz == to_hz {
            return Ok(Resampler {
                from_hz,
                to_hz,
                stream: None,
            });
        }
        let gcd = gcd(from_hz as u64, to_hz as u64);
        // rubato's FFT blocks must hold a whole number of "ratio periods" (from/gcd input
        // samples); round the 20 ms block up to that.
        let min_in = from_hz as u64 / gcd;
        let want = (from_hz as u64 * BLOCK_MS / 1000).max(1);
        let chunk_in = want.div_ceil(min_in) * min_in;
        let chunk_in = usize::try_from(chunk_in).map_err(|_| ResampleError::Construction {
            from_hz,
            to_hz,
            reason: "block size overflows".into(),
        })?;
        let fft = Fft::<f32>::new_custom(
            from_hz as usize,
            to_hz as usize,
            chunk_in,
            1,
            1,
            WindowFunction::BlackmanHarris2,
            FixedSync::Both,
        )
        .map_err(|e| ResampleError::Construction {
            from_hz,
            to_hz,
            reason: e.to_string(),
        })?;
        let block_in = fft.input_frames_max();
        let block_out = fft.output_frames_max();
        let delay = fft.output_delay();
        Ok(Resampler {
            from_hz,
            to_hz,
            stream: Some(Stream {
                fft,
                pending: vec![0.0; block_in],
                filled: 0,
                out_buf: vec![0.0; block_out],
                delay,
                to_trim: delay,
                consumed: 0,
                emitted: 0,
            }),
        })
    }

    pub fn from_hz(&self) -> u32 {
        self.from_hz
    }

    pub fn to_hz(&self) -> u32 {
        self.to_hz
    }

    /// Resample `input` and append whatever output is ready to `out`. Output lags input by the
    /// filter's half-block (~10 ms); [`flush`](Resampler::flush) releases the remainder.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        let Some(s) = self.stream.as_mut() else {
            out.extend_from_slice(input);
            return;
        };
        s.consumed += input.len() as u64;
        let mut rest = input;
        while !rest.is_empty() {
            let take = (s.pending.len() - s.filled).min(rest.len());
            for (dst, &src) in s.pending[s.filled..s.filled + take].iter_mut().zip(rest) {
                *dst = f32::from(src) / 32768.0;
            }
            s.filled += take;
            rest = &rest[take..];
            if s.filled == s.pending.len() {
                s.run_block(None, out, u64::MAX);
                s.filled = 0;
            }
        }
    }

    /// Drain the filter tail so that, over the whole stream, exactly
    /// `ceil(input_len * to_hz / from_hz)` samples have been appended. The resampler is then
    /// ready for a new, unrelated stream.
    pub fn flush(&mut self, out: &mut Vec<i16>) {
        let (from, to) = (self.from_hz as u128, self.to_hz as u128);
        let Some(s) = self.stream.as_mut() else {
            return;
        };
        let expected = (s.consumed as u128 * to).div_ceil(from) as u64;
        if s.filled > 0 {
            let n = s.filled;
            s.run_block(Some(n), out, expected);
        }
        // Each block of zeros yields at least one output sample once the delay is trimmed, so
        // this terminates; the bound guards against a misbehaving resampler anyway.
        let mut guard = 4 + s.delay / s.out_buf.len().max(1);
        while s.emitted < expected && guard > 0 {
            s.run_block(Some(0), out, expected);
            guard -= 1;
        }
        // Never leave the caller short: pad with silence if the filter somehow fell behind.
        while s.emitted < expected {
            out.push(0);
            s.emitted += 1;
        }
        s.fft.reset();
        s.filled = 0;
        s.to_trim = s.delay;
        s.consumed = 0;
        s.emitted = 0;
    }
}

impl Stream {
    /// Resample the pending block (`partial` = how many of its samples are real; the rest count
    /// as silence) and append at most up to `limit` total emitted samples.
    fn run_block(&mut self, partial: Option<usize>, out: &mut Vec<i16>, limit: u64) {
        let frames_in = self.pending.len();
        let frames_out = self.out_buf.len();
        let produced = match (
            InterleavedSlice::new(&self.pending[..], 1, frames_in),
            InterleavedSlice::new_mut(&mut self.out_buf[..], 1, frames_out),
        ) {
            (Ok(input), Ok(mut output)) => {
                let indexing = partial.map(|n| Indexing::new().partial_len(n));
                match self
                    .fft
                    .process_into_buffer(&input, &mut output, indexing.as_ref())
                {
                    Ok((_, n)) => n,
                    Err(e) => {
                        // Buffers are sized from rubato's own maxima, so this is unreachable in
                        // practice; keep time moving with silence rather than tearing down a call.
                        tracing::error!(error = %e, "resampler block failed; emitting silence");
                        self.out_buf.iter_mut().for_each(|x| *x = 0.0);
                        self.fft.output_frames_next().min(frames_out)
                    }
                }
            }
            _ => 0,
        };
        let mut block = &self.out_buf[..produced];
        let trim = self.to_trim.min(block.len());
        self.to_trim -= trim;
        block = &block[trim..];
        let room = limit.saturating_sub(self.emitted);
        let n = (block.len() as u64).min(room) as usize;
        out.extend(block[..n].iter().map(|&x| to_i16(x)));
        self.emitted += n as u64;
    }
}

fn to_i16(x: f32) -> i16 {
    (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Resample a whole clip in one go (same result as streaming it and flushing).
/// Returns silence-free empty output for empty input; invalid rates give an empty clip and a
/// logged error, since a clip that cannot be resampled cannot be played either.
pub fn resample_all(input: &[i16], from_hz: u32, to_hz: u32) -> Vec<i16> {
    match Resampler::new(from_hz, to_hz) {
        Ok(mut r) => {
            let expected = (input.len() as u128 * to_hz as u128).div_ceil(from_hz as u128);
            let mut out = Vec::with_capacity(expected as usize);
            r.process(input, &mut out);
            r.flush(&mut out);
            out
        }
        Err(e) => {
            tracing::error!(error = %e, "resample_all: cannot resample");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, rate: u32, secs: f64, amp: f64) -> Vec<i16> {
        let n = (rate as f64 * secs) as usize;
        (0..n)
            .map(|i| {
                (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin()) as i16
            })
            .collect()
    }

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    /// Sign changes per second over the steady middle of a clip, halved: the tone's frequency.
    fn measured_freq(x: &[i16], rate: u32) -> f64 {
        let mid = &x[x.len() / 10..x.len() * 9 / 10];
        let crossings = mid.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        crossings as f64 / 2.0 / (mid.len() as f64 / rate as f64)
    }

    #[test]
    fn upsampled_tone_keeps_frequency_amplitude_and_length() {
        let input = sine(1000.0, 8000, 1.0, 10000.0);
        let out = resample_all(&input, 8000, 16000);
        assert_eq!(out.len(), 16000);
        let f = measured_freq(&out, 16000);
        assert!((f - 1000.0).abs() < 5.0, "frequency {f}");
        let (ri, ro) = (rms(&input[800..7200]), rms(&out[1600..14400]));
        assert!((ro / ri - 1.0).abs() < 0.02, "rms in {ri} out {ro}");
    }

    #[test]
    fn output_is_time_aligned_with_input() {
        // Startup delay is trimmed: the tone starts at once rather than after a silent gap.
        let input = sine(1000.0, 8000, 0.5, 10000.0);
        let out = resample_all(&input, 8000, 16000);
        assert!(
            rms(&out[..160]) > 5000.0,
            "first 10 ms rms {}",
            rms(&out[..160])
        );
        // And sample 2k of the output sits where input sample k was.
        for k in [1000usize, 2000, 3000] {
            assert!((out[2 * k] as i32 - input[k] as i32).abs() < 300, "k={k}");
        }
    }

    #[test]
    fn streaming_in_any_chunk_size_matches_whole_clip() {
        let input = sine(440.0, 8000, 0.73, 8000.0);
        let whole = resample_all(&input, 8000, 16000);
        for chunk in [160usize, 1, 7, 333, 5000] {
            let mut r = Resampler::new(8000, 16000).unwrap();
            let mut out = Vec::new();
            for c in input.chunks(chunk) {
                r.process(c, &mut out);
            }
            r.flush(&mut out);
            assert_eq!(out.len(), whole.len(), "chunk {chunk}");
            let max_diff = out
                .iter()
                .zip(&whole)
                .map(|(a, b)| (*a as i32 - *b as i32).abs())
                .max();
            assert!(
                max_diff.unwrap_or(0) <= 1,
                "chunk {chunk}: diff {max_diff:?}"
            );
        }
    }

    #[test]
    fn lengths_follow_the_ratio_for_all_gateway_rates() {
        for (from, to) in [
            (8000, 16000),
            (16000, 8000),
            (22050, 16000),
            (48000, 16000),
            (16000, 48000),
        ] {
            for n in [0usize, 1, 159, 441, 12345] {
                let input = vec![1000i16; n];
                let out = resample_all(&input, from, to);
                let expected = (n as u64 * to as u64).div_ceil(from as u64) as usize;
                assert_eq!(out.len(), expected, "{from}->{to} n={n}");
            }
        }
    }

    #[test]
    fn downsampling_removes_content_above_the_new_nyquist() {
        // 3 kHz survives 16k->8k; 6 kHz would alias to 2 kHz if not filtered out.
        let pass = resample_all(&sine(3000.0, 16000, 0.5, 10000.0), 16000, 8000);
        let stop = resample_all(&sine(6000.0, 16000, 0.5, 10000.0), 16000, 8000);
        let rp = rms(&pass[400..3600]);
        let rs = rms(&stop[400..3600]);
        assert!(rp > 6500.0, "passband rms {rp}");
        assert!(rs < 70.0, "aliased rms {rs} (should be < -40 dB)");
        assert!((measured_freq(&pass, 8000) - 3000.0).abs() < 15.0);
    }

    #[test]
    fn espeak_rate_to_gateway_rate_keeps_pitch() {
        let out = resample_all(&sine(500.0, 22050, 1.0, 10000.0), 22050, 16000);
        assert_eq!(out.len(), 16000);
        assert!((measured_freq(&out, 16000) - 500.0).abs() < 5.0);
    }

    #[test]
    fn twenty_ms_frames_come_back_promptly() {
        // Latency budget: after two 20 ms caller frames, at least one 20 ms frame is out.
        let mut r = Resampler::new(8000, 16000).unwrap();
        let mut out = Vec::new();
        let tone = sine(1000.0, 8000, 0.04, 10000.0);
        r.process(&tone[..160], &mut out);
        r.process(&tone[160..], &mut out);
        assert!(out.len() >= 320, "only {} samples after 40 ms", out.len());
    }

    #[test]
    fn resampler_is_reusable_after_flush() {
        let input = sine(1000.0, 16000, 0.2, 10000.0);
        let mut r = Resampler::new(16000, 8000).unwrap();
        let mut a = Vec::new();
        r.process(&input, &mut a);
        r.flush(&mut a);
        let mut b = Vec::new();
        r.process(&input, &mut b);
        r.flush(&mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn equal_rates_pass_through_and_bad_rates_are_errors() {
        let input = sine(1000.0, 16000, 0.1, 10000.0);
        assert_eq!(resample_all(&input, 16000, 16000), input);
        assert!(matches!(
            Resampler::new(0, 16000),
            Err(ResampleError::InvalidRate(0))
        ));
        assert!(matches!(
            Resampler::new(8000, 10_000_000),
            Err(ResampleError::InvalidRate(_))
        ));
        assert!(resample_all(&input, 0, 8000).is_empty());
    }
}
