//! CTranslate2 whisper → whisper.cpp ggml conversion, and the ggml header check.
//!
//! The ggml file is what `whisper_model_load` (whisper.cpp `src/whisper.cpp`) reads:
//! magic `0x67676d6c`; eleven i32 hparams (n_vocab, n_audio_ctx, n_audio_state, n_audio_head,
//! n_audio_layer, n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, ftype); the mel
//! filterbank (i32 n_mel, i32 n_fft, f32 data); the vocabulary (i32 count, then per token u32 len
//! + bytes, ids in order); then tensors until EOF: i32 n_dims, i32 name_len, i32 type (0 = f32,
//! 1 = f16), i32 ne[n_dims] (innermost first, i.e. the numpy shape reversed), name, raw data.
//!
//! The loader checks every tensor's element type by byte size, so types must match what it
//! allocates: 2-D weights and the conv kernels f16; biases, layer norms and both positional
//! embeddings f32; conv biases shaped `[1, n_state]`.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::ct2::{Ct2Model, DType, Variable};

pub const GGML_MAGIC: u32 = 0x6767_6d6c;
const TYPE_F32: i32 = 0;
const TYPE_F16: i32 = 1;
const TYPE_Q5_1: i32 = 7;
const TYPE_Q8_0: i32 = 8;
/// Elements per block of the quantized types.
const QUANT_BLOCK: u64 = 32;

/// Bytes of a tensor of `elems` elements stored as ggml type `ttype`, or None for a type
/// whisper models do not use (or a quantized tensor that is not whole blocks).
fn tensor_bytes(ttype: i32, elems: u64) -> Option<u64> {
    let block_bytes = match ttype {
        TYPE_F32 => return Some(elems * 4),
        TYPE_F16 => return Some(elems * 2),
        TYPE_Q5_1 => 24, // f16 scale + f16 min + 32 high bits + 16 bytes of 4-bit lows
        TYPE_Q8_0 => 34, // f16 scale + 32 i8
        _ => return None,
    };
    (elems % QUANT_BLOCK == 0).then_some(elems / QUANT_BLOCK * block_bytes)
}

/// Quantized weight formats whisper.cpp loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quantization {
    /// 8-bit, one f16 scale per 32 weights (8.5 bits per weight).
    Q8_0,
    /// 5-bit with a scale and a minimum per 32 weights (6 bits per weight).
    Q5_1,
}

impl Quantization {
    /// The tensors' `ggml_type`.
    fn tensor_type(self) -> i32 {
        match self {
            Quantization::Q8_0 => TYPE_Q8_0,
            Quantization::Q5_1 => TYPE_Q5_1,
        }
    }

    /// The header's `ftype`: `GGML_FTYPE_MOSTLY_*` plus the quantization version times 1000,
    /// which whisper.cpp splits off again when it loads the file.
    fn file_type(self) -> i32 {
        let mostly = match self {
            Quantization::Q8_0 => whisper_rs_sys::ggml_ftype_GGML_FTYPE_MOSTLY_Q8_0,
            Quantization::Q5_1 => whisper_rs_sys::ggml_ftype_GGML_FTYPE_MOSTLY_Q5_1,
        };
        (whisper_rs_sys::GGML_QNT_VERSION * whisper_rs_sys::GGML_QNT_VERSION_FACTOR) as i32 + mostly as i32
    }
}

/// whisper hyper-parameters, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HParams {
    pub n_vocab: i32,
    pub n_audio_ctx: i32,
    pub n_audio_state: i32,
    pub n_audio_head: i32,
    pub n_audio_layer: i32,
    pub n_text_ctx: i32,
    pub n_text_state: i32,
    pub n_text_head: i32,
    pub n_text_layer: i32,
    pub n_mels: i32,
    pub ftype: i32,
}

impl HParams {
    /// whisper.cpp treats a vocabulary of 51865+ tokens as multilingual (it adds language tokens).
    pub fn is_multilingual(&self) -> bool {
        self.n_vocab >= 51865
    }

    /// Tensors `whisper_model_load` allocates (and requires all of).
    pub fn tensor_count(&self) -> usize {
        7 + 15 * self.n_audio_layer as usize + 4 + 24 * self.n_text_layer as usize
    }

