//! Keyword CSV files as keyword tools export them: UTF-8 with or without a
//! BOM; comma, semicolon or tab separated (read from the header line); a
//! header row naming the columns in any case (`Keyword`, `Search term`,
//! `Search Volume`, `KD %`, `Intent`, `CPC (USD)`, …). Every bad line is
//! rejected with its line number and reason; the good ones are kept.

use igny8_domain::planner::{Intent, KeywordData, MAX_KEYWORD_CHARS};
use serde::Serialize;
use uuid::Uuid;

/// Lines per import (one request).
pub const MAX_ROWS: usize = 200_000;
/// Rejected lines listed in an answer (the count covers all).
pub const MAX_LISTED_REJECTS: usize = 1000;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rejected {
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Parsed {
    pub rows: Vec<KeywordData>,
    pub rejected: Vec<Rejected>,
    pub rejected_count: usize,
    /// Data lines read (not counting the header).
    pub lines: usize,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImportError {
    #[error("the file is empty")]
    Empty,
    #[error("this is not a text file (it contains NUL bytes): send a UTF-8 CSV")]
    Binary,
    #[error("the file is not UTF-8 text: save it as UTF-8 CSV")]
    Encoding,
    #[error(
        "no keyword column: the header must name one (keyword, query, search term, …); found: {0}"
    )]
    NoKeywordColumn(String),
    #[error("at most {MAX_ROWS} lines per import")]
    TooManyRows,
    #[error("unreadable CSV: {0}")]
    Malformed(String),
}

impl ImportError {
    pub fn code(&self) -> &'static str {
        match self {
            ImportError::Empty => "EMPTY_FILE",
            ImportError::Binary => "NOT_A_TEXT_FILE",
            ImportError::Encoding => "INVALID_ENCODING",
            ImportError::NoKeywordColumn(_) => "NO_KEYWORD_COLUMN",
            ImportError::TooManyRows => "TOO_MANY_ROWS",
            ImportError::Malformed(_) => "MALFORMED_CSV",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Col {
    Keyword,
    Volume,
    Difficulty,
    Intent,
    Cpc,
}

fn column(header: &str) -> Option<Col> {
    let h: String = header
        .trim()
        .trim_matches('"')
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    Some(match h.as_str() {
        "keyword" | "keywords" | "query" | "queries" | "search term" | "search terms"
        | "search query" | "term" | "phrase" | "keyphrase" | "key phrase" | "top queries" => {
            Col::Keyword
        }
        "volume"
        | "search volume"
        | "avg. monthly searches"
        | "avg monthly searches"
        | "monthly searches"
        | "sv"
        | "global volume"
        | "vol" => Col::Volume,
        "difficulty" | "keyword difficulty" | "kd" | "kd %" | "kd%" | "seo difficulty"
        | "competition index" => Col::Difficulty,
        "intent" | "search intent" | "intents" => Col::Intent,
        "cpc" | "cpc (usd)" | "cpc usd" | "cost per click" | "avg. cpc" | "average cpc" => Col::Cpc,
        _ => return None,
    })
}

/// The separator the header line uses most (outside quotes).
fn sniff(header: &[u8]) -> u8 {
    let (mut comma, mut semi, mut tab, mut quoted) = (0, 0, 0, false);
    for &b in header {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => comma += 1,
            b';' if !quoted => semi += 1,
            b'\t' if !quoted => tab += 1,
            _ => {}
        }
    }
    if tab > comma && tab >= semi {
        b'\t'
    } else if semi > comma {
        b';'
    } else {
        b','
    }
}

fn whole_number(raw: &str, what: &str, max: i64) -> Result<i64, String> {
    let s: String = raw
        .trim()
        .trim_end_matches('%')
        .chars()
        .filter(|c| !matches!(c, ',' | '_' | ' ' | '\u{a0}'))
        .collect();
    if s.is_empty() {
        return Ok(0);
    }
    let v: f64 = s
        .parse()
        .map_err(|_| format!("{what} is not a number: {raw:?}"))?;
    if !v.is_finite() || v.fract() != 0.0 {
        return Err(format!("{what} must be a whole number: {raw:?}"));
    }
    if v < 0.0 || v > max as f64 {
        return Err(format!("{what} must be from 0 to {max}: {raw:?}"));
    }
    Ok(v as i64)
}

fn money(raw: &str, decimal_comma: bool) -> Result<Option<f64>, String> {
    let mut s: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | '-'))
        .collect();
    if s.is_empty() {
        return Ok(None);
    }
    if decimal_comma {
        s = s.replace('.', "").replace(',', ".");
    } else {
        s = s.replace(',', "");
    }
    let v: f64 = s
        .parse()
        .map_err(|_| format!("cpc is not a number: {raw:?}"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("cpc must be 0 or more: {raw:?}"));
    }
    Ok(Some(v))
}

