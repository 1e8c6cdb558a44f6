//! Reader for CTranslate2's `model.bin` container (binary version 6, as written by
//! `ctranslate2.specs.ModelSpec.save`).
//!
//! Layout, all little-endian:
//! `u32 version`, `string spec_name`, `u32 revision`, `u32 n_vars`, then per variable
//! `string name`, `u8 rank`, `u32 dims[rank]`, `u8 dtype`, `u32 n_bytes`, `bytes`; then
//! `u32 n_aliases` and per alias `string alias`, `string target`. A `string` is a `u16` length
//! that counts a trailing NUL, then the bytes including that NUL.
//!
//! The reader borrows the file's bytes: a whisper model is at most a few hundred MB and the
//! converter needs every tensor anyway, so one read beats seeking per variable.

use std::collections::HashMap;

/// CTranslate2 data types (`ctranslate2::DataType`), in the order of their on-disk ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    BF16,
}

impl DType {
    fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            5 => DType::BF16,
            _ => return None,
        })
    }

    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 => 1,
        }
    }
}

/// One named tensor of the model, borrowing its bytes from the file image.
#[derive(Debug, Clone)]
pub struct Variable<'a> {
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub data: &'a [u8],
}

impl Variable<'_> {
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }

    /// A scalar integer attribute (CTranslate2 stores e.g. `num_heads` as an int16 scalar).
    pub fn as_int(&self) -> Option<i64> {
        match (self.dtype, self.data.len()) {
            (DType::I8, 1) => Some(self.data[0] as i8 as i64),
            (DType::I16, 2) => Some(i16::from_le_bytes([self.data[0], self.data[1]]) as i64),
            (DType::I32, 4) => Some(i32::from_le_bytes(self.data.try_into().ok()?) as i64),
            _ => None,
        }
    }
}

/// A parsed CTranslate2 model: its spec name and variables, aliases resolved.
#[derive(Debug)]
pub struct Ct2Model<'a> {
    pub spec: String,
    vars: HashMap<String, Variable<'a>>,
}

impl<'a> Ct2Model<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self, String> {
        let mut r = Cursor { buf: bytes, pos: 0 };
        let version = r.u32()?;
        // Versions before 5 had no dtype ids per variable; every published faster-whisper model
        // uses 6, so older containers are refused instead of guessed at.
        if !(5..=6).contains(&version) {
            return Err(format!("unsupported CTranslate2 binary version {version} (expected 5 or 6)"));
        }
        let spec = r.string()?;
        let _revision = r.u32()?;
        let n_vars = r.u32()? as usize;
        let mut vars = HashMap::with_capacity(n_vars);
        for _ in 0..n_vars {
            let name = r.string()?;
            let rank = r.u8()? as usize;
            let mut shape = Vec::with_capacity(rank);
            for _ in 0..rank {
                shape.push(r.u32()? as usize);
            }
            let dtype_id = r.u8()?;
            let dtype = DType::from_id(dtype_id)
                .ok_or_else(|| format!("variable {name}: unknown dtype id {dtype_id}"))?;
            let n_bytes = r.u32()? as usize;
            let data = r.take(n_bytes)?;
            let expected = shape.iter().product::<usize>() * dtype.size();
            if expected != n_bytes {
                return Err(format!(
                    "variable {name}: shape {shape:?} of {dtype:?} needs {expected} bytes, file has {n_bytes}"
                ));
            }
            vars.insert(name, Variable { shape, dtype, data });
        }
        let n_aliases = r.u32()? as usize;
        for _ in 0..n_aliases {
            let alias = r.string()?;
            let target = r.string()?;
            // Whisper ties the output projection to the token embedding; the alias makes both
            // names resolve to the same bytes.
            let var = vars
                .get(&target)
                .cloned()
                .ok_or_else(|| format!("alias {alias} points at missing variable {target}"))?;
            vars.insert(alias, var);
        }
        Ok(Ct2Model { spec, vars })
    }

    pub fn get(&self, name: &str) -> Result<&Variable<'a>, String> {
        self.vars.get(name).ok_or_else(|| format!("variable {name} is missing"))
    }

    pub fn int(&self, name: &str) -> Result<i64, String> {
        self.get(name)?.as_int().ok_or_else(|| format!("variable {name} is not an integer scalar"))
    }

    /// Number of `prefix/layer_N` blocks present.
    pub fn count_layers(&self, prefix: &str) -> usize {
        (0..)
            .take_while(|i| {
                let p = format!("{prefix}/layer_{i}/");
                self.vars.keys().any(|k| k.starts_with(&p))
            })
            .count()
    }
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| format!("truncated at byte {} (wanted {n} more)", self.pos))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.u16()? as usize;
        let b = self.take(n)?;
        let b = b.strip_suffix(&[0]).unwrap_or(b);
        String::from_utf8(b.to_vec()).map_err(|_| "a name is not UTF-8".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    fn sample() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&6u32.to_le_bytes());
        string(&mut b, "WhisperSpec");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&2u32.to_le_bytes());
        string(&mut b, "decoder/embeddings/weight");
        b.push(2);
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&3u32.to_le_bytes());
        b.push(4);
        b.extend_from_slice(&12u32.to_le_bytes());
        b.extend_from_slice(&[1; 12]);
        string(&mut b, "decoder/num_heads");
        b.push(0);
        b.push(2);
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&8i16.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        string(&mut b, "decoder/projection/weight");
        string(&mut b, "decoder/embeddings/weight");
        b
    }

    #[test]
    fn parses_variables_scalars_and_aliases() {
        let bytes = sample();
        let m = Ct2Model::parse(&bytes).unwrap();
        assert_eq!(m.spec, "WhisperSpec");
        assert_eq!(m.int("decoder/num_heads").unwrap(), 8);
        let proj = m.get("decoder/projection/weight").unwrap();
        assert_eq!(proj.shape, vec![2, 3]);
        assert_eq!(proj.dtype, DType::F16);
    }

    #[test]
    fn truncated_file_is_an_error_not_a_panic() {
        let bytes = sample();
        for cut in [0, 3, 10, 40, bytes.len() - 1] {
            assert!(Ct2Model::parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