    fn as_array(&self) -> [i32; 11] {
        [
            self.n_vocab,
            self.n_audio_ctx,
            self.n_audio_state,
            self.n_audio_head,
            self.n_audio_layer,
            self.n_text_ctx,
            self.n_text_state,
            self.n_text_head,
            self.n_text_layer,
            self.n_mels,
            self.ftype,
        ]
    }

    fn from_array(v: [i32; 11]) -> Self {
        let [n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer, n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, ftype] = v;
        HParams { n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer, n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, ftype }
    }

    fn from_ct2(m: &Ct2Model<'_>) -> Result<Self, String> {
        let emb = m.get("decoder/embeddings/weight")?;
        let enc_pe = m.get("encoder/position_encodings/encodings")?;
        let dec_pe = m.get("decoder/position_encodings/encodings")?;
        let conv1 = m.get("encoder/conv1/weight")?;
        if emb.shape.len() != 2 || enc_pe.shape.len() != 2 || dec_pe.shape.len() != 2 || conv1.shape.len() != 3 {
            return Err("unexpected rank of embeddings/positional encodings/conv1".into());
        }
        let dim = |v: usize| i32::try_from(v).map_err(|_| "dimension too large".to_string());
        let hp = HParams {
            n_vocab: dim(emb.shape[0])?,
            n_audio_ctx: dim(enc_pe.shape[0])?,
            n_audio_state: dim(enc_pe.shape[1])?,
            n_audio_head: m.int("encoder/num_heads")? as i32,
            n_audio_layer: dim(m.count_layers("encoder"))?,
            n_text_ctx: dim(dec_pe.shape[0])?,
            n_text_state: dim(emb.shape[1])?,
            n_text_head: m.int("decoder/num_heads")? as i32,
            n_text_layer: dim(m.count_layers("decoder"))?,
            n_mels: dim(conv1.shape[1])?,
            ftype: TYPE_F16,
        };
        // whisper.cpp asserts equal widths; catching it here gives a readable error instead.
        if hp.n_audio_state != hp.n_text_state || hp.n_audio_layer == 0 || hp.n_text_layer == 0 {
            return Err(format!("not a whisper model: {hp:?}"));
        }
        Ok(hp)
    }
}

/// Inputs besides the weights: the mel filterbank and the BPE vocabulary.
pub struct Assets<'a> {
    /// `mel_filters.npz` bytes from the openai-whisper package.
    pub mel_filters_npz: &'a [u8],
    /// `multilingual.tiktoken` or `gpt2.tiktoken` bytes; the caller picks by `is_multilingual`.
    pub tiktoken: &'a [u8],
}

/// Reads the hparams of a CTranslate2 whisper model (to choose the tokenizer before converting).
pub fn ct2_hparams(model: &Ct2Model<'_>) -> Result<HParams, String> {
    HParams::from_ct2(model)
}

