//! Vietnamese text: the legacy encodings TCVN3 (ABC) and VNI converted to Unicode, NFC
//! normalisation, trimming and case.
//!
//! TCVN3 (TCVN 5712:1993, the "ABC" fonts) gives every precomposed letter one byte. Legacy
//! text usually reaches us as if it were Latin-1 ("Hµ Néi" for "Hà Nội"), so the field
//! transform maps characters U+0080..U+00FF through the table; a whole TCVN3 file is decoded
//! byte by byte. The table agrees with glibc's `TCVN5712-1` (checked by a test when `iconv`
//! is present).
//!
//! VNI (VNI-Windows fonts) writes a letter as its base letter followed by Latin-1
//! characters standing for the diacritics ("Haø Noäi" for "Hà Nội"); the marks are turned
//! into Unicode combining marks and the result composed with NFC.

use unicode_normalization::UnicodeNormalization;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Legacy {
    Tcvn3,
    Vni,
}

/// TCVN 5712:1993 (VN3), bytes 0x80..=0xFF.
const TCVN3_HIGH: [u16; 128] = [
    0x00C0, 0x1EA2, 0x00C3, 0x00C1, 0x1EA0, 0x1EB6, 0x1EAC, 0x00C8, // 0x80
    0x1EBA, 0x1EBC, 0x00C9, 0x1EB8, 0x1EC6, 0x00CC, 0x1EC8, 0x0128, // 0x88
    0x00CD, 0x1ECA, 0x00D2, 0x1ECE, 0x00D5, 0x00D3, 0x1ECC, 0x1ED8, // 0x90
    0x1EDC, 0x1EDE, 0x1EE0, 0x1EDA, 0x1EE2, 0x00D9, 0x1EE6, 0x0168, // 0x98
    0x00A0, 0x0102, 0x00C2, 0x00CA, 0x00D4, 0x01A0, 0x01AF,
    0x0110, // 0xA0 Ă Â Ê Ô Ơ Ư Đ
    0x0103, 0x00E2, 0x00EA, 0x00F4, 0x01A1, 0x01B0, 0x0111,
    0x1EB0, // 0xA8 ă â ê ô ơ ư đ
    0x0300, 0x0309, 0x0303, 0x0301, 0x0323, 0x00E0, 0x1EA3,
    0x00E3, // 0xB0 combining marks, à ả ã
    0x00E1, 0x1EA1, 0x1EB2, 0x1EB1, 0x1EB3, 0x1EB5, 0x1EAF, 0x1EB4, // 0xB8 á ạ
    0x1EAE, 0x1EA6, 0x1EA8, 0x1EAA, 0x1EA4, 0x1EC0, 0x1EB7, 0x1EA7, // 0xC0
    0x1EA9, 0x1EAB, 0x1EA5, 0x1EAD, 0x00E8, 0x1EC2, 0x1EBB, 0x1EBD, // 0xC8
    0x00E9, 0x1EB9, 0x1EC1, 0x1EC3, 0x1EC5, 0x1EBF, 0x1EC7, 0x00EC, // 0xD0
    0x1EC9, 0x1EC4, 0x1EBE, 0x1ED2, 0x0129, 0x00ED, 0x1ECB, 0x00F2, // 0xD8
    0x1ED4, 0x1ECF, 0x00F5, 0x00F3, 0x1ECD, 0x1ED3, 0x1ED5, 0x1ED7, // 0xE0
    0x1ED1, 0x1ED9, 0x1EDD, 0x1EDF, 0x1EE1, 0x1EDB, 0x1EE3, 0x00F9, // 0xE8
    0x1ED6, 0x1EE7, 0x0169, 0x00FA, 0x1EE5, 0x1EEB, 0x1EED, 0x1EEF, // 0xF0
    0x1EE9, 0x1EF1, 0x1EF3, 0x1EF7, 0x1EF9, 0x00FD, 0x1EF5, 0x1ED0, // 0xF8
];

