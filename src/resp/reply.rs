//! The reply encoder: writes RESP2 or RESP3 replies into a connection's output buffer, byte for
//! byte as Redis 7.0.15's `addReply*` functions in `networking.c` do.
//!
//! Design: [`Reply`] borrows the output [`BytesMut`] and knows the connection's [`Protocol`];
//! each method appends one reply (or one aggregate header, whose elements follow as further
//! calls). The RESP3-only types fall back to their RESP2 shapes as Redis does (a map is an
//! array of twice its length, a double a bulk string, a boolean an integer). Numbers are
//! formatted on the stack: nothing here allocates beyond growing the output buffer.
//!
//! Must never: emit invalid protocol. A simple string or error has any `\r` or `\n` inside
//! replaced by a space, so text can never end a line early.

use bytes::{BufMut, BytesMut};

/// The RESP version a connection speaks (`HELLO 3` switches to RESP3).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Protocol {
    /// RESP2, every connection's start.
    Resp2,
    /// RESP3.
    Resp3,
}

/// Appends replies to an output buffer in one protocol version.
#[derive(Debug)]
pub struct Reply<'a> {
    out: &'a mut BytesMut,
    proto: Protocol,
}

impl<'a> Reply<'a> {
    /// An encoder appending to `out` in `proto`.
    pub fn new(out: &'a mut BytesMut, proto: Protocol) -> Self {
        Reply { out, proto }
    }

    /// The protocol this encoder writes.
    pub fn protocol(&self) -> Protocol {
        self.proto
    }

    /// `+OK`.
    pub fn ok(&mut self) {
        self.out.put_slice(b"+OK\r\n");
    }

    /// A simple string `+<text>`; `\r` and `\n` in `text` become spaces.
    pub fn simple(&mut self, text: &str) {
        self.line(b'+', text.as_bytes());
    }

    /// An error `-<text>`, where `text` starts with the error code, e.g.
    /// `ERR wrong number of arguments for 'get' command` or `WRONGTYPE Operation ...` (no
    /// leading `-`). Trailing `\r`/`\n` are dropped and inner ones become spaces, as Redis's
    /// `addReplyErrorFormat` does.
    pub fn error(&mut self, text: &str) {
        self.error_bytes(text.as_bytes());
    }

    /// [`Reply::error`] for text that is not UTF-8 (Redis echoes client bytes into some
    /// errors).
    pub fn error_bytes(&mut self, text: &[u8]) {
        let mut end = text.len();
        while end > 0 && matches!(text[end - 1], b'\r' | b'\n') {
            end -= 1;
        }
        self.line(b'-', &text[..end]);
    }

    /// An integer `:<n>`.
    pub fn int(&mut self, n: i64) {
        self.out.put_u8(b':');
        put_i64(self.out, n);
        self.out.put_slice(b"\r\n");
    }

    /// A bulk string `$<len>\r\n<bytes>\r\n`.
    pub fn bulk(&mut self, bytes: &[u8]) {
        self.header(b'$', bytes.len());
        self.out.put_slice(bytes);
        self.out.put_slice(b"\r\n");
    }

    /// A null: RESP2 `$-1`, RESP3 `_`.
    pub fn null(&mut self) {
        self.out.put_slice(match self.proto {
            Protocol::Resp2 => b"$-1\r\n",
            Protocol::Resp3 => b"_\r\n",
        });
    }

    /// A null array: RESP2 `*-1`, RESP3 `_`.
    pub fn null_array(&mut self) {
        self.out.put_slice(match self.proto {
            Protocol::Resp2 => b"*-1\r\n",
            Protocol::Resp3 => b"_\r\n",
        });
    }

    /// An array header `*<len>`; `len` elements follow.
    pub fn array(&mut self, len: usize) {
        self.header(b'*', len);
    }

    /// A map header: RESP3 `%<len>`, RESP2 `*<2*len>`; `len` key-value pairs follow.
    pub fn map(&mut self, len: usize) {
        match self.proto {
            Protocol::Resp2 => self.header(b'*', len.saturating_mul(2)),
            Protocol::Resp3 => self.header(b'%', len),
        }
    }