/// Converts a parsed CTranslate2 whisper model into a ggml file written to `out`.
pub fn convert(model: &Ct2Model<'_>, assets: &Assets<'_>, out: &mut impl Write) -> Result<HParams, String> {
    if model.spec != "WhisperSpec" {
        return Err(format!("spec is {}, not WhisperSpec", model.spec));
    }
    let hp = HParams::from_ct2(model)?;
    let n = hp.n_audio_state as usize;

    let io = |e: std::io::Error| e.to_string();
    out.write_all(&GGML_MAGIC.to_le_bytes()).map_err(io)?;
    for v in hp.as_array() {
        out.write_all(&v.to_le_bytes()).map_err(io)?;
    }

    let (mel_shape, mel) = read_npz_f32(assets.mel_filters_npz, &format!("mel_{}.npy", hp.n_mels))?;
    if mel_shape.len() != 2 || mel_shape[0] != hp.n_mels as usize {
        return Err(format!("mel filters have shape {mel_shape:?}, expected ({}, _)", hp.n_mels));
    }
    out.write_all(&(mel_shape[0] as i32).to_le_bytes()).map_err(io)?;
    out.write_all(&(mel_shape[1] as i32).to_le_bytes()).map_err(io)?;
    for x in mel {
        out.write_all(&x.to_le_bytes()).map_err(io)?;
    }

    let tokens = parse_tiktoken(assets.tiktoken)?;
    out.write_all(&(tokens.len() as i32).to_le_bytes()).map_err(io)?;
    for t in &tokens {
        out.write_all(&(t.len() as u32).to_le_bytes()).map_err(io)?;
        out.write_all(t).map_err(io)?;
    }

    let mut w = TensorWriter { out, written: 0 };
    let get = |name: &str| model.get(name);

    // Encoder stem.
    w.f32("encoder.positional_embedding", get("encoder/position_encodings/encodings")?, None)?;
    w.f16("encoder.conv1.weight", get("encoder/conv1/weight")?, None)?;
    w.conv_bias("encoder.conv1.bias", get("encoder/conv1/bias")?)?;
    w.f16("encoder.conv2.weight", get("encoder/conv2/weight")?, None)?;
    w.conv_bias("encoder.conv2.bias", get("encoder/conv2/bias")?)?;
    for i in 0..hp.n_audio_layer {
        let src = format!("encoder/layer_{i}");
        let dst = format!("encoder.blocks.{i}");
        w.norm(&format!("{dst}.attn_ln"), model, &format!("{src}/self_attention/layer_norm"))?;
        w.fused_qkv(&format!("{dst}.attn"), model, &format!("{src}/self_attention/linear_0"), n)?;
        w.linear(&format!("{dst}.attn.out"), model, &format!("{src}/self_attention/linear_1"))?;
        w.norm(&format!("{dst}.mlp_ln"), model, &format!("{src}/ffn/layer_norm"))?;
        w.linear(&format!("{dst}.mlp.0"), model, &format!("{src}/ffn/linear_0"))?;
        w.linear(&format!("{dst}.mlp.2"), model, &format!("{src}/ffn/linear_1"))?;
    }
    w.norm("encoder.ln_post", model, "encoder/layer_norm")?;

    // Decoder. The output projection is tied to the token embedding in whisper (CTranslate2
    // keeps it as an alias), so only the embedding is written; whisper.cpp reuses it.
    w.f32("decoder.positional_embedding", get("decoder/position_encodings/encodings")?, None)?;
    w.f16("decoder.token_embedding.weight", get("decoder/embeddings/weight")?, None)?;
    for i in 0..hp.n_text_layer {
        let src = format!("decoder/layer_{i}");
        let dst = format!("decoder.blocks.{i}");
        w.norm(&format!("{dst}.attn_ln"), model, &format!("{src}/self_attention/layer_norm"))?;
        w.fused_qkv(&format!("{dst}.attn"), model, &format!("{src}/self_attention/linear_0"), n)?;
        w.linear(&format!("{dst}.attn.out"), model, &format!("{src}/self_attention/linear_1"))?;
        w.norm(&format!("{dst}.cross_attn_ln"), model, &format!("{src}/attention/layer_norm"))?;
        w.linear(&format!("{dst}.cross_attn.query"), model, &format!("{src}/attention/linear_0"))?;
        w.fused_kv(&format!("{dst}.cross_attn"), model, &format!("{src}/attention/linear_1"), n)?;
        w.linear(&format!("{dst}.cross_attn.out"), model, &format!("{src}/attention/linear_2"))?;
        w.norm(&format!("{dst}.mlp_ln"), model, &format!("{src}/ffn/layer_norm"))?;
        w.linear(&format!("{dst}.mlp.0"), model, &format!("{src}/ffn/linear_0"))?;
        w.linear(&format!("{dst}.mlp.2"), model, &format!("{src}/ffn/linear_1"))?;
    }
    w.norm("decoder.ln", model, "decoder/layer_norm")?;

    if w.written != hp.tensor_count() {
        return Err(format!("wrote {} tensors, whisper.cpp expects {}", w.written, hp.tensor_count()));
    }
    Ok(hp)
}

struct TensorWriter<'w, W: Write> {
    out: &'w mut W,
    written: usize,
}