/// TCVN 5712 also puts a few capitals in the C0 control range.
fn tcvn3_low(b: u8) -> Option<char> {
    let c = match b {
        0x01 => 0x00DA,
        0x02 => 0x1EE4,
        0x04 => 0x1EEA,
        0x05 => 0x1EEC,
        0x06 => 0x1EEE,
        0x11 => 0x1EE8,
        0x12 => 0x1EF0,
        0x13 => 0x1EF2,
        0x14 => 0x1EF6,
        0x15 => 0x1EF8,
        0x16 => 0x00DD,
        0x17 => 0x1EF4,
        _ => return None,
    };
    char::from_u32(c)
}

fn tcvn3_char(c: char) -> char {
    let code = c as u32;
    if (0x80..=0xFF).contains(&code) {
        char::from_u32(TCVN3_HIGH[(code - 0x80) as usize] as u32).unwrap_or(c)
    } else {
        c
    }
}

/// Decode raw bytes in a legacy encoding.
pub fn decode_legacy_bytes(bytes: &[u8], legacy: Legacy) -> String {
    match legacy {
        Legacy::Tcvn3 => {
            let s: String = bytes
                .iter()
                .map(|&b| tcvn3_low(b).unwrap_or_else(|| tcvn3_char(b as char)))
                .collect();
            // Bytes 0xB0..0xB4 are combining marks: compose them onto their letters.
            s.nfc().collect()
        }
        Legacy::Vni => vni_to_unicode(&bytes.iter().map(|&b| b as char).collect::<String>()),
    }
}

/// Encode Unicode text as TCVN3 bytes (what the old tools that feed the bus write). A
/// character with no TCVN3 byte is an error naming it.
pub fn unicode_to_tcvn3(s: &str) -> Result<Vec<u8>, char> {
    let mut out = Vec::with_capacity(s.len());
    for c in s.nfc() {
        if (c as u32) < 0x80 {
            out.push(c as u8);
            continue;
        }
        let pos = TCVN3_HIGH
            .iter()
            .position(|&u| u as u32 == c as u32)
            .ok_or(c)?;
        out.push(0x80 + pos as u8);
    }
    Ok(out)
}

/// TCVN3 text as the Latin-1 characters old exports put inside otherwise UTF-8 files
/// (characters without a TCVN3 byte are kept as they are).
pub fn unicode_to_tcvn3_chars(s: &str) -> String {
    s.nfc()
        .map(|c| match unicode_to_tcvn3(c.encode_utf8(&mut [0; 4])) {
            Ok(b) => b[0] as char,
            Err(_) => c,
        })
        .collect()
}

/// Convert text whose characters are legacy code points (read as Latin-1) to Unicode.
/// Characters above U+00FF are left alone, so text that is already Unicode passes through.
pub fn legacy_to_unicode(s: &str, legacy: Legacy) -> String {
    match legacy {
        Legacy::Tcvn3 => {
            if s.is_ascii() {
                return s.to_string();
            }
            let out: String = s.chars().map(tcvn3_char).collect();
            out.nfc().collect()
        }
        Legacy::Vni => vni_to_unicode(s),
    }
}

/// The combining marks a VNI diacritic character stands for, when it follows a vowel.
fn vni_marks(c: char) -> Option<&'static [char]> {
    const ACUTE: char = '\u{301}';
    const GRAVE: char = '\u{300}';
    const HOOK: char = '\u{309}';
    const TILDE: char = '\u{303}';
    const DOT: char = '\u{323}';
    const CIRC: char = '\u{302}';
    const BREVE: char = '\u{306}';
    Some(match c.to_lowercase().next()? {
        'ù' => &[ACUTE],
        'ø' => &[GRAVE],
        'û' => &[HOOK],
        'õ' => &[TILDE],
        'ï' => &[DOT],
        'â' => &[CIRC],
        'á' => &[CIRC, ACUTE],
        'à' => &[CIRC, GRAVE],
        'å' => &[CIRC, HOOK],
        'ã' => &[CIRC, TILDE],
        'ä' => &[CIRC, DOT],
        'ê' => &[BREVE],
        'é' => &[BREVE, ACUTE],
        'è' => &[BREVE, GRAVE],
        'ú' => &[BREVE, HOOK],
        'ü' => &[BREVE, TILDE],
        'ë' => &[BREVE, DOT],
        _ => return None,
    })
}

