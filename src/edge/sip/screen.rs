//! Screening of SIP requests before rsipstack sees them, sans-IO.
//!
//! rsipstack's transports drop, without a word, every datagram its parser or transaction
//! layer cannot take: a bad Content-Length, a missing header, an RFC 2543 From without a tag.
//! The caller then retransmits for 32 s and gives up, never learning why. RFC 3261 §8.2 and
//! the RFC 4475 torture tests ask for an answer instead: 400 for bad syntax, 505 for another
//! protocol version, 501 for an unknown method, 416 for a Request-URI scheme we cannot route,
//! 420 for an extension we lack, 415 for a body we cannot read, 406 when the caller accepts
//! nothing we could answer with. This module reads the request the way RFC 3261 §7 and §25
//! define it, answers what must be answered, and hands the rest on — normalized where an old
//! but valid form (RFC 2543: no From tag, no Content-Length over UDP) would otherwise trip
//! the stack. It decides; the transport hooks in `mod.rs` do the sending.

use std::fmt::Write as _;

/// How the request arrived: the framing rules differ (RFC 3261 §18.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One message per UDP datagram: the body is the rest of the datagram.
    Datagram,
    /// TCP: rsipstack has framed the message by its Content-Length already.
    Stream,
}

/// What to do with one incoming message.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Hand the message on unchanged.
    Pass,
    /// Hand on this normalized form instead.
    Rewrite(Vec<u8>),
    /// Do not pass it on; send this response to where the request came from.
    Answer(Vec<u8>),
    /// Discard silently: an ACK (never answered), or something that is not SIP at all.
    Drop,
}

/// What the gateway implements, for the answers that must list it.
pub struct Capabilities {
    /// Methods, for Allow (RFC 3261 §20.5).
    pub allow: &'static str,
    /// Option tags we implement, for Supported and for judging Require (RFC 3261 §20.32).
    pub supported: &'static [&'static str],
    /// Body types we read in an INVITE, for Accept on a 415 (RFC 3261 §21.4.16).
    pub accept: &'static str,
}

/// Methods RFC 3261 and its extensions define; any other token is unknown to us (501).
const KNOWN_METHODS: [&str; 14] = [
    "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "UPDATE", "PRACK", "NOTIFY", "SUBSCRIBE",
    "REFER", "MESSAGE", "PUBLISH",
];

/// Header names that may appear once only (RFC 3261 §7.3.1: only list-valued headers repeat).
const SINGLE: [&str; 7] = ["from", "to", "call-id", "cseq", "max-forwards", "content-length", "content-type"];

/// A logical header field: unfolded, with its name in lower-case long form.
#[derive(Debug, Clone)]
struct Field {
    name: String,
    value: String,
}

/// The request as RFC 3261 §7.1 reads it.
struct Request<'a> {
    method: &'a str,
    uri: &'a str,
    version: &'a str,
    fields: Vec<Field>,
    body: &'a [u8],
    /// The datagram ended before the empty line that ends the headers.
    unterminated: bool,
}

impl Request<'_> {
    fn all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.fields.iter().filter(move |f| f.name == name).map(|f| f.value.as_str())
    }

    fn get<'s>(&'s self, name: &str) -> Option<&'s str> {
        self.fields.iter().find(|f| f.name == name).map(|f| f.value.as_str())
    }
}

/// A reason to refuse a request, and the answer RFC 3261 gives for it.
#[derive(Debug)]
struct Refusal {
    status: u16,
    reason: &'static str,
    /// Extra header lines (without CRLF).
    headers: Vec<String>,
    /// Why, for the Warning header and the log.
    why: String,
}

fn bad(why: impl Into<String>) -> Refusal {
    Refusal { status: 400, reason: "Bad Request", headers: Vec::new(), why: why.into() }
}

