//! `Header::parse` on arbitrary bytes: never panics; a complete header
//! re-encodes to exactly the bytes it came from (the parser only accepts
//! minimal length encodings, RFC 6455 §5.2); `Incomplete { needed }` is
//! consistent; `read_header` / `read_frame` on a stream agree with it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsproto::{read_frame, read_header, Error, Header, Parsed, MAX_HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    let parsed = Header::parse(data);
    match &parsed {
        Ok(Parsed::Complete(h, used)) => {
            let used = *used;
            assert!((2..=MAX_HEADER_LEN).contains(&used) && used <= data.len());
            assert_eq!(used, h.encoded_len());
            let mut out = [0u8; MAX_HEADER_LEN];
            let n = h.encode(&mut out);
            assert_eq!(&out[..n], &data[..used], "re-encoding differs for {h:?}");
            assert_eq!(h.to_bytes(), &data[..used]);
            assert!(h.len < 1 << 63);
            // Every shorter prefix is incomplete, and says so consistently.
            for k in 0..used {
                match Header::parse(&data[..k]) {
                    Ok(Parsed::Incomplete { needed }) => {
                        assert!(needed > 0 && k + needed <= used, "prefix {k}: {needed}");
                    }
                    other => panic!("prefix {k} of a complete header gave {other:?}"),
                }
            }
            // Extra bytes after the header do not change it.
            let mut longer = data[..used].to_vec();
            longer.extend_from_slice(&[0xa5; 3]);
            assert_eq!(
                Header::parse(&longer).ok(),
                Some(Parsed::Complete(*h, used))
            );
            // The stream reader reads exactly the header.
            let mut r = data;
            assert_eq!(read_header(&mut r).ok(), Some(*h));
            assert_eq!(r, &data[used..]);
            // read_frame: the payload is the next `len` bytes, or an error.
            let mut r = data;
            match read_frame(&mut r, 1 << 16) {
                Ok(f) => {
                    assert_eq!(f.header, *h);
                    assert_eq!(&f.payload[..], &data[used..used + h.len as usize]);
                }
                Err(Error::FrameTooBig { size, limit }) => {
                    assert!(size == h.len && size > limit as u64);
                }
                Err(Error::Io(e)) => {
                    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
                    assert!(((data.len() - used) as u64) < h.len);
                }
                Err(e) => panic!("read_frame after a good header: {e:?}"),
            }
        }
        Ok(Parsed::Incomplete { needed }) => {
            let needed = *needed;
            assert!(needed > 0, "Incomplete with needed 0");
            assert!(
                data.len() + needed <= MAX_HEADER_LEN,
                "{} + {needed}",
                data.len()
            );
            // `needed` is exact up to the second byte, which may announce
            // a longer header: fewer bytes stay incomplete by the rest, and
            // `needed` more bytes complete it or make progress within 14.
            for fill in [0x00u8, 0x01, 0x7e, 0x7f, 0x80, 0xfe, 0xff] {
                let mut more = data.to_vec();
                for k in 1..=needed {
                    more.push(fill);
                    match Header::parse(&more) {
                        Ok(Parsed::Incomplete { needed: n }) if k < needed => {
                            assert_eq!(n, needed - k, "after {k} bytes of {fill:#x}")
                        }
                        Ok(Parsed::Incomplete { needed: n }) => {
                            assert!(data.len() < 2, "header length was known, still incomplete");
                            assert!(n > 0 && more.len() + n <= MAX_HEADER_LEN);
                        }
                        other if k < needed => panic!("{k} < {needed} bytes gave {other:?}"),
                        _ => {}
                    }
                }
            }
            // A stream that ends there is an end-of-stream error.
            match read_header(&mut &data[..]) {
                Err(Error::UnexpectedEof) => assert!(data.is_empty()),
                Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof),
                other => panic!("read_header on a truncated header: {other:?}"),
            }
        }
        Err(e) => {
            assert!(
                matches!(e, Error::NonMinimalLength(_) | Error::LengthOverflow),
                "unexpected parse error {e:?}"
            );
            assert_eq!(e.close_code(), Some(wsproto::CloseCode::Protocol));
            let mut r = data;
            let again = read_header(&mut r).expect_err("read_header agrees");
            assert_eq!(format!("{again:?}"), format!("{e:?}"));
        }
    }
});
