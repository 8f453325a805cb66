//! The reports as PDFs to print and sign (the KPI report, the form 06a): A4 landscape pages of text in DejaVu Sans,
//! which covers Vietnamese, written with `pdf-writer`.
//!
//! The font is embedded as a subset of the glyphs the report uses (`subsetter`) in a CID
//! font (`Identity-H`: each glyph is two bytes, its id in the subset), with the glyphs'
//! widths and a `ToUnicode` map, so a reader shows the accents and can search and copy
//! the text. Streams are deflated. (This replaced printpdf, whose font stack was the
//! largest part of a first build; the document is the same.)

use super::report::{HEADINGS, ReportRow};
use pdf_writer::types::{CidFontType, FontFlags, SystemInfo};
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use std::collections::BTreeMap;

/// The font of the PDF: DejaVu Sans covers Vietnamese (its licence is beside it).
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The KPI report's title, in its information dictionary and atop each page.
const TITLE: &str = "Báo cáo chỉ tiêu Kế hoạch hành động năm 2024";

/// Points per millimetre.
const PT_PER_MM: f32 = 72.0 / 25.4;

/// A report's rows per page.
const ROWS_PER_PAGE: usize = 22;

/// A report as a table to print: what [`table_pdf`] lays out.
pub struct Table {
    /// The document's title (its information dictionary).
    pub name: String,
    /// The line atop each page.
    pub title: String,
    /// Each column's x position (mm) on a 297 mm wide page.
    pub columns: Vec<f32>,
    /// Each column's heading; `\n` breaks it into lines.
    pub headings: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Lines under the table on the last page, before the signatures.
    pub notes: Vec<String>,
}

/// The KPI report ([`ReportRow`]s) as a PDF.
pub fn pdf(rows: &[ReportRow], notes: &[String]) -> Result<Vec<u8>, String> {
    let period = rows.first().map_or("—", |r| r.period.as_str());
    let headings = HEADINGS[1..].iter().map(|h| match *h {
        // The period is in the title; the other headings shortened to fit.
        "Chỉ tiêu năm 2024 (%)" => "Chỉ tiêu (%)".to_string(),
        "Mục (Phụ lục I)" => "Mục".to_string(),
        other => other.to_string(),
    });
    let rows = rows.iter().map(|r| {
        vec![
            // The unit's full name, shortened to its column.
            r.unit.chars().take(14).collect(),
            r.plan_item.clone(),
            r.name.chars().take(80).collect(),
            r.numerator.to_string(),
            r.denominator.to_string(),
            r.percent
                .map(crate::admin::words::decimal_vn)
                .unwrap_or_else(|| "—".into()),
            r.target_text(),
            r.assessment().to_string(),
        ]
    });
    table_pdf(&Table {
        name: TITLE.to_string(),
        title: format!("{TITLE} (QĐ 1205/QĐ-BKHCN, Phụ lục I) — {period}"),
        columns: vec![10.0, 32.0, 44.0, 196.0, 214.0, 232.0, 250.0, 268.0],
        headings: headings.collect(),
        rows: rows.collect(),
        notes: notes.to_vec(),
    })
}

/// A4 landscape, a title, the column headings, then a line per row; as many pages as
/// needed; the last page ends with the notes, the place, the date and the signature
/// blocks.
pub fn table_pdf(table: &Table) -> Result<Vec<u8>, String> {
    let face = ttf_parser::Face::parse(FONT, 0).map_err(|e| format!("the report's font: {e}"))?;
    let mut glyphs = Glyphs::new(&face);
    // A report with no rows still has its page.
    let chunks: Vec<&[Vec<String>]> = if table.rows.is_empty() {
        vec![&table.rows[..0]]
    } else {
        table.rows.chunks(ROWS_PER_PAGE).collect()
    };
    let contents: Vec<Vec<u8>> = chunks
        .iter()
        .enumerate()
        .map(|(n, chunk)| {
            let last = n + 1 == chunks.len();
            page_text(&mut glyphs, table, n, chunk, last)
        })
        .collect();
    document(&face, &glyphs, &table.name, &contents)
}

