//! How one vectored write becomes the segments rustls seals: small
//! slices gathered, a frame header topped up with its payload's head.

use std::io::IoSlice;

use super::copy;
use super::engine::RECORD;

/// Segments handed to rustls in one write at most.
const MAX_SEGMENTS: usize = 16;
/// Slices smaller than this are gathered into one segment (a record of
/// its own each would cost 22 bytes and a seal apiece).
const SMALL_SLICE: usize = 4096;
/// Gather at most one record's worth.
const GATHER_MAX: usize = 16 * 1024;

/// What one write seals: the leading small slices gathered into one
/// segment, then the large slices as they are (a small slice after a
/// large one waits for the next call).
pub(super) struct Segments<'a> {
    list: [&'a [u8]; MAX_SEGMENTS],
    count: usize,
}

impl<'a> Segments<'a> {
    pub(super) fn plan(bufs: &'a [IoSlice<'_>], gather: &'a mut Vec<u8>) -> Segments<'a> {
        let mut slices = bufs.iter().filter(|b| !b.is_empty()).peekable();
        gather.clear();
        while let Some(small) =
            slices.next_if(|b| b.len() < SMALL_SLICE && gather.len() + b.len() <= GATHER_MAX)
        {
            gather.extend_from_slice(small);
        }
        // A frame header before a large payload would be a record of its
        // own (22 bytes more on the wire, a seal here and an open at the
        // peer): the head of the payload tops the gathered bytes up to a
        // full record instead.
        let mut head: &[u8] = &[];
        if !gather.is_empty() && gather.len() < RECORD {
            if let Some(large) = slices.next_if(|b| b.len() >= SMALL_SLICE) {
                let (top_up, rest) = large.split_at((RECORD - gather.len()).min(large.len()));
                copy::extend(gather, top_up);
                head = rest;
            }
        }
        let mut plan = Segments {
            list: [&[]; MAX_SEGMENTS],
            count: 0,
        };
        let large = slices.take_while(|b| b.len() >= SMALL_SLICE).map(|b| &**b);
        for segment in [&gather[..], head].into_iter().chain(large) {
            if plan.count == MAX_SEGMENTS {
                break;
            }
            if !segment.is_empty() {
                plan.list[plan.count] = segment;
                plan.count += 1;
            }
        }
        plan
    }

    pub(super) fn as_slice(&self) -> &[&'a [u8]] {
        &self.list[..self.count]
    }

    /// Bytes in all.
    pub(super) fn len(&self) -> usize {
        self.as_slice().iter().map(|s| s.len()).sum()
    }
}