/// Parse a keyword CSV for `sector_id`.
pub fn parse(bytes: &[u8], sector_id: Uuid) -> Result<Parsed, ImportError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ImportError::Empty);
    }
    if bytes[..bytes.len().min(8192)].contains(&0) {
        return Err(ImportError::Binary);
    }
    let first_line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    if std::str::from_utf8(first_line).is_err() {
        return Err(ImportError::Encoding);
    }
    let delimiter = sniff(first_line);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(true)
        .from_reader(bytes);
    let headers = reader
        .byte_headers()
        .map_err(|e| ImportError::Malformed(e.to_string()))?
        .clone();
    let cols: Vec<Option<Col>> = headers
        .iter()
        .map(|h| std::str::from_utf8(h).ok().and_then(column))
        .collect();
    let find = |c: Col| cols.iter().position(|x| *x == Some(c));
    let Some(kcol) = find(Col::Keyword) else {
        let names: Vec<String> = headers
            .iter()
            .map(|h| String::from_utf8_lossy(h).trim().to_string())
            .collect();
        return Err(ImportError::NoKeywordColumn(names.join(", ")));
    };
    let (vcol, dcol, icol, ccol) = (
        find(Col::Volume),
        find(Col::Difficulty),
        find(Col::Intent),
        find(Col::Cpc),
    );
    let mut out = Parsed::default();
    let reject = |out: &mut Parsed, line: u64, reason: String| {
        out.rejected_count += 1;
        if out.rejected.len() < MAX_LISTED_REJECTS {
            out.rejected.push(Rejected { line, reason });
        }
    };
    let mut record = csv::ByteRecord::new();
    loop {
        let line_hint = reader.position().line() + 1;
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                // A broken line (e.g. an unterminated quote) is rejected; reading goes on.
                out.lines += 1;
                reject(&mut out, line_hint, format!("unreadable line: {e}"));
                continue;
            }
        }
        let line = record.position().map_or(line_hint, |p| p.line());
        if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            continue; // blank line
        }
        out.lines += 1;
        if out.lines > MAX_ROWS {
            return Err(ImportError::TooManyRows);
        }
        if record.len() > headers.len() {
            reject(
                &mut out,
                line,
                format!("{} columns, the header has {}", record.len(), headers.len()),
            );
            continue;
        }
        let field = |i: Option<usize>| -> Result<&str, String> {
            match i.and_then(|i| record.get(i)) {
                None => Ok(""),
                Some(b) => std::str::from_utf8(b).map_err(|_| "not UTF-8 text".to_string()),
            }
        };
        let row = (|| -> Result<KeywordData, String> {
            let keyword = field(Some(kcol))?;
            if keyword.chars().take(MAX_KEYWORD_CHARS + 1).count() > MAX_KEYWORD_CHARS {
                return Err(format!(
                    "keyword longer than {MAX_KEYWORD_CHARS} characters"
                ));
            }
            if keyword.trim().is_empty() {
                return Err("empty keyword".into());
            }
            let volume = whole_number(field(vcol)?, "volume", igny8_domain::planner::MAX_VOLUME)?;
            let difficulty = whole_number(field(dcol)?, "difficulty", 100)?;
            let intent_raw = field(icol)?;
            let intent = match intent_raw.split([',', '/']).next().map(str::trim) {
                None | Some("") => None,
                Some(s) => {
                    Some(Intent::parse(s).ok_or_else(|| format!("unknown intent {intent_raw:?}"))?)
                }
            };
            let cpc = money(field(ccol)?, delimiter == b';')?;
            KeywordData::new(sector_id, keyword, volume, difficulty, intent, cpc)
                .map_err(|e| e.to_string())
        })();
        match row {
            Ok(k) => out.rows.push(k),
            Err(reason) => reject(&mut out, line, reason),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sector() -> Uuid {
        Uuid::from_u128(7)
    }

    #[test]
    fn tool_exports_in_any_dialect() {
        let semrush = "\u{feff}Keyword,Intent,Volume,Keyword Difficulty,CPC (USD)\nbest crm,\"Commercial, Transactional\",\"1,900\",42,12.50\ncrm software,T,880,55,9\n";
        let p = parse(semrush.as_bytes(), sector()).unwrap();
        assert_eq!((p.rows.len(), p.rejected_count), (2, 0), "{:?}", p.rejected);
        assert_eq!(p.rows[0].volume, 1900);
        assert_eq!(p.rows[0].intent, Some(Intent::Commercial));
        assert_eq!(p.rows[0].cpc, Some(12.5));
        let gsc = "Top queries;Clicks;Impressions\nseo tools;10;200\n";
        assert_eq!(
            parse(gsc.as_bytes(), sector()).unwrap().rows[0].keyword,
            "seo tools"
        );
        let tabs = "Search term\tSearch Volume\tKD %\tCPC\nhiking boots\t1200\t31%\t1,25\n";
        let p = parse(tabs.as_bytes(), sector()).unwrap();
        assert_eq!(
            (p.rows[0].difficulty, p.rows[0].cpc),
            (31, Some(125.0)),
            "tab files: comma is a thousands separator"
        );
        let semi = "keyword;volume;cpc\ncafé;10;1,25\n";
        assert_eq!(
            parse(semi.as_bytes(), sector()).unwrap().rows[0].cpc,
            Some(1.25),
            "semicolon files: decimal comma"
        );
    }

    #[test]
    fn bad_lines_are_rejected_with_reasons_and_good_ones_kept() {
        let csv = format!(
            "keyword,volume,difficulty,intent\nok one,10,5,\n,10,5,\nneg,-5,5,\nhard,10,101,\nodd,10,5,maybe\nextra,1,2,,,\nlong {},1,1,\nok two,1e3,0,N\n",
            "x".repeat(300)
        );
        let p = parse(csv.as_bytes(), sector()).unwrap();
        let kept: Vec<&str> = p.rows.iter().map(|r| r.keyword.as_str()).collect();
        assert_eq!(kept, ["ok one", "ok two"]);
        let lines: Vec<u64> = p.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, [3, 4, 5, 6, 7, 8], "{:?}", p.rejected);
        assert!(p.rejected[1].reason.contains("volume"));
        assert!(p.rejected[4].reason.contains("columns"));
    }

    #[test]
    fn whole_file_problems() {
        assert_eq!(parse(b"", sector()).unwrap_err(), ImportError::Empty);
        assert_eq!(
            parse(b"\xEF\xBB\xBF \n", sector()).unwrap_err(),
            ImportError::Empty
        );
        assert_eq!(
            parse(b"PK\x03\x04\x00\x00binary", sector()).unwrap_err(),
            ImportError::Binary
        );
        assert_eq!(
            parse(b"k\xe9yword,volume\nx,1\n", sector()).unwrap_err(),
            ImportError::Encoding
        );
        assert!(matches!(
            parse(b"name,volume\nx,1\n", sector()).unwrap_err(),
            ImportError::NoKeywordColumn(_)
        ));
        // A Latin-1 byte inside a data line rejects that line only.
        let p = parse(b"keyword\ncaf\xe9\ngood\n", sector()).unwrap();
        assert_eq!((p.rows.len(), p.rejected[0].line), (1, 2));
    }
}