impl<W: Write> TensorWriter<'_, W> {
    /// Writes one tensor. `shape` is row-major (outermost first) like numpy; `rows` optionally
    /// selects a contiguous range of the outermost dimension (to split fused projections).
    fn write(
        &mut self,
        name: &str,
        var: &Variable<'_>,
        shape: &[usize],
        rows: Option<(usize, usize)>,
        ttype: i32,
    ) -> Result<(), String> {
        let (elems, data) = match rows {
            None => (var.elements(), var.data),
            Some((start, count)) => {
                let outer = *var.shape.first().ok_or_else(|| format!("{name}: scalar cannot be split"))?;
                let inner = var.elements() / outer.max(1);
                if start + count > outer {
                    return Err(format!("{name}: rows {start}+{count} exceed {outer}"));
                }
                let sz = var.dtype.size();
                (count * inner, &var.data[start * inner * sz..(start + count) * inner * sz])
            }
        };
        if shape.iter().product::<usize>() != elems {
            return Err(format!("{name}: {elems} elements do not fit shape {shape:?}"));
        }
        let io = |e: std::io::Error| e.to_string();
        self.out.write_all(&(shape.len() as i32).to_le_bytes()).map_err(io)?;
        self.out.write_all(&(name.len() as i32).to_le_bytes()).map_err(io)?;
        self.out.write_all(&ttype.to_le_bytes()).map_err(io)?;
        for d in shape.iter().rev() {
            self.out.write_all(&(*d as i32).to_le_bytes()).map_err(io)?;
        }
        self.out.write_all(name.as_bytes()).map_err(io)?;
        let mut buf = Vec::with_capacity(elems * 4);
        match (var.dtype, ttype) {
            (DType::F16, TYPE_F16) | (DType::F32, TYPE_F32) => buf.extend_from_slice(data),
            (DType::F16, TYPE_F32) => {
                for c in data.chunks_exact(2) {
                    buf.extend_from_slice(&f16_to_f32(u16::from_le_bytes([c[0], c[1]])).to_le_bytes());
                }
            }
            (DType::BF16, TYPE_F32) => {
                for c in data.chunks_exact(2) {
                    buf.extend_from_slice(&bf16_to_f32(u16::from_le_bytes([c[0], c[1]])).to_le_bytes());
                }
            }
            (DType::F32, TYPE_F16) => {
                for c in data.chunks_exact(4) {
                    buf.extend_from_slice(&f32_to_f16(f32::from_le_bytes([c[0], c[1], c[2], c[3]])).to_le_bytes());
                }
            }
            (DType::BF16, TYPE_F16) => {
                for c in data.chunks_exact(2) {
                    let x = bf16_to_f32(u16::from_le_bytes([c[0], c[1]]));
                    buf.extend_from_slice(&f32_to_f16(x).to_le_bytes());
                }
            }
            (dt, _) => return Err(format!("{name}: cannot convert {dt:?} weights (quantized model?)")),
        }
        self.out.write_all(&buf).map_err(io)?;
        self.written += 1;
        Ok(())
    }

    fn f32(&mut self, name: &str, var: &Variable<'_>, rows: Option<(usize, usize)>) -> Result<(), String> {
        let shape = row_shape(var, rows);
        self.write(name, var, &shape, rows, TYPE_F32)
    }

    fn f16(&mut self, name: &str, var: &Variable<'_>, rows: Option<(usize, usize)>) -> Result<(), String> {
        let shape = row_shape(var, rows);
        self.write(name, var, &shape, rows, TYPE_F16)
    }

    fn conv_bias(&mut self, name: &str, var: &Variable<'_>) -> Result<(), String> {
        // whisper.cpp adds the conv bias as a [1, n_state] tensor (numpy shape (n_state, 1)).
        self.write(name, var, &[var.elements(), 1], None, TYPE_F32)
    }

    fn norm(&mut self, dst: &str, m: &Ct2Model<'_>, src: &str) -> Result<(), String> {
        self.f32(&format!("{dst}.weight"), m.get(&format!("{src}/gamma"))?, None)?;
        self.f32(&format!("{dst}.bias"), m.get(&format!("{src}/beta"))?, None)
    }

    fn linear(&mut self, dst: &str, m: &Ct2Model<'_>, src: &str) -> Result<(), String> {
        self.f16(&format!("{dst}.weight"), m.get(&format!("{src}/weight"))?, None)?;
        self.f32(&format!("{dst}.bias"), m.get(&format!("{src}/bias"))?, None)
    }

    /// CTranslate2 fuses self-attention query/key/value into one `[3n, n]` projection.
    /// whisper has no key bias: CTranslate2 stores zeros there, and even a non-zero key bias
    /// would add the same `q·b` to every score of a query, which softmax cancels, so it is dropped.
    fn fused_qkv(&mut self, dst: &str, m: &Ct2Model<'_>, src: &str, n: usize) -> Result<(), String> {
        let w = m.get(&format!("{src}/weight"))?;
        let b = m.get(&format!("{src}/bias"))?;
        if w.shape.first() != Some(&(3 * n)) || b.elements() != 3 * n {
            return Err(format!("{src}: expected a fused [{}, {n}] projection, got {:?}", 3 * n, w.shape));
        }
        self.f16(&format!("{dst}.query.weight"), w, Some((0, n)))?;
        self.f32(&format!("{dst}.query.bias"), b, Some((0, n)))?;
        self.f16(&format!("{dst}.key.weight"), w, Some((n, n)))?;
        self.f16(&format!("{dst}.value.weight"), w, Some((2 * n, n)))?;
        self.f32(&format!("{dst}.value.bias"), b, Some((2 * n, n)))
    }

    /// Cross-attention fuses key/value into one `[2n, n]` projection (query stays separate).
    fn fused_kv(&mut self, dst: &str, m: &Ct2Model<'_>, src: &str, n: usize) -> Result<(), String> {
        let w = m.get(&format!("{src}/weight"))?;
        let b = m.get(&format!("{src}/bias"))?;
        if w.shape.first() != Some(&(2 * n)) || b.elements() != 2 * n {
            return Err(format!("{src}: expected a fused [{}, {n}] projection, got {:?}", 2 * n, w.shape));
        }
        self.f16(&format!("{dst}.key.weight"), w, Some((0, n)))?;
        self.f16(&format!("{dst}.value.weight"), w, Some((n, n)))?;
        self.f32(&format!("{dst}.value.bias"), b, Some((n, n)))
    }
}

