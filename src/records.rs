//! Reading a tabular file (CSV or JSON) into records: bytes → text → rows of named cells.
//!
//! Owns: the text encoding (`--encoding`: UTF-8 by default, Windows-1251 and every other
//! WHATWG label through `encoding_rs`; a BOM always wins), the CSV separator (`;`, `,` or tab,
//! detected from the header line), the CSV and JSON shapes, the line where each record starts,
//! and [`normalize_decimal`] for value parsers that accept decimal commas. Must not: know
//! what a column means or reject a row (`sync::import` for desired subscribers, and any later
//! importer, map the names and validate the values), or write anything.
//!
//! Callers: `read(bytes, &ReadOptions)` gives a [`Table`]; each [`Record`] keeps its cells
//! in file order under the header's names (trimmed, case as written), empty cells included.

use std::fmt;

use encoding_rs::{DecoderResult, Encoding, UTF_8};
use serde_json::Value;

/// File formats the importers read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Csv,
    Json,
}

impl FileFormat {
    /// By file extension: `.json` is JSON, everything else CSV.
    pub fn from_path(path: &std::path::Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("json") => FileFormat::Json,
            _ => FileFormat::Csv,
        }
    }
}

/// How to read a file.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    pub format: FileFormat,
    /// The text encoding when the file has no BOM (default UTF-8).
    pub encoding: &'static Encoding,
}

impl ReadOptions {
    /// UTF-8 (or what a BOM says).
    pub fn new(format: FileFormat) -> Self {
        Self {
            format,
            encoding: UTF_8,
        }
    }
}

/// The encoding named by `label` (`utf-8`, `windows-1251`, `cp1251`, `koi8-u`, `utf-16le`,
/// ...: the WHATWG labels), for `--encoding`.
pub fn encoding_for_label(label: &str) -> Result<&'static Encoding, String> {
    Encoding::for_label(label.trim().as_bytes()).ok_or_else(|| {
        format!(
            "unknown encoding {label:?}: use utf-8, windows-1251 (1C, client-bank exports), koi8-u, utf-16le or another WHATWG label"
        )
    })
}

/// One record: where it starts and its cells under the header's names.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// 1-based line where the record starts (CSV, the header being line 1), or 1-based
    /// position in the array (JSON).
    pub line: usize,
    /// `(column name, value)`: CSV cells in file order, as strings (empty ones included);
    /// JSON members in the parser's (name) order, as written (`null` included).
    pub cells: Vec<(String, Value)>,
}

/// A whole file, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Column names (CSV: the header; JSON: every member name, first records first).
    pub columns: Vec<String>,
    pub records: Vec<Record>,
    /// The encoding used (a BOM's, or the requested one).
    pub encoding: &'static str,
    /// The CSV separator found (`None` for JSON).
    pub separator: Option<char>,
}

/// A file that cannot be read as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The bytes are not valid in the encoding.
    #[error("{}", Malformed { encoding, line: *line, column: *column, offset: *offset })]
    Malformed {
        encoding: &'static str,
        /// 1-based line of the first bad byte.
        line: usize,
        /// 1-based byte position of the first bad byte within its line.
        column: usize,
        /// 0-based byte offset of the first bad byte in the file.
        offset: usize,
    },
    #[error(
        "cannot read the CSV file: {0} (check the header row, the quoting and that every row has the header's number of cells)"
    )]
    Csv(#[from] csv::Error),
    #[error("cannot read the JSON file: {0} (expected an array of objects)")]
    Json(#[from] serde_json::Error),
}

struct Malformed<'a> {
    encoding: &'a str,
    line: usize,
    column: usize,
    offset: usize,
}

impl fmt::Display for Malformed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the file is not valid {} text: line {}, byte {} of the line (offset {} in the file)",
            self.encoding, self.line, self.column, self.offset
        )?;
        if self.encoding == UTF_8.name() {
            f.write_str(
                "; files from 1C, client-bank exports and Excel on Windows are often Windows-1251: try --encoding windows-1251",
            )
        } else {
            f.write_str("; check --encoding (utf-8, windows-1251, koi8-u, ...)")
        }
    }
}

/// Reads a whole file.
pub fn read(bytes: &[u8], options: &ReadOptions) -> Result<Table, ReadError> {
    let (text, encoding) = decode(bytes, options.encoding)?;
    let mut table = match options.format {
        FileFormat::Csv => read_csv(&text)?,
        FileFormat::Json => read_json(&text)?,
    };
    table.encoding = encoding.name();
    Ok(table)
}

