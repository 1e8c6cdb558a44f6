//! A sans-IO reader for libpcap capture files (what `tcpdump -w` writes): just enough to get
//! the UDP datagrams out of a loopback capture, with their capture times.
//!
//! Link types handled: Ethernet (tcpdump's framing of Linux `lo`), Linux cooked v1/v2
//! (`-i any`), BSD loopback and raw IP. IPv4 and IPv6 (no extension headers). Anything else
//! is skipped, and a truncated or malformed file is an error naming the byte offset.

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PcapError {
    #[error("not a pcap file (magic {0:#010x}); pcapng is not supported: capture with tcpdump -w")]
    BadMagic(u32),
    #[error("capture truncated at byte {0}")]
    Truncated(usize),
}

/// One UDP datagram seen on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct Datagram {
    /// Capture time in microseconds since the Unix epoch.
    pub t_us: u64,
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: Vec<u8>,
}

const LINK_NULL: u32 = 0;
const LINK_ETHERNET: u32 = 1;
const LINK_RAW: u32 = 101;
const LINK_LINUX_SLL: u32 = 113;
const LINK_LINUX_SLL2: u32 = 276;

/// Every UDP datagram in a capture, in file order.
pub fn udp_datagrams(file: &[u8]) -> Result<Vec<Datagram>, PcapError> {
    let header = file.get(..24).ok_or(PcapError::Truncated(file.len()))?;
    let magic = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    // The writer's byte order and timestamp resolution are both in the magic number.
    let (little, nanos) = match magic {
        0xa1b2_c3d4 => (true, false),
        0xa1b2_3c4d => (true, true),
        0xd4c3_b2a1 => (false, false),
        0x4d3c_b2a1 => (false, true),
        other => return Err(PcapError::BadMagic(other)),
    };
    let word = |b: &[u8]| {
        let a = [b[0], b[1], b[2], b[3]];
        if little { u32::from_le_bytes(a) } else { u32::from_be_bytes(a) }
    };
    let link = word(&header[20..24]) & 0x0fff_ffff;
    let mut out = Vec::new();
    let mut at = 24;
    while at < file.len() {
        let rec = file.get(at..at + 16).ok_or(PcapError::Truncated(at))?;
        let (sec, frac, caplen) = (word(&rec[0..4]) as u64, word(&rec[4..8]) as u64, word(&rec[8..12]) as usize);
        let data = file.get(at + 16..at + 16 + caplen).ok_or(PcapError::Truncated(at))?;
        at += 16 + caplen;
        let t_us = sec * 1_000_000 + if nanos { frac / 1000 } else { frac };
        if let Some((src_port, dst_port, payload)) = link_payload(link, data).and_then(udp_in_ip) {
            out.push(Datagram { t_us, src_port, dst_port, payload: payload.to_vec() });
        }
    }
    Ok(out)
}

/// The IP packet inside one link-layer frame, if it carries IP.
fn link_payload(link: u32, frame: &[u8]) -> Option<&[u8]> {
    let ethertype_ip = |t: u16| t == 0x0800 || t == 0x86dd;
    match link {
        LINK_ETHERNET => {
            let t = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
            ethertype_ip(t).then(|| frame.get(14..)).flatten()
        }
        LINK_LINUX_SLL => {
            let t = u16::from_be_bytes([*frame.get(14)?, *frame.get(15)?]);
            ethertype_ip(t).then(|| frame.get(16..)).flatten()
        }
        LINK_LINUX_SLL2 => {
            let t = u16::from_be_bytes([*frame.first()?, *frame.get(1)?]);
            ethertype_ip(t).then(|| frame.get(20..)).flatten()
        }
        LINK_NULL => frame.get(4..),
        LINK_RAW => Some(frame),
        _ => None,
    }
}

/// (source port, destination port, payload) of a UDP packet in an IPv4 or IPv6 packet.
fn udp_in_ip(ip: &[u8]) -> Option<(u16, u16, &[u8])> {
    let udp = match ip.first()? >> 4 {
        4 => {
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let fragment_offset = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]) & 0x1fff;
            // Only first fragments carry the UDP header; media datagrams are never fragmented.
            if *ip.get(9)? != 17 || fragment_offset != 0 || ihl < 20 {
                return None;
            }
            ip.get(ihl..)?
        }
        6 if *ip.get(6)? == 17 => ip.get(40..)?,
        _ => return None,
    };
    let src = u16::from_be_bytes([*udp.first()?, *udp.get(1)?]);
    let dst = u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]);
    let len = usize::from(u16::from_be_bytes([*udp.get(4)?, *udp.get(5)?]));
    Some((src, dst, udp.get(8..len.clamp(8, udp.len()))?))
}

/// Builds a little-endian microsecond pcap with Ethernet framing around IPv4/UDP datagrams:
/// the tests' synthetic captures.
#[cfg(test)]
pub(crate) fn synthetic_capture(datagrams: &[Datagram]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend(0xa1b2_c3d4u32.to_le_bytes());
    f.extend(2u16.to_le_bytes());
    f.extend(4u16.to_le_bytes());
    f.extend([0u8; 8]);
    f.extend(65535u32.to_le_bytes());
    f.extend(LINK_ETHERNET.to_le_bytes());
    for d in datagrams {
        let mut frame = vec![0u8; 12];
        frame.extend([0x08, 0x00]);
        let total = 20 + 8 + d.payload.len();
        frame.extend([0x45, 0, (total >> 8) as u8, total as u8, 0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]);
        frame.extend(d.src_port.to_be_bytes());
        frame.extend(d.dst_port.to_be_bytes());
        frame.extend(((8 + d.payload.len()) as u16).to_be_bytes());
        frame.extend([0, 0]);
        frame.extend(&d.payload);
        f.extend(((d.t_us / 1_000_000) as u32).to_le_bytes());
        f.extend(((d.t_us % 1_000_000) as u32).to_le_bytes());
        f.extend((frame.len() as u32).to_le_bytes());
        f.extend((frame.len() as u32).to_le_bytes());
        f.extend(frame);
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_udp_datagrams_back_out_of_a_capture() {
        let sent = vec![
            Datagram { t_us: 1_700_000_000_123_456, src_port: 6000, dst_port: 40000, payload: vec![0x80, 0, 1, 2] },
            Datagram { t_us: 1_700_000_000_143_456, src_port: 40000, dst_port: 6000, payload: vec![9; 172] },
        ];
        let file = synthetic_capture(&sent);
        assert_eq!(udp_datagrams(&file).unwrap(), sent);
        // A cut-off record and a foreign file are errors, not panics.
        assert_eq!(udp_datagrams(&file[..file.len() - 3]), Err(PcapError::Truncated(24 + 16 + 46)));
        assert!(matches!(udp_datagrams(b"\x0a\x0d\x0d\x0a pcapng section header block"), Err(PcapError::BadMagic(_))));
        assert_eq!(udp_datagrams(&file[..24]).unwrap(), vec![]);
    }
}
