//! Which encoding a unit's export is in: UTF-8, or one of the three legacy Vietnamese
//! encodings old Windows tools still write (Windows-1258, TCVN3 "ABC", VNI), with the
//! evidence — the byte sequences that decided — and the `[input]` line a mapping needs.
//!
//! UTF-8 is recognised by its own rules (a legacy file is almost never valid UTF-8). For
//! the others, the bytes are decoded each way and the readings compared: Vietnamese written
//! correctly is made of a known set of letters, while the wrong decoding of the same bytes
//! gives symbols (`µ`, `¸`, `¶`), letters Vietnamese does not use (`ä`, `ø`, `ñ`) or stray
//! combining marks. The reading with the most Vietnamese letters and the fewest of those
//! wins.

use crate::codec::csv::TextEncoding;
use std::collections::HashMap;
use std::fmt;

/// What a file was found to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Only ASCII bytes: any encoding reads it the same.
    Ascii,
    Utf8,
    Windows1258,
    Tcvn3,
    Vni,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Ascii => "ASCII",
            Encoding::Utf8 => "UTF-8",
            Encoding::Windows1258 => "Windows-1258",
            Encoding::Tcvn3 => "TCVN3 (ABC)",
            Encoding::Vni => "VNI",
        }
    }

    /// The `[input] encoding` that reads this encoding.
    pub fn text_encoding(self) -> TextEncoding {
        match self {
            Encoding::Ascii | Encoding::Utf8 => TextEncoding::Utf8,
            Encoding::Windows1258 => TextEncoding::Windows1258,
            Encoding::Tcvn3 => TextEncoding::Tcvn3,
            Encoding::Vni => TextEncoding::Vni,
        }
    }
}

/// The verdict on one file.
#[derive(Clone, Debug)]
pub struct Detection {
    pub encoding: Encoding,
    /// Why, in sentences: which byte sequences decided.
    pub evidence: Vec<String>,
    /// How sure: the winning reading's score over the runner-up's (legacy encodings).
    pub margin: Option<(i64, i64)>,
}

impl Detection {
    /// The lines to put in the mapping's `[input]` table.
    pub fn input_option(&self) -> String {
        format!(
            "encoding = \"{}\"",
            self.encoding.text_encoding().option_name()
        )
    }
}

impl fmt::Display for Detection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "encoding: {}", self.encoding.name())?;
        for e in &self.evidence {
            writeln!(f, "  - {e}")?;
        }
        write!(f, "in the mapping: [input] {}", self.input_option())
    }
}

/// The Vietnamese letters (lower case; upper case is checked through `to_lowercase`).
const VIETNAMESE: &str =
    "aàáảãạăằắẳẵặâầấẩẫậbcdđeèéẻẽẹêềếểễệghiìíỉĩịklmnoòóỏõọôồốổỗộơờớởỡợpqrstuùúủũụưừứửữựvxyỳýỷỹỵfjwz";

fn is_vietnamese_letter(c: char) -> bool {
    c.to_lowercase().all(|l| VIETNAMESE.contains(l))
}

/// How Vietnamese a reading looks: + for each non-ASCII Vietnamese letter, − for each other
/// non-ASCII character (symbols, foreign letters, combining marks, controls).
///
/// A Vietnamese letter right after `a` or `e` counts against too: Vietnamese spelling never
/// puts an accented vowel there, while VNI text read as TCVN3 does all the time (`Haø`,
/// VNI for "Hà", reads `Haứ`), since every high TCVN3 byte is a letter.
fn score(text: &str) -> i64 {
    let mut total = 0;
    let mut prev = ' ';
    for c in text.chars() {
        if !c.is_ascii() || c.is_ascii_control() && !c.is_ascii_whitespace() {
            total += if !is_vietnamese_letter(c) {
                -2
            } else if matches!(prev, 'a' | 'e' | 'A' | 'E') {
                -3
            } else {
                1
            };
        }
        prev = c;
    }
    total
}

/// Decode `bytes` as `encoding` (a legacy one, or UTF-8 lossily).
pub fn decode(bytes: &[u8], encoding: Encoding) -> String {
    crate::codec::csv::to_text(bytes, encoding.text_encoding())
        .unwrap_or_else(|_| String::from_utf8_lossy(bytes).into_owned())
}