/// Screens one message. Responses pass untouched: matching them (or discarding a stray one,
/// RFC 3261 §18.1.2) is the transaction layer's job. `stack_takes` says whether the SIP stack
/// will take a request these checks passed; when it will not, the request still gets a 400
/// naming the stack's complaint rather than silence.
pub fn screen(raw: &[u8], framing: Framing, caps: &Capabilities, stack_takes: impl Fn(&[u8]) -> Result<(), String>) -> Verdict {
    // Keepalive CRLFs (RFC 5626 §3.5.1) and other blank datagrams are the transport's.
    let start = raw.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(raw.len());
    if start == raw.len() || raw[start..].starts_with(b"SIP/") {
        return Verdict::Pass;
    }
    let raw = &raw[start..];
    let Some(req) = read_request(raw, framing) else {
        return Verdict::Drop; // no request line we could answer
    };
    let is_ack = req.method == "ACK";
    let verdict = judge(&req, framing, caps).and_then(|rewritten| {
        let bytes = rewritten.as_deref().unwrap_or(raw);
        stack_takes(bytes).map_err(|e| bad(format!("unsupported syntax: {e}")))?;
        Ok(rewritten)
    });
    match verdict {
        Ok(None) if start == 0 => Verdict::Pass,
        Ok(None) => Verdict::Rewrite(raw.to_vec()), // without the leading blank lines
        Ok(Some(rewritten)) => Verdict::Rewrite(rewritten),
        Err(_) if is_ack => Verdict::Drop, // RFC 3261 §17.2.1: an ACK is never answered
        Err(refusal) => Verdict::Answer(response(&req, &refusal, caps)),
    }
}

/// Splits the head into the request line and unfolded header fields. `None` when there is no
/// request line at all (binary noise).
fn read_request(raw: &[u8], framing: Framing) -> Option<Request<'_>> {
    let (head, body, unterminated) = match find(raw, b"\r\n\r\n") {
        Some(i) => (&raw[..i], &raw[i + 4..], false),
        None => match find(raw, b"\n\n") {
            Some(i) => (&raw[..i], &raw[i + 2..], false),
            None => (raw, &raw[raw.len()..], framing == Framing::Datagram),
        },
    };
    // Header text is UTF-8 (RFC 3261 §7.3.1 allows UTF8-NONASCII in values); anything else
    // cannot be answered meaningfully.
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next()?;
    let mut parts = request_line.splitn(3, ' ');
    let method = parts.next()?;
    let uri = parts.next().unwrap_or("");
    let version = parts.next().unwrap_or("");
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let mut fields: Vec<Field> = Vec::new();
    let mut broken: Option<String> = None;
    for line in lines {
        if line.starts_with(' ') || line.starts_with('\t') {
            // RFC 3261 §7.3.1: a continuation line is the previous value, folded.
            match fields.last_mut() {
                Some(f) => {
                    f.value.push(' ');
                    f.value.push_str(line.trim());
                }
                None => broken = Some("continuation line before any header".into()),
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            broken.get_or_insert_with(|| format!("header line without a colon: {line:?}"));
            continue;
        };
        let name = name.trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            broken.get_or_insert_with(|| format!("bad header name {name:?}"));
            continue;
        }
        fields.push(Field { name: long_name(name), value: value.trim().to_string() });
    }
    if let Some(why) = broken {
        // Keep what could be read (for the response's Via and tags) but mark the request bad.
        fields.push(Field { name: "\u{0}broken".into(), value: why });
    }
    Some(Request { method, uri, version, fields, body, unterminated })
}