fn row_shape(var: &Variable<'_>, rows: Option<(usize, usize)>) -> Vec<usize> {
    let mut s = var.shape.clone();
    if let (Some((_, count)), Some(first)) = (rows, s.first_mut()) {
        *first = count;
    }
    s
}

/// Rewrites an f16 ggml whisper model (what [`convert`] writes) with its weight matrices
/// quantized by ggml's own quantizer, as whisper.cpp's `quantize` tool does. The tensors
/// whisper.cpp allocates with the model's weight type are exactly the 2-D ones stored as f16
/// (the linear layers and the token embedding); the conv kernels stay f16, and biases, norms and
/// positional embeddings f32.
pub fn quantize(f16_model: &[u8], q: Quantization, out: &mut impl Write) -> Result<HParams, String> {
    let mut r = ByteReader { bytes: f16_model, pos: 0 };
    if r.i32()? as u32 != GGML_MAGIC {
        return Err("bad magic (not a ggml file)".into());
    }
    let mut v = [0i32; 11];
    for x in v.iter_mut() {
        *x = r.i32()?;
    }
    if v[10] != TYPE_F16 {
        return Err(format!("the source model has ftype {}, not f16", v[10]));
    }
    v[10] = q.file_type();
    let n_mel = r.i32()?;
    let n_fft = r.i32()?;
    r.take(usize::try_from(n_mel.max(0) as i64 * n_fft.max(0) as i64 * 4).map_err(|_| "bad mel block")?)?;
    let n_tokens = r.i32()?;
    for _ in 0..n_tokens.max(0) {
        let len = r.i32()?;
        r.take(usize::try_from(len).map_err(|_| "corrupt vocabulary")?)?;
    }
    let io = |e: std::io::Error| e.to_string();
    out.write_all(&GGML_MAGIC.to_le_bytes()).map_err(io)?;
    for x in v {
        out.write_all(&x.to_le_bytes()).map_err(io)?;
    }
    out.write_all(&f16_model[4 + 11 * 4..r.pos]).map_err(io)?; // mel filters and vocabulary as they are

    let qtype = q.tensor_type();
    while r.pos < f16_model.len() {
        let n_dims = r.i32()?;
        let name_len = r.i32()?;
        let ttype = r.i32()?;
        if !(1..=4).contains(&n_dims) || !(1..=256).contains(&name_len) {
            return Err("corrupt tensor header".into());
        }
        let dims: Vec<i32> = (0..n_dims).map(|_| r.i32()).collect::<Result<_, _>>()?;
        let name = r.take(name_len as usize)?;
        let elems = dims.iter().map(|&d| d.max(0) as u64).product::<u64>();
        let bytes = tensor_bytes(ttype, elems).ok_or("corrupt tensor header")?;
        let data = r.take(bytes as usize)?;
        let quantized = ttype == TYPE_F16 && n_dims == 2;
        out.write_all(&n_dims.to_le_bytes()).map_err(io)?;
        out.write_all(&name_len.to_le_bytes()).map_err(io)?;
        out.write_all(&(if quantized { qtype } else { ttype }).to_le_bytes()).map_err(io)?;
        for d in &dims {
            out.write_all(&d.to_le_bytes()).map_err(io)?;
        }
        out.write_all(name).map_err(io)?;
        if !quantized {
            out.write_all(data).map_err(io)?;
            continue;
        }
        let row = dims[0] as u64;
        if row % QUANT_BLOCK != 0 {
            return Err(format!("{}: rows of {row} are not whole blocks of {QUANT_BLOCK}", String::from_utf8_lossy(name)));
        }
        let weights: Vec<f32> = data.chunks_exact(2).map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]]))).collect();
        let expected = tensor_bytes(qtype, elems).ok_or("quantized size")? as usize;
        let mut packed = vec![0u8; expected];
        // SAFETY: `weights` holds rows × row f32s and `packed` the exact byte size of that many
        // rows of `qtype` (ggml_row_size); q8_0 and q5_1 need no importance matrix (null).
        let written = unsafe {
            whisper_rs_sys::ggml_quantize_chunk(
                qtype as whisper_rs_sys::ggml_type,
                weights.as_ptr(),
                packed.as_mut_ptr().cast(),
                0,
                dims[1] as i64,
                row as i64,
                std::ptr::null(),
            )
        };
        if written != expected {
            return Err(format!("{}: ggml wrote {written} bytes, expected {expected}", String::from_utf8_lossy(name)));
        }
        out.write_all(&packed).map_err(io)?;
    }
    Ok(HParams::from_array(v))
}