/// Decide which encoding `bytes` are in.
pub fn detect(bytes: &[u8]) -> Detection {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Detection {
            encoding: Encoding::Utf8,
            evidence: vec!["the file starts with the UTF-8 byte-order mark EF BB BF".into()],
            margin: None,
        };
    }
    if bytes.is_ascii() {
        return Detection {
            encoding: Encoding::Ascii,
            evidence: vec![
                "every byte is ASCII: no accented letter to decide by; UTF-8 reads it".into(),
            ],
            margin: None,
        };
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        let words = words_with_high_bytes(bytes, 3);
        let mut evidence = vec![format!(
            "all {} non-ASCII sequences are well-formed UTF-8 (a legacy file almost never is)",
            text.chars().filter(|c| !c.is_ascii()).count()
        )];
        evidence.extend(
            words
                .iter()
                .map(|(w, n)| format!("{} ×{n} reads \"{}\"", hex(w), String::from_utf8_lossy(w))),
        );
        return Detection {
            encoding: Encoding::Utf8,
            evidence,
            margin: None,
        };
    }
    let mut readings: Vec<(Encoding, i64)> =
        [Encoding::Tcvn3, Encoding::Vni, Encoding::Windows1258]
            .into_iter()
            .map(|e| (e, score(&decode(bytes, e))))
            .collect();
    readings.sort_by_key(|(_, s)| -s);
    let (best, best_score) = readings[0];
    let (second, second_score) = readings[1];
    let bad_at = std::str::from_utf8(bytes)
        .err()
        .map_or(0, |e| e.valid_up_to());
    let mut evidence = vec![format!(
        "not UTF-8: byte {bad_at} (0x{:02x}) starts no valid UTF-8 sequence",
        bytes[bad_at]
    )];
    for (word, count) in words_with_high_bytes(bytes, 4) {
        evidence.push(format!(
            "{} ×{count} reads \"{}\" as {}, \"{}\" as {}",
            hex(&word),
            decode(&word, best),
            best.name(),
            decode(&word, second),
            second.name()
        ));
    }
    evidence.push(format!(
        "score (Vietnamese letters minus twice the other non-ASCII characters): {}",
        readings
            .iter()
            .map(|(e, s)| format!("{} {s}", e.name()))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Detection {
        encoding: best,
        evidence,
        margin: Some((best_score, second_score)),
    }
}

/// The most frequent words (runs of non-space bytes) holding a byte ≥ 0x80, most first.
fn words_with_high_bytes(bytes: &[u8], n: usize) -> Vec<(Vec<u8>, usize)> {
    let mut counts: HashMap<&[u8], usize> = HashMap::new();
    let separators = |b: &u8| b.is_ascii_whitespace() || b",;\"'<>=/|\t".contains(b);
    for word in bytes.split(separators) {
        if word.iter().any(|b| *b >= 0x80) && word.len() <= 40 {
            *counts.entry(word).or_default() += 1;
        }
    }
    let mut words: Vec<(Vec<u8>, usize)> =
        counts.into_iter().map(|(w, c)| (w.to_vec(), c)).collect();
    words.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    words.truncate(n);
    words
}

fn hex(bytes: &[u8]) -> String {
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("bytes [{}]", hex.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::unicode_to_tcvn3;

    const SAMPLE: &str = "Họ tên,Địa chỉ\nNguyễn Thị Minh Anh,Số 1 phố Hàng Bài, Hà Nội\nTrần Văn Đức,Thành phố Hồ Chí Minh\n";

    #[test]
    fn utf8_and_ascii() {
        assert_eq!(detect(SAMPLE.as_bytes()).encoding, Encoding::Utf8);
        assert_eq!(detect(b"a,b\n1,2\n").encoding, Encoding::Ascii);
        let d = detect(&[b"\xEF\xBB\xBF".as_slice(), SAMPLE.as_bytes()].concat());
        assert_eq!(d.encoding, Encoding::Utf8);
    }

    #[test]
    fn tcvn3_is_told_from_the_others_with_its_evidence() {
        let bytes = unicode_to_tcvn3(SAMPLE).unwrap();
        let d = detect(&bytes);
        assert_eq!(d.encoding, Encoding::Tcvn3, "{d}");
        assert!(d.to_string().contains("encoding = \"tcvn3\""), "{d}");
        assert!(
            d.evidence.iter().any(|e| e.contains("\"Hà\" as TCVN3")),
            "{d}"
        );
        assert_eq!(decode(&bytes, Encoding::Tcvn3), SAMPLE);
    }

    #[test]
    fn windows_1258_is_told_from_the_others() {
        // Windows-1258 writes tone marks as combining characters after the letter.
        use unicode_normalization::UnicodeNormalization;
        let tone =
            |m: &char| matches!(m, '\u{300}' | '\u{301}' | '\u{303}' | '\u{309}' | '\u{323}');
        let split: String = SAMPLE
            .chars()
            .flat_map(|c| {
                let d: Vec<char> = std::iter::once(c).nfd().collect();
                let base: String = d
                    .iter()
                    .filter(|m| !tone(m))
                    .collect::<String>()
                    .nfc()
                    .collect();
                let marks: String = d.iter().filter(|m| tone(m)).collect();
                (base + &marks).chars().collect::<Vec<_>>()
            })
            .collect();
        let (bytes, _, bad) = encoding_rs::WINDOWS_1258.encode(&split);
        assert!(!bad);
        let d = detect(&bytes);
        assert_eq!(d.encoding, Encoding::Windows1258, "{d}");
        assert_eq!(decode(&bytes, Encoding::Windows1258), SAMPLE);
    }

    #[test]
    fn vni_is_told_from_the_others() {
        // VNI text as its bytes (each character below U+0100 is one byte).
        let text =
            "Ten,Noi\nNguyeãn Vaên Anh,Haø Noäi\nThöôïng Ñình,Ñaø Naüng\nPhuù Yeân,Kyø thuaät\n";
        let bytes: Vec<u8> = text.chars().map(|c| c as u32 as u8).collect();
        let d = detect(&bytes);
        assert_eq!(d.encoding, Encoding::Vni, "{d}");
        assert!(decode(&bytes, Encoding::Vni).contains("Hà Nội"));
    }
}
