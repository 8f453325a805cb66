//! A JSON reader for the common case, about twice as fast as going through serde's visitor:
//! the input is checked as UTF-8 once, strings are found eight bytes at a time and handed
//! out as slices of it, and fields the mapping does not read are stepped over.
//!
//! It reads the subset of JSON that units send every day and gives up (`None`) on anything
//! else: nesting deeper than [`MAX_DEPTH`], a `\u` escape of a UTF-16 surrogate, invalid
//! UTF-8 anywhere, and of course any syntax error. [`super::want::read_json`] then reads the
//! input again with `serde_json`, which gives the value or the exact error message it always
//! gave. So the contract is one-sided: whenever this reader returns a value, it is the value
//! the serde reader returns (checked over every fixture, a mutated corpus and by the
//! `decode_json` fuzz target); when it is unsure, it does not guess.

use super::value::Val;
use super::want::Want;
use serde_json::Number;
use std::borrow::Cow;

/// Deeper input is left to serde_json, whose own limit (128) then applies.
pub const MAX_DEPTH: usize = 100;

/// Read one JSON document keeping what `want` names (everything when `None`), or `None`
/// when the input is outside the subset this reader takes (see the module docs).
pub fn read<'a>(input: &'a [u8], want: Option<&Want>) -> Option<Val<'a>> {
    let text = std::str::from_utf8(input).ok()?;
    let mut s = Scanner {
        text,
        bytes: input,
        at: 0,
        depth: 0,
    };
    s.skip_ws();
    let value = s.value(want)?;
    s.skip_ws();
    (s.at == input.len()).then_some(value)
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    depth: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    /// Step over `c` (after whitespace), or give up.
    fn expect(&mut self, c: u8) -> Option<()> {
        self.skip_ws();
        (self.peek()? == c).then(|| self.at += 1)
    }

    /// A value, kept as `want` says (`None`: all of it). Whitespace before it is skipped.
    fn value(&mut self, want: Option<&Want>) -> Option<Val<'a>> {
        self.skip_ws();
        match self.peek()? {
            b'{' => self.object(want),
            b'[' => self.array(want),
            b'"' => self.string_as(Val::Str),
            b't' => self.literal(b"true", Val::Bool(true)),
            b'f' => self.literal(b"false", Val::Bool(false)),
            b'n' => self.literal(b"null", Val::Null),
            b'-' | b'0'..=b'9' => self.number().map(Val::Num),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8], v: Val<'a>) -> Option<Val<'a>> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| {
            self.at = end;
            v
        })
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    fn object(&mut self, want: Option<&Want>) -> Option<Val<'a>> {
        self.enter()?;
        self.at += 1;
        // At most one field per name the mapping reads (a repeated key aside).
        let mut fields = Vec::with_capacity(want.map_or(4, |w| w.len()));
        self.skip_ws();
        if self.peek()? == b'}' {
            self.at += 1;
        } else {
            loop {
                self.skip_ws();
                if self.peek()? != b'"' {
                    return None;
                }
                let key = self.string()?;
                self.expect(b':')?;
                match want {
                    None => {
                        let v = self.value(None)?;
                        fields.push((key, v));
                    }
                    Some(w) => match w.child(&key) {
                        Some(child) => {
                            let v = self.value(child.filter())?;
                            fields.push((key, v));
                        }
                        None => self.skip_value()?,
                    },
                }
                self.skip_ws();
                match self.peek()? {
                    b',' => self.at += 1,
                    b'}' => {
                        self.at += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        Some(Val::Obj(fields))
    }

    fn array(&mut self, want: Option<&Want>) -> Option<Val<'a>> {
        self.enter()?;
        self.at += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek()? == b']' {
            self.at += 1;
        } else {
            loop {
                items.push(self.value(want)?);
                self.skip_ws();
                match self.peek()? {
                    b',' => self.at += 1,
                    b']' => {
                        self.at += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        Some(Val::Arr(items))
    }

    /// Check a value and step over it without building it.
    fn skip_value(&mut self) -> Option<()> {
        self.skip_ws();
        match self.peek()? {
            b'{' | b'[' => {
                let close = if self.peek()? == b'{' { b'}' } else { b']' };
                let is_object = close == b'}';
                self.enter()?;
                self.at += 1;
                self.skip_ws();
                if self.peek()? == close {
                    self.at += 1;
                } else {
                    loop {
                        if is_object {
                            self.skip_ws();
                            if self.peek()? != b'"' {
                                return None;
                            }
                            self.string()?;
                            self.expect(b':')?;
                        }
                        self.skip_value()?;
                        self.skip_ws();
                        match self.peek()? {
                            b',' => self.at += 1,
                            c if c == close => {
                                self.at += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
                self.depth -= 1;
                Some(())
            }
            _ => self.value(None).map(drop),
        }
    }

    /// A string at `"`: a slice of the input, or a copy when it has escapes.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.string_as(|s| s)
    }

    /// [`Scanner::string`] handed to `wrap` where it is made: built in place as a value,
    /// rather than repacked from a returned `Option` (a stall on every string).
    #[inline(always)]
    fn string_as<T>(&mut self, wrap: impl Fn(Cow<'a, str>) -> T) -> Option<T> {
        let start = self.at + 1;
        let end = super::output::next_escape(self.bytes, start)?;
        if self.bytes[end] == b'"' {
            self.at = end + 1;
            return Some(wrap(Cow::Borrowed(&self.text[start..end])));
        }
        self.escaped_string(start, end).map(wrap)
    }

    /// The rest of a string from its first escape (or control byte) at `at`: a copy with
    /// each escape decoded; a raw control byte is a syntax error.
    fn escaped_string(&mut self, start: usize, mut at: usize) -> Option<Cow<'a, str>> {
        let mut out = String::with_capacity(at - start + 16);
        let mut from = start;
        loop {
            out.push_str(&self.text[from..at]);
            match self.bytes[at] {
                b'"' => {
                    self.at = at + 1;
                    return Some(Cow::Owned(out));
                }
                b'\\' => {
                    let (c, len) = self.escape(at)?;
                    out.push(c);
                    from = at + len;
                }
                _ => return None,
            }
            at = super::output::next_escape(self.bytes, from)?;
        }
    }

    /// The character of the escape at `at` (a backslash) and the escape's length.
    fn escape(&self, at: usize) -> Option<(char, usize)> {
        let c = match *self.bytes.get(at + 1)? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hex = self.text.get(at + 2..at + 6)?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                // A surrogate (half of a pair, or a lone one) is left to serde_json.
                let code = u32::from_str_radix(hex, 16).ok()?;
                return char::from_u32(code).map(|c| (c, 6));
            }
            _ => return None,
        };
        Some((c, 2))
    }

    /// A number: whole numbers of up to 18 digits directly, anything else (fractions,
    /// exponents, long numbers) by serde_json's own number parser over its text, so that
    /// the value is bit for bit the one serde_json gives.
    fn number(&mut self) -> Option<Number> {
        let start = self.at;
        let digits = |s: &mut Self| {
            let from = s.at;
            while let Some(b'0'..=b'9') = s.peek() {
                s.at += 1;
            }
            s.at - from
        };
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let int_start = self.at;
        let int_len = digits(self);
        if int_len == 0 || (int_len > 1 && self.bytes[int_start] == b'0') {
            return None;
        }
        let mut simple = true;
        if self.peek() == Some(b'.') {
            self.at += 1;
            if digits(self) == 0 {
                return None;
            }
            simple = false;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if digits(self) == 0 {
                return None;
            }
            simple = false;
        }
        let text = &self.text[start..self.at];
        // `-0` is a float (-0.0) to serde_json: left to its parser like the rest.
        if simple && int_len <= 18 && !(negative && self.bytes[int_start] == b'0') {
            let n: u64 = self.text[int_start..int_start + int_len].parse().ok()?;
            return Some(if negative {
                Number::from(-(n as i64))
            } else {
                Number::from(n)
            });
        }
        serde_json::from_str::<Number>(text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::want::{read_json_with_serde, tests::want};

    /// The fast reader against serde's on one input: same value, or it gives up.
    fn agrees(input: &[u8], want: Option<&Want>) -> bool {
        let reference = read_json_with_serde(input, want, usize::MAX);
        match read(input, want) {
            Some(v) => {
                let r = reference.unwrap_or_else(|e| {
                    panic!(
                        "took {:?}, serde refused: {e}",
                        String::from_utf8_lossy(input)
                    )
                });
                assert_eq!(
                    format!("{v:?}"),
                    format!("{r:?}"),
                    "{:?}",
                    String::from_utf8_lossy(input)
                );
                true
            }
            None => false,
        }
    }

    #[test]
    fn reads_what_serde_reads_and_gives_up_on_the_rest() {
        let w = want(&["a.b", "d[0].e", "n", "s"]);
        let taken: &[&str] = &[
            r#"{"a": {"b": "x", "c": [1, 2]}, "d": [{"e": "y", "f": 1}], "g": "z"}"#,
            r#" {"a":{"b":{"deep":[true,false,null]}},"a":{"b":2}} "#,
            r#"{"n": -12, "s": "tab\tquote\" slash\/ u\u00e9 \u1ec7 nl\n"}"#,
            r#"{"n": 12.50, "s": ""}"#,
            r#"{"n": 1e3, "x": [1.5e-3, -0.0, 123456789012345678901234]}"#,
            r#"{"n": 123456789012345678, "s": "Đề tài"}"#,
            r#"{"n": -123456789012345678}"#,
            r#"{"n": 18446744073709551615}"#,
            r#"{"n": -9223372036854775808}"#,
            r#"{"n": -0}"#,
            r#"{"n": 0, "s": null}"#,
            "[]",
            "{}",
            r#"[{"a": {"b": 1}}, {"a": 2}]"#,
            "\"text\"",
            "42",
        ];
        for input in taken {
            assert!(agrees(input.as_bytes(), Some(&w)), "gave up on {input}");
            assert!(agrees(input.as_bytes(), None), "gave up on {input}");
        }
        let refused: &[&[u8]] = &[
            b"",
            b"{",
            b"{\"a\": }",
            b"{\"a\": 1,}",
            b"[1,]",
            b"{\"a\" 1}",
            b"{a: 1}",
            b"01",
            b"1.",
            b"-",
            b"1e",
            b"tru",
            b"truex",
            b"{} x",
            b"\"raw\ttab\"",
            b"\"bad \\x escape\"",
            b"\"\\ud83d\\ude00\"",
            b"\"\\u12\"",
            b"{\"s\": \"\xff\"}",
            b"{\"x\": \"\xff\"}",
            b"1e400",
        ];
        for input in refused {
            assert!(
                !agrees(input, Some(&w)),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(!agrees(deep.as_bytes(), None));
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(agrees(ok.as_bytes(), None));
    }

    #[test]
    fn agrees_with_serde_on_every_fixture_and_mutations_of_them() {
        use crate::fixtures::corpus;
        let w = want(&[
            "dossierCode",
            "applicant.fullName",
            "attachments[0].name",
            "fees",
        ]);
        let mut taken = 0;
        for (n, input) in corpus::case_inputs("json").iter().enumerate() {
            // Every case that is JSON at all is read by the fast reader.
            if serde_json::from_slice::<serde_json::Value>(input).is_ok() {
                assert!(agrees(input, None), "{}", String::from_utf8_lossy(input));
                assert!(agrees(input, Some(&w)));
            }
            let alphabet = b"\"\\{}[],:0-.eE \x01\xc3u";
            for m in corpus::mutations(input, alphabet, 300, n as u64) {
                taken += usize::from(agrees(&m, Some(&w)));
                agrees(&m, None);
            }
        }
        assert!(taken > 0);
    }
}
