//! The exception table (`co_exceptiontable`), the same format in 3.11..=3.13.
//!
//! The table is a sequence of entries, each four unsigned numbers: start, length and target
//! (all in 2-byte code units) and `depth << 1 | lasti`. Each number is written in 6-bit
//! groups, most significant group first; bit 6 (0x40) marks "another group follows", and
//! bit 7 (0x80) is set on the first byte of each entry.

use std::fmt;

const CONTINUE: u8 = 0x40;
const ENTRY_START: u8 = 0x80;
const PAYLOAD: u8 = 0x3f;

/// One protected range, in byte offsets; `end` is exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExceptionEntry {
    pub start: u32,
    pub end: u32,
    /// Byte offset of the handler.
    pub target: u32,
    /// Stack depth to unwind to before pushing the exception.
    pub depth: u32,
    /// Whether the offset of the raising instruction is pushed before the exception.
    pub lasti: bool,
}

impl ExceptionEntry {
    pub fn contains(&self, offset: u32) -> bool {
        self.start <= offset && offset < self.end
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExceptionTableError {
    /// The table ended in the middle of an entry or a number.
    Truncated { at: usize },
    /// An entry did not begin with a byte carrying the entry-start bit, or a later byte did.
    BadEntryMarker { at: usize },
    /// A number does not fit in 32 bits (after scaling to bytes).
    Overflow { at: usize },
    /// `start + length` overflows.
    BadRange { at: usize },
}

impl fmt::Display for ExceptionTableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { at } => write!(f, "exception table truncated at byte {at}"),
            Self::BadEntryMarker { at } => {
                write!(f, "exception table entry marker wrong at byte {at}")
            }
            Self::Overflow { at } => write!(f, "exception table number overflows at byte {at}"),
            Self::BadRange { at } => write!(f, "exception table range overflows at byte {at}"),
        }
    }
}

impl std::error::Error for ExceptionTableError {}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    /// Reads one number; `first` says whether it opens an entry (and so must carry 0x80).
    fn number(&mut self, first: bool) -> Result<u32, ExceptionTableError> {
        let begin = self.pos;
        let mut value: u64 = 0;
        loop {
            let at = self.pos;
            let byte = *self
                .bytes
                .get(at)
                .ok_or(ExceptionTableError::Truncated { at })?;
            let marked = byte & ENTRY_START != 0;
            if marked != (first && at == begin) {
                return Err(ExceptionTableError::BadEntryMarker { at });
            }
            self.pos += 1;
            value = (value << 6) | u64::from(byte & PAYLOAD);
            if value > u64::from(u32::MAX) {
                return Err(ExceptionTableError::Overflow { at });
            }
            if byte & CONTINUE == 0 {
                return Ok(value as u32);
            }
        }
    }

    fn units_as_bytes(&mut self, first: bool) -> Result<u32, ExceptionTableError> {
        let at = self.pos;
        self.number(first)?
            .checked_mul(2)
            .ok_or(ExceptionTableError::Overflow { at })
    }
}

/// Parses a whole `co_exceptiontable`.
pub fn parse(bytes: &[u8]) -> Result<Vec<ExceptionEntry>, ExceptionTableError> {
    let mut reader = Reader { bytes, pos: 0 };
    let mut entries = Vec::new();
    while reader.pos < bytes.len() {
        let at = reader.pos;
        let start = reader.units_as_bytes(true)?;
        let length = reader.units_as_bytes(false)?;
        let target = reader.units_as_bytes(false)?;
        let depth_lasti = reader.number(false)?;
        let end = start
            .checked_add(length)
            .ok_or(ExceptionTableError::BadRange { at })?;
        entries.push(ExceptionEntry {
            start,
            end,
            target,
            depth: depth_lasti >> 1,
            lasti: depth_lasti & 1 != 0,
        });
    }
    Ok(entries)
}

fn write_number(out: &mut Vec<u8>, value: u64, entry_start: bool) {
    let mut shift = 0;
    while shift + 6 < 64 && value >> (shift + 6) != 0 {
        shift += 6;
    }
    let mut marker = if entry_start { ENTRY_START } else { 0 };
    loop {
        let group = ((value >> shift) & u64::from(PAYLOAD)) as u8;
        let more = if shift > 0 { CONTINUE } else { 0 };
        out.push(group | more | marker);
        marker = 0;
        if shift == 0 {
            break;
        }
        shift -= 6;
    }
}