/// The checks, in RFC 3261 §8.2's order: syntax first, then method, Request-URI, extensions
/// and content. `Ok(Some(..))` is a normalized request to pass on.
fn judge(req: &Request<'_>, framing: Framing, caps: &Capabilities) -> Result<Option<Vec<u8>>, Refusal> {
    // --- Request-Line (RFC 3261 §7.1): exactly one SP between its three parts.
    if req.version.contains(' ') || req.uri.is_empty() || req.uri.contains([' ', '\t']) {
        return Err(bad("the Request-Line must be Method SP Request-URI SP SIP-Version"));
    }
    if req.version != "SIP/2.0" {
        if is_sip_version(req.version) {
            return Err(Refusal {
                status: 505,
                reason: "Version Not Supported",
                headers: Vec::new(),
                why: format!("{} is not supported, only SIP/2.0", req.version),
            });
        }
        return Err(bad(format!("bad SIP-Version {:?}", req.version)));
    }
    if !req.method.bytes().all(is_token_byte) {
        return Err(bad("the method is not a token"));
    }
    let scheme = uri_scheme(req.uri).ok_or_else(|| bad("the Request-URI has no scheme"))?;
    if let Some(f) = req.fields.iter().find(|f| f.name == "\u{0}broken") {
        return Err(bad(f.value.clone()));
    }
    if req.unterminated {
        return Err(bad("the header section does not end with an empty line"));
    }

    // --- Mandatory and single-valued headers (RFC 3261 §8.1.1, §7.3.1).
    for name in ["via", "from", "to", "call-id", "cseq"] {
        if req.get(name).is_none() {
            return Err(bad(format!("missing {name} header")));
        }
    }
    for name in SINGLE {
        if req.all(name).count() > 1 {
            return Err(bad(format!("more than one {name} header")));
        }
    }
    let cseq = req.get("cseq").unwrap_or_default();
    let mut cs = cseq.split_whitespace();
    let (number, cseq_method) = (cs.next().unwrap_or(""), cs.next().unwrap_or(""));
    // RFC 3261 §8.1.1.5: the sequence number is below 2^31.
    if cs.next().is_some() || !is_digits(number) || number.len() > 10 || number.parse::<u64>().map_or(true, |n| n >= 1 << 31) {
        return Err(bad(format!("bad CSeq {cseq:?}")));
    }
    if cseq_method != req.method {
        return Err(bad(format!("CSeq method {cseq_method} does not match the request method {}", req.method)));
    }
    if let Some(mf) = req.get("max-forwards") {
        // Leading zeros are allowed ("0068" in RFC 4475's wsinv); the value is at most 255.
        if !is_digits(mf) || mf.trim_start_matches('0').len() > 3 || mf.parse::<u64>().map_or(true, |n| n > 255) {
            return Err(bad(format!("bad Max-Forwards {mf:?}")));
        }
    }
    let content_length = match req.get("content-length") {
        None => None,
        Some(cl) => {
            // A length past what any SIP message can carry is as wrong as a non-number.
            if !is_digits(cl) || cl.len() > 9 {
                return Err(bad(format!("bad Content-Length {cl:?}")));
            }
            Some(cl.parse::<usize>().unwrap_or(usize::MAX))
        }
    };
    if framing == Framing::Datagram && content_length.is_some_and(|n| n > req.body.len()) {
        // RFC 3261 §18.3: over UDP a body shorter than its Content-Length is an error.
        return Err(bad(format!(
            "Content-Length {} is larger than the {} bytes of body in the datagram",
            content_length.unwrap_or_default(),
            req.body.len()
        )));
    }
    for via in req.all("via") {
        check_via(via).map_err(bad)?;
    }
    for name in ["from", "to"] {
        let v = req.get(name).unwrap_or_default();
        check_name_addr(v).map_err(|why| bad(format!("{name}: {why}")))?;
    }
    for contact in req.all("contact") {
        if contact != "*" {
            for value in split_list(contact) {
                check_name_addr(value).map_err(|why| bad(format!("contact: {why}")))?;
            }
        }
    }
    let sip_uri = scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips");
    // The user part may hold `?` (RFC 3261 §25.1 user-unreserved); headers follow the host.
    let host_part = req.uri.rsplit_once('@').map_or(req.uri, |(_, h)| h);
    if sip_uri && host_part.contains('?') {
        // RFC 3261 §19.1.1: headers are not allowed in a Request-URI.
        return Err(bad("the Request-URI carries escaped headers"));
    }
    if sip_uri && !percent_escapes_ok(req.uri) {
        return Err(bad("bad %-escape in the Request-URI"));
    }
    if let Some(date) = req.get("date") {
        // RFC 3261 §20.17: a SIP Date is always GMT.
        if !date.trim_end().ends_with("GMT") {
            return Err(bad(format!("Date {date:?} is not in GMT")));
        }
    }
    if req.method == "ACK" {
        return normalize(req, framing, content_length);
    }

    // --- Method (RFC 3261 §8.2.1).
    if !KNOWN_METHODS.contains(&req.method) {
        return Err(Refusal {
            status: 501,
            reason: "Not Implemented",
            headers: vec![format!("Allow: {}", caps.allow)],
            why: format!("method {} is not implemented", req.method),
        });
    }
    // --- Request-URI scheme (§8.2.2.1).
    if !sip_uri && !scheme.eq_ignore_ascii_case("tel") {
        return Err(Refusal {
            status: 416,
            reason: "Unsupported URI Scheme",
            headers: Vec::new(),
            why: format!("Request-URI scheme {scheme} is not supported"),
        });
    }
    // --- Extensions (§8.2.2.3); Require is ignored on CANCEL.
    if req.method != "CANCEL" {
        let unsupported: Vec<&str> = req
            .all("require")
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty() && !caps.supported.iter().any(|s| s.eq_ignore_ascii_case(t)))
            .collect();
        if !unsupported.is_empty() {
            let list = unsupported.join(", ");
            return Err(Refusal {
                status: 420,
                reason: "Bad Extension",
                headers: vec![format!("Unsupported: {list}")],
                why: format!("required extension {list} is not supported"),
            });
        }
    }
    // --- Content (§8.2.3): the INVITE's offer must be SDP, and the caller must take SDP back.
    if req.method == "INVITE" {
        let has_body = !req.body.is_empty() && content_length != Some(0);
        let ctype = req.get("content-type").map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
        if has_body && ctype.as_deref().is_some_and(|c| c != "application/sdp") {
            return Err(Refusal {
                status: 415,
                reason: "Unsupported Media Type",
                headers: vec![format!("Accept: {}", caps.accept)],
                why: format!("body type {} is not supported", ctype.unwrap_or_default()),
            });
        }
        if let Some(accept) = req.get("accept") {
            // RFC 3261 §21.4.7: our answer would be SDP, which this caller says it cannot read.
            let takes_sdp = accept.split(',').map(|a| a.split(';').next().unwrap_or("").trim().to_ascii_lowercase()).any(|a| {
                a == "application/sdp" || a == "application/*" || a == "*/*"
            });
            if !accept.trim().is_empty() && !takes_sdp {
                return Err(Refusal {
                    status: 406,
                    reason: "Not Acceptable",
                    headers: vec![format!("Accept: {}", caps.accept)],
                    why: format!("the caller accepts only {accept}, and the answer is application/sdp"),
                });
            }
        }
    }
    normalize(req, framing, content_length)
}

