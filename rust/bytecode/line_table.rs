//! The location table (`co_linetable`), the same format in 3.11..=3.13.
//!
//! Each entry covers 1..=8 code units. Its first byte is `1 kkkk nnn`: `nnn` is the unit count
//! minus one and `kkkk` the kind:
//! * 0..=9   short form: same line; one more byte `cccc eeee`; column = kind*8 + ccc,
//!   end column = column + eeee (the high bit of `cccc` is the low bit of ccc's group).
//! * 10..=12 one-line form: line += kind - 10; then column byte, end column byte.
//! * 13      no columns: line += signed varint; no column information.
//! * 14      long form: line += signed varint; end line = line + varint;
//!   column + 1 and end column + 1 as varints (0 meaning "unknown").
//! * 15      no location at all (line unchanged for later entries).
//!
//! Varints here are 6-bit groups, least significant first, 0x40 meaning "more follows".
//! Signed varints store `v << 1` for v >= 0 and `(-v) << 1 | 1` for v < 0.

use std::fmt;

use super::opcodes::PyVersion;

/// Source position of an instruction, as `co_positions()` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Location {
    pub line: Option<i32>,
    pub end_line: Option<i32>,
    pub col: Option<u32>,
    pub end_col: Option<u32>,
}

impl Location {
    /// "No location" (kind 15).
    pub const NONE: Location = Location {
        line: None,
        end_line: None,
        col: None,
        end_col: None,
    };

    /// A line with no column information.
    pub fn line_only(line: i32) -> Location {
        Location {
            line: Some(line),
            end_line: Some(line),
            col: None,
            end_col: None,
        }
    }
}

/// One table entry: `units` consecutive code units sharing `location`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineEntry {
    pub units: u32,
    pub location: Location,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineTableError {
    Truncated {
        at: usize,
    },
    /// A byte expected to start an entry lacks the high bit.
    NotAnEntryStart {
        at: usize,
    },
    Overflow {
        at: usize,
    },
}

impl fmt::Display for LineTableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { at } => write!(f, "line table truncated at byte {at}"),
            Self::NotAnEntryStart { at } => write!(f, "line table byte {at} is not an entry start"),
            Self::Overflow { at } => write!(f, "line table number overflows at byte {at}"),
        }
    }
}

impl std::error::Error for LineTableError {}

const KIND_ONE_LINE0: u8 = 10;
const KIND_NO_COLUMNS: u8 = 13;
const KIND_LONG: u8 = 14;
const KIND_NONE: u8 = 15;

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, LineTableError> {
        let at = self.pos;
        let b = *self.bytes.get(at).ok_or(LineTableError::Truncated { at })?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u32, LineTableError> {
        let mut value: u64 = 0;
        let mut shift = 0u32;
        loop {
            let at = self.pos;
            let b = self.byte()?;
            if shift > 30 {
                return Err(LineTableError::Overflow { at });
            }
            value |= u64::from(b & 0x3f) << shift;
            if value > u64::from(u32::MAX) {
                return Err(LineTableError::Overflow { at });
            }
            if b & 0x40 == 0 {
                return Ok(value as u32);
            }
            shift += 6;
        }
    }

    fn signed_varint(&mut self) -> Result<i64, LineTableError> {
        let raw = self.varint()?;
        let magnitude = i64::from(raw >> 1);
        Ok(if raw & 1 != 0 { -magnitude } else { magnitude })
    }
}

fn add_line(line: i64, delta: i64, at: usize) -> Result<i64, LineTableError> {
    let sum = line + delta;
    if i32::try_from(sum).is_err() {
        return Err(LineTableError::Overflow { at });
    }
    Ok(sum)
}