/// The text of page `n` as placed strings: (x mm, y mm, size pt, text).
fn page_items(
    table: &Table,
    n: usize,
    chunk: &[Vec<String>],
    last: bool,
) -> Vec<(f32, f32, f32, String)> {
    let mut items = vec![
        (10.0, 200.0, 12.0, table.title.clone()),
        (10.0, 194.0, 8.0, format!("Trang {}", n + 1)),
    ];
    let mut top = 185.0f32;
    for (x, h) in table.columns.iter().zip(&table.headings) {
        for (i, line) in h.split('\n').enumerate() {
            let y = 185.0 - i as f32 * 3.5;
            top = top.min(y);
            items.push((*x, y, 7.0, line.to_string()));
        }
    }
    let first_row = top - 7.0;
    for (i, cells) in chunk.iter().enumerate() {
        let y = first_row - i as f32 * 5.5;
        for (x, cell) in table.columns.iter().zip(cells) {
            items.push((*x, y, 7.0, cell.clone()));
        }
    }
    // A document meant to be printed and signed.
    if last {
        let mut y = first_row - chunk.len() as f32 * 5.5 - 4.0;
        for note in &table.notes {
            items.push((10.0, y, 7.0, note.clone()));
            y -= 4.5;
        }
        y -= 6.0;
        let today = crate::admin::words::place_and_date(crate::time::now_ms());
        items.push((190.0, y, 9.0, today));
        for (x, dy, size, text) in [
            (40.0, 7.0, 9.0, "NGƯỜI LẬP BIỂU"),
            (195.0, 7.0, 9.0, "THỦ TRƯỞNG ĐƠN VỊ"),
            (40.0, 12.0, 8.0, "(Ký, ghi rõ họ tên)"),
            (192.0, 12.0, 8.0, "(Ký, ghi rõ họ tên, đóng dấu)"),
        ] {
            items.push((x, y - dy, size, text.to_string()));
        }
    }
    items
}

/// Page `n`'s content stream (not yet deflated).
fn page_text(
    glyphs: &mut Glyphs,
    table: &Table,
    n: usize,
    chunk: &[Vec<String>],
    last: bool,
) -> Vec<u8> {
    let mut content = Content::new();
    for (x, y, size, text) in page_items(table, n, chunk, last) {
        content.begin_text();
        content.set_font(Name(b"F1"), size);
        content.next_line(x * PT_PER_MM, y * PT_PER_MM);
        content.show(Str(&glyphs.encode(&text)));
        content.end_text();
    }
    content.finish().into_vec()
}

/// The glyphs the report uses, numbered as in the subset font: `subsetter` gives each
/// used glyph of the font a new id, dense from 0 (the missing glyph), and the text is
/// written with those ids.
struct Glyphs<'f> {
    face: &'f ttf_parser::Face<'f>,
    remapper: subsetter::GlyphRemapper,
    /// New glyph id → the character it shows (for the `ToUnicode` map).
    chars: BTreeMap<u16, char>,
}

impl<'f> Glyphs<'f> {
    fn new(face: &'f ttf_parser::Face<'f>) -> Glyphs<'f> {
        Glyphs {
            face,
            remapper: subsetter::GlyphRemapper::new(),
            chars: BTreeMap::new(),
        }
    }

    /// `text` as two-byte glyph ids of the subset (a character the font lacks shows as
    /// the missing glyph).
    fn encode(&mut self, text: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len() * 2);
        for c in text.chars() {
            let old = self.face.glyph_index(c).map_or(0, |g| g.0);
            let new = self.remapper.remap(old);
            if old != 0 {
                self.chars.entry(new).or_insert(c);
            }
            out.extend_from_slice(&new.to_be_bytes());
        }
        out
    }
}

/// The whole file: catalogue, pages, the font (Type 0 → CID font → descriptor → the
/// subset's bytes, and its `ToUnicode` map) and the document information.
fn document(
    face: &ttf_parser::Face,
    glyphs: &Glyphs,
    name: &str,
    contents: &[Vec<u8>],
) -> Result<Vec<u8>, String> {
    let mut next = 1;
    let mut new_ref = || {
        next += 1;
        Ref::new(next - 1)
    };
    let (catalog, tree, info) = (new_ref(), new_ref(), new_ref());
    let (type0, cid, descriptor, font_file, cmap) =
        (new_ref(), new_ref(), new_ref(), new_ref(), new_ref());
    let pages: Vec<(Ref, Ref)> = contents.iter().map(|_| (new_ref(), new_ref())).collect();

    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    pdf.document_info(info)
        .title(TextStr(name))
        .creator(TextStr("lienthong"));
    pdf.pages(tree)
        .kids(pages.iter().map(|(page, _)| *page))
        .count(pages.len() as i32);
    // A4 landscape.
    let media = Rect::new(0.0, 0.0, 297.0 * PT_PER_MM, 210.0 * PT_PER_MM);
    for ((page, content_ref), content) in pages.iter().zip(contents) {
        let mut p = pdf.page(*page);
        p.media_box(media).parent(tree).contents(*content_ref);
        p.resources().fonts().pair(Name(b"F1"), type0);
        p.finish();
        pdf.stream(*content_ref, &deflate(content))
            .filter(Filter::FlateDecode);
    }

    let base = Name(b"LTRPRT+DejaVuSans");
    let system = SystemInfo {
        registry: Str(b"Adobe"),
        ordering: Str(b"Identity"),
        supplement: 0,
    };
    pdf.type0_font(type0)
        .base_font(base)
        .encoding_predefined(Name(b"Identity-H"))
        .descendant_font(cid)
        .to_unicode(cmap);
    let per_em = f32::from(face.units_per_em());
    let scale = |v: f32| v * 1000.0 / per_em;
    let widths: Vec<f32> = glyphs
        .remapper
        .remapped_gids()
        .map(|old| {
            scale(f32::from(
                face.glyph_hor_advance(ttf_parser::GlyphId(old))
                    .unwrap_or(0),
            ))
        })
        .collect();
    let mut font = pdf.cid_font(cid);
    font.subtype(CidFontType::Type2)
        .base_font(base)
        .system_info(system)
        .font_descriptor(descriptor)
        .cid_to_gid_map_predefined(Name(b"Identity"));
    font.widths().consecutive(0, widths);
    font.finish();

    let bbox = face.global_bounding_box();
    pdf.font_descriptor(descriptor)
        .name(base)
        .flags(FontFlags::SYMBOLIC)
        .bbox(Rect::new(
            scale(f32::from(bbox.x_min)),
            scale(f32::from(bbox.y_min)),
            scale(f32::from(bbox.x_max)),
            scale(f32::from(bbox.y_max)),
        ))
        .italic_angle(0.0)
        .ascent(scale(f32::from(face.ascender())))
        .descent(scale(f32::from(face.descender())))
        .cap_height(scale(f32::from(
            face.capital_height().unwrap_or(face.ascender()),
        )))
        .stem_v(80.0)
        .font_file2(font_file);
    let subset = subsetter::subset(FONT, 0, &glyphs.remapper)
        .map_err(|e| format!("the report's font cannot be subset: {e:?}"))?;
    pdf.stream(font_file, &deflate(&subset))
        .filter(Filter::FlateDecode);

    let mut unicode = pdf_writer::types::UnicodeCmap::new(Name(b"Custom"), system);
    for (&gid, &c) in &glyphs.chars {
        unicode.pair(gid, c);
    }
    pdf.cmap(cmap, &deflate(unicode.finish().as_slice()))
        .filter(Filter::FlateDecode);
    Ok(pdf.finish())
}