/// Rewrites the old but valid forms that rsipstack cannot take: a From without a tag
/// (RFC 2543, which RFC 3261 §12.2.2 still asks UASs to accept) gets a stable tag derived
/// from the Call-ID and From, so that its ACK and BYE land in the same dialog; an RFC 2543
/// INVITE without Contact gets its From URI as the remote target, where RFC 2543 sent
/// in-dialog requests; and a UDP request without Content-Length gets one for the body it
/// carries (RFC 3261 §18.3), which the stack would otherwise read as empty.
fn normalize(req: &Request<'_>, framing: Framing, content_length: Option<usize>) -> Result<Option<Vec<u8>>, Refusal> {
    let from = req.get("from").unwrap_or_default();
    let needs_tag = !has_tag(from);
    let needs_length = framing == Framing::Datagram && content_length.is_none();
    // RFC 2543 had no mandatory Contact: requests in the dialog went to the From address.
    let needs_contact = req.method == "INVITE" && req.get("contact").is_none();
    // RFC 3261 §25.1 lets whitespace surround `;` and `=` (RFC 4475's wsinv has
    // "; tag = 98asjd8"); rsipstack reads such a tag as absent.
    let needs_tidy = ["from", "to"].iter().any(|n| req.get(n).is_some_and(|v| tidy_name_addr(v) != v));
    if !needs_tag && !needs_length && !needs_contact && !needs_tidy {
        return Ok(None);
    }
    let mut out = String::with_capacity(req.body.len() + 512);
    let _ = write!(out, "{} {} {}\r\n", req.method, req.uri, req.version);
    for f in &req.fields {
        if f.name == "from" && needs_tag {
            let tag = stable_tag(req.get("call-id").unwrap_or_default(), from);
            let _ = write!(out, "From: {};tag={tag}\r\n", tidy_name_addr(from));
        } else if f.name == "from" || f.name == "to" {
            let _ = write!(out, "{}: {}\r\n", wire_name(&f.name), tidy_name_addr(&f.value));
        } else {
            let _ = write!(out, "{}: {}\r\n", wire_name(&f.name), f.value);
        }
    }
    if needs_contact {
        let _ = write!(out, "Contact: <{}>\r\n", addr_uri(from));
    }
    if needs_length {
        let _ = write!(out, "Content-Length: {}\r\n", req.body.len());
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(req.body);
    Ok(Some(bytes))
}

/// The answer to a refused request (RFC 3261 §8.2.6): Via, From, To, Call-ID and CSeq copied,
/// a To tag added, and a Warning saying why.
fn response(req: &Request<'_>, refusal: &Refusal, caps: &Capabilities) -> Vec<u8> {
    let mut out = String::with_capacity(512);
    let _ = write!(out, "SIP/2.0 {} {}\r\n", refusal.status, refusal.reason);
    for f in &req.fields {
        match f.name.as_str() {
            "via" | "from" | "call-id" | "cseq" => {
                let _ = write!(out, "{}: {}\r\n", wire_name(&f.name), f.value);
            }
            "to" => {
                let tag = if has_tag(&f.value) { String::new() } else { format!(";tag={}", stable_tag(&f.value, req.get("call-id").unwrap_or_default())) };
                let _ = write!(out, "To: {}{tag}\r\n", f.value);
            }
            _ => {}
        }
    }
    for h in &refusal.headers {
        let _ = write!(out, "{h}\r\n");
    }
    if refusal.status == 400 || refusal.status == 505 {
        // Whoever sent a broken request learns what the gateway would have taken.
        let _ = write!(out, "Allow: {}\r\n", caps.allow);
    }
    let why: String = refusal.why.chars().map(|c| if c == '"' || c.is_control() { '\'' } else { c }).collect();
    let _ = write!(out, "Warning: 399 frontline \"{why}\"\r\nContent-Length: 0\r\n\r\n");
    out.into_bytes()
}

/// Why a request was refused, for the log: the status and the Warning text.
pub fn describe_answer(answer: &[u8]) -> String {
    let text = String::from_utf8_lossy(answer);
    let status = text.lines().next().unwrap_or("").trim_start_matches("SIP/2.0 ").to_string();
    let warning = text.lines().find_map(|l| l.strip_prefix("Warning: ")).unwrap_or("");
    format!("{status}: {warning}")
}

/// Checks one Via value: `SIP / 2.0 / transport LWS sent-by *( ; param )` (RFC 3261 §20.42),
/// each of a comma-separated list.
fn check_via(value: &str) -> Result<(), String> {
    for via in split_list(value) {
        let via = via.trim();
        if via.is_empty() {
            return Err("empty Via value".into());
        }
        let mut parts = via.splitn(3, '/');
        let (proto, version, rest) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if proto.trim() != "SIP" || version.trim() != "2.0" {
            return Err(format!("bad Via protocol in {via:?}"));
        }
        let rest = rest.trim_start();
        let transport_end = rest.find([' ', '\t']).ok_or_else(|| format!("Via {via:?} has no sent-by"))?;
        if !rest[..transport_end].bytes().all(is_token_byte) {
            return Err(format!("bad Via transport in {via:?}"));
        }
        let mut params = rest[transport_end..].split(';');
        let sent_by = params.next().unwrap_or("").trim();
        if sent_by.is_empty() || sent_by.contains([' ', '\t', '<', '>', '"']) {
            return Err(format!("bad Via sent-by in {via:?}"));
        }
        check_params(params).map_err(|e| format!("Via {via:?}: {e}"))?;
    }
    Ok(())
}

/// Header parameters: `name [ = value ]`, none empty (`;;` is not a parameter).
fn check_params<'a>(params: impl Iterator<Item = &'a str>) -> Result<(), String> {
    for p in params {
        let (name, value) = match p.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (p.trim(), None),
        };
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(format!("bad parameter {p:?}"));
        }
        if value.is_some_and(str::is_empty) {
            return Err(format!("parameter {name} has an empty value"));
        }
    }
    Ok(())
}