/// Parses a table into its entries; `first_line` is `co_firstlineno`.
pub fn parse(bytes: &[u8], first_line: i32) -> Result<Vec<LineEntry>, LineTableError> {
    let mut reader = Reader { bytes, pos: 0 };
    let mut line = i64::from(first_line);
    let mut entries = Vec::new();
    while reader.pos < bytes.len() {
        let at = reader.pos;
        let head = reader.byte()?;
        if head & 0x80 == 0 {
            return Err(LineTableError::NotAnEntryStart { at });
        }
        let kind = (head >> 3) & 0x0f;
        let units = u32::from(head & 0x07) + 1;
        let location = match kind {
            KIND_NONE => Location::NONE,
            KIND_NO_COLUMNS => {
                line = add_line(line, reader.signed_varint()?, at)?;
                Location::line_only(line as i32)
            }
            KIND_LONG => {
                line = add_line(line, reader.signed_varint()?, at)?;
                let end_line = add_line(line, i64::from(reader.varint()?), at)?;
                let col = reader.varint()?;
                let end_col = reader.varint()?;
                Location {
                    line: Some(line as i32),
                    end_line: Some(end_line as i32),
                    col: col.checked_sub(1),
                    end_col: end_col.checked_sub(1),
                }
            }
            KIND_ONE_LINE0..=12 => {
                line += i64::from(kind - KIND_ONE_LINE0);
                let col = reader.byte()?;
                let end_col = reader.byte()?;
                Location {
                    line: Some(add_line(line, 0, at)? as i32),
                    end_line: Some(line as i32),
                    col: Some(u32::from(col)),
                    end_col: Some(u32::from(end_col)),
                }
            }
            _ => {
                let second = reader.byte()?;
                let col = u32::from(kind) * 8 + u32::from((second >> 4) & 0x07);
                Location {
                    line: Some(line as i32),
                    end_line: Some(line as i32),
                    col: Some(col),
                    end_col: Some(col + u32::from(second & 0x0f)),
                }
            }
        };
        entries.push(LineEntry { units, location });
    }
    Ok(entries)
}

/// Expands entries to one location per code unit.
pub fn unit_locations(entries: &[LineEntry]) -> Vec<Location> {
    let mut out = Vec::new();
    for entry in entries {
        out.extend(std::iter::repeat_n(entry.location, entry.units as usize));
    }
    out
}

/// Writes location entries the way CPython's compiler does. 3.11 writes each instruction's
/// entries on their own; from 3.12 a run of consecutive instructions with the same location
/// shares entries (the run is split only every 8 units).
pub struct LineTableWriter {
    out: Vec<u8>,
    line: i64,
    /// Whether runs of equal locations are merged (3.12+).
    merge: bool,
    /// The run being collected when merging: its location and length in units.
    pending: Option<(Location, u32)>,
}

impl LineTableWriter {
    /// A writer with 3.11's rules (one instruction at a time).
    pub fn new(first_line: i32) -> Self {
        LineTableWriter {
            out: Vec::new(),
            line: i64::from(first_line),
            merge: false,
            pending: None,
        }
    }

    /// A writer with `version`'s rules.
    pub fn for_version(first_line: i32, version: PyVersion) -> Self {
        LineTableWriter {
            merge: version >= PyVersion::V3_12,
            ..Self::new(first_line)
        }
    }

    /// Appends the entries for one instruction that spans `units` code units.
    pub fn push(&mut self, location: &Location, units: u32) {
        if !self.merge {
            self.emit(location, units);
            return;
        }
        match &mut self.pending {
            Some((loc, run)) if loc == location => *run += units,
            _ => {
                self.flush();
                self.pending = Some((*location, units));
            }
        }
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.flush();
        self.out
    }

    fn flush(&mut self) {
        if let Some((location, units)) = self.pending.take() {
            self.emit(&location, units);
        }
    }

    /// Entries for `units` code units at `location`, 8 units at most per entry.
    fn emit(&mut self, location: &Location, mut units: u32) {
        while units > 8 {
            self.entry(location, 8);
            units -= 8;
        }
        if units > 0 {
            self.entry(location, units);
        }
    }

    fn head(&mut self, kind: u8, units: u32) {
        self.out
            .push(0x80 | (kind << 3) | ((units - 1) as u8 & 0x07));
    }

    fn varint(&mut self, mut value: u64) {
        while value >= 0x40 {
            self.out.push(0x40 | (value & 0x3f) as u8);
            value >>= 6;
        }
        self.out.push(value as u8);
    }

    fn signed_varint(&mut self, value: i64) {
        let raw = if value < 0 {
            (value.unsigned_abs() << 1) | 1
        } else {
            (value as u64) << 1
        };
        self.varint(raw);
    }

