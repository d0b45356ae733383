//! A streaming reader of real-world CSV: the bytes arrive in chunks (an HTTP body, a stored
//! upload), records come out as soon as they are complete, and memory stays bounded by one
//! record, whatever the file's size.
//!
//! What it accepts: UTF-8 with or without a byte-order mark, CRLF or LF line ends, quoted
//! fields (with commas, quotes and line breaks inside), and blank lines (skipped). What it
//! refuses, as a whole: a file that is not text (a NUL byte, invalid UTF-8) or whose single
//! record grows past [`MAX_RECORD_BYTES`], which is what binary or runaway input looks like.
//! Headers and the meaning of columns are the caller's business.

use csv_core::{ReadRecordResult, Reader};

/// One record is never this big in a directory or segment file; past it, the input is not
/// the CSV we expect (and buffering more would let one request take the memory).
pub const MAX_RECORD_BYTES: usize = 1 << 20;
/// More columns than any directory export has.
pub const MAX_FIELDS: usize = 1_000;

/// One CSV record and where it started in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvRecord {
    /// 1-based line of the file on which the record starts (what an admin sees in an editor).
    pub line: u64,
    pub fields: Vec<String>,
}

/// Why the input as a whole is not CSV we can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotCsv {
    #[error("line {line}: the file contains binary data (a NUL byte); upload a CSV text file")]
    Binary { line: u64 },
    #[error("line {line}: the file is not UTF-8 text; save it as CSV UTF-8")]
    NotUtf8 { line: u64 },
    #[error("line {line}: a record is longer than {MAX_RECORD_BYTES} bytes; is this a CSV file?")]
    RecordTooLong { line: u64 },
    #[error("line {line}: a record has more than {MAX_FIELDS} fields; is this a CSV file?")]
    TooManyFields { line: u64 },
}

/// Push bytes in with [`CsvRecords::feed`], then call [`CsvRecords::finish`] once at the end.
pub struct CsvRecords {
    reader: Reader,
    /// Bytes of the record being read (csv-core writes the unquoted field contents here).
    out: Vec<u8>,
    out_len: usize,
    ends: Vec<usize>,
    ends_len: usize,
    /// Line breaks consumed so far, and the last byte consumed: together they say on which
    /// line a record ended (csv-core consumes an LF terminator with the record, but stops
    /// at the CR of a CRLF).
    newlines: u64,
    last_byte: Option<u8>,
    bom_checked: bool,
    pending_bom: Vec<u8>,
    finished: bool,
}

impl Default for CsvRecords {
    fn default() -> Self {
        Self::new()
    }
}

impl CsvRecords {
    pub fn new() -> Self {
        Self {
            reader: Reader::new(),
            out: vec![0; 4096],
            out_len: 0,
            ends: vec![0; 32],
            ends_len: 0,
            newlines: 0,
            last_byte: None,
            bom_checked: false,
            pending_bom: Vec::new(),
            finished: false,
        }
    }

    /// Parses `chunk` and appends every record it completes to `records`. Blank lines are
    /// skipped. An error means the input is not readable CSV; stop feeding.
    pub fn feed(&mut self, chunk: &[u8], records: &mut Vec<CsvRecord>) -> Result<(), NotCsv> {
        if !self.bom_checked {
            // The mark may be split across chunks: hold up to three bytes until we know.
            self.pending_bom.extend_from_slice(chunk);
            const BOM: &[u8] = b"\xEF\xBB\xBF";
            if self.pending_bom.len() < BOM.len() && BOM.starts_with(&self.pending_bom) {
                return Ok(());
            }
            self.bom_checked = true;
            let held = std::mem::take(&mut self.pending_bom);
            let start = if held.starts_with(BOM) { BOM.len() } else { 0 };
            return self.parse(&held[start..], records);
        }
        self.parse(chunk, records)
    }

    /// Ends the input: the last record may lack a line break.
    pub fn finish(&mut self, records: &mut Vec<CsvRecord>) -> Result<(), NotCsv> {
        if self.finished {
            return Ok(());
        }
        if !self.bom_checked {
            self.bom_checked = true;
            let held = std::mem::take(&mut self.pending_bom);
            self.parse(&held, records)?;
        }
        self.finished = true;
        self.parse(&[], records)
    }