/// Checks a From, To or Contact value (RFC 3261 §20.10): balanced quotes, a display name of
/// tokens or one quoted string, no spaces inside `<...>`, and an addr-spec without `<>` that
/// holds no `?`, `,` or `;` in its URI.
fn check_name_addr(value: &str) -> Result<(), String> {
    let value = value.trim();
    let mut display_end = None;
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '<' if !in_quotes => {
                display_end = Some(i);
                break;
            }
            _ => {}
        }
    }
    if in_quotes {
        return Err("unterminated quoted string".into());
    }
    let Some(lt) = display_end else {
        // addr-spec form: the URI runs to the first ';', after which come header parameters.
        let mut parts = value.split(';');
        let uri = parts.next().unwrap_or("").trim();
        if uri.is_empty() || uri.contains(['?', ',', ' ', '"']) {
            return Err(format!("{uri:?} needs <> around it"));
        }
        return check_params(parts);
    };
    let display = value[..lt].trim();
    let quoted = display.starts_with('"') && display.ends_with('"') && display.len() >= 2;
    if !display.is_empty() && !quoted && !display.split_whitespace().all(|w| w.bytes().all(is_token_byte)) {
        return Err(format!("display name {display:?} must be tokens or a quoted string"));
    }
    let rest = &value[lt + 1..];
    let gt = rest.find('>').ok_or("unterminated <")?;
    let uri = &rest[..gt];
    if uri.is_empty() || uri.contains([' ', '\t']) {
        return Err(format!("<{uri}> contains spaces"));
    }
    let after = rest[gt + 1..].trim();
    if after.is_empty() {
        return Ok(());
    }
    let after = after.strip_prefix(';').ok_or_else(|| format!("unexpected {after:?} after the URI"))?;
    check_params(after.split(';'))
}