/// Reads a ggml file held in memory, with truncation as an error.
struct ByteReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> ByteReader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or("file is truncated")?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn i32(&mut self) -> Result<i32, String> {
        let b = self.take(4)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Parses `tiktoken` BPE ranks (`base64 rank` per line) into token byte strings ordered by rank.
pub fn parse_tiktoken(text: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    use base64::Engine as _;
    let text = std::str::from_utf8(text).map_err(|_| "tokenizer file is not UTF-8".to_string())?;
    let mut out: Vec<Option<Vec<u8>>> = Vec::new();
    for (lineno, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(tok), Some(rank)) = (parts.next(), parts.next()) else {
            return Err(format!("tokenizer line {}: expected `token rank`", lineno + 1));
        };
        // multilingual.tiktoken writes the empty token (rank 50256) as a bare "=", which strict
        // base64 rejects; decoding without padding reads it as the empty string, as Python does.
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(tok.trim_end_matches('='))
            .map_err(|e| format!("tokenizer line {}: {e}", lineno + 1))?;
        let rank: usize = rank.parse().map_err(|_| format!("tokenizer line {}: bad rank", lineno + 1))?;
        if rank > 1_000_000 {
            return Err(format!("tokenizer line {}: rank {rank} out of range", lineno + 1));
        }
        if out.len() <= rank {
            out.resize(rank + 1, None);
        }
        out[rank] = Some(bytes);
    }
    // Ids are positions in the ggml vocabulary, so a gap would shift every later token.
    out.into_iter()
        .enumerate()
        .map(|(i, t)| t.ok_or_else(|| format!("tokenizer has no token of rank {i}")))
        .collect()
}

/// Reads one little-endian f32 C-order array from a `.npz` (zip of `.npy`) archive.
pub fn read_npz_f32(npz: &[u8], member: &str) -> Result<(Vec<usize>, Vec<f32>), String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(npz)).map_err(|e| format!("mel filters: {e}"))?;
    let mut entry = zip.by_name(member).map_err(|e| format!("mel filters: {member}: {e}"))?;
    let mut npy = Vec::new();
    entry.read_to_end(&mut npy).map_err(|e| format!("mel filters: {e}"))?;
    parse_npy_f32(&npy)
}