/// Bytes to text: a BOM (UTF-8, UTF-16) decides the encoding and is dropped; otherwise
/// `encoding`. Malformed bytes are an error naming where they are, never replaced.
pub fn decode(
    bytes: &[u8],
    encoding: &'static Encoding,
) -> Result<(String, &'static Encoding), ReadError> {
    let (encoding, start) = Encoding::for_bom(bytes).unwrap_or((encoding, 0));
    let body = &bytes[start..];
    let malformed = |at: usize| {
        let offset = start + at;
        let line_start = bytes[..offset]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |p| p + 1);
        ReadError::Malformed {
            encoding: encoding.name(),
            line: bytes[..offset].iter().filter(|b| **b == b'\n').count() + 1,
            column: offset - line_start + 1,
            offset,
        }
    };
    if encoding == UTF_8 {
        return match std::str::from_utf8(body) {
            Ok(text) => Ok((text.to_owned(), encoding)),
            Err(e) => Err(malformed(e.valid_up_to())),
        };
    }
    let mut decoder = encoding.new_decoder_without_bom_handling();
    let capacity = decoder
        .max_utf8_buffer_length_without_replacement(body.len())
        .unwrap_or(body.len().saturating_mul(3));
    let mut text = String::with_capacity(capacity);
    let (result, read) = decoder.decode_to_string_without_replacement(body, &mut text, true);
    match result {
        DecoderResult::InputEmpty => Ok((text, encoding)),
        DecoderResult::Malformed(bad, after) => {
            Err(malformed(read - usize::from(bad) - usize::from(after)))
        }
        // The buffer was sized for the worst case; a short one means a bug, not bad input.
        DecoderResult::OutputFull => Err(malformed(read)),
    }
}

/// The separator of a CSV text: whichever of `;`, `,` and tab occurs most often outside
/// quotes in the header line (`,` when none does or on a tie with it).
pub fn detect_separator(text: &str) -> u8 {
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0)];
    let mut quoted = false;
    for b in text.bytes() {
        match b {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => break,
            _ if !quoted => {
                if let Some(c) = counts.iter_mut().find(|(s, _)| *s == b) {
                    c.1 += 1;
                }
            }
            _ => {}
        }
    }
    // Stable: the first of the maxima wins, and `,` is first.
    counts
        .iter()
        .fold((b',', 0), |best, c| if c.1 > best.1 { *c } else { best })
        .0
}

fn read_csv(text: &str) -> Result<Table, ReadError> {
    let separator = detect_separator(text);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(separator)
        .trim(csv::Trim::Headers)
        .from_reader(text.as_bytes());
    let columns: Vec<String> = reader.headers()?.iter().map(str::to_owned).collect();
    let mut records = Vec::new();
    for record in reader.records() {
        let record = record?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        let cells = columns
            .iter()
            .zip(record.iter())
            .map(|(name, cell)| (name.clone(), Value::String(cell.to_owned())))
            .collect();
        records.push(Record { line, cells });
    }
    Ok(Table {
        columns,
        records,
        encoding: UTF_8.name(),
        separator: Some(char::from(separator)),
    })
}

fn read_json(text: &str) -> Result<Table, ReadError> {
    let items: Vec<serde_json::Map<String, Value>> = serde_json::from_str(text)?;
    let mut columns: Vec<String> = Vec::new();
    let mut records = Vec::with_capacity(items.len());
    for (i, object) in items.into_iter().enumerate() {
        let cells: Vec<(String, Value)> = object.into_iter().collect();
        for (name, _) in &cells {
            if !columns.contains(name) {
                columns.push(name.clone());
            }
        }
        records.push(Record { line: i + 1, cells });
    }
    Ok(Table {
        columns,
        records,
        encoding: UTF_8.name(),
        separator: None,
    })
}