/// Splits a comma-separated header value, ignoring commas in quotes and `<>`.
fn split_list(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut angle, mut escaped) = (0, false, false, false);
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                out.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&value[start..]);
    out
}

/// A From or To value with no whitespace around its parameters' `;` and `=`. The display
/// name and URI stay as they are.
fn tidy_name_addr(value: &str) -> String {
    let (head, params) = match value.rfind('>') {
        Some(i) => (value[..=i].trim(), &value[i + 1..]),
        None => match value.split_once(';') {
            Some((uri, p)) => (uri.trim(), p),
            None => return value.trim().to_string(),
        },
    };
    let mut out = head.to_string();
    for p in params.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        out.push(';');
        match p.split_once('=') {
            Some((n, v)) => {
                out.push_str(n.trim());
                out.push('=');
                out.push_str(v.trim());
            }
            None => out.push_str(p),
        }
    }
    out
}

/// The URI of a name-addr or addr-spec value, without display name or header parameters.
fn addr_uri(value: &str) -> &str {
    match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => &value[a + 1..b],
        _ => value.split(';').next().unwrap_or("").trim(),
    }
}

fn has_tag(name_addr: &str) -> bool {
    // The tag is a header parameter: after the `>` when there is one, else after the URI.
    let params = match name_addr.rfind('>') {
        Some(i) => &name_addr[i + 1..],
        None => name_addr.split_once(';').map_or("", |(_, p)| p),
    };
    params.split(';').any(|p| p.split('=').next().is_some_and(|n| n.trim().eq_ignore_ascii_case("tag")))
}

/// A tag that is the same for every request of one RFC 2543 dialog (FNV-1a of its parts).
fn stable_tag(a: &str, b: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in a.bytes().chain([0]).chain(b.bytes()) {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("fl{h:016x}")
}

fn uri_scheme(uri: &str) -> Option<&str> {
    let (scheme, _) = uri.split_once(':')?;
    let mut b = scheme.bytes();
    let first = b.next()?;
    (first.is_ascii_alphabetic() && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))).then_some(scheme)
}

fn percent_escapes_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit) && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