fn parse_npy_f32(npy: &[u8]) -> Result<(Vec<usize>, Vec<f32>), String> {
    if npy.len() < 10 || &npy[..6] != b"\x93NUMPY" {
        return Err("not a .npy array".into());
    }
    let (header_len, start) = match npy[6] {
        1 => (u16::from_le_bytes([npy[8], npy[9]]) as usize, 10),
        2 | 3 if npy.len() >= 12 => (u32::from_le_bytes([npy[8], npy[9], npy[10], npy[11]]) as usize, 12),
        v => return Err(format!(".npy version {v} not supported")),
    };
    let header = npy
        .get(start..start + header_len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or("truncated .npy header")?;
    if !header.contains("'descr': '<f4'") || !header.contains("'fortran_order': False") {
        return Err(format!(".npy is not a C-order little-endian f32 array: {header}"));
    }
    let shape_txt = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or("no shape in .npy header")?;
    let shape = shape_txt
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| format!("bad .npy shape {shape_txt}")))
        .collect::<Result<Vec<_>, _>>()?;
    let count: usize = shape.iter().product();
    let data = &npy[start + header_len..];
    if data.len() != count * 4 {
        return Err(format!(".npy holds {} bytes, shape {shape:?} needs {}", data.len(), count * 4));
    }
    let values = data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Ok((shape, values))
}

/// Walks a ggml whisper file's structure without loading weights: header, mel block, vocab and
/// every tensor header (seeking over data). Catches truncation and foreign files in milliseconds.
pub fn validate_file(path: &Path) -> Result<HParams, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let mut r = BufReader::new(file);
    let mut pos = 0u64;
    if read_i32(&mut r, &mut pos)? as u32 != GGML_MAGIC {
        return Err("bad magic (not a ggml file)".into());
    }
    let mut v = [0i32; 11];
    for x in v.iter_mut() {
        *x = read_i32(&mut r, &mut pos)?;
    }
    let hp = HParams::from_array(v);
    let sane = (51_000..=52_000).contains(&hp.n_vocab)
        && hp.n_audio_state > 0
        && hp.n_audio_state == hp.n_text_state
        && (1..=64).contains(&hp.n_audio_layer)
        && (1..=64).contains(&hp.n_text_layer)
        && (hp.n_mels == 80 || hp.n_mels == 128);
    if !sane {
        return Err(format!("implausible whisper hparams {hp:?}"));
    }
    let skip = |r: &mut BufReader<File>, pos: &mut u64, n: u64| -> Result<(), String> {
        *pos = pos.checked_add(n).filter(|p| *p <= len).ok_or("file is truncated")?;
        r.seek(SeekFrom::Start(*pos)).map_err(|e| e.to_string())?;
        Ok(())
    };
    let n_mel = read_i32(&mut r, &mut pos)?;
    let n_fft = read_i32(&mut r, &mut pos)?;
    if n_mel != hp.n_mels || !(1..=4096).contains(&n_fft) {
        return Err(format!("bad mel filter block ({n_mel} x {n_fft})"));
    }
    skip(&mut r, &mut pos, (n_mel * n_fft) as u64 * 4)?;
    let n_tokens = read_i32(&mut r, &mut pos)?;
    if !(0..=hp.n_vocab).contains(&n_tokens) {
        return Err(format!("bad vocabulary size {n_tokens}"));
    }
    for _ in 0..n_tokens {
        let l = read_i32(&mut r, &mut pos)?;
        if !(0..=1024).contains(&l) {
            return Err("corrupt vocabulary".into());
        }
        skip(&mut r, &mut pos, l as u64)?;
    }
    let mut tensors = 0usize;
    while pos < len {
        let n_dims = read_i32(&mut r, &mut pos)?;
        let name_len = read_i32(&mut r, &mut pos)?;
        let ttype = read_i32(&mut r, &mut pos)?;
        if !(1..=4).contains(&n_dims) || !(1..=256).contains(&name_len) || tensor_bytes(ttype, 0).is_none() {
            return Err(format!("corrupt tensor header #{tensors}"));
        }
        let mut elems = 1u64;
        for _ in 0..n_dims {
            let d = read_i32(&mut r, &mut pos)?;
            if d <= 0 {
                return Err(format!("corrupt tensor header #{tensors}"));
            }
            elems *= d as u64;
        }
        let bytes = tensor_bytes(ttype, elems).ok_or_else(|| format!("tensor #{tensors} is not whole quantization blocks"))?;
        skip(&mut r, &mut pos, name_len as u64 + bytes)?;
        tensors += 1;
    }
    if tensors != hp.tensor_count() {
        return Err(format!("has {tensors} tensors, a complete model has {}", hp.tensor_count()));
    }
    Ok(hp)
}