/// VNI characters that stand alone for a Vietnamese letter.
fn vni_letter(c: char) -> Option<char> {
    Some(match c {
        'ô' => 'ơ',
        'Ô' => 'Ơ',
        'ö' => 'ư',
        'Ö' => 'Ư',
        'ñ' => 'đ',
        'Ñ' => 'Đ',
        'í' => 'í',
        'Í' => 'Í',
        'ì' => 'ì',
        'Ì' => 'Ì',
        'æ' => 'ỉ',
        'Æ' => 'Ỉ',
        'ó' => 'ĩ',
        'Ó' => 'Ĩ',
        'ò' => 'ị',
        'Ò' => 'Ị',
        'î' => 'ỵ',
        'Î' => 'Ỵ',
        _ => return None,
    })
}

fn vni_to_unicode(s: &str) -> String {
    if s.is_ascii() {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    // Whether the last character written can take VNI marks (a vowel), and whether it
    // already took a vowel mark (circumflex/breve), which the next mark must not repeat.
    let mut after_vowel = false;
    let mut took_quality = false;
    for c in s.chars() {
        if after_vowel && let Some(marks) = vni_marks(c) {
            let quality = marks.len() == 2 || matches!(marks[0], '\u{302}' | '\u{306}');
            if !(quality && took_quality) {
                out.extend(marks.iter());
                took_quality |= quality;
                continue;
            }
        }
        if let Some(letter) = vni_letter(c) {
            out.push(letter);
            after_vowel = matches!(letter, 'ơ' | 'Ơ' | 'ư' | 'Ư');
            took_quality = after_vowel;
            continue;
        }
        out.push(c);
        after_vowel = matches!(c, 'a' | 'e' | 'o' | 'u' | 'y' | 'A' | 'E' | 'O' | 'U' | 'Y');
        took_quality = false;
    }
    out.nfc().collect()
}

/// Unicode NFC: the form the national platforms compare names in.
pub fn nfc(s: &str) -> String {
    if is_nfc(s) {
        s.to_string()
    } else {
        s.nfc().collect()
    }
}

/// Whether `s` is already NFC (almost all text is): the quick check avoids rebuilding it.
pub fn is_nfc(s: &str) -> bool {
    s.is_ascii()
        || s.chars().all(precomposed_latin)
        || unicode_normalization::is_nfc_quick(s.chars())
            == unicode_normalization::IsNormalized::Yes
}

/// ASCII and the precomposed Latin letters Vietnamese is written with (Latin-1, Latin
/// Extended-A, ơ ư, Latin Extended Additional): each is NFC on its own and combines with
/// nothing, so text made only of them is NFC without the table lookups of the full check.
fn precomposed_latin(c: char) -> bool {
    matches!(c, '\0'..='\u{7f}' | '\u{a0}'..='\u{17f}' | '\u{1a0}'..='\u{1b0}' | '\u{1e00}'..='\u{1eff}')
}

/// Collapse runs of whitespace to one space and trim the ends.
pub fn collapse_spaces(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Whether `a` and `b` are equal once lowercased (`str::to_lowercase`), without copying
/// ASCII text: conditions with `ignore_case` compare every record's code this way.
pub fn eq_lowercase(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        a.to_lowercase() == b.to_lowercase()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn eq_lowercase_agrees_with_lowercasing_both() {
        let words = [
            "approved",
            "APPROVED",
            "Approved",
            "approve",
            "",
            "Đã duyệt",
            "ĐÃ DUYỆT",
            "ΟΔΟΣ",
            "οδος",
            "οδοσ",
            "K",
            "\u{212a}",
        ];
        for a in words {
            for b in words {
                assert_eq!(
                    super::eq_lowercase(a, b),
                    a.to_lowercase() == b.to_lowercase(),
                    "{a:?} {b:?}"
                );
            }
        }
    }

    #[test]
    fn the_precomposed_latin_shortcut_agrees_with_the_full_nfc_check() {
        for c in (0u32..0x2000)
            .filter_map(char::from_u32)
            .filter(|c| precomposed_latin(*c))
        {
            assert_eq!(
                unicode_normalization::char::canonical_combining_class(c),
                0,
                "{c:?}"
            );
            assert_eq!(
                unicode_normalization::is_nfc_quick(std::iter::once(c)),
                unicode_normalization::IsNormalized::Yes,
                "{c:?}"
            );
        }
        assert!(is_nfc("Nguyễn Thị Minh Anh"));
        assert!(!is_nfc("Nguye\u{0302}\u{0303}n"));
    }

    use super::*;

    #[test]
    fn tcvn3_place_names() {
        assert_eq!(legacy_to_unicode("Hµ Néi", Legacy::Tcvn3), "Hà Nội");
        assert_eq!(legacy_to_unicode("B¶o Th¾ng", Legacy::Tcvn3), "Bảo Thắng");
        assert_eq!(
            legacy_to_unicode("M\u{ad}êng Kh\u{ad}¬ng", Legacy::Tcvn3),
            "Mường Khương"
        );
        assert_eq!(
            legacy_to_unicode("§µo V¨n ¸nh", Legacy::Tcvn3),
            "Đào Văn ánh"
        );
        // Characters above U+00FF are already Unicode and are left alone.
        assert_eq!(legacy_to_unicode("Ngõ ộ", Legacy::Tcvn3), "Ngừ ộ");
    }

    #[test]
    fn tcvn3_round_trip() {
        let text = "Nguyễn Thị Hồng Ánh, Đường Trường Chinh";
        let bytes = unicode_to_tcvn3(text).unwrap();
        assert_eq!(decode_legacy_bytes(&bytes, Legacy::Tcvn3), text);
        assert_eq!(unicode_to_tcvn3("€"), Err('€'));
    }

    #[test]
    fn vni_words() {
        assert_eq!(legacy_to_unicode("Haø Noäi", Legacy::Vni), "Hà Nội");
        assert_eq!(
            legacy_to_unicode("Nguyeãn Vaên Anh", Legacy::Vni),
            "Nguyễn Văn Anh"
        );
        assert_eq!(legacy_to_unicode("Ñaø Naüng", Legacy::Vni), "Đà Nẵng");
        assert_eq!(
            legacy_to_unicode("Thöôïng Ñình", Legacy::Vni),
            "Thượng Đình"
        );
        assert_eq!(legacy_to_unicode("Phuù Yeân", Legacy::Vni), "Phú Yên");
        assert_eq!(
            legacy_to_unicode("THAØNH PHOÁ HOÀ CHÍ MINH", Legacy::Vni),
            "THÀNH PHỐ HỒ CHÍ MINH"
        );
        assert_eq!(legacy_to_unicode("Kyø thuaät", Legacy::Vni), "Kỳ thuật");
    }

    #[test]
    fn tcvn3_table_agrees_with_glibc_iconv_when_present() {
        let bytes: Vec<u8> = (0xA0u8..=0xFF)
            .filter(|b| !(0xB0..=0xB4).contains(b))
            .collect();
        let ours = decode_legacy_bytes(&bytes, Legacy::Tcvn3);
        let Ok(out) = std::process::Command::new("iconv")
            .args(["-f", "TCVN5712-1", "-t", "UTF-8"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(&bytes)?;
                child.wait_with_output()
            })
        else {
            // iconv is part of libc-bin on Debian; the hand-written cases above still run.
            return;
        };
        assert_eq!(
            ours,
            String::from_utf8(out.stdout)
                .unwrap()
                .nfc()
                .collect::<String>()
        );
    }
}