    /// A set header: RESP3 `~<len>`, RESP2 `*<len>`.
    pub fn set(&mut self, len: usize) {
        match self.proto {
            Protocol::Resp2 => self.header(b'*', len),
            Protocol::Resp3 => self.header(b'~', len),
        }
    }

    /// A push header: RESP3 `><len>`, RESP2 `*<len>` (how Redis sends pub/sub messages there).
    pub fn push(&mut self, len: usize) {
        match self.proto {
            Protocol::Resp2 => self.header(b'*', len),
            Protocol::Resp3 => self.header(b'>', len),
        }
    }

    /// A double as Redis's `addReplyDouble`: `%.17g` (`inf`, `-inf`, `nan`, `-nan`); RESP3
    /// `,<text>`, RESP2 a bulk string of the same text.
    pub fn double(&mut self, d: f64) {
        let mut text = [0u8; 32];
        let len = format_g17(d, &mut text);
        match self.proto {
            Protocol::Resp2 => self.bulk(&text[..len]),
            Protocol::Resp3 => {
                self.out.put_u8(b',');
                self.out.put_slice(&text[..len]);
                self.out.put_slice(b"\r\n");
            }
        }
    }

    /// A boolean: RESP3 `#t` / `#f`, RESP2 `:1` / `:0`.
    pub fn bool(&mut self, b: bool) {
        self.out.put_slice(match (self.proto, b) {
            (Protocol::Resp2, true) => b":1\r\n",
            (Protocol::Resp2, false) => b":0\r\n",
            (Protocol::Resp3, true) => b"#t\r\n",
            (Protocol::Resp3, false) => b"#f\r\n",
        });
    }

    /// A verbatim string: RESP3 `=<len+4>\r\n<fmt>:<text>\r\n`, where `<fmt>` is the first
    /// three bytes of `format` padded with spaces (e.g. `txt`); RESP2 a bulk string of `text`.
    pub fn verbatim(&mut self, format: &str, text: &[u8]) {
        match self.proto {
            Protocol::Resp2 => self.bulk(text),
            Protocol::Resp3 => {
                self.header(b'=', text.len().saturating_add(4));
                let mut ext = [b' '; 3];
                for (slot, &b) in ext.iter_mut().zip(format.as_bytes()) {
                    *slot = b;
                }
                self.out.put_slice(&ext);
                self.out.put_u8(b':');
                self.out.put_slice(text);
                self.out.put_slice(b"\r\n");
            }
        }
    }

    /// A big number (decimal digits, optional `-`): RESP3 `(<digits>`, RESP2 a bulk string.
    pub fn big_number(&mut self, digits: &str) {
        match self.proto {
            Protocol::Resp2 => self.bulk(digits.as_bytes()),
            Protocol::Resp3 => self.line(b'(', digits.as_bytes()),
        }
    }

    /// `<kind><len>\r\n`.
    fn header(&mut self, kind: u8, len: usize) {
        self.out.put_u8(kind);
        put_u64(self.out, len as u64);
        self.out.put_slice(b"\r\n");
    }

    /// `<kind><text>\r\n` with `\r`/`\n` inside `text` as spaces.
    fn line(&mut self, kind: u8, text: &[u8]) {
        self.out.reserve(text.len() + 3);
        self.out.put_u8(kind);
        let mut rest = text;
        while let Some(at) = rest.iter().position(|&b| b == b'\r' || b == b'\n') {
            self.out.put_slice(&rest[..at]);
            self.out.put_u8(b' ');
            rest = &rest[at + 1..];
        }
        self.out.put_slice(rest);
        self.out.put_slice(b"\r\n");
    }
}

/// Appends `n` in decimal.
fn put_u64(out: &mut BytesMut, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&digits[at..]);
}