    fn entry(&mut self, location: &Location, units: u32) {
        let Some(line) = location.line else {
            self.head(KIND_NONE, units);
            return;
        };
        let line = i64::from(line);
        let line_delta = line - self.line;
        let end_line = i64::from(location.end_line.unwrap_or(line as i32));
        let end_line_delta = end_line - line;
        let col = location.col.map_or(-1, i64::from);
        let end_col = location.end_col.map_or(-1, i64::from);
        if end_line_delta == 0 {
            if col < 0 || end_col < 0 {
                self.head(KIND_NO_COLUMNS, units);
                self.signed_varint(line_delta);
                self.line = line;
                return;
            }
            if line_delta == 0 && col < 80 && end_col - col < 16 && end_col >= col {
                self.head((col / 8) as u8, units);
                self.out
                    .push((((col % 8) as u8) << 4) | (end_col - col) as u8);
                return;
            }
            if (0..3).contains(&line_delta) && col < 128 && end_col < 128 {
                self.head(KIND_ONE_LINE0 + line_delta as u8, units);
                self.out.push(col as u8);
                self.out.push(end_col as u8);
                self.line = line;
                return;
            }
        }
        self.head(KIND_LONG, units);
        self.signed_varint(line_delta);
        self.varint(end_line_delta.max(0) as u64);
        self.varint((col + 1) as u64);
        self.varint((end_col + 1) as u64);
        self.line = line;
    }
}

/// Encodes entries exactly as given (one table entry per `LineEntry`, split at 8 units).
pub fn encode_entries(entries: &[LineEntry], first_line: i32) -> Vec<u8> {
    let mut writer = LineTableWriter::new(first_line);
    for entry in entries {
        writer.push(&entry.location, entry.units);
    }
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(line: i32, end_line: i32, col: u32, end_col: u32) -> Location {
        Location {
            line: Some(line),
            end_line: Some(end_line),
            col: Some(col),
            end_col: Some(end_col),
        }
    }

    #[test]
    fn every_form_roundtrips() {
        let entries = vec![
            LineEntry {
                units: 1,
                location: loc(10, 10, 0, 0),
            }, // short
            LineEntry {
                units: 3,
                location: loc(10, 10, 79, 94),
            }, // short, max
            LineEntry {
                units: 2,
                location: loc(12, 12, 4, 120),
            }, // one-line +2
            LineEntry {
                units: 1,
                location: loc(12, 12, 100, 127),
            }, // one-line +0
            LineEntry {
                units: 8,
                location: Location::line_only(40),
            }, // no columns
            LineEntry {
                units: 1,
                location: Location::NONE,
            }, // none
            LineEntry {
                units: 2,
                location: loc(5, 9, 3, 200),
            }, // long, backwards
            LineEntry {
                units: 1,
                location: loc(5, 5, 300, 301),
            }, // long, wide column
            LineEntry {
                units: 1,
                location: Location {
                    line: Some(6),
                    end_line: Some(8),
                    col: None,
                    end_col: None,
                },
            },
        ];
        let bytes = encode_entries(&entries, 10);
        assert_eq!(parse(&bytes, 10).unwrap(), entries);
        assert_eq!(unit_locations(&entries).len(), 20);
    }

    #[test]
    fn long_instructions_are_split() {
        let mut writer = LineTableWriter::new(1);
        writer.push(&loc(2, 2, 0, 4), 11);
        let bytes = writer.finish();
        let entries = parse(&bytes, 1).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].units, 8);
        assert_eq!(entries[1].units, 3);
        assert_eq!(entries[1].location, loc(2, 2, 0, 4));
    }

    #[test]
    fn malformed_tables_are_errors() {
        assert!(matches!(
            parse(&[0x00], 1),
            Err(LineTableError::NotAnEntryStart { .. })
        ));
        // Short form missing its second byte.
        assert!(matches!(
            parse(&[0x80], 1),
            Err(LineTableError::Truncated { .. })
        ));
        // Long form with an unterminated varint.
        assert!(matches!(
            parse(&[0xf0, 0x02, 0x40], 1),
            Err(LineTableError::Truncated { .. })
        ));
        // Varint with too many groups.
        let mut long = vec![0xe8];
        long.extend([0x7f; 7]);
        long.push(0x01);
        assert!(matches!(
            parse(&long, 1),
            Err(LineTableError::Overflow { .. })
        ));
        assert_eq!(parse(&[], 1).unwrap(), vec![]);
    }
}