    fn parse(&mut self, mut input: &[u8], records: &mut Vec<CsvRecord>) -> Result<(), NotCsv> {
        if let Some(pos) = memchr_nul(input) {
            // The records before the bad byte are good ones: hand them out first.
            let line = self.newlines + count_lines(&input[..pos]) + 1;
            self.parse(&input[..pos], records)?;
            return Err(NotCsv::Binary { line });
        }
        let at_end = input.is_empty();
        let mut empty_at_end = 0;
        loop {
            let (result, nin, nout, nend) = self.reader.read_record(
                input,
                &mut self.out[self.out_len..],
                &mut self.ends[self.ends_len..],
            );
            self.newlines += count_lines(&input[..nin]);
            if nin > 0 {
                self.last_byte = Some(input[nin - 1]);
            }
            input = &input[nin..];
            self.out_len += nout;
            self.ends_len += nend;
            match result {
                ReadRecordResult::InputEmpty => {
                    // Empty input is how csv-core is told the data ended; it then answers
                    // Record or End, so a second InputEmpty there would be a loop.
                    empty_at_end += 1;
                    if !at_end || empty_at_end > 1 {
                        return Ok(());
                    }
                }
                ReadRecordResult::OutputFull => {
                    if self.out.len() >= MAX_RECORD_BYTES {
                        return Err(NotCsv::RecordTooLong {
                            line: self.record_start_line(),
                        });
                    }
                    let grown = (self.out.len() * 2).min(MAX_RECORD_BYTES);
                    self.out.resize(grown, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    if self.ends.len() >= MAX_FIELDS {
                        return Err(NotCsv::TooManyFields {
                            line: self.record_start_line(),
                        });
                    }
                    let grown = (self.ends.len() * 2).min(MAX_FIELDS);
                    self.ends.resize(grown, 0);
                }
                ReadRecordResult::Record => {
                    let line = self.record_start_line();
                    let record = self.take_record(line)?;
                    if let Some(record) = record {
                        records.push(record);
                    }
                }
                ReadRecordResult::End => return Ok(()),
            }
        }
    }

    /// The line on which the record being read (or just completed) starts: the line it
    /// ends on, less the line breaks inside its quoted fields.
    fn record_start_line(&self) -> u64 {
        let end_line = match self.last_byte {
            Some(b'\n') => self.newlines,
            _ => self.newlines + 1,
        };
        let inside = count_lines(&self.out[..self.out_len]);
        end_line.saturating_sub(inside).max(1)
    }

    /// The record just completed, or None for a blank line.
    fn take_record(&mut self, line: u64) -> Result<Option<CsvRecord>, NotCsv> {
        let bytes = &self.out[..self.out_len];
        let ends = &self.ends[..self.ends_len];
        let text = std::str::from_utf8(bytes).map_err(|_| NotCsv::NotUtf8 { line })?;
        let mut fields = Vec::with_capacity(ends.len());
        let mut start = 0;
        for &end in ends {
            fields.push(text[start..end].to_owned());
            start = end;
        }
        self.out_len = 0;
        self.ends_len = 0;
        let blank = fields.iter().all(|f| f.trim().is_empty());
        Ok((!blank).then_some(CsvRecord { line, fields }))
    }
}

fn memchr_nul(input: &[u8]) -> Option<usize> {
    input.iter().position(|&b| b == 0)
}

fn count_lines(input: &[u8]) -> u64 {
    input.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Parses a whole in-memory file (pasted text, small uploads, tests).
pub fn parse_all(input: &[u8]) -> Result<Vec<CsvRecord>, NotCsv> {
    let mut reader = CsvRecords::new();
    let mut records = Vec::new();
    reader.feed(input, &mut records)?;
    reader.finish(&mut records)?;
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(records: &[CsvRecord]) -> Vec<Vec<&str>> {
        records
            .iter()
            .map(|r| r.fields.iter().map(String::as_str).collect())
            .collect()
    }

    #[test]
    fn bom_crlf_quotes_and_blank_lines() {
        let input = b"\xEF\xBB\xBFemail,name\r\n\r\n\"a@x.io\",\"Doe, Jane\"\r\nb@x.io,\"say \"\"hi\"\"\nthere\"\r\n   \r\nc@x.io,last";
        let records = parse_all(input).expect("csv");
        assert_eq!(
            fields(&records),
            vec![
                vec!["email", "name"],
                vec!["a@x.io", "Doe, Jane"],
                vec!["b@x.io", "say \"hi\"\nthere"],
                vec!["c@x.io", "last"],
            ]
        );
        assert_eq!(
            records.iter().map(|r| r.line).collect::<Vec<_>>(),
            vec![1, 3, 4, 7]
        );
    }

    #[test]
    fn same_records_whatever_the_chunking() {
        let input = "\u{feff}email;x\n\"q,\"\"uoted\"\"\r\nline\",2\n\nz@x.io,3\n".as_bytes();
        let whole = parse_all(input).expect("csv");
        for size in 1..input.len() {
            let mut reader = CsvRecords::new();
            let mut records = Vec::new();
            for chunk in input.chunks(size) {
                reader.feed(chunk, &mut records).expect("csv");
            }
            reader.finish(&mut records).expect("csv");
            assert_eq!(records, whole, "chunk size {size}");
        }
    }

    #[test]
    fn binary_and_non_utf8_are_refused() {
        assert_eq!(parse_all(b"a,b\nc\0d\n"), Err(NotCsv::Binary { line: 2 }));
        assert_eq!(
            parse_all(b"ok\n\xff\xfe,bad\n"),
            Err(NotCsv::NotUtf8 { line: 2 })
        );
    }

    #[test]
    fn a_runaway_record_is_refused_not_buffered() {
        let mut reader = CsvRecords::new();
        let mut records = Vec::new();
        let chunk = vec![b'"'; 1]
            .into_iter()
            .chain(vec![b'x'; 64 * 1024])
            .collect::<Vec<_>>();
        let mut result = reader.feed(&chunk, &mut records);
        for _ in 0..32 {
            if result.is_err() {
                break;
            }
            result = reader.feed(&[b'x'; 64 * 1024], &mut records);
        }
        assert_eq!(result, Err(NotCsv::RecordTooLong { line: 1 }));
    }

    #[test]
    fn empty_input_has_no_records() {
        assert_eq!(parse_all(b""), Ok(vec![]));
        assert_eq!(parse_all(b"\xEF\xBB\xBF"), Ok(vec![]));
        assert_eq!(parse_all(b"\n\r\n\n"), Ok(vec![]));
    }
}
