//! Without the `deflate` feature: codec types that cannot exist, so the
//! reader's and writer's `Option`s of them are always `None` and every
//! compression path is dead code the compiler removes.

use crate::error::Result;

/// Stands in for the compressor; has no values.
#[derive(Debug)]
pub(crate) enum Deflater {}

/// Stands in for the decompressor; has no values.
#[derive(Debug)]
pub(crate) enum Inflater {}

impl Deflater {
    pub(crate) fn compress(&mut self, _: &[u8], _: &mut Vec<u8>) -> std::io::Result<()> {
        match *self {}
    }
}

impl Inflater {
    pub(crate) fn inflate(&mut self, _: &[u8], _: bool, _: &mut Vec<u8>, _: usize) -> Result<()> {
        match *self {}
    }
}