/// Encodes entries (byte offsets, which must be even) back into table bytes. A depth too
/// large for the format is written anyway and will fail to parse; it never panics.
pub fn encode(entries: &[ExceptionEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 4);
    for entry in entries {
        let length = entry.end.saturating_sub(entry.start);
        write_number(&mut out, u64::from(entry.start / 2), true);
        write_number(&mut out, u64::from(length / 2), false);
        write_number(&mut out, u64::from(entry.target / 2), false);
        let depth_lasti = (u64::from(entry.depth) << 1) | u64::from(entry.lasti);
        write_number(&mut out, depth_lasti, false);
    }
    out
}

/// The innermost entry covering `offset`. Compiled tables (3.11..=3.13) hold non-overlapping ranges sorted
/// by start, so the first match is the only one.
pub fn handler_for(entries: &[ExceptionEntry], offset: u32) -> Option<&ExceptionEntry> {
    entries.iter().find(|e| e.contains(offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(start: u32, end: u32, target: u32, depth: u32, lasti: bool) -> ExceptionEntry {
        ExceptionEntry {
            start,
            end,
            target,
            depth,
            lasti,
        }
    }

    #[test]
    fn small_roundtrip() {
        let entries = vec![entry(4, 20, 40, 1, false), entry(20, 26, 60, 3, true)];
        let bytes = encode(&entries);
        // start 2 units (marker set), length 8, target 20, depth_lasti 2
        assert_eq!(&bytes[..4], &[0x82, 0x08, 0x14, 0x02]);
        assert_eq!(parse(&bytes).unwrap(), entries);
    }

    #[test]
    fn multi_group_numbers() {
        for value in [63u32, 64, 4095, 4096, 1 << 20, (1 << 30) - 1, u32::MAX / 2] {
            let entries = vec![entry(value & !1, value & !1, value & !1, value >> 2, true)];
            assert_eq!(parse(&encode(&entries)).unwrap(), entries, "{value}");
        }
        let mut out = Vec::new();
        write_number(&mut out, 64, true);
        assert_eq!(out, vec![0x80 | 0x40 | 1, 0]);
        let huge = vec![entry(0, 2, 4, u32::MAX, true)];
        assert!(parse(&encode(&huge)).is_err());
    }

    #[test]
    fn handler_lookup() {
        let entries = vec![entry(4, 20, 40, 1, false), entry(20, 26, 60, 3, true)];
        assert_eq!(handler_for(&entries, 4).unwrap().target, 40);
        assert_eq!(handler_for(&entries, 18).unwrap().target, 40);
        assert_eq!(handler_for(&entries, 20).unwrap().target, 60);
        assert!(handler_for(&entries, 26).is_none());
        assert!(handler_for(&entries, 0).is_none());
    }

    #[test]
    fn malformed_tables_are_errors() {
        // Truncated entry.
        assert!(matches!(
            parse(&[0x82, 0x08, 0x14]),
            Err(ExceptionTableError::Truncated { .. })
        ));
        // Continuation bit on the last byte.
        assert!(matches!(
            parse(&[0x82, 0x08, 0x14, 0x42]),
            Err(ExceptionTableError::Truncated { .. })
        ));
        // Missing entry marker.
        assert!(matches!(
            parse(&[0x02, 0x08, 0x14, 0x02]),
            Err(ExceptionTableError::BadEntryMarker { .. })
        ));
        // Marker in the middle of an entry.
        assert!(matches!(
            parse(&[0x82, 0x88, 0x14, 0x02]),
            Err(ExceptionTableError::BadEntryMarker { .. })
        ));
        // Too many groups.
        let mut long = vec![0xC0 | 0x3f];
        long.extend([0x7f; 8]);
        long.push(0x01);
        assert!(matches!(
            parse(&long),
            Err(ExceptionTableError::Overflow { .. })
        ));
        assert_eq!(parse(&[]).unwrap(), vec![]);
    }
}
