//! RecordIO, the framing of the Mesos v1 event streams:
//! `record = decimal-length "\n" bytes`.
//!
//! The decoder is incremental: proxies and HTTP stacks re-chunk the stream,
//! so a record may arrive split anywhere, and one chunk may hold several.

use bytes::{Buf, Bytes, BytesMut};
use thiserror::Error;

/// The largest record the decoder accepts unless told otherwise. Offers for a
/// large cluster are the biggest events a scheduler sees; 64 MiB leaves room.
pub const DEFAULT_MAX_RECORD_LEN: usize = 64 * 1024 * 1024;

/// `u64::MAX` has 20 digits; a longer length header can only be garbage.
const MAX_HEADER_DIGITS: usize = 20;

/// Why a stream cannot be decoded. Every variant is terminal: after an error
/// the stream's framing is lost and the connection must be dropped.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordIoError {
    /// The length header holds something other than ASCII digits.
    #[error("malformed RecordIO length header {header:?}: expected ASCII decimal digits")]
    MalformedLength { header: String },
    /// The length header does not fit in 64 bits.
    #[error("RecordIO length header longer than {MAX_HEADER_DIGITS} digits or above 2^64")]
    HeaderTooLong,
    /// A record of length 0, which RecordIO forbids.
    #[error("RecordIO record of length 0")]
    ZeroLength,
    /// A record longer than the decoder's configured maximum.
    #[error("RecordIO record of {len} bytes exceeds the maximum of {max} bytes")]
    TooLarge { len: u64, max: usize },
    /// The stream ended inside a record.
    #[error("RecordIO stream ended inside a record ({buffered} bytes buffered)")]
    Truncated { buffered: usize },
}

/// Appends one record to `out`.
pub fn encode_into(record: &[u8], out: &mut BytesMut) {
    let header = record.len().to_string();
    out.reserve(header.len() + 1 + record.len());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(b"\n");
    out.extend_from_slice(record);
}

/// One record, framed.
pub fn encode(record: &[u8]) -> Bytes {
    let mut out = BytesMut::new();
    encode_into(record, &mut out);
    out.freeze()
}

/// An incremental RecordIO decoder.
#[derive(Debug)]
pub struct Decoder {
    buffer: BytesMut,
    max_record_len: usize,
    /// The length of the record being read, once its header is complete.
    pending_len: Option<usize>,
    failed: Option<RecordIoError>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_RECORD_LEN)
    }
}

impl Decoder {
    /// A decoder that refuses records longer than `max_record_len` bytes.
    pub fn new(max_record_len: usize) -> Self {
        Self {
            buffer: BytesMut::new(),
            max_record_len,
            pending_len: None,
            failed: None,
        }
    }

    /// Adds bytes as they arrived from the network.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.failed.is_none() {
            self.buffer.extend_from_slice(chunk);
        }
    }

    /// The next complete record, `Ok(None)` when more bytes are needed.
    /// After an error every later call returns the same error.
    pub fn next_record(&mut self) -> Result<Option<Bytes>, RecordIoError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        match self.try_next() {
            Ok(record) => Ok(record),
            Err(err) => {
                self.buffer.clear();
                self.failed = Some(err.clone());
                Err(err)
            }
        }
    }

    /// Checks that the stream did not end inside a record.
    pub fn finish(&self) -> Result<(), RecordIoError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        if self.buffer.is_empty() && self.pending_len.is_none() {
            Ok(())
        } else {
            Err(RecordIoError::Truncated {
                buffered: self.buffer.len(),
            })
        }
    }

    fn try_next(&mut self) -> Result<Option<Bytes>, RecordIoError> {
        let len = match self.pending_len {
            Some(len) => len,
            None => match self.read_header()? {
                Some(len) => len,
                None => return Ok(None),
            },
        };
        if self.buffer.len() < len {
            self.pending_len = Some(len);
            return Ok(None);
        }
        self.pending_len = None;
        Ok(Some(self.buffer.split_to(len).freeze()))
    }

    fn read_header(&mut self) -> Result<Option<usize>, RecordIoError> {
        let Some(newline) = self.buffer.iter().position(|&b| b == b'\n') else {
            if self.buffer.len() > MAX_HEADER_DIGITS {
                return Err(RecordIoError::HeaderTooLong);
            }
            if let Some(&bad) = self.buffer.iter().find(|b| !b.is_ascii_digit()) {
                return Err(malformed(&[bad]));
            }
            return Ok(None);
        };
        let header = &self.buffer[..newline];
        if header.len() > MAX_HEADER_DIGITS {
            return Err(RecordIoError::HeaderTooLong);
        }
        if header.is_empty() || !header.iter().all(u8::is_ascii_digit) {
            return Err(malformed(header));
        }
        let len = header
            .iter()
            .try_fold(0u64, |acc, &d| {
                acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
            })
            .ok_or(RecordIoError::HeaderTooLong)?;
        if len == 0 {
            return Err(RecordIoError::ZeroLength);
        }
        if len > self.max_record_len as u64 {
            return Err(RecordIoError::TooLarge {
                len,
                max: self.max_record_len,
            });
        }
        self.buffer.advance(newline + 1);
        // Fits: checked against max_record_len, a usize.
        Ok(Some(len as usize))
    }
}