/// A stream's bytes, deflated (zlib, as `FlateDecode` reads them).
fn deflate(bytes: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec_zlib(bytes, 6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn row(i: usize) -> ReportRow {
        ReportRow {
            period: "Quý III/2024".into(),
            unit: "Quỹ Phát triển khoa học và công nghệ quốc gia".into(),
            plan_item: "2".into(),
            name: format!("Tỷ lệ hồ sơ trực tuyến toàn trình số {i}"),
            numerator: 2,
            denominator: 3,
            percent: Some(66.7),
            target_percent: Some(50.0),
        }
    }

    /// Run one of poppler's tools on `file`; scripts/test installs them.
    fn poppler(tool: &str, file: &std::path::Path) -> String {
        let out = Command::new(tool)
            .arg(file)
            .arg("-")
            .output()
            .unwrap_or_else(|e| {
                panic!("{tool} cannot run ({e}): install poppler-utils (scripts/test does)")
            });
        assert!(
            out.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn a_pdf_reader_reads_the_vietnamese_text_back_from_every_page() {
        let rows: Vec<ReportRow> = (0..30).map(row).collect();
        let notes = ["Số liệu chỉ gồm hồ sơ đi qua trục liên thông.".to_string()];
        let bytes = pdf(&rows, &notes).unwrap();
        assert!(
            bytes.len() < 60_000,
            "the font is a subset: {} bytes",
            bytes.len()
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bao-cao.pdf");
        std::fs::write(&file, &bytes).unwrap();

        let info = Command::new("pdfinfo")
            .arg(&file)
            .output()
            .expect("pdfinfo (poppler-utils)");
        let info = String::from_utf8(info.stdout).unwrap();
        assert!(info.contains(TITLE), "{info}");
        assert!(
            info.lines()
                .any(|l| l.starts_with("Pages:") && l.ends_with(" 2")),
            "{info}"
        );

        let text = poppler("pdftotext", &file);
        for expected in [
            "Báo cáo chỉ tiêu Kế hoạch hành động năm 2024 (QĐ 1205/QĐ-BKHCN, Phụ lục I) — Quý III/2024",
            "Trang 1",
            "Trang 2",
            "Quỹ Phát triển",
            "Tỷ lệ hồ sơ trực tuyến toàn trình số 29",
            "66,7",
            "Đạt",
            "THỦ TRƯỞNG ĐƠN VỊ",
            "Số liệu chỉ gồm hồ sơ đi qua trục liên thông.",
            "(Ký, ghi rõ họ tên, đóng dấu)",
        ] {
            assert!(text.contains(expected), "{expected:?} not in:\n{text}");
        }
    }

    #[test]
    fn a_report_with_no_rows_still_has_its_page() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("trong.pdf");
        std::fs::write(&file, pdf(&[], &[]).unwrap()).unwrap();
        let text = poppler("pdftotext", &file);
        assert!(text.contains("— —") || text.contains("Trang 1"), "{text}");
        assert!(text.contains("NGƯỜI LẬP BIỂU"), "{text}");
    }
}