/// A decimal as written in Ukrainian and other European files, in the form `rust_decimal`
/// and `str::parse` read: `370,00` → `370.00`, `1 234,50` → `1234.50`, `1.234,50` →
/// `1234.50`, `1,234.50` → `1234.50`. Spaces (also no-break and thin ones) and apostrophes
/// group thousands; where both `.` and `,` occur the last one is the decimal mark; a lone
/// `,` is a decimal comma (the convention of 1C and Ukrainian banks; `1,234` is 1.234).
/// Anything else is returned trimmed and unchanged, for the value parser to refuse.
pub fn normalize_decimal(cell: &str) -> String {
    let kept: String = cell
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}' | '\u{2009}' | '\''))
        .collect();
    let (comma, dot) = (kept.rfind(','), kept.rfind('.'));
    let decimal_mark = match (comma, dot) {
        (Some(c), Some(d)) => Some(c.max(d)),
        (Some(c), None) if kept.matches(',').count() == 1 => Some(c),
        (None, Some(d)) if kept.matches('.').count() == 1 => Some(d),
        (None, None) => None,
        // Several of one mark and none of the other: not a number we can read.
        _ => return kept,
    };
    kept.char_indices()
        .filter_map(|(i, c)| match c {
            ',' | '.' if Some(i) == decimal_mark => Some('.'),
            ',' | '.' => None,
            other => Some(other),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(bytes: &[u8]) -> Result<Table, ReadError> {
        read(bytes, &ReadOptions::new(FileFormat::Csv))
    }

    fn cells(r: &Record) -> Vec<(&str, &str)> {
        r.cells
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("?")))
            .collect()
    }

    #[test]
    fn windows_1251_text_is_read_with_its_encoding_and_refused_as_utf8() {
        let text = "key;fullname\nk1;Коваленко Олена Іванівна\nk2;Ґудзь Євген\n";
        let (bytes, _, lossy) = encoding_rs::WINDOWS_1251.encode(text);
        assert!(!lossy);
        let opts = ReadOptions {
            format: FileFormat::Csv,
            encoding: encoding_for_label("windows-1251").unwrap(),
        };
        let t = read(&bytes, &opts).unwrap();
        assert_eq!(t.encoding, "windows-1251");
        assert_eq!(
            cells(&t.records[0]),
            vec![("key", "k1"), ("fullname", "Коваленко Олена Іванівна")]
        );
        assert_eq!(cells(&t.records[1])[1].1, "Ґудзь Євген");

        let err = csv(&bytes).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(
                err,
                ReadError::Malformed {
                    line: 2,
                    column: 4,
                    offset: 16,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            msg.contains("line 2, byte 4 of the line (offset 16 in the file)")
                && msg.contains("--encoding windows-1251"),
            "{msg}"
        );
    }

    #[test]
    fn a_bom_decides_and_is_not_part_of_the_first_column() {
        let t = csv("\u{feff}key,fullname\nk1,Олена\n".as_bytes()).unwrap();
        assert_eq!(t.columns, vec!["key", "fullname"]);
        // A UTF-8 BOM wins over a requested Windows-1251.
        let opts = ReadOptions {
            format: FileFormat::Csv,
            encoding: encoding_rs::WINDOWS_1251,
        };
        let t = read("\u{feff}key\nОлена\n".as_bytes(), &opts).unwrap();
        assert_eq!(
            (t.encoding, cells(&t.records[0])),
            ("UTF-8", vec![("key", "Олена")])
        );
        // UTF-16 with its BOM.
        let mut utf16 = vec![0xff, 0xfe];
        utf16.extend("key\nk1\n".encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(csv(&utf16).unwrap().records[0].cells[0].1, "k1");
    }

    #[test]
    fn separators_are_detected_from_the_header() {
        for (text, sep) in [
            ("a,b,c\n1,2,3\n", ','),
            ("a;b;c\n1;2,5;3\n", ';'),
            ("a\tb\tc\n1\t2\t3\n", '\t'),
            ("\"a,x\";b\n1;2\n", ';'),
            ("single\n1\n", ','),
        ] {
            let t = csv(text.as_bytes()).unwrap();
            assert_eq!(t.separator, Some(sep), "{text:?}");
            assert_eq!(t.records[0].cells[0].1, "1", "{text:?}");
        }
        let t = csv(b"key;amount\nk1;370,00\n").unwrap();
        assert_eq!(
            cells(&t.records[0]),
            vec![("key", "k1"), ("amount", "370,00")]
        );
    }

    #[test]
    fn records_know_the_line_they_start_on() {
        let t = csv(b"key,note\nk1,\"two\nlines\"\nk2,x\n").unwrap();
        let lines: Vec<usize> = t.records.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![2, 4]);
        let t = read(
            br#"[{"key": "a", "n": 1}, {"key": "b", "dns": null}]"#,
            &ReadOptions::new(FileFormat::Json),
        )
        .unwrap();
        assert_eq!(t.columns, vec!["key", "n", "dns"]);
        assert_eq!(t.records[1].line, 2);
        assert!(
            t.records[1]
                .cells
                .contains(&("dns".to_string(), Value::Null))
        );
    }

    #[test]
    fn unknown_encodings_and_broken_files_are_errors() {
        assert!(encoding_for_label("cp1251").is_ok());
        assert!(
            encoding_for_label("klingon")
                .unwrap_err()
                .contains("windows-1251")
        );
        assert!(matches!(csv(b"a,b\n1,2,3\n"), Err(ReadError::Csv(_))));
        assert!(matches!(
            read(b"{", &ReadOptions::new(FileFormat::Json)),
            Err(ReadError::Json(_))
        ));
    }

    #[test]
    fn decimal_commas_and_grouping() {
        let cases = [
            ("370,00", "370.00"),
            (" 370.00 ", "370.00"),
            ("1 234,50", "1234.50"),
            ("1\u{a0}234,50", "1234.50"),
            ("1.234,50", "1234.50"),
            ("1,234.50", "1234.50"),
            ("1'234.50", "1234.50"),
            ("-0,5", "-0.5"),
            ("1,234", "1.234"),
            ("42", "42"),
            ("1.234.567", "1.234.567"),
            ("abc", "abc"),
        ];
        for (cell, want) in cases {
            assert_eq!(normalize_decimal(cell), want, "{cell:?}");
        }
    }
}