/// Appends `n` in decimal, with a `-` when negative.
fn put_i64(out: &mut BytesMut, n: i64) {
    if n < 0 {
        out.put_u8(b'-');
    }
    put_u64(out, n.unsigned_abs());
}

/// A `fmt::Write` into a fixed stack buffer (formatting that does not fit is cut, never
/// panics; 32 bytes hold every `{:.16e}` of an `f64`).
struct StackText<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl std::fmt::Write for StackText<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = self.buf.len() - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        if n < s.len() {
            Err(std::fmt::Error)
        } else {
            Ok(())
        }
    }
}

/// Writes `d` as C's `printf("%.17g")` (glibc) into `out`, returning the length: 17 significant
/// digits, fixed notation when the exponent is in -4..17 and exponential (`1e+20`, two exponent
/// digits at least) otherwise, trailing zeros dropped; `inf`, `-inf`, `nan`, `-nan`.
pub fn format_g17(d: f64, out: &mut [u8; 32]) -> usize {
    use std::fmt::Write as _;
    let special: Option<&[u8]> = if d.is_nan() {
        Some(if d.is_sign_negative() {
            b"-nan"
        } else {
            b"nan"
        })
    } else if d.is_infinite() {
        Some(if d > 0.0 { b"inf" } else { b"-inf" })
    } else {
        None
    };
    if let Some(text) = special {
        out[..text.len()].copy_from_slice(text);
        return text.len();
    }

    // Rust's `{:.16e}` rounds to 17 significant digits exactly as printf does (correctly
    // rounded): "d.dddddddddddddddde<exp>", with a leading '-' for negatives (and -0.0).
    let mut sci = [0u8; 32];
    let mut writer = StackText {
        buf: &mut sci,
        len: 0,
    };
    let _ = write!(writer, "{:.16e}", d.abs());
    let sci_len = writer.len;
    let sci = &sci[..sci_len];
    let e_at = sci.iter().position(|&b| b == b'e').unwrap_or(sci_len);
    let mut digits = [0u8; 17];
    let mut n_digits = 0;
    for &b in sci[..e_at].iter().filter(|b| b.is_ascii_digit()) {
        if n_digits < digits.len() {
            digits[n_digits] = b;
            n_digits += 1;
        }
    }
    let exp: i32 = std::str::from_utf8(sci.get(e_at + 1..).unwrap_or(b"0"))
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // %g drops trailing zeros of the significant digits (keeping at least one).
    while n_digits > 1 && digits[n_digits - 1] == b'0' {
        n_digits -= 1;
    }
    let digits = &digits[..n_digits];

    let mut len = 0;
    let mut push = |b: u8, len: &mut usize| {
        if *len < out.len() {
            out[*len] = b;
            *len += 1;
        }
    };
    if d.is_sign_negative() {
        push(b'-', &mut len);
    }
    if !(-4..17).contains(&exp) {
        push(digits[0], &mut len);
        if digits.len() > 1 {
            push(b'.', &mut len);
            for &b in &digits[1..] {
                push(b, &mut len);
            }
        }
        push(b'e', &mut len);
        push(if exp < 0 { b'-' } else { b'+' }, &mut len);
        let e = exp.unsigned_abs();
        if e >= 100 {
            push(b'0' + (e / 100) as u8, &mut len);
        }
        push(b'0' + (e / 10 % 10) as u8, &mut len);
        push(b'0' + (e % 10) as u8, &mut len);
    } else if exp < 0 {
        push(b'0', &mut len);
        push(b'.', &mut len);
        for _ in 0..(-exp - 1) {
            push(b'0', &mut len);
        }
        for &b in digits {
            push(b, &mut len);
        }
    } else {
        let int_digits = exp as usize + 1;
        for i in 0..int_digits {
            push(digits.get(i).copied().unwrap_or(b'0'), &mut len);
        }
        if digits.len() > int_digits {
            push(b'.', &mut len);
            for &b in &digits[int_digits..] {
                push(b, &mut len);
            }
        }
    }
    len
}

#[cfg(test)]
mod tests;