fn is_sip_version(v: &str) -> bool {
    v.strip_prefix("SIP/")
        .and_then(|n| n.split_once('.'))
        .is_some_and(|(major, minor)| is_digits(major) && is_digits(minor))
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// RFC 3261 §25.1 `token`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// Compact header forms (RFC 3261 §7.3.3 and later RFCs) to their long lower-case names.
fn long_name(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let long = match lower.as_str() {
        "i" => "call-id",
        "m" => "contact",
        "e" => "content-encoding",
        "l" => "content-length",
        "c" => "content-type",
        "f" => "from",
        "s" => "subject",
        "k" => "supported",
        "t" => "to",
        "v" => "via",
        _ => return lower,
    };
    long.to_string()
}

/// How a lower-case header name is written back.
fn wire_name(name: &str) -> String {
    match name {
        "call-id" => "Call-ID".into(),
        "cseq" => "CSeq".into(),
        "www-authenticate" => "WWW-Authenticate".into(),
        _ => name
            .split('-')
            .map(|w| {
                let mut c = w.chars();
                c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("-"),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: Capabilities = Capabilities { allow: "INVITE, ACK, BYE", supported: &["timer"], accept: "application/sdp" };

    fn run(raw: &str) -> Verdict {
        screen(raw.as_bytes(), Framing::Datagram, &CAPS, |_| Ok(()))
    }

    fn answer_of(v: Verdict) -> String {
        match v {
            Verdict::Answer(a) => String::from_utf8(a).unwrap(),
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    const OPTIONS: &str = "OPTIONS sip:ivr@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK1\r\n\
From: <sip:a@192.0.2.9>;tag=1\r\nTo: <sip:ivr@192.0.2.1>\r\nCall-ID: c1\r\nCSeq: 7 OPTIONS\r\nMax-Forwards: 70\r\n\
Content-Length: 0\r\n\r\n";

    #[test]
    fn a_plain_request_and_any_response_pass_unchanged() {
        assert_eq!(run(OPTIONS), Verdict::Pass);
        assert_eq!(run("SIP/2.0 200 OK\r\nVia: x\r\n\r\n"), Verdict::Pass);
        assert_eq!(run("\r\n\r\n"), Verdict::Pass, "keepalives are the transport's");
        // Leading blank lines are stripped (RFC 3261 §7.5), the rest passes as it was.
        assert_eq!(run(&format!("\r\n{OPTIONS}")), Verdict::Rewrite(OPTIONS.as_bytes().to_vec()));
    }

    #[test]
    fn refusals_copy_the_transaction_headers_and_say_why() {
        let a = answer_of(run(&OPTIONS.replace("CSeq: 7 OPTIONS", "CSeq: 7 INVITE")));
        assert!(a.starts_with("SIP/2.0 400 Bad Request\r\n"), "{a}");
        for h in ["Via: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK1", "From: <sip:a@192.0.2.9>;tag=1", "Call-ID: c1", "CSeq: 7 INVITE"] {
            assert!(a.contains(h), "{h} in {a}");
        }
        assert!(a.contains("To: <sip:ivr@192.0.2.1>;tag=fl"), "a To tag is added: {a}");
        assert!(a.contains("Warning: 399 frontline \"CSeq method INVITE does not match"), "{a}");
        // Require of what we support passes; of what we don't, 420 naming it.
        assert_eq!(run(&OPTIONS.replace("Max-Forwards", "Require: timer\r\nMax-Forwards")), Verdict::Pass);
        let a = answer_of(run(&OPTIONS.replace("Max-Forwards", "Require: timer, 100rel\r\nMax-Forwards")));
        assert!(a.starts_with("SIP/2.0 420") && a.contains("Unsupported: 100rel\r\n"), "{a}");
        // The stack's own refusal still gets an answer.
        let v = screen(OPTIONS.as_bytes(), Framing::Datagram, &CAPS, |_| Err("odd".into()));
        assert!(answer_of(v).contains("unsupported syntax: odd"));
    }

    #[test]
    fn a_broken_ack_is_dropped_never_answered() {
        let ack = OPTIONS.replace("OPTIONS", "ACK").replace("Call-ID: c1\r\n", "");
        assert_eq!(run(&ack), Verdict::Drop);
        assert_eq!(run("\u{1}\u{2} binary noise"), Verdict::Drop);
    }

    #[test]
    fn an_rfc2543_dialog_gets_one_stable_from_tag() {
        let invite = "INVITE sip:ivr@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9\r\nFrom: <sip:old@192.0.2.9>\r\n\
To: sip:ivr@192.0.2.1\r\nCall-ID: c2543\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n";
        let Verdict::Rewrite(a) = run(invite) else { panic!("not normalized") };
        let a = String::from_utf8(a).unwrap();
        assert!(a.contains("Contact: <sip:old@192.0.2.9>\r\n"), "{a}");
        assert!(a.ends_with("Content-Length: 5\r\n\r\nv=0\r\n"), "{a}");
        let tag = a.split("From: <sip:old@192.0.2.9>;tag=").nth(1).unwrap().split("\r\n").next().unwrap().to_string();
        let bye = invite.replace("INVITE sip", "BYE sip").replace("1 INVITE", "2 BYE").replace("To: sip:ivr@192.0.2.1", "To: sip:ivr@192.0.2.1;tag=x");
        let Verdict::Rewrite(b) = run(&bye) else { panic!("not normalized") };
        assert!(String::from_utf8(b).unwrap().contains(&format!(";tag={tag}\r\n")), "the BYE lands in the same dialog");
    }
}