fn read_i32(r: &mut impl Read, pos: &mut u64) -> Result<i32, String> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b).map_err(|_| "file is truncated".to_string())?;
    *pos += 4;
    Ok(i32::from_le_bytes(b))
}

/// IEEE half → single precision (exact).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal half: value = man * 2^-24, exactly representable as f32.
            let v = man as f32 * f32::from_bits(0x3380_0000); // 2^-24
            return if sign != 0 { -v } else { v };
        }
        (0x1f, _) => sign | 0x7f80_0000 | (man << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

/// Single → half precision, round to nearest even (used only if a source model ships f32).
pub fn f32_to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let man = bits & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if man != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        let m = man | 0x80_0000;
        let shift = (14 - e) as u32;
        let half = 1u32 << (shift - 1);
        let rest = m & ((1 << shift) - 1);
        let mut out = (m >> shift) as u16;
        if rest > half || (rest == half && out & 1 == 1) {
            out += 1;
        }
        return sign | out;
    }
    let mut out = ((e as u32) << 10 | (man >> 13)) as u16;
    let rest = man & 0x1fff;
    if rest > 0x1000 || (rest == 0x1000 && out & 1 == 1) {
        out += 1; // may carry into the exponent, which is the correct rounding
    }
    sign | out
}

fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_round_trips() {
        for (h, f) in [(0x3c00u16, 1.0f32), (0xc000, -2.0), (0x7bff, 65504.0), (0x0001, 5.960_464_5e-8), (0, 0.0)] {
            assert_eq!(f16_to_f32(h), f, "{h:#x}");
            assert_eq!(f32_to_f16(f), h, "{f}");
        }
        assert_eq!(f32_to_f16(1.0 + 1.0 / 4096.0), 0x3c00, "ties round to even");
        assert_eq!(f32_to_f16(1e9), 0x7c00, "overflow saturates to infinity");
    }

    #[test]
    fn tiktoken_lines_become_ids_in_rank_order() {
        let toks = parse_tiktoken(b"IQ== 0\nIg== 1\naGk= 2\n= 3\n").unwrap();
        assert_eq!(toks, vec![b"!".to_vec(), b"\"".to_vec(), b"hi".to_vec(), Vec::new()]);
        assert!(parse_tiktoken(b"IQ== 0\naGk= 2\n").is_err(), "gap in ranks");
    }

    #[test]
    fn npy_header_and_data_are_read() {
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        let mut npy = b"\x93NUMPY\x01\x00".to_vec();
        npy.extend_from_slice(&(header.len() as u16).to_le_bytes());
        npy.extend_from_slice(header.as_bytes());
        for i in 0..6 {
            npy.extend_from_slice(&(i as f32).to_le_bytes());
        }
        let (shape, data) = parse_npy_f32(&npy).unwrap();
        assert_eq!(shape, vec![2, 3]);
        assert_eq!(data[5], 5.0);
        assert!(parse_npy_f32(&npy[..npy.len() - 1]).is_err());
    }

    #[test]
    fn validate_rejects_foreign_and_truncated_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bin");
        std::fs::write(&p, b"hello world, not a model").unwrap();
        assert!(validate_file(&p).unwrap_err().contains("magic"));
        let mut bytes = GGML_MAGIC.to_le_bytes().to_vec();
        for v in [51865, 1500, 512, 8, 6, 448, 512, 8, 6, 80, 1] {
            bytes.extend_from_slice(&(v as i32).to_le_bytes());
        }
        std::fs::write(&p, &bytes).unwrap();
        assert!(validate_file(&p).unwrap_err().contains("truncated"));
    }
}