fn malformed(header: &[u8]) -> RecordIoError {
    RecordIoError::MalformedLength {
        header: String::from_utf8_lossy(header).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(decoder: &mut Decoder) -> Result<Vec<Bytes>, RecordIoError> {
        let mut out = Vec::new();
        while let Some(record) = decoder.next_record()? {
            out.push(record);
        }
        Ok(out)
    }

    #[test]
    fn encodes_length_newline_bytes() {
        assert_eq!(&encode(b"hello")[..], b"5\nhello");
        assert_eq!(&encode(&[0u8; 12])[..6], b"12\n\0\0\0");
    }

    #[test]
    fn decodes_several_records_in_one_chunk() {
        let mut d = Decoder::default();
        d.feed(b"3\nabc1\nz2\n\n\n");
        let records = decode_all(&mut d).expect("valid stream");
        assert_eq!(records, vec![&b"abc"[..], &b"z"[..], &b"\n\n"[..]]);
        d.finish().expect("nothing left over");
    }

    #[test]
    fn decodes_a_record_split_byte_by_byte() {
        let mut d = Decoder::default();
        let mut got = Vec::new();
        for b in b"11\nhello world".iter() {
            d.feed(&[*b]);
            got.extend(decode_all(&mut d).expect("valid stream"));
        }
        assert_eq!(got, vec![&b"hello world"[..]]);
    }

    #[test]
    fn rejects_zero_length() {
        let mut d = Decoder::default();
        d.feed(b"0\n");
        assert_eq!(d.next_record(), Err(RecordIoError::ZeroLength));
        // The error is sticky: framing is lost for good.
        d.feed(b"1\na");
        assert_eq!(d.next_record(), Err(RecordIoError::ZeroLength));
    }

    #[test]
    fn rejects_non_digit_header_before_the_newline_arrives() {
        let mut d = Decoder::default();
        d.feed(b"1x");
        assert!(matches!(
            d.next_record(),
            Err(RecordIoError::MalformedLength { .. })
        ));
    }

    #[test]
    fn rejects_empty_and_signed_headers() {
        for input in [&b"\nabc"[..], b"-1\na", b"+1\na", b" 1\na"] {
            let mut d = Decoder::default();
            d.feed(input);
            assert!(
                matches!(d.next_record(), Err(RecordIoError::MalformedLength { .. })),
                "{:?}",
                input
            );
        }
    }

    #[test]
    fn rejects_records_above_the_maximum_before_buffering_them() {
        let mut d = Decoder::new(10);
        d.feed(b"11\n");
        assert_eq!(
            d.next_record(),
            Err(RecordIoError::TooLarge { len: 11, max: 10 })
        );
    }

    #[test]
    fn rejects_overlong_headers() {
        let mut d = Decoder::default();
        d.feed(b"999999999999999999999999");
        assert_eq!(d.next_record(), Err(RecordIoError::HeaderTooLong));
        let mut d = Decoder::default();
        d.feed(b"99999999999999999999\n");
        assert_eq!(d.next_record(), Err(RecordIoError::HeaderTooLong));
        let mut d = Decoder::default();
        d.feed(b"18446744073709551615\n");
        assert!(matches!(
            d.next_record(),
            Err(RecordIoError::TooLarge { .. })
        ));
    }

    #[test]
    fn reports_a_stream_truncated_inside_a_record() {
        let mut d = Decoder::default();
        d.feed(b"5\nab");
        assert_eq!(d.next_record(), Ok(None));
        assert_eq!(d.finish(), Err(RecordIoError::Truncated { buffered: 2 }));
    }

    proptest! {
        #[test]
        fn round_trips_under_any_chunking(
            records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 0..20),
            cuts in proptest::collection::vec(any::<usize>(), 0..30),
        ) {
            let mut stream = BytesMut::new();
            for r in &records {
                encode_into(r, &mut stream);
            }
            let stream = stream.freeze();
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
            points.push(0);
            points.push(stream.len());
            points.sort_unstable();
            let mut d = Decoder::default();
            let mut got = Vec::new();
            for w in points.windows(2) {
                d.feed(&stream[w[0]..w[1]]);
                got.extend(decode_all(&mut d).expect("valid stream"));
            }
            prop_assert_eq!(got.len(), records.len());
            for (g, r) in got.iter().zip(&records) {
                prop_assert_eq!(&g[..], &r[..]);
            }
            prop_assert!(d.finish().is_ok());
        }

        #[test]
        fn never_panics_on_garbage(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16),
            max in 1usize..4096,
        ) {
            let mut d = Decoder::new(max);
            for c in &chunks {
                d.feed(c);
                while let Ok(Some(r)) = d.next_record() {
                    prop_assert!(!r.is_empty() && r.len() <= max);
                }
            }
            let _ = d.finish();
        }

        #[test]
        fn garbage_after_valid_records_keeps_the_valid_ones(
            good in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..50), 1..5),
            junk in "[a-z ]{1,10}\n",
        ) {
            let mut stream = BytesMut::new();
            for r in &good {
                encode_into(r, &mut stream);
            }
            stream.extend_from_slice(junk.as_bytes());
            let mut d = Decoder::default();
            d.feed(&stream);
            for r in &good {
                let record = d.next_record().expect("valid record");
                prop_assert_eq!(record.as_deref(), Some(&r[..]));
            }
            let malformed = matches!(d.next_record(), Err(RecordIoError::MalformedLength { .. }));
            prop_assert!(malformed);
        }
    }
}
